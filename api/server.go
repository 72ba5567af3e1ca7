package api

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/flows"
	"github.com/vigil-auth/vigil/ui"
)

// Config configures the HTTP edge. cmd/vigil fills it from vigil.yml.
type Config struct {
	// AdminAPIKey is the bearer token the admin API requires. Empty
	// locks the admin API (every call gets 401); it never opens it.
	AdminAPIKey string
	// Dev marks pages as running in development mode.
	Dev    bool
	Logger *slog.Logger // default slog.Default()
	// Ready checks the dependencies (the database) for /health/ready; it
	// gets two seconds. Nil means always ready.
	Ready func(ctx context.Context) error
	// Registry receives the metrics and is what /metrics serves. Nil: a
	// new one. Use the same registry for NewMetrics when handing
	// Metrics to flows as its Observer.
	Registry *prometheus.Registry
	// TrustProxyHeaders takes the client IP from X-Forwarded-For's first
	// hop. Only set it behind a proxy that overwrites that header:
	// otherwise clients pick their own IP and walk around per-IP limits.
	TrustProxyHeaders bool
	Version           string
	// Callbacks read delivery reports, by provider name: a provider's
	// status callbacks are POSTed to /callbacks/{provider}/status on the
	// public listener (the provider's servers must reach it).
	Callbacks map[string]StatusCallback
	// DeviceCookie is the cookie browsers keep their device token in.
	DeviceCookie DeviceCookie
	// Product names the service on pages ("Acme"); empty: "your account".
	Product string
}

// StatusCallback reads a provider's delivery report from its request. It
// checks the provider's signature: a missing or wrong one is a vigil.Error
// with code unauthorized, a malformed report one with invalid_request. ok
// is false for a report that brings no news (queued, sending).
type StatusCallback func(r *http.Request) (u vigil.StatusUpdate, ok bool, err error)

// Server is the HTTP edge. Build it with New; it is safe for concurrent
// use.
type Server struct {
	cfg     Config
	svc     *flows.Service
	log     *slog.Logger
	metrics *Metrics
	public  *chi.Mux
	admin   *chi.Mux
}

// New builds both listeners' handlers around svc.
func New(cfg Config, svc *flows.Service) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	s := &Server{
		cfg:     cfg,
		svc:     svc,
		log:     cfg.Logger,
		metrics: NewMetrics(cfg.Registry),
	}
	registerRuntime(cfg.Registry)
	registerBuildInfo(cfg.Registry, cfg.Version)
	s.public = s.publicRoutes()
	s.admin = s.adminRoutes()
	return s
}

// Public is the handler for the public listener.
func (s *Server) Public() http.Handler { return s.public }

// Admin is the handler for the admin listener.
func (s *Server) Admin() http.Handler { return s.admin }

// base is what both listeners share: ids, access log and metrics, panic
// recovery, body limit, headers, JSON 404 and 405.
func (s *Server) base(listener string) *chi.Mux {
	r := chi.NewRouter()
	r.Use(withRequestID, s.observe(listener), s.recoverer, s.limitBody, baseHeaders)
	r.NotFound(s.handle(func(http.ResponseWriter, *http.Request) error {
		return vigil.Errorf(vigil.ENOTFOUND, "No such endpoint.")
	}, jsonOnly))
	r.MethodNotAllowed(s.methodNotAllowed(r))
	r.Get("/health/alive", s.handle(s.alive, jsonOnly))
	r.Get("/health/ready", s.handle(s.ready, jsonOnly))
	r.Get("/openapi.json", s.handle(serveOpenAPI, jsonOnly))
	return r
}

