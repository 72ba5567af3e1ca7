package captcha_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil/adapters/captcha"
	"github.com/vigil-auth/vigil/internal/captchatest"
)

const (
	token    = "0.tok-ABCdef_123"
	clientIP = "203.0.113.7"
	siteKey  = "10000000-ffff-ffff-ffff-000000000001"
)

type testBundle struct {
	srv *captchatest.Server
	v   *captcha.Verifier
}

// setup starts a fake of the given flavour and a Verifier for it.
func setup(t *testing.T, p captcha.Provider, modify func(*captcha.Config), opts ...captchatest.Option) testBundle {
	t.Helper()
	if p == captcha.HCaptcha {
		opts = append([]captchatest.Option{captchatest.WithFlavor(captchatest.HCaptcha), captchatest.WithSiteKey(siteKey)}, opts...)
	}
	srv := captchatest.Start(t, opts...)
	cfg := captcha.Config{Provider: p, Secret: captchatest.Secret, SiteKey: siteKey, URL: srv.URL()}
	if modify != nil {
		modify(&cfg)
	}
	v, err := captcha.New(cfg)
	require.NoError(t, err)
	return testBundle{srv: srv, v: v}
}

var providers = []captcha.Provider{captcha.Turnstile, captcha.HCaptcha}

func TestVerify(t *testing.T) {
	t.Parallel()
	for _, p := range providers {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			b := setup(t, p, nil)
			b.srv.AddToken(token)
			ctx := context.Background()

			ok, err := b.v.Verify(ctx, token, clientIP)
			require.NoError(t, err)
			require.True(t, ok, "a registered token passes")

			ok, err = b.v.Verify(ctx, token, clientIP)
			require.NoError(t, err)
			require.False(t, ok, "tokens are single use")

			ok, err = b.v.Verify(ctx, "forged", clientIP)
			require.NoError(t, err)
			require.False(t, ok)

			ok, err = b.v.Verify(ctx, "", clientIP)
			require.NoError(t, err)
			require.False(t, ok)

			calls := b.srv.Calls()
			require.Len(t, calls, 3, "no call for an empty token")
			c := calls[0]
			require.Equal(t, "application/x-www-form-urlencoded", c.ContentType)
			require.Equal(t, captchatest.Secret, c.Secret)
			require.Equal(t, token, c.Response)
			require.Equal(t, clientIP, c.RemoteIP)
			require.Empty(t, c.IdempotencyKey)
			if p == captcha.HCaptcha {
				require.Equal(t, siteKey, c.SiteKey)
			} else {
				require.Empty(t, c.SiteKey, "Turnstile takes no sitekey")
				require.NotContains(t, c.Form, "sitekey")
			}
		})
	}
}

func TestCheckResult(t *testing.T) {
	t.Parallel()
	b := setup(t, captcha.Turnstile, nil, captchatest.WithHostname("login.example.com"))
	b.srv.AddTokenWithAction(token, "send-code")
	res, err := b.v.Check(context.Background(), token, clientIP)
	require.NoError(t, err)
	require.True(t, res.Success)
	require.Empty(t, res.ErrorCodes)
	require.Equal(t, "login.example.com", res.Hostname)
	require.Equal(t, "send-code", res.Action)
	require.WithinDuration(t, time.Now(), res.ChallengeTS, time.Minute)

	res, err = b.v.Check(context.Background(), token, clientIP)
	require.NoError(t, err)
	require.False(t, res.Success)
	require.Equal(t, []string{"timeout-or-duplicate"}, res.ErrorCodes)

	hc := setup(t, captcha.HCaptcha, nil)
	hc.srv.AddToken(token)
	_, err = hc.v.Check(context.Background(), token, "")
	require.NoError(t, err)
	res, err = hc.v.Check(context.Background(), token, "")
	require.NoError(t, err)
	require.Equal(t, []string{"invalid-or-already-seen-response"}, res.ErrorCodes)
}

