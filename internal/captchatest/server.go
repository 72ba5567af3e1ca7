package captchatest

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"
)

// Secret is the secret key Start accepts without WithSecret.
const Secret = "0x4AAAAAAAtest-secret"

// Hostname is what successful answers report without WithHostname.
const Hostname = "vigil.example.com"

// Path is where the server answers; URL() includes it.
const Path = "/siteverify"

// maxBody caps a request body.
const maxBody = 64 << 10

// Flavor selects whose behaviour the server copies where the providers
// differ.
type Flavor int

const (
	// Turnstile: form or JSON bodies, idempotency_key, a spent token is
	// "timeout-or-duplicate", sitekey is ignored.
	Turnstile Flavor = iota
	// HCaptcha: form bodies only, a spent token is
	// "invalid-or-already-seen-response", a sitekey that does not match
	// WithSiteKey is "sitekey-secret-mismatch".
	HCaptcha
)

// Call is one request the server received.
type Call struct {
	ContentType    string
	Secret         string
	Response       string
	RemoteIP       string
	SiteKey        string
	IdempotencyKey string
	// Form is every field received.
	Form url.Values
}

// Failure is an answer to inject with Fail: Body verbatim with Status (200
// when zero); or, with Body empty, Status with an empty body; or, with
// neither, the normal answer after Delay.
type Failure struct {
	Status int
	Body   string
	// Delay is waited before answering (or until the client gives up).
	Delay time.Duration
}

// Option configures a Server at Start.
type Option func(*Server)

// WithFlavor makes the server behave like Turnstile (default) or hCaptcha.
func WithFlavor(f Flavor) Option { return func(s *Server) { s.flavor = f } }

// WithSecret sets the secret key the server accepts.
func WithSecret(secret string) Option { return func(s *Server) { s.secret = secret } }

// WithSiteKey sets the site key the secret belongs to (hCaptcha flavour:
// a different sitekey parameter is refused).
func WithSiteKey(key string) Option { return func(s *Server) { s.siteKey = key } }

// WithHostname sets the hostname successful answers report.
func WithHostname(h string) Option { return func(s *Server) { s.hostname = h } }

// Server is a fake siteverify endpoint. It is safe for concurrent use.
type Server struct {
	srv  *httptest.Server
	done chan struct{}

	flavor   Flavor
	secret   string
	siteKey  string
	hostname string

	mu       sync.Mutex
	tokens   map[string]*token
	calls    []Call
	failures []Failure
}

type token struct {
	action string
	spent  bool
	// idem is the idempotency key of the check that spent the token.
	idem string
}

// Start runs a fake siteverify endpoint on 127.0.0.1 until the test ends.
func Start(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s := &Server{
		done:     make(chan struct{}),
		secret:   Secret,
		hostname: Hostname,
		tokens:   make(map[string]*token),
	}
	for _, o := range opts {
		o(s)
	}
	mux := http.NewServeMux()
	mux.HandleFunc(Path, s.serve)
	s.srv = httptest.NewServer(mux)
	tb.Cleanup(func() {
		close(s.done)
		s.srv.Close()
	})
	return s
}

// URL is the siteverify URL, for captcha.Config.URL.
func (s *Server) URL() string { return s.srv.URL + Path }

// AddToken registers tokens as valid, each for one successful check.
func (s *Server) AddToken(tokens ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range tokens {
		s.tokens[t] = &token{}
	}
}

// AddTokenWithAction registers a valid token whose widget had action.
func (s *Server) AddTokenWithAction(tok, action string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[tok] = &token{action: action}
}

// Fail queues f as the answer to the next request; queued failures are
// used in order, one per request.
func (s *Server) Fail(f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, f)
}