func (s *Server) publicRoutes() *chi.Mux {
	r := s.base("public")
	r.Post("/self-service/verifications/{id}/code", s.handle(s.checkCode, jsonOnly))
	r.Post("/self-service/verifications/resend", s.handle(s.resend, jsonOnly))
	r.Get("/self-service/verifications/link", s.handle(s.peekLink, htmlOnly))
	r.Head("/self-service/verifications/link", s.handle(s.peekLink, htmlOnly))
	r.Post("/self-service/verifications/link", s.handle(s.consumeLink, linkWantsHTML))
	r.Get("/self-service/verifications", s.handle(s.sessionStatus, jsonOnly))
	r.Get("/authz", s.handle(s.authz, jsonOnly))
	r.Post("/callbacks/{provider}/status", s.handle(s.statusCallback, jsonOnly))
	r.Get("/self-service/devices", s.handle(s.sessionDevices, jsonOnly))
	r.Delete("/self-service/devices/{id}", s.handle(s.sessionRevokeDevice, jsonOnly))
	r.Post("/self-service/devices/token", s.handle(s.refreshDevice, jsonOnly))
	r.Get("/devices/enroll", s.handle(s.enrollPage, htmlOnly))
	r.Head("/devices/enroll", s.handle(s.enrollPage, htmlOnly))
	r.Post("/devices/enroll/options", s.handle(s.enrollOptions, jsonOnly))
	r.Post("/devices/enroll/finish", s.handle(s.enrollFinish, jsonOnly))
	r.Get("/devices/webauthn", s.handle(s.proofPage, htmlOnly))
	r.Head("/devices/webauthn", s.handle(s.proofPage, htmlOnly))
	r.Post("/devices/webauthn/options", s.handle(s.proofOptions, jsonOnly))
	r.Post("/devices/webauthn/finish", s.handle(s.proofFinish, jsonOnly))
	return r
}

func (s *Server) adminRoutes() *chi.Mux {
	r := s.base("admin")
	// Scrapers rarely carry a bearer token; the admin listener is private.
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
	}))
	r.Group(func(r chi.Router) {
		r.Use(s.requireAdmin)
		r.Post("/admin/verifications", s.handle(s.startVerification, jsonOnly))
		r.Get("/admin/verifications/{id}", s.handle(s.getVerification, jsonOnly))
		r.Get("/admin/identities/{id}/verification", s.handle(s.identityStatus, jsonOnly))
		r.Post("/admin/identities/{id}/unlock", s.handle(s.unlock, jsonOnly))
		r.Post("/admin/identities/{id}/addresses/verify", s.handle(s.forceVerify, jsonOnly))
		r.Get("/admin/audit", s.handle(s.audit, jsonOnly))
		r.Get("/admin/audit/verify", s.handle(s.verifyAudit, jsonOnly))
		r.Get("/admin/messages", s.handle(s.messages, jsonOnly))
		r.Get("/admin/identities/{id}/devices", s.handle(s.devices, jsonOnly))
		r.Post("/admin/identities/{id}/devices/enrollments", s.handle(s.createEnrollment, jsonOnly))
		r.Delete("/admin/devices/{id}", s.handle(s.revokeDevice, jsonOnly))
	})
	return r
}

// methodNotAllowed answers 405 in the JSON error shape with the Allow
// header chi's default handler would set (a custom handler loses it).
func (s *Server) methodNotAllowed(mux *chi.Mux) http.HandlerFunc {
	methods := []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions}
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		for _, m := range methods {
			if mux.Match(chi.NewRouteContext(), m, r.URL.Path) {
				w.Header().Add("Allow", m)
			}
		}
		return vigil.Errorf(codeMethodNotAllowed, "Method %s is not allowed here.", metricMethod(r.Method))
	}, jsonOnly)
}

// writeJSON writes v with status. Encoding happens before the header goes
// out, so a failure still becomes a clean 500.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(true)
	if err := enc.Encode(v); err != nil {
		s.log.ErrorContext(r.Context(), "encode response", "request_id", requestID(r.Context()), "err", err)
		buf.Reset()
		buf.WriteString(`{"error":{"code":"internal","message":"Internal error."}}` + "\n")
		status = http.StatusInternalServerError
	}
	writeRaw(w, status, mimeJSON, buf.Bytes())
}

func writeRaw(w http.ResponseWriter, status int, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body) // the client went away; nothing to do about it
}

// renderPage writes a ui page with status, headers only for HEAD.
func (s *Server) renderPage(w http.ResponseWriter, r *http.Request, status int, p ui.Page) {
	p.Dev = s.cfg.Dev
	var buf bytes.Buffer
	if err := ui.Render(&buf, p); err != nil {
		s.log.ErrorContext(r.Context(), "render page", "request_id", requestID(r.Context()), "err", err)
		writeRaw(w, http.StatusInternalServerError, "text/plain; charset=utf-8", []byte("Internal error.\n"))
		return
	}
	ui.SetHeaders(w.Header())
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = buf.WriteTo(w)
	}
}
