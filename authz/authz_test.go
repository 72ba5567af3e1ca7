package authz_test

import (
	"context"
	"encoding/json"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-auth/vigil/authz"
)

const (
	identityID    = "9ab7e622-dfe6-4e57-b6df-8a9eb1bc23d9"
	sessionCookie = "ory_kratos_session=valid"
)

// fakeVigil plays Vigil's GET /authz: a session cookie "valid" (or token
// "valid") of a verified identity passes, "unverified" is refused with 403,
// anything else with 401.
type fakeVigil struct {
	calls atomic.Int64

	mu      sync.Mutex
	headers []http.Header
	// answer, when set, replaces the behaviour above.
	answer http.HandlerFunc
}

func (f *fakeVigil) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.calls.Add(1)
	f.mu.Lock()
	f.headers = append(f.headers, r.Header.Clone())
	answer := f.answer
	f.mu.Unlock()
	if r.Method != http.MethodGet || r.URL.Path != "/authz" {
		http.NotFound(w, r)
		return
	}
	if answer != nil {
		answer(w, r)
		return
	}
	creds := r.Header.Get("Cookie") + r.Header.Get("X-Session-Token") + r.Header.Get("Authorization")
	switch {
	case strings.Contains(creds, "unverified"):
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, `{"error":{"code":"verification_required","message":"Verify your email address first."},"identity_id":"`+identityID+`"}`)
	case strings.Contains(creds, "valid"):
		w.Header().Set("X-Vigil-Identity", identityID)
		w.WriteHeader(http.StatusOK)
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error":{"code":"unauthorized","message":"Sign in first."}}`)
	}
}

func (f *fakeVigil) setAnswer(h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answer = h
}

func (f *fakeVigil) lastHeader(t *testing.T) http.Header {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.headers) == 0 {
		t.Fatal("Vigil was not called")
	}
	return f.headers[len(f.headers)-1]
}

type testBundle struct {
	vigil *fakeVigil
	url   string
	// app records what reached the protected handler.
	reached atomic.Int64
	seenID  atomic.Value
	seenHdr atomic.Value
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	b := &testBundle{vigil: &fakeVigil{}}
	srv := httptest.NewServer(b.vigil)
	t.Cleanup(srv.Close)
	b.url = srv.URL
	return b
}

func (b *testBundle) app() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.reached.Add(1)
		id, ok := authz.IdentityID(r.Context())
		if !ok {
			id = "<none>"
		}
		b.seenID.Store(id)
		b.seenHdr.Store(r.Header.Get("X-Vigil-Identity"))
		_, _ = io.WriteString(w, "secret page")
	})
}

func (b *testBundle) serve(t *testing.T, c *authz.Checker, req *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	c.Middleware(b.app()).ServeHTTP(rec, req)
	return rec
}

func request(header map[string]string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/dashboard", nil)
	for k, v := range header {
		r.Header.Set(k, v)
	}
	return r
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	IdentityID string `json:"identity_id"`
}

func decodeError(t *testing.T, rec *httptest.ResponseRecorder) errorBody {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want JSON", ct)
	}
	var e errorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, rec.Body)
	}
	return e
}

func TestAllowed(t *testing.T) {
	t.Parallel()
	for name, header := range map[string]map[string]string{
		"cookie":        {"Cookie": sessionCookie},
		"session token": {"X-Session-Token": "valid"},
		"bearer":        {"Authorization": "Bearer valid"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			c := authz.New(authz.Config{VigilURL: b.url})
			// A client cannot name its own identity: the header is replaced.
			header["X-Vigil-Identity"] = "someone-else"
			rec := b.serve(t, c, request(header))
			if rec.Code != http.StatusOK || rec.Body.String() != "secret page" {
				t.Fatalf("got %d %q, want the page", rec.Code, rec.Body)
			}
			if got := b.seenID.Load(); got != identityID {
				t.Errorf("IdentityID in the handler = %v, want %s", got, identityID)
			}
			if got := b.seenHdr.Load(); got != identityID {
				t.Errorf("X-Vigil-Identity in the handler = %v, want %s", got, identityID)
			}
		})
	}
}

