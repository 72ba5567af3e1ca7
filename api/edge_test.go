package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil"
)

func TestResolve(t *testing.T) {
	t.Parallel()
	two := 2
	tests := []struct {
		name       string
		err        error
		status     int
		code       string
		attempts   *int
		retryAfter int64
		internal   bool
	}{
		{name: "invalid request", err: vigil.Errorf(vigil.EINVALID, "x"), status: 400, code: vigil.EINVALID},
		{name: "invalid address", err: vigil.Errorf(vigil.EADDRESS, "x"), status: 400, code: vigil.EADDRESS},
		{name: "unsupported address", err: vigil.Errorf(vigil.EUNSUPPORTEDADDR, "x"), status: 400, code: vigil.EUNSUPPORTEDADDR},
		{name: "wrong code", err: &vigil.Error{Code: vigil.EWRONGCODE, Message: "x", AttemptsLeft: &two}, status: 400, code: vigil.EWRONGCODE, attempts: &two},
		{name: "not found", err: vigil.ErrNotFound, status: 404, code: vigil.ENOTFOUND},
		{name: "wrapped not found", err: fmt.Errorf("load: %w", vigil.ErrNotFound), status: 404, code: vigil.ENOTFOUND},
		{name: "conflict", err: vigil.ErrConflict, status: 409, code: vigil.ECONFLICT},
		{name: "already used", err: vigil.Errorf(vigil.EUSED, "x"), status: 409, code: vigil.EUSED},
		{name: "already verified", err: vigil.Errorf(vigil.EVERIFIED, "x"), status: 409, code: vigil.EVERIFIED},
		{name: "expired", err: vigil.Errorf(vigil.EEXPIRED, "x"), status: 410, code: vigil.EEXPIRED},
		{name: "locked", err: &vigil.Error{Code: vigil.ELOCKED, Message: "x", RetryAfter: 61 * time.Second}, status: 423, code: vigil.ELOCKED, retryAfter: 61},
		{name: "hard locked", err: vigil.Errorf(vigil.ELOCKED, "x"), status: 423, code: vigil.ELOCKED},
		{name: "rate limited rounds up", err: &vigil.Error{Code: vigil.ERATELIMITED, Message: "x", RetryAfter: 1500 * time.Millisecond}, status: 429, code: vigil.ERATELIMITED, retryAfter: 2},
		{name: "unauthorized", err: vigil.Errorf(vigil.EUNAUTHORIZED, "x"), status: 401, code: vigil.EUNAUTHORIZED},
		{name: "attempts only on wrong code", err: &vigil.Error{Code: vigil.EEXPIRED, Message: "x", AttemptsLeft: &two}, status: 410, code: vigil.EEXPIRED},
		{name: "internal code", err: vigil.Errorf(vigil.EINTERNAL, "secret detail"), status: 500, code: vigil.EINTERNAL, internal: true},
		{name: "plain error", err: errors.New("db down"), status: 500, code: vigil.EINTERNAL, internal: true},
		{name: "unknown code", err: vigil.Errorf("made_up", "secret detail"), status: 500, code: vigil.EINTERNAL, internal: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := resolve(tt.err)
			require.Equal(t, tt.status, p.status)
			require.Equal(t, tt.code, p.body.Error.Code)
			require.Equal(t, tt.attempts, p.body.AttemptsLeft)
			require.Equal(t, tt.retryAfter, p.body.RetryAfter)
			require.Equal(t, tt.internal, p.internal)
			if tt.internal {
				require.Equal(t, internalMessage, p.body.Error.Message)
			}
		})
	}
}

// Every code the domain defines has a status: a new code without one
// would silently become a 500.
func TestEveryVigilCodeMapped(t *testing.T) {
	t.Parallel()
	for _, code := range []string{
		vigil.ECONFLICT, vigil.EINTERNAL, vigil.EINVALID, vigil.ENOTFOUND, vigil.EUNAUTHORIZED,
		vigil.EWRONGCODE, vigil.EEXPIRED, vigil.ELOCKED, vigil.ERATELIMITED, vigil.EUSED,
		vigil.EVERIFIED, vigil.EADDRESS, vigil.EUNSUPPORTEDADDR,
	} {
		require.Contains(t, statusByCode, code)
	}
}