func TestRemoteIP(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"203.0.113.7", "203.0.113.7"},
		{"203.0.113.7:51234", "203.0.113.7"},
		{"2001:db8::1", "2001:db8::1"},
		{"[2001:db8::1]:443", "2001:db8::1"},
		{"::ffff:203.0.113.7", "203.0.113.7"},
		{"fe80::1%eth0", "fe80::1"},
		{"", ""},
		{"unknown", ""},
		{"203.0.113.7, 10.0.0.1", ""},
	}
	b := setup(t, captcha.Turnstile, nil)
	for _, tt := range tests {
		b.srv.AddToken(token + tt.in)
		ok, err := b.v.Verify(context.Background(), token+tt.in, tt.in)
		require.NoError(t, err)
		require.True(t, ok)
	}
	calls := b.srv.Calls()
	require.Len(t, calls, len(tests))
	for i, tt := range tests {
		require.Equal(t, tt.want, calls[i].RemoteIP, "remoteIP %q", tt.in)
		if tt.want == "" {
			require.NotContains(t, calls[i].Form, "remoteip", "remoteIP %q", tt.in)
		}
	}
}

func TestServiceCodesAreErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		provider captcha.Provider
		modify   func(*captcha.Config)
		wantCode string
	}{
		{"wrong secret", captcha.Turnstile, func(c *captcha.Config) { c.Secret = "hunter2" }, "invalid-input-secret"},
		{"wrong secret hcaptcha", captcha.HCaptcha, func(c *captcha.Config) { c.Secret = "hunter2" }, "invalid-input-secret"},
		{"site key of another site", captcha.HCaptcha, func(c *captcha.Config) { c.SiteKey = "20000000-ffff-ffff-ffff-000000000002" }, "sitekey-secret-mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, tt.provider, tt.modify)
			b.srv.AddToken(token)
			ok, err := b.v.Verify(context.Background(), token, clientIP)
			require.False(t, ok)
			checkErr(t, err, tt.wantCode)
			var e *captcha.Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, []string{tt.wantCode}, e.ErrorCodes)
			require.Equal(t, tt.provider, e.Provider)
			require.Equal(t, http.StatusOK, e.StatusCode)
		})
	}
}