func TestUnauthorizedPassesVigilsAnswerOn(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := authz.New(authz.Config{VigilURL: b.url})
	rec := b.serve(t, c, request(nil))
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("status = %d, want 401", rec.Code)
	}
	if e := decodeError(t, rec); e.Error.Code != "unauthorized" || e.Error.Message != "Sign in first." {
		t.Errorf("body = %+v, want Vigil's", e)
	}
	if b.reached.Load() != 0 {
		t.Error("the handler ran")
	}
}

func TestForbiddenPassesVigilsBodyOn(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := authz.New(authz.Config{VigilURL: b.url})
	rec := b.serve(t, c, request(map[string]string{"Cookie": "ory_kratos_session=unverified"}))
	if rec.Code != http.StatusForbidden {
		t.Fatalf("status = %d, want 403", rec.Code)
	}
	want := `{"error":{"code":"verification_required","message":"Verify your email address first."},"identity_id":"` + identityID + `"}`
	if rec.Body.String() != want {
		t.Errorf("body = %s\nwant   %s", rec.Body, want)
	}
	if b.reached.Load() != 0 {
		t.Error("the handler ran")
	}
}

// Whatever goes wrong on the way to Vigil, the request is refused with 503.
func TestFailsClosed(t *testing.T) {
	t.Parallel()
	cases := map[string]http.HandlerFunc{
		"500": func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) },
		"502": func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) },
		"429": func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTooManyRequests) },
		"404": func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) },
		"204": func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) },
		"redirect": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/login", http.StatusFound)
		},
		"200 without identity": func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) },
		"huge refusal": func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, strings.Repeat("x", 65<<10))
		},
		"too slow": func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			w.Header().Set("X-Vigil-Identity", identityID)
		},
	}
	for name, answer := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.vigil.setAnswer(answer)
			c := authz.New(authz.Config{VigilURL: b.url, Timeout: 100 * time.Millisecond})
			rec := b.serve(t, c, request(map[string]string{"Cookie": sessionCookie}))
			if rec.Code != http.StatusServiceUnavailable {
				t.Fatalf("status = %d, want 503", rec.Code)
			}
			if e := decodeError(t, rec); e.Error.Code != "authz_unavailable" {
				t.Errorf("error code = %q", e.Error.Code)
			}
			if b.reached.Load() != 0 {
				t.Error("the handler ran")
			}
		})
	}
}

