package authz

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Defaults for Config fields left zero.
const (
	DefaultTimeout = 2 * time.Second
	// DefaultCacheSize bounds the cache when CacheTTL is set.
	DefaultCacheSize = 10000
)

// IdentityHeader is the response header in which Vigil names the identity
// of an allowed request. The middleware sets it on the request it passes
// on, too.
const IdentityHeader = "X-Vigil-Identity"

// forwarded are the request headers that carry a Kratos session: the
// session cookie, the session token of native apps, and a bearer token.
var forwarded = []string{"Cookie", "X-Session-Token", "Authorization"}

// maxBody caps what is read of Vigil's answer: its error bodies are small.
const maxBody = 64 << 10

// Config configures a Checker.
type Config struct {
	// VigilURL is the base URL of Vigil's public listener, e.g.
	// http://127.0.0.1:4480 or http://vigil:4480. Required.
	VigilURL string
	// HTTPClient calls Vigil. Default: a client that does not follow
	// redirects (Vigil's /authz never redirects; a redirect means the URL
	// is wrong, and fails closed).
	HTTPClient *http.Client
	// Timeout bounds each call to Vigil. Default DefaultTimeout.
	Timeout time.Duration
	// CacheTTL keeps allowed answers this long per set of credentials. 0
	// (the default) asks Vigil on every request.
	CacheTTL time.Duration
	// CacheSize bounds the number of cached answers. Default
	// DefaultCacheSize.
	CacheSize int
	// Logger receives a warning for each request refused because Vigil
	// could not be asked (the client sees only 503). Default: none.
	Logger *slog.Logger
}

// Checker asks Vigil whether requests may pass. It is safe for concurrent
// use.
type Checker struct {
	endpoint string
	client   *http.Client
	timeout  time.Duration
	ttl      time.Duration
	size     int
	log      *slog.Logger
	now      func() time.Time

	mu    sync.Mutex
	cache map[[sha256.Size]byte]cached
}

type cached struct {
	identity string
	expires  time.Time
}

// New returns a Checker for cfg. It panics when cfg.VigilURL is not an
// absolute http or https URL: that is a programming error, better found
// at start-up than on the first request.
func New(cfg Config) *Checker {
	u, err := url.Parse(cfg.VigilURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		panic(fmt.Sprintf("authz: Config.VigilURL must be an absolute http(s) URL without query, got %q", cfg.VigilURL))
	}
	c := &Checker{
		endpoint: strings.TrimRight(u.String(), "/") + "/authz",
		client:   cfg.HTTPClient,
		timeout:  cfg.Timeout,
		ttl:      cfg.CacheTTL,
		size:     cfg.CacheSize,
		log:      cfg.Logger,
		now:      time.Now,
	}
	if c.client == nil {
		c.client = &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.size <= 0 {
		c.size = DefaultCacheSize
	}
	if c.ttl > 0 {
		c.cache = make(map[[sha256.Size]byte]cached)
	}
	return c
}

type ctxKey struct{}

// IdentityID returns the id of the Kratos identity the middleware allowed
// the request for.
func IdentityID(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(ctxKey{}).(string)
	return id, ok && id != ""
}

// WithIdentityID returns ctx carrying id as the allowed identity, as the
// middleware does. Meant for tests of handlers that sit behind it.
func WithIdentityID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// Middleware lets a request reach next only when Vigil allows it; see the
// package documentation.
func (c *Checker) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, err := c.check(r)
		if err != nil {
			if c.log != nil {
				c.log.WarnContext(r.Context(), "authz: Vigil could not be asked; request refused", "error", err)
			}
			writeUnavailable(w)
			return
		}
		if d.identity == "" {
			copyRefusal(w, d)
			return
		}
		r2 := r.Clone(WithIdentityID(r.Context(), d.identity))
		r2.Header.Set(IdentityHeader, d.identity)
		next.ServeHTTP(w, r2)
	})
}

// decision is Vigil's answer: an identity when allowed, else the refusal
// to pass on.
type decision struct {
	identity string
	status   int
	header   http.Header
	body     []byte
}