// TestAnswerShapes feeds recorded and edge-case siteverify bodies through
// the client.
func TestAnswerShapes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		status    int
		body      string
		want      bool
		wantCodes []string
		wantErr   string // "" for no error
	}{
		{
			name: "Turnstile success (documented)",
			body: `{"success":true,"challenge_ts":"2022-02-28T15:14:30.096Z","hostname":"example.com","error-codes":[],"action":"login","cdata":"sessionid-123456789"}`,
			want: true,
		},
		{
			name: "Turnstile success with metadata",
			body: `{"success":true,"challenge_ts":"2022-10-06T00:07:23.274Z","hostname":"example.com","error-codes":[],"action":"","cdata":"","metadata":{"interactive":false}}`,
			want: true,
		},
		{
			name:      "Turnstile failure (documented)",
			body:      `{"success":false,"error-codes":["invalid-input-response"]}`,
			wantCodes: []string{"invalid-input-response"},
		},
		{
			name:      "Turnstile duplicate",
			body:      `{"success":false,"error-codes":["timeout-or-duplicate"],"messages":[]}`,
			wantCodes: []string{"timeout-or-duplicate"},
		},
		{
			name: "hCaptcha success",
			body: `{"success":true,"challenge_ts":"2026-04-22T20:46:00.000Z","hostname":"example.com","credit":false}`,
			want: true,
		},
		{
			name: "hCaptcha Enterprise success",
			body: `{"success":true,"challenge_ts":"2026-04-22T20:46:00Z","hostname":"example.com","credit":true,"score":0.1,"score_reason":["safe"]}`,
			want: true,
		},
		{
			name:      "hCaptcha failure",
			body:      `{"success":false,"error-codes":["invalid-or-already-seen-response"]}`,
			wantCodes: []string{"invalid-or-already-seen-response"},
		},
		{
			name:      "hCaptcha several codes",
			body:      `{"success":false,"error-codes":["expired-input-response","invalid-remoteip"]}`,
			wantCodes: []string{"expired-input-response", "invalid-remoteip"},
		},
		{name: "failure without error-codes", body: `{"success":false}`},
		{name: "failure with null error-codes", body: `{"success":false,"error-codes":null}`},
		{name: "success with codes still passes", body: `{"success":true,"error-codes":["ignored"]}`, want: true, wantCodes: []string{"ignored"}},
		{
			name:      "codes that are not codes are dropped",
			body:      `{"success":false,"error-codes":["bad-request","` + token + ` <script>","Invalid","", "` + strings.Repeat("a", 65) + `"]}`,
			wantCodes: []string{"bad-request"},
		},
		{name: "bad request blames the token", body: `{"success":false,"error-codes":["bad-request"]}`, wantCodes: []string{"bad-request"}},
		{name: "siteverify answer on 400", status: 400, body: `{"success":false,"error-codes":["missing-input-response"]}`, wantCodes: []string{"missing-input-response"}},
		{name: "internal-error", body: `{"success":false,"error-codes":["internal-error"]}`, wantErr: "internal-error"},
		{name: "missing secret", body: `{"success":false,"error-codes":["missing-input-secret"]}`, wantErr: "missing-input-secret"},
		{name: "success missing", body: `{"error-codes":[]}`, wantErr: "unreadable"},
		{name: "success as text", body: `{"success":"true"}`, wantErr: "unreadable"},
		{name: "not JSON", body: `<html>Just a moment...</html>`, wantErr: "200 OK with an unreadable body"},
		{name: "empty body", status: 204, wantErr: "204"},
		{name: "success on 400", status: 400, body: `{"success":true}`, wantErr: "400 Bad Request with an unreadable body"},
		{name: "HTML 403", status: 403, body: `<html>Forbidden</html>`, wantErr: "403 Forbidden"},
		{name: "429", status: 429, body: `{"success":false,"error-codes":["rate-limited"]}`, wantErr: "429 Too Many Requests"},
		{name: "500", status: 500, body: `{"success":false,"error-codes":["internal-error"]}`, wantErr: "500 Internal Server Error"},
		{name: "503 success", status: 503, body: `{"success":true}`, wantErr: "503"},
		{name: "over the read cap", body: `{"pad":"` + strings.Repeat("x", 20<<10) + `","success":true}`, wantErr: "unreadable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, captcha.Turnstile, nil)
			status := tt.status
			if status == 0 {
				status = http.StatusOK
			}
			b.srv.Fail(captchatest.Failure{Status: status, Body: tt.body})
			res, err := b.v.Check(context.Background(), token, clientIP)
			if tt.wantErr != "" {
				checkErr(t, err, tt.wantErr)
				require.Equal(t, captcha.Result{}, res)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, res.Success)
			require.Equal(t, tt.wantCodes, res.ErrorCodes)
		})
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(srv.Close)
	v, err := captcha.New(captcha.Config{Provider: captcha.HCaptcha, Secret: "hunter2", URL: srv.URL + "/siteverify?key=hunter2"})
	require.NoError(t, err)
	ok, err := v.Verify(context.Background(), token, clientIP)
	require.False(t, ok)
	checkErr(t, err, "307")
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, 1, hits)
}

func TestTransportFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		timeout  time.Duration
		deadline time.Duration
		cancel   bool
		closed   bool
		wantIs   error
		wantIn   string
	}{
		{name: "Timeout", timeout: 100 * time.Millisecond, wantIs: context.DeadlineExceeded},
		{name: "shorter context deadline wins", timeout: time.Minute, deadline: 100 * time.Millisecond, wantIs: context.DeadlineExceeded},
		{name: "caller cancels", timeout: time.Minute, cancel: true, wantIs: context.Canceled},
		{name: "connection refused", closed: true, wantIn: "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := captchatest.Start(t)
			srv.AddToken(token)
			srv.Fail(captchatest.Failure{Delay: time.Minute})
			url := srv.URL()
			if tt.closed {
				closed := httptest.NewServer(http.NotFoundHandler())
				url = closed.URL + "/siteverify"
				closed.Close()
			}
			v, err := captcha.New(captcha.Config{Provider: captcha.Turnstile, Secret: captchatest.Secret, URL: url, Timeout: tt.timeout})
			require.NoError(t, err)
			ctx := context.Background()
			if tt.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.deadline)
				defer cancel()
			}
			if tt.cancel {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				time.AfterFunc(100*time.Millisecond, cancel)
				defer cancel()
			}
			start := time.Now()
			ok, err := v.Verify(ctx, token, clientIP)
			require.Less(t, time.Since(start), 5*time.Second)
			require.False(t, ok)
			checkErr(t, err, tt.wantIn)
			if tt.wantIs != nil {
				require.ErrorIs(t, err, tt.wantIs)
			}
		})
	}
}