func TestFailWritesErrorShape(t *testing.T) {
	t.Parallel()
	s, logs := newServer(t, Config{}, nil)
	h := s.handle(func(http.ResponseWriter, *http.Request) error {
		return &vigil.Error{Code: vigil.ELOCKED, Message: "Locked.", RetryAfter: 30 * time.Second}
	}, jsonOnly)
	w := httptest.NewRecorder()
	h(w, httptest.NewRequest(http.MethodGet, "/", nil))
	e := requireError(t, w, http.StatusLocked, vigil.ELOCKED)
	require.EqualValues(t, 30, e.RetryAfter)
	require.Equal(t, "30", w.Header().Get("Retry-After"))
	require.Nil(t, e.AttemptsLeft)
	require.Empty(t, logs.String(), "client errors are not logged as failures")

	two := 0
	h = s.handle(func(http.ResponseWriter, *http.Request) error {
		return &vigil.Error{Code: vigil.EWRONGCODE, Message: "Wrong.", AttemptsLeft: &two}
	}, jsonOnly)
	w = httptest.NewRecorder()
	h(w, httptest.NewRequest(http.MethodGet, "/", nil))
	e = requireError(t, w, http.StatusBadRequest, vigil.EWRONGCODE)
	require.NotNil(t, e.AttemptsLeft, "attempts_left 0 must still be sent")
	require.Equal(t, 0, *e.AttemptsLeft)
	require.Contains(t, w.Body.String(), `"attempts_left":0`)
	require.Empty(t, w.Header().Get("Retry-After"))
}

func TestInternalErrorLoggedOnceNotShown(t *testing.T) {
	t.Parallel()
	s, logs := newServer(t, Config{}, nil)
	r := s.base("test")
	r.Get("/boom", s.handle(func(http.ResponseWriter, *http.Request) error {
		return fmt.Errorf("load row: %w", errors.New("connection refused to db-7"))
	}, jsonOnly))
	w := do(t, r, req{method: http.MethodGet, path: "/boom", headers: map[string]string{"X-Request-Id": "rid-42"}})
	e := requireError(t, w, http.StatusInternalServerError, vigil.EINTERNAL)
	require.Equal(t, internalMessage, e.Error.Message)
	require.NotContains(t, w.Body.String(), "db-7")
	require.Equal(t, 1, strings.Count(logs.String(), "connection refused to db-7"))
	require.Contains(t, logs.String(), `"request_id":"rid-42"`)
}

func TestRecoverer(t *testing.T) {
	t.Parallel()
	s, logs := newServer(t, Config{}, nil)
	r := s.base("test")
	r.Get("/panic", func(http.ResponseWriter, *http.Request) { panic("kaboom") })
	w := do(t, r, req{method: http.MethodGet, path: "/panic"})
	requireError(t, w, http.StatusInternalServerError, vigil.EINTERNAL)
	require.Contains(t, logs.String(), "kaboom")
	require.Contains(t, logs.String(), `"status":500`)
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, Config{}, nil)
	for name, h := range map[string]http.Handler{"public": s.Public(), "admin": s.Admin()} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			requireError(t, do(t, h, req{method: http.MethodGet, path: "/nope"}), http.StatusNotFound, vigil.ENOTFOUND)
			w := do(t, h, req{method: http.MethodDelete, path: "/health/alive"})
			requireError(t, w, http.StatusMethodNotAllowed, codeMethodNotAllowed)
			require.Equal(t, []string{http.MethodGet}, w.Header().Values("Allow"))
		})
	}
	w := do(t, s.Public(), req{method: http.MethodPut, path: "/self-service/verifications/link"})
	requireError(t, w, http.StatusMethodNotAllowed, codeMethodNotAllowed)
	require.ElementsMatch(t, []string{http.MethodGet, http.MethodHead, http.MethodPost}, w.Header().Values("Allow"))
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	s, logs := newServer(t, Config{}, nil)
	tests := []struct {
		name, in string
		keep     bool
	}{
		{name: "sane kept", in: "abc-123_x.y:z", keep: true},
		{name: "none generated", in: ""},
		{name: "spaces replaced", in: "a b"},
		{name: "newline replaced", in: "a\nforged"},
		{name: "quote replaced", in: `a"b`},
		{name: "too long replaced", in: strings.Repeat("a", 129)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodGet, "/health/alive", nil)
			if tt.in != "" {
				r.Header["X-Request-Id"] = []string{tt.in} // raw, to bypass canonical cleaning
			}
			w := httptest.NewRecorder()
			s.Public().ServeHTTP(w, r)
			got := w.Header().Get("X-Request-ID")
			if tt.keep {
				require.Equal(t, tt.in, got)
			} else {
				require.NotEqual(t, tt.in, got)
				require.True(t, saneRequestID(got))
				require.Len(t, got, 36)
			}
			require.Contains(t, logs.String(), `"request_id":"`+got+`"`)
		})
	}
}

