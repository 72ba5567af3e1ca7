package hooks

import (
	"context"
	"crypto/subtle"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/vigil-auth/vigil/flows"
)

const (
	// MaxBody caps a hook body. Kratos' whole ctx for a login is a few
	// KiB; the shipped Jsonnet bodies are far smaller.
	MaxBody = 1 << 20
	// DefaultTimeout bounds the work behind one answer, far below Kratos'
	// 30 s.
	DefaultTimeout = 10 * time.Second
	// KeyHeader is the header the shipped Kratos config sends the secret in.
	KeyHeader = "X-Vigil-Key"
)

// Config configures the hook endpoints.
type Config struct {
	// APIKey is the shared secret Kratos sends: in the X-Vigil-Key header
	// (Kratos' api_key auth), or as the password of basic auth, or as a
	// bearer token. Empty refuses every call.
	APIKey  string
	Timeout time.Duration
	Logger  *slog.Logger
	// DeviceCookie is the name of the device token's cookie; default
	// DefaultDeviceCookie.
	DeviceCookie string
}

// DefaultDeviceCookie is the device token cookie's default name. The
// shipped login Jsonnet passes on cookies whose names start with vigil_.
const DefaultDeviceCookie = "vigil_device"

// Handler serves POST /hooks/kratos/{registration,login,settings,verification}.
type Handler struct {
	cfg Config
	svc *flows.Service
	mux *http.ServeMux
}

// New returns the hook endpoints.
func New(cfg Config, svc *flows.Service) *Handler {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.DeviceCookie == "" {
		cfg.DeviceCookie = DefaultDeviceCookie
	}
	h := &Handler{cfg: cfg, svc: svc, mux: http.NewServeMux()}
	h.mux.HandleFunc("POST /hooks/kratos/login", h.serve("login", h.login))
	h.mux.HandleFunc("POST /hooks/kratos/registration", h.serve("registration", h.registration))
	h.mux.HandleFunc("POST /hooks/kratos/settings", h.serve("settings", h.settings))
	h.mux.HandleFunc("POST /hooks/kratos/verification", h.serve("verification", h.verification))
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// answer is what a hook decided.
type answer struct {
	status int
	body   []byte
}

type hookFunc func(ctx context.Context, in *input, trigger string) (answer, error)

// serve wraps a hook: authenticate, cap and decode the body, run the hook
// once per trigger id under a deadline, write the answer.
func (h *Handler) serve(name string, fn hookFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// The logger is built only for a call that has something to say:
		// the allow path of the gate is hot.
		log := func() *slog.Logger {
			return h.cfg.Logger.With("hook", name, "trigger_id", r.Header.Get("Ory-Webhook-Trigger-Id"))
		}
		if !h.authenticated(r) {
			log().WarnContext(r.Context(), "hook call without a valid key")
			w.Header().Set("WWW-Authenticate", `Bearer realm="vigil-hooks"`)
			write(w, http.StatusUnauthorized, []byte(`{"error":{"code":"unauthorized","message":"Missing or wrong hook key."}}`))
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
		if err != nil {
			if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
				write(w, http.StatusRequestEntityTooLarge, messagesBody(badRequestMessage("body too large")))
				return
			}
			write(w, http.StatusBadRequest, messagesBody(badRequestMessage("body could not be read")))
			return
		}
		in, err := decode(body)
		if err != nil {
			log().WarnContext(r.Context(), "hook body refused", "error", err)
			write(w, http.StatusBadRequest, messagesBody(badRequestMessage(err.Error())))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
		defer cancel()
		a, err := fn(ctx, in, r.Header.Get("Ory-Webhook-Trigger-Id"))
		if err != nil {
			log().ErrorContext(r.Context(), "hook failed", "identity_id", in.Identity.ID, "error", err)
			if name == "login" {
				// A decision must never be a 5xx: Kratos would retry and
				// then show nothing. Fail closed with a message instead.
				write(w, http.StatusForbidden, messagesBody(unavailableMessage()))
				return
			}
			// The other hooks cannot interrupt anything; a 500 makes
			// Kratos retry, and the trigger id keeps retries harmless.
			write(w, http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"Internal error."}}`))
			return
		}
		write(w, a.status, a.body)
	}
}

// once runs a hook's work at most once per trigger id (Kratos' retries of
// one execution share it) and answers a retry as the first call was.
func (h *Handler) once(ctx context.Context, trigger, name string, work func() (answer, error)) (answer, error) {
	status, body, err := h.svc.Once(ctx, trigger, name, func() (int, []byte, bool, error) {
		a, err := work()
		return a.status, a.body, err == nil, err
	})
	return answer{status: status, body: body}, err
}

func write(w http.ResponseWriter, status int, body []byte) {
	if status == http.StatusNoContent {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// authenticated compares the presented secret in constant time.
func (h *Handler) authenticated(r *http.Request) bool {
	if h.cfg.APIKey == "" {
		return false
	}
	candidates := []string{r.Header.Get(KeyHeader)}
	if u, p, ok := r.BasicAuth(); ok {
		_ = u // Kratos' basic_auth sends a user too; the password is the secret
		candidates = append(candidates, p)
	}
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		candidates = append(candidates, a[7:])
	}
	ok := 0
	for _, c := range candidates {
		if c != "" {
			ok |= subtle.ConstantTimeCompare([]byte(c), []byte(h.cfg.APIKey))
		}
	}
	return ok == 1
}

var allow = answer{status: http.StatusNoContent}

// login is the gate. Its allow path writes nothing and keeps no record of
// the trigger: answering a retry again costs nothing and changes nothing.
// A block is kept per trigger, so a retry gets the very same message; the
// gate would reuse the challenge anyway while it is valid.
func (h *Handler) login(ctx context.Context, in *input, trigger string) (answer, error) {
	d, err := h.svc.Gate(ctx, flows.LoginRequest{
		Identity: in.Identity, FlowID: in.FlowID, DeviceToken: in.deviceToken(h.cfg.DeviceCookie), Origin: in.Origin,
	})
	if err != nil {
		return answer{}, err
	}
	if d.Allow {
		return allow, nil
	}
	return h.once(ctx, trigger, "login", func() (answer, error) {
		return answer{status: http.StatusForbidden, body: messagesBody(blockMessage(d))}, nil
	})
}

func (h *Handler) registration(ctx context.Context, in *input, trigger string) (answer, error) {
	return h.once(ctx, trigger, "registration", func() (answer, error) { return allow, h.svc.Registered(ctx, in.Identity, in.Origin) })
}

func (h *Handler) settings(ctx context.Context, in *input, trigger string) (answer, error) {
	return h.once(ctx, trigger, "settings", func() (answer, error) { return allow, h.svc.SettingsChanged(ctx, in.Identity, in.Origin) })
}

func (h *Handler) verification(ctx context.Context, in *input, trigger string) (answer, error) {
	return h.once(ctx, trigger, "verification", func() (answer, error) { return allow, h.svc.KratosVerified(ctx, in.Identity) })
}