func (c *Checker) check(r *http.Request) (*decision, error) {
	var key [sha256.Size]byte
	if c.cache != nil {
		key = credentialsKey(r)
		if id, ok := c.cached(key); ok {
			return &decision{identity: id}, nil
		}
	}

	ctx, cancel := context.WithTimeout(r.Context(), c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	for _, h := range forwarded {
		if v := r.Header.Values(h); len(v) > 0 {
			req.Header[h] = v
		}
	}
	if id := r.Header.Get("X-Request-ID"); id != "" {
		req.Header.Set("X-Request-ID", id)
	}

	res, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("call %s: %w", c.endpoint, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("read answer of %s: %w", c.endpoint, err)
	}
	if len(body) > maxBody {
		return nil, fmt.Errorf("answer of %s is over %d bytes", c.endpoint, maxBody)
	}

	switch res.StatusCode {
	case http.StatusOK:
		id := res.Header.Get(IdentityHeader)
		if id == "" {
			return nil, fmt.Errorf("%s answered 200 without %s", c.endpoint, IdentityHeader)
		}
		if c.cache != nil {
			c.store(key, id)
		}
		return &decision{identity: id}, nil
	case http.StatusUnauthorized, http.StatusForbidden:
		return &decision{status: res.StatusCode, header: res.Header, body: body}, nil
	}
	return nil, fmt.Errorf("%s answered %d", c.endpoint, res.StatusCode)
}

// credentialsKey identifies a request's credentials without keeping them.
func credentialsKey(r *http.Request) [sha256.Size]byte {
	h := sha256.New()
	for _, name := range forwarded {
		for _, v := range r.Header.Values(name) {
			// Length-prefixed, so that no two sets of values collide.
			fmt.Fprintf(h, "%s:%d:%s\n", name, len(v), v)
		}
	}
	var k [sha256.Size]byte
	copy(k[:], h.Sum(nil))
	return k
}

func (c *Checker) cached(key [sha256.Size]byte) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.cache[key]
	if !ok {
		return "", false
	}
	if !c.now().Before(e.expires) {
		delete(c.cache, key)
		return "", false
	}
	return e.identity, true
}

func (c *Checker) store(key [sha256.Size]byte, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.cache) >= c.size {
		for k, e := range c.cache {
			if !now.Before(e.expires) {
				delete(c.cache, k)
			}
		}
		// Still full of live answers: start over rather than grow. The
		// cost is a round of calls to Vigil, never a wrong answer.
		if len(c.cache) >= c.size {
			clear(c.cache)
		}
	}
	c.cache[key] = cached{identity: id, expires: now.Add(c.ttl)}
}

// copyRefusal passes Vigil's 401 or 403 on as it came.
func copyRefusal(w http.ResponseWriter, d *decision) {
	if len(d.body) == 0 {
		code := "unauthorized"
		if d.status == http.StatusForbidden {
			code = "forbidden"
		}
		writeError(w, d.status, code, http.StatusText(d.status)+".")
		return
	}
	// Vigil's refusals are JSON; whatever its Content-Type says, the client
	// gets them as JSON and never sniffs them into anything else.
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if v := d.header.Get("WWW-Authenticate"); v != "" {
		w.Header().Set("WWW-Authenticate", v)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(d.status)
	_, _ = w.Write(d.body) //nolint:gosec // Vigil's JSON answer, served as application/json with nosniff
}

func writeUnavailable(w http.ResponseWriter) {
	writeError(w, http.StatusServiceUnavailable, "authz_unavailable", "Access cannot be checked right now; try again later.")
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// writeError writes Vigil's error shape: {"error":{"code":..,"message":..}}.
func writeError(w http.ResponseWriter, status int, code, message string) {
	var b errorBody
	b.Error.Code, b.Error.Message = code, message
	body, err := json.Marshal(b)
	if err != nil { // two strings always encode
		body = []byte(`{"error":{"code":"internal","message":"Internal error."}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