// Calls returns every request received so far, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Call, len(s.calls))
	for i, c := range s.calls {
		out[i] = c
		out[i].Form = cloneValues(c.Form)
	}
	return out
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// answer is the siteverify response body.
type answer struct {
	Success     bool     `json:"success"`
	ErrorCodes  []string `json:"error-codes"` //nolint:tagliatelle // the providers' field name
	ChallengeTS string   `json:"challenge_ts,omitempty"`
	Hostname    string   `json:"hostname,omitempty"`
	Action      string   `json:"action,omitempty"`
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	call, parseErr := s.parse(w, r)
	s.mu.Lock()
	s.calls = append(s.calls, call)
	var f *Failure
	if len(s.failures) > 0 {
		f = &s.failures[0]
		s.failures = s.failures[1:]
	}
	s.mu.Unlock()

	if f != nil {
		if f.Delay > 0 {
			t := time.NewTimer(f.Delay)
			defer t.Stop()
			select {
			case <-t.C:
			case <-r.Context().Done():
				return
			case <-s.done:
				return
			}
		}
		if f.Status != 0 || f.Body != "" {
			status := f.Status
			if status == 0 {
				status = http.StatusOK
			}
			if f.Body != "" {
				w.Header().Set("Content-Type", "application/json")
			}
			w.WriteHeader(status)
			_, _ = io.WriteString(w, f.Body)
			return
		}
	}

	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeAnswer(w, http.StatusMethodNotAllowed, answer{ErrorCodes: []string{"bad-request"}})
		return
	}
	if parseErr {
		writeAnswer(w, http.StatusOK, answer{ErrorCodes: []string{"bad-request"}})
		return
	}
	writeAnswer(w, http.StatusOK, s.judge(call))
}

// parse reads the request body like the provider would; it reports
// whether the body was malformed.
func (s *Server) parse(w http.ResponseWriter, r *http.Request) (Call, bool) {
	call := Call{ContentType: r.Header.Get("Content-Type"), Form: url.Values{}}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return call, true
	}
	mt, _, _ := mime.ParseMediaType(call.ContentType)
	switch {
	case mt == "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return call, true
		}
		call.Form = form
	case mt == "application/json" && s.flavor == Turnstile:
		var fields map[string]string
		if err := json.Unmarshal(body, &fields); err != nil {
			return call, true
		}
		for k, v := range fields {
			call.Form.Set(k, v)
		}
	default:
		return call, true
	}
	call.Secret = call.Form.Get("secret")
	call.Response = call.Form.Get("response")
	call.RemoteIP = call.Form.Get("remoteip")
	call.SiteKey = call.Form.Get("sitekey")
	call.IdempotencyKey = call.Form.Get("idempotency_key")
	return call, false
}

// judge answers a well-formed call.
func (s *Server) judge(c Call) answer {
	fail := func(code string) answer { return answer{ErrorCodes: []string{code}} }
	switch {
	case c.Secret == "":
		return fail("missing-input-secret")
	case c.Secret != s.secret:
		return fail("invalid-input-secret")
	case s.flavor == HCaptcha && c.SiteKey != "" && s.siteKey != "" && c.SiteKey != s.siteKey:
		return fail("sitekey-secret-mismatch")
	case c.Response == "":
		return fail("missing-input-response")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[c.Response]
	switch {
	case !ok:
		return fail("invalid-input-response")
	case t.spent && (s.flavor != Turnstile || c.IdempotencyKey == "" || c.IdempotencyKey != t.idem):
		if s.flavor == HCaptcha {
			return fail("invalid-or-already-seen-response")
		}
		return fail("timeout-or-duplicate")
	}
	t.spent = true
	t.idem = c.IdempotencyKey
	return answer{
		Success:     true,
		ErrorCodes:  []string{},
		ChallengeTS: time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		Hostname:    s.hostname,
		Action:      t.action,
	}
}

func writeAnswer(w http.ResponseWriter, status int, a answer) {
	if a.ErrorCodes == nil {
		a.ErrorCodes = []string{}
	}
	body, err := json.Marshal(a)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