func TestTokenLength(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("t", 2049)
	tests := []struct {
		provider captcha.Provider
		token    string
		wantCall bool
	}{
		{captcha.Turnstile, long[:2048], true},
		{captcha.Turnstile, long, false},
		{captcha.HCaptcha, long, true},
		{captcha.HCaptcha, strings.Repeat("t", 32<<10+1), false},
	}
	for _, tt := range tests {
		b := setup(t, tt.provider, nil)
		b.srv.AddToken(tt.token)
		ok, err := b.v.Verify(context.Background(), tt.token, "")
		require.NoError(t, err)
		require.Equal(t, tt.wantCall, ok)
		require.Len(t, b.srv.Calls(), map[bool]int{true: 1, false: 0}[tt.wantCall])
	}
}

func TestLogger(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	b := setup(t, captcha.HCaptcha, func(c *captcha.Config) { c.Logger = logger })
	b.srv.AddToken(token)
	ctx := context.Background()

	ok, err := b.v.Verify(ctx, token, clientIP)
	require.NoError(t, err)
	require.True(t, ok)
	require.Empty(t, buf.String(), "passes are not logged")

	ok, err = b.v.Verify(ctx, token, clientIP)
	require.NoError(t, err)
	require.False(t, ok)
	var rec map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &rec))
	require.Equal(t, "captcha token refused", rec["msg"])
	require.Equal(t, "hcaptcha", rec["provider"])
	require.Equal(t, []any{"invalid-or-already-seen-response"}, rec["error_codes"])
	for _, secret := range []string{token, captchatest.Secret, clientIP} {
		require.NotContains(t, buf.String(), secret)
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     captcha.Config
		wantURL string
		wantErr []string
	}{
		{name: "turnstile", cfg: captcha.Config{Provider: captcha.Turnstile, Secret: "s"}},
		{name: "hcaptcha", cfg: captcha.Config{Provider: "HCaptcha", Secret: "s", SiteKey: siteKey}},
		{name: "everything", cfg: captcha.Config{Provider: captcha.Turnstile, Secret: "s", URL: "http://127.0.0.1:9000/siteverify", Timeout: time.Second, HTTPClient: http.DefaultClient, Logger: slog.Default()}},
		{name: "empty", wantErr: []string{"Provider", "Secret"}},
		{name: "recaptcha", cfg: captcha.Config{Provider: "recaptcha", Secret: "s"}, wantErr: []string{`Provider "recaptcha"`}},
		{name: "relative URL", cfg: captcha.Config{Provider: captcha.HCaptcha, Secret: "s", URL: "/siteverify"}, wantErr: []string{"URL"}},
		{name: "negative timeout", cfg: captcha.Config{Provider: captcha.HCaptcha, Secret: "s", Timeout: -1}, wantErr: []string{"Timeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := captcha.New(tt.cfg)
			if len(tt.wantErr) == 0 {
				require.NoError(t, err)
				require.NotNil(t, v)
				return
			}
			require.Error(t, err)
			for _, w := range tt.wantErr {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

// TestDefaultURLs checks, without calling them, that each provider gets
// its documented endpoint.
func TestDefaultURLs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		provider captcha.Provider
		wantHost string
		wantPath string
	}{
		{captcha.Turnstile, "challenges.cloudflare.com", "/turnstile/v0/siteverify"},
		{captcha.HCaptcha, "api.hcaptcha.com", "/siteverify"},
	}
	for _, tt := range tests {
		var got *http.Request
		client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			got = r
			return nil, errors.New("offline")
		})}
		v, err := captcha.New(captcha.Config{Provider: tt.provider, Secret: "hunter2", HTTPClient: client})
		require.NoError(t, err)
		_, err = v.Verify(context.Background(), token, "")
		checkErr(t, err, "offline")
		require.Equal(t, "https", got.URL.Scheme)
		require.Equal(t, tt.wantHost, got.URL.Host)
		require.Equal(t, tt.wantPath, got.URL.Path)
		require.Equal(t, http.MethodPost, got.Method)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// checkErr asserts err is set, mentions wantIn, and carries neither the
// token nor the secret.
func checkErr(t *testing.T, err error, wantIn string) {
	t.Helper()
	require.Error(t, err)
	msg := err.Error()
	t.Logf("error: %s", msg)
	require.Contains(t, msg, wantIn)
	for _, secret := range []string{token, captchatest.Secret, "hunter2"} {
		require.NotContains(t, msg, secret)
	}
}