func TestAccessLogOmitsQuery(t *testing.T) {
	t.Parallel()
	s, logs := newServer(t, Config{}, nil)
	do(t, s.Public(), req{method: http.MethodGet, path: "/nope?token=SECRETTOKEN&x=1"})
	out := logs.String()
	require.NotContains(t, out, "SECRETTOKEN")
	require.Contains(t, out, `"path":"/nope"`)
	require.Contains(t, out, `"route":"unmatched"`)
	require.Contains(t, out, `"status":404`)
	require.Contains(t, out, `"method":"GET"`)
	require.Contains(t, out, `"duration":`)
}

func TestClientIP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		trust  bool
		remote string
		xff    []string
		want   string
	}{
		{name: "remote v4", remote: "192.0.2.1:1234", want: "192.0.2.1"},
		{name: "remote v6", remote: "[2001:db8::1]:1234", want: "2001:db8::1"},
		{name: "mapped v4", remote: "[::ffff:192.0.2.7]:1", want: "192.0.2.7"},
		{name: "xff ignored untrusted", remote: "192.0.2.1:1", xff: []string{"203.0.113.9"}, want: "192.0.2.1"},
		{name: "xff first hop", trust: true, remote: "192.0.2.1:1", xff: []string{" 203.0.113.9 , 10.0.0.1"}, want: "203.0.113.9"},
		{name: "xff first header", trust: true, remote: "192.0.2.1:1", xff: []string{"203.0.113.9", "198.51.100.1"}, want: "203.0.113.9"},
		{name: "xff garbage falls back", trust: true, remote: "192.0.2.1:1", xff: []string{"not-an-ip"}, want: "192.0.2.1"},
		{name: "no port", remote: "192.0.2.5", want: "192.0.2.5"},
		{name: "garbage remote", remote: "pipe", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := &Server{cfg: Config{TrustProxyHeaders: tt.trust}}
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			require.Equal(t, tt.want, s.clientIP(r))
		})
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		ready  func(context.Context) error
		status int
		body   string
	}{
		{name: "nil ready", ready: nil, status: 200, body: `{"status":"ok"}`},
		{name: "ready", ready: func(context.Context) error { return nil }, status: 200, body: `{"status":"ok"}`},
		{name: "failing", ready: func(context.Context) error { return errors.New("db down") }, status: 503, body: `{"status":"unavailable"}`},
		{name: "hanging times out", ready: func(ctx context.Context) error {
			dl, ok := ctx.Deadline()
			if !ok || time.Until(dl) > readyTimeout {
				return errors.New("no deadline")
			}
			<-ctx.Done()
			return ctx.Err()
		}, status: 503, body: `{"status":"unavailable"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, _ := newServer(t, Config{Ready: tt.ready}, nil)
			for _, h := range []http.Handler{s.Public(), s.Admin()} {
				w := do(t, h, req{method: http.MethodGet, path: "/health/ready"})
				require.Equal(t, tt.status, w.Code)
				require.JSONEq(t, tt.body, w.Body.String())
				w = do(t, h, req{method: http.MethodGet, path: "/health/alive"})
				require.Equal(t, 200, w.Code)
				require.JSONEq(t, `{"status":"ok"}`, w.Body.String())
			}
		})
	}
}

// adminPaths are one request per admin route, with a well-formed body.
var adminPaths = []req{
	{method: http.MethodPost, path: "/admin/verifications", body: `{"identity_id":"0190a6c4-7b8e-7c3a-9d2e-1f2a3b4c5d6e","address":"a@example.com","channel":"email"}`},
	{method: http.MethodGet, path: "/admin/verifications/0190a6c4-7b8e-7c3a-9d2e-1f2a3b4c5d6e"},
	{method: http.MethodGet, path: "/admin/identities/0190a6c4-7b8e-7c3a-9d2e-1f2a3b4c5d6e/verification"},
	{method: http.MethodPost, path: "/admin/identities/0190a6c4-7b8e-7c3a-9d2e-1f2a3b4c5d6e/unlock"},
	{method: http.MethodPost, path: "/admin/identities/0190a6c4-7b8e-7c3a-9d2e-1f2a3b4c5d6e/addresses/verify", body: `{"address":"a@example.com","channel":"email"}`},
	{method: http.MethodGet, path: "/admin/audit"},
	{method: http.MethodGet, path: "/admin/audit/verify"},
	{method: http.MethodGet, path: "/admin/messages"},
}

func TestAdminAuth(t *testing.T) {
	t.Parallel()
	s, logs := newServer(t, Config{}, nil)
	locked, _ := newServer(t, Config{AdminAPIKey: "placeholder"}, nil)
	locked.cfg.AdminAPIKey = ""
	locked.admin = locked.adminRoutes() // an empty key must lock, not open
	auths := map[string]string{
		"missing":         "",
		"wrong key":       "Bearer not-the-key",
		"prefix of key":   "Bearer " + testAdminKey[:10],
		"key plus suffix": "Bearer " + testAdminKey + "x",
		"wrong scheme":    "Basic " + testAdminKey,
		"bare key":        testAdminKey,
		"empty bearer":    "Bearer ",
	}
	for _, rq := range adminPaths {
		for name, auth := range auths {
			rq := rq
			rq.headers = map[string]string{"Authorization": auth}
			w := do(t, s.Admin(), rq)
			requireError(t, w, http.StatusUnauthorized, vigil.EUNAUTHORIZED)
			require.Contains(t, w.Header().Get("WWW-Authenticate"), "Bearer", "%s %s", rq.path, name)
		}
		w := do(t, locked.Admin(), req{method: rq.method, path: rq.path, body: rq.body, headers: map[string]string{"Authorization": "Bearer "}})
		requireError(t, w, http.StatusUnauthorized, vigil.EUNAUTHORIZED)
	}
	require.NotContains(t, logs.String(), "not-the-key")
	// Lower-case scheme is fine (RFC 7235: case-insensitive).
	w := do(t, s.Admin(), req{method: http.MethodGet, path: "/admin/verifications/not-a-uuid", headers: map[string]string{"Authorization": "bearer " + testAdminKey}})
	requireError(t, w, http.StatusNotFound, vigil.ENOTFOUND)
}

// Health, metrics and the OpenAPI document need no key.
func TestAdminOpenEndpoints(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, Config{Version: "1.2.3"}, nil)
	for _, p := range []string{"/health/alive", "/health/ready", "/metrics", "/openapi.json"} {
		w := do(t, s.Admin(), req{method: http.MethodGet, path: p})
		require.Equal(t, http.StatusOK, w.Code, p)
	}
	w := do(t, s.Admin(), req{method: http.MethodGet, path: "/metrics"})
	body := w.Body.String()
	require.Contains(t, body, `vigil_build_info{version="1.2.3"} 1`)
	require.Contains(t, body, "go_goroutines")
	require.Contains(t, body, "vigil_http_request_duration_seconds_bucket")
	require.Contains(t, body, `route="/health/alive"`)
	// Only the admin listener serves metrics.
	requireError(t, do(t, s.Public(), req{method: http.MethodGet, path: "/metrics"}), http.StatusNotFound, vigil.ENOTFOUND)
}

func TestMalformedIDsAre404(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, Config{}, nil)
	for _, id := range []string{"x", "0190A6C4-7B8E-7C3A-9D2E-1F2A3B4C5D6E", "{0190a6c4-7b8e-7c3a-9d2e-1f2a3b4c5d6e}", "0190a6c47b8e7c3a9d2e1f2a3b4c5d6e", "urn:uuid:0190a6c4-7b8e-7c3a-9d2e-1f2a3b4c5d6e"} {
		requireError(t, do(t, s.Public(), req{method: http.MethodPost, path: "/self-service/verifications/" + id + "/code", body: `{"code":"123456"}`}), 404, vigil.ENOTFOUND)
		for _, p := range []string{"/admin/verifications/" + id, "/admin/identities/" + id + "/verification"} {
			requireError(t, do(t, s.Admin(), req{method: http.MethodGet, path: p, admin: true}), 404, vigil.ENOTFOUND)
		}
		requireError(t, do(t, s.Admin(), req{method: http.MethodPost, path: "/admin/identities/" + id + "/unlock", admin: true}), 404, vigil.ENOTFOUND)
	}
}

func TestAdminQueryValidation(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, Config{}, nil)
	for _, p := range []string{
		"/admin/audit?limit=0", "/admin/audit?limit=1001", "/admin/audit?limit=x", "/admin/audit?after=-1",
		"/admin/audit?after=x", "/admin/audit?identity_id=nope", "/admin/messages?identity_id=nope",
		"/admin/messages?limit=-5", "/admin/messages?recipient=" + strings.Repeat("a", 321),
	} {
		requireError(t, do(t, s.Admin(), req{method: http.MethodGet, path: p, admin: true}), 400, vigil.EINVALID)
	}
}

func TestMetricsObserver(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	m.VerificationStarted(vigil.ChannelEmail, vigil.PurposeVerifyAddress)
	m.CodeChecked(vigil.ChannelSMS, "wrong_code")
	m.MessageAttempted(vigil.ChannelEmail, "sent", 120*time.Millisecond)
	// A second NewMetrics on the same registry shares the collectors, and
	// New does not trip over the ones already there.
	again := NewMetrics(reg)
	again.CodeChecked(vigil.ChannelSMS, "wrong_code")
	s, _ := newServer(t, Config{Registry: reg}, nil)
	body := do(t, s.Admin(), req{method: http.MethodGet, path: "/metrics"}).Body.String()
	for _, want := range []string{
		`vigil_verifications_started_total{channel="email",purpose="verify_address"} 1`,
		`vigil_code_checks_total{channel="sms",outcome="wrong_code"} 2`,
		`vigil_message_attempts_total{channel="email",outcome="sent"} 1`,
		`vigil_message_attempt_seconds_count{channel="email"} 1`,
	} {
		require.Contains(t, body, want)
	}
	require.NotPanics(t, func() { New(Config{Registry: reg}, nil) })
}

func TestMetricMethodBounded(t *testing.T) {
	t.Parallel()
	require.Equal(t, "GET", metricMethod("GET"))
	require.Equal(t, "OTHER", metricMethod("FROBNICATE"))
}

func TestBaseHeaders(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, Config{}, nil)
	w := do(t, s.Public(), req{method: http.MethodGet, path: "/health/alive"})
	require.Equal(t, "nosniff", w.Header().Get("X-Content-Type-Options"))
	require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
}

func TestAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, accept, ct string
		html             bool
	}{
		{name: "browser form", accept: "text/html,application/xhtml+xml,*/*;q=0.8", ct: "application/x-www-form-urlencoded", html: true},
		{name: "no accept form", ct: "application/x-www-form-urlencoded", html: true},
		{name: "json accept", accept: "application/json", ct: "application/x-www-form-urlencoded", html: false},
		{name: "json body", ct: "application/json", html: false},
		{name: "json body wants html", accept: "text/html", ct: "application/json", html: true},
		{name: "json q=0", accept: "application/json;q=0", ct: "application/x-www-form-urlencoded", html: true},
		{name: "wildcard", accept: "*/*", ct: "application/json", html: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			if tt.accept != "" {
				r.Header.Set("Accept", tt.accept)
			}
			r.Header.Set("Content-Type", tt.ct)
			require.Equal(t, tt.html, linkWantsHTML(r))
		})
	}
}