func TestVigilDown(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now

	b := &testBundle{}
	var logged strings.Builder
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logged.Write(p)
	}), nil))
	c := authz.New(authz.Config{VigilURL: "http://" + addr, Logger: logger})
	rec := b.serve(t, c, request(map[string]string{"Cookie": sessionCookie}))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503", rec.Code)
	}
	if b.reached.Load() != 0 {
		t.Error("the handler ran")
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logged.String(), "request refused") {
		t.Errorf("nothing logged: %q", logged.String())
	}
	if strings.Contains(logged.String(), "ory_kratos_session") {
		t.Errorf("the log shows the session cookie: %q", logged.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// Exactly the session-carrying headers reach Vigil, with every value.
func TestForwardsSessionHeaders(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := authz.New(authz.Config{VigilURL: b.url + "/"}) // a trailing slash is fine
	r := request(map[string]string{
		"Cookie":          sessionCookie + "; theme=dark",
		"X-Session-Token": "valid",
		"Authorization":   "Bearer valid",
		"X-Request-ID":    "req-1",
		"X-Api-Key":       "app-secret",
		"Content-Type":    "text/plain",
	})
	r.Header.Add("Cookie", "second=cookie")
	if rec := b.serve(t, c, r); rec.Code != http.StatusOK {
		t.Fatalf("status = %d", rec.Code)
	}
	h := b.vigil.lastHeader(t)
	if got := h.Values("Cookie"); len(got) != 2 || got[0] != sessionCookie+"; theme=dark" || got[1] != "second=cookie" {
		t.Errorf("Cookie = %q", got)
	}
	for name, want := range map[string]string{
		"X-Session-Token": "valid", "Authorization": "Bearer valid", "X-Request-ID": "req-1",
		"Accept": "application/json", "X-Api-Key": "", "Content-Type": "",
	} {
		if got := h.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}

func TestCache(t *testing.T) {
	t.Parallel()
	b := setup(t)
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	c := authz.New(authz.Config{VigilURL: b.url, CacheTTL: 30 * time.Second})
	c.SetClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }

	valid := map[string]string{"Cookie": sessionCookie}
	for i := range 3 {
		if rec := b.serve(t, c, request(valid)); rec.Code != http.StatusOK {
			t.Fatalf("request %d: status %d", i, rec.Code)
		}
	}
	if n := b.vigil.calls.Load(); n != 1 {
		t.Fatalf("Vigil called %d times for 3 requests with one session, want 1", n)
	}
	if got := b.seenID.Load(); got != identityID {
		t.Errorf("cached IdentityID = %v", got)
	}

	// Other credentials are another entry.
	b.serve(t, c, request(map[string]string{"X-Session-Token": "valid"}))
	if n := b.vigil.calls.Load(); n != 2 {
		t.Fatalf("Vigil called %d times, want 2", n)
	}

	// Refusals are never cached: a person who just verified gets in.
	unverified := map[string]string{"Cookie": "ory_kratos_session=unverified"}
	b.serve(t, c, request(unverified))
	b.serve(t, c, request(unverified))
	if n := b.vigil.calls.Load(); n != 4 {
		t.Fatalf("Vigil called %d times, want 4 (refusals asked each time)", n)
	}

	// After the TTL Vigil is asked again, and its new answer counts.
	advance(31 * time.Second)
	b.vigil.setAnswer(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error":{"code":"unauthorized","message":"Session revoked."}}`)
	})
	if rec := b.serve(t, c, request(valid)); rec.Code != http.StatusUnauthorized {
		t.Fatalf("after expiry: status %d, want 401", rec.Code)
	}
	if n := b.vigil.calls.Load(); n != 5 {
		t.Fatalf("Vigil called %d times, want 5", n)
	}
}

func TestCacheStaysBounded(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := authz.New(authz.Config{VigilURL: b.url, CacheTTL: time.Hour, CacheSize: 2})
	for i := range 5 {
		b.serve(t, c, request(map[string]string{"X-Session-Token": "valid-" + strconv.Itoa(i)}))
	}
	calls := b.vigil.calls.Load()
	// The newest entry survives whatever was dropped to make room.
	b.serve(t, c, request(map[string]string{"X-Session-Token": "valid-4"}))
	if n := b.vigil.calls.Load(); n != calls {
		t.Errorf("newest entry was not cached")
	}
}

func TestConcurrentRequests(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := authz.New(authz.Config{VigilURL: b.url, CacheTTL: time.Minute, CacheSize: 8})
	h := c.Middleware(b.app())
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, request(map[string]string{"X-Session-Token": "valid-" + strconv.Itoa(i%10)}))
			if rec.Code != http.StatusOK {
				t.Errorf("status %d", rec.Code)
			}
		}(i)
	}
	wg.Wait()
}

// A cancelled client request does not reach the handler either.
func TestClientGone(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := authz.New(authz.Config{VigilURL: b.url})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rec := b.serve(t, c, request(map[string]string{"Cookie": sessionCookie}).WithContext(ctx))
	if rec.Code != http.StatusServiceUnavailable || b.reached.Load() != 0 {
		t.Fatalf("status %d, handler reached %d times", rec.Code, b.reached.Load())
	}
}

func TestNewRefusesBadURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "127.0.0.1:4480", "ftp://vigil", "http://", "http://vigil/?x=1", "://bad"} {
		t.Run(u, func(t *testing.T) {
			t.Parallel()
			defer func() {
				if recover() == nil {
					t.Errorf("New accepted VigilURL %q", u)
				}
			}()
			authz.New(authz.Config{VigilURL: u})
		})
	}
}

func TestIdentityIDOutsideTheMiddleware(t *testing.T) {
	t.Parallel()
	if id, ok := authz.IdentityID(context.Background()); ok || id != "" {
		t.Errorf("IdentityID of a bare context = %q, %v", id, ok)
	}
	if id, ok := authz.IdentityID(authz.WithIdentityID(context.Background(), "x")); !ok || id != "x" {
		t.Errorf("IdentityID = %q, %v", id, ok)
	}
}

// The package promises applications that it pulls in nothing but the
// standard library.
func TestImportsOnlyTheStandardLibrary(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range file.Imports {
			path := strings.Trim(imp.Path.Value, `"`)
			if first, _, _ := strings.Cut(path, "/"); strings.Contains(first, ".") {
				t.Errorf("%s imports %s, which is not in the standard library", f, path)
			}
		}
	}
}
