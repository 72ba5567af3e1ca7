package httpsms_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/adapters/httpsms"
)

const (
	phone = "+4915123456780"
	code  = "201346"
	text  = "Your verification code is: " + code + "\n\nIf this was not you, do nothing. It expires in 60 minutes.\n"
)

func outbound() vigil.Outbound {
	return vigil.Outbound{ID: "msg_01HZX3", Channel: vigil.ChannelSMS, To: phone, Text: text}
}

// request is what the fake endpoint saw.
type request struct {
	Method string
	Path   string
	Host   string
	Header http.Header
	Body   []byte
}

// endpoint is an httptest.Server that records requests and answers with
// respond.
type endpoint struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []request
}

func newEndpoint(t *testing.T, respond http.HandlerFunc) *endpoint {
	t.Helper()
	e := &endpoint{}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		e.mu.Lock()
		e.reqs = append(e.reqs, request{Method: r.Method, Path: r.URL.RequestURI(), Host: r.Host, Header: r.Header.Clone(), Body: body})
		e.mu.Unlock()
		respond(w, r)
	}))
	t.Cleanup(e.Close)
	return e
}

func (e *endpoint) only(t *testing.T) request {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.reqs) != 1 {
		t.Fatalf("endpoint got %d requests, want 1", len(e.reqs))
	}
	return e.reqs[0]
}

func (e *endpoint) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.reqs)
}

func answer(status int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(status) }
}

func newSender(t *testing.T, cfg httpsms.Config) *httpsms.Sender {
	t.Helper()
	s, err := httpsms.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// TestWireMatchesKratosCourier compares the request with what Kratos'
// courier sent to an HTTP SMS channel (testdata/courier_sms.json, recorded
// from Kratos v26.2.0).
func TestWireMatchesKratosCourier(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("testdata/courier_sms.json")
	if err != nil {
		t.Fatal(err)
	}
	var golden struct {
		Path    string            `json:"path"`
		Headers map[string]string `json:"headers"`
		Body    map[string]any    `json:"body"`
	}
	if err := json.Unmarshal(raw, &golden); err != nil {
		t.Fatal(err)
	}

	e := newEndpoint(t, answer(http.StatusOK))
	s := newSender(t, httpsms.Config{URL: e.URL + golden.Path})
	m := outbound()
	var ok1, ok2 bool
	m.To, ok1 = golden.Body["to"].(string)
	m.Text, ok2 = golden.Body["body"].(string)
	if !ok1 || !ok2 {
		t.Fatalf("golden body = %v, want string to and body", golden.Body)
	}
	if _, err := s.Send(context.Background(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := e.only(t)

	want := "{\n   \"body\": \"Your verification code is: 201346\\n\\nIf this was not you, do nothing. It expires in 60 minutes.\\n\",\n   \"to\": \"+4915123456780\"\n}\n"
	if string(got.Body) != want {
		t.Errorf("body =\n%s\nwant\n%s", got.Body, want)
	}
	var body map[string]any
	if err := json.Unmarshal(got.Body, &body); err != nil {
		t.Fatal(err)
	}
	if len(body) != len(golden.Body) || body["to"] != golden.Body["to"] || body["body"] != golden.Body["body"] {
		t.Errorf("body = %v, want %v", body, golden.Body)
	}
	checks := []struct{ name, got, want string }{
		{"method", got.Method, http.MethodPost},
		{"path", got.Path, golden.Path},
		{"Content-Type", got.Header.Get("Content-Type"), golden.Headers["Content-Type"]},
		{"Content-Length", got.Header.Get("Content-Length"), golden.Headers["Content-Length"]},
		{"User-Agent", got.Header.Get("User-Agent"), golden.Headers["User-Agent"]},
		{"Content-Length is the body", strconv.Itoa(len(got.Body)), golden.Headers["Content-Length"]},
		{"Idempotency-Key", got.Header.Get("Idempotency-Key"), "msg_01HZX3"},
		{"Authorization", got.Header.Get("Authorization"), ""},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
}

func TestBodyEscaping(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t, answer(http.StatusOK))
	s := newSender(t, httpsms.Config{URL: e.URL})
	m := outbound()
	m.Text = `Code <b>1&2</b> "quoted" \ back, Grüße, tab	end`
	if _, err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	want := "{\n   \"body\": \"Code <b>1&2</b> \\\"quoted\\\" \\\\ back, Grüße, tab\\tend\",\n   \"to\": \"+4915123456780\"\n}\n"
	if got := string(e.only(t).Body); got != want {
		t.Errorf("body =\n%s\nwant\n%s", got, want)
	}
}

func TestRequestOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		cfg        httpsms.Config
		id         string
		wantMethod string
		wantHost   string // "" means the server's own
		wantHeader map[string]string
	}{
		{
			name:       "defaults",
			id:         "msg_1",
			wantMethod: http.MethodPost,
			wantHeader: map[string]string{"Idempotency-Key": "msg_1", "Authorization": "", "Content-Type": "application/json"},
		},
		{
			name:       "no ID, no Idempotency-Key",
			wantMethod: http.MethodPost,
			wantHeader: map[string]string{"Idempotency-Key": ""},
		},
		{
			name:       "basic auth",
			cfg:        httpsms.Config{BasicAuth: &httpsms.BasicAuth{Username: "vigil", Password: "p:ss"}},
			id:         "msg_2",
			wantMethod: http.MethodPost,
			wantHeader: map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("vigil:p:ss"))},
		},
		{
			name:       "bearer token",
			cfg:        httpsms.Config{BearerToken: "tok_123"},
			wantMethod: http.MethodPost,
			wantHeader: map[string]string{"Authorization": "Bearer tok_123"},
		},
		{
			name: "headers and method",
			cfg: httpsms.Config{
				Method:  "put",
				Headers: map[string]string{"x-api-key": "k1", "Content-Type": "application/json; charset=utf-8", "Authorization": "Token abc", "Host": "sms.internal"},
			},
			id:         "msg_3",
			wantMethod: http.MethodPut,
			wantHost:   "sms.internal",
			wantHeader: map[string]string{
				"X-Api-Key":       "k1",
				"Content-Type":    "application/json; charset=utf-8",
				"Authorization":   "Token abc",
				"Idempotency-Key": "msg_3",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEndpoint(t, answer(http.StatusAccepted))
			cfg := tt.cfg
			cfg.URL = e.URL + "/sms?key=abc"
			s := newSender(t, cfg)
			m := outbound()
			m.ID = tt.id
			if _, err := s.Send(context.Background(), m); err != nil {
				t.Fatalf("Send: %v", err)
			}
			got := e.only(t)
			if got.Method != tt.wantMethod || got.Path != "/sms?key=abc" {
				t.Errorf("request = %s %s", got.Method, got.Path)
			}
			wantHost := tt.wantHost
			if wantHost == "" {
				wantHost = strings.TrimPrefix(e.URL, "http://")
			}
			if got.Host != wantHost {
				t.Errorf("Host = %q, want %q", got.Host, wantHost)
			}
			for k, v := range tt.wantHeader {
				if g := got.Header.Get(k); g != v {
					t.Errorf("header %s = %q, want %q", k, g, v)
				}
			}
		})
	}
}

func TestProviderID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status int
		ctype  string
		body   string
		wantID string
	}{
		{"id", http.StatusOK, "application/json", `{"id":"abc123","status":"queued"}`, "abc123"},
		{"message_id", http.StatusCreated, "application/json", `{"message_id":"m-9"}`, "m-9"},
		{"sid", http.StatusAccepted, "application/json", `{"sid":"SM0123"}`, "SM0123"},
		{"numeric id", http.StatusOK, "application/json", `{"id":1234567890123}`, "1234567890123"},
		{"id wins over sid", http.StatusOK, "application/json", `{"sid":"s","id":"i"}`, "i"},
		{"empty id falls through", http.StatusOK, "application/json", `{"id":"","sid":"s"}`, "s"},
		{"object id ignored", http.StatusOK, "application/json", `{"id":{"x":1}}`, ""},
		{"no body", http.StatusNoContent, "", "", ""},
		{"not JSON", http.StatusOK, "text/plain", "OK", ""},
		{"JSON array", http.StatusOK, "application/json", `[{"id":"x"}]`, ""},
		{"over the read cap", http.StatusOK, "application/json", `{"pad":"` + strings.Repeat("x", 70<<10) + `","id":"late"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEndpoint(t, func(w http.ResponseWriter, _ *http.Request) {
				if tt.ctype != "" {
					w.Header().Set("Content-Type", tt.ctype)
				}
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			})
			s := newSender(t, httpsms.Config{URL: e.URL})
			res, err := s.Send(context.Background(), outbound())
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if res.Provider != "http" || res.ProviderID != tt.wantID {
				t.Errorf("result = %+v, want provider http, id %q", res, tt.wantID)
			}
		})
	}
}

func TestStatusMapping(t *testing.T) {
	t.Parallel()
	// The endpoint echoes the number and text, as real providers do; the
	// error must carry neither.
	echo := `{"error":"cannot deliver to ` + phone + `: ` + text + `"}`
	tests := []struct {
		status        int
		retryAfter    string
		wantPermanent bool
		wantRetry     time.Duration
	}{
		{status: 400, wantPermanent: true},
		{status: 401, wantPermanent: true},
		{status: 403, wantPermanent: true},
		{status: 404, wantPermanent: true},
		{status: 422, wantPermanent: true},
		{status: 301, wantPermanent: true}, // not followed: a redirected POST is a wrong URL
		{status: 408},
		{status: 429, retryAfter: "30", wantRetry: 30 * time.Second},
		{status: 500},
		{status: 502},
		{status: 503, retryAfter: "Wed, 21 Oct 2015 07:28:00 GMT"}, // in the past: ignored
		{status: 504},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			t.Parallel()
			e := newEndpoint(t, func(w http.ResponseWriter, _ *http.Request) {
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				if tt.status == 301 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, echo)
			})
			s := newSender(t, httpsms.Config{URL: e.URL + "/sms?api_key=hunter2"})
			_, err := s.Send(context.Background(), outbound())
			checkErr(t, err, tt.wantPermanent, strconv.Itoa(tt.status))
			var se *httpsms.StatusError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a *httpsms.StatusError", err)
			}
			if se.StatusCode != tt.status || se.RetryAfter != tt.wantRetry {
				t.Errorf("StatusError = %+v, want status %d, retry after %v", se, tt.status, tt.wantRetry)
			}
			if n := e.count(); n != 1 {
				t.Errorf("endpoint got %d requests, want 1 (no redirects followed)", n)
			}
		})
	}
}

func TestTransportFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		timeout time.Duration
		cancel  time.Duration // cancel the caller's context after this long
		closed  bool          // nothing listens
		wantIs  error
		wantIn  string
	}{
		{name: "Timeout", timeout: 100 * time.Millisecond, wantIs: context.DeadlineExceeded},
		{name: "caller cancels", timeout: time.Minute, cancel: 100 * time.Millisecond, wantIs: context.Canceled},
		{name: "connection refused", closed: true, wantIn: "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			release := make(chan struct{})
			e := newEndpoint(t, func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-release:
				}
			})
			t.Cleanup(func() { close(release) }) // before e.Close
			url := e.URL + "/sms?api_key=hunter2"
			if tt.closed {
				e.Close()
			}
			s := newSender(t, httpsms.Config{URL: url, Timeout: tt.timeout})
			ctx := context.Background()
			if tt.cancel > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				time.AfterFunc(tt.cancel, cancel)
				defer cancel()
			}
			start := time.Now()
			_, err := s.Send(ctx, outbound())
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("Send took %v", took)
			}
			checkErr(t, err, false, tt.wantIn)
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("err = %v, want %v in its chain", err, tt.wantIs)
			}
		})
	}
}

func TestRefusedBeforeSending(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t, answer(http.StatusOK))
	s := newSender(t, httpsms.Config{URL: e.URL})
	tests := []struct {
		name   string
		modify func(*vigil.Outbound)
	}{
		{"email channel", func(m *vigil.Outbound) { m.Channel = vigil.ChannelEmail }},
		{"no recipient", func(m *vigil.Outbound) { m.To = "" }},
		{"line break in recipient", func(m *vigil.Outbound) { m.To = phone + "\r\n" }},
		{"no text", func(m *vigil.Outbound) { m.Text = "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := outbound()
			tt.modify(&m)
			_, err := s.Send(context.Background(), m)
			checkErr(t, err, true, "httpsms:")
		})
	}
	t.Cleanup(func() { // after the parallel subtests
		if n := e.count(); n != 0 {
			t.Errorf("endpoint got %d requests, want none", n)
		}
	})
}

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     httpsms.Config
		wantErr string
	}{
		{name: "ok", cfg: httpsms.Config{URL: "https://sms.example.com/send"}},
		{name: "ok with everything", cfg: httpsms.Config{URL: "http://127.0.0.1:8088/courier/sms", Method: "PATCH", Headers: map[string]string{"X-Key": "v"}, BearerToken: "t", Timeout: time.Second, HTTPClient: http.DefaultClient}},
		{name: "no URL", wantErr: "URL"},
		{name: "relative URL", cfg: httpsms.Config{URL: "/send"}, wantErr: "URL"},
		{name: "ftp URL", cfg: httpsms.Config{URL: "ftp://sms.example.com"}, wantErr: "URL"},
		{name: "GET", cfg: httpsms.Config{URL: "https://sms.example.com", Method: "GET"}, wantErr: "method"},
		{name: "two auths", cfg: httpsms.Config{URL: "https://sms.example.com", BearerToken: "t", BasicAuth: &httpsms.BasicAuth{Username: "u"}}, wantErr: "exclude"},
		{name: "negative timeout", cfg: httpsms.Config{URL: "https://sms.example.com", Timeout: -time.Second}, wantErr: "Timeout"},
		{name: "bad header name", cfg: httpsms.Config{URL: "https://sms.example.com", Headers: map[string]string{"X Key": "v"}}, wantErr: "header"},
		{name: "header injection", cfg: httpsms.Config{URL: "https://sms.example.com", Headers: map[string]string{"X-Key": "v\r\nX-Evil: 1"}}, wantErr: "header"},
		{name: "own Idempotency-Key", cfg: httpsms.Config{URL: "https://sms.example.com", Headers: map[string]string{"idempotency-key": "x"}}, wantErr: "set by the sender"},
		{name: "Content-Length", cfg: httpsms.Config{URL: "https://sms.example.com", Headers: map[string]string{"Content-Length": "1"}}, wantErr: "set by the sender"},
		{name: "Authorization and bearer", cfg: httpsms.Config{URL: "https://sms.example.com", BearerToken: "t", Headers: map[string]string{"Authorization": "x"}}, wantErr: "conflicts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := httpsms.New(tt.cfg)
			if tt.wantErr == "" {
				if err != nil || s == nil {
					t.Fatalf("New = %v, %v", s, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// checkErr asserts err is set, of the wanted kind, and leaks neither the
// text, the code, the number nor the URL's query.
func checkErr(t *testing.T, err error, wantPermanent bool, wantIn string) {
	t.Helper()
	if err == nil {
		t.Fatal("Send succeeded, want an error")
	}
	if vigil.IsPermanent(err) != wantPermanent {
		t.Errorf("IsPermanent = %v, want %v (err: %v)", vigil.IsPermanent(err), wantPermanent, err)
	}
	msg := err.Error()
	t.Logf("error: %s", msg)
	if !strings.Contains(msg, wantIn) {
		t.Errorf("error %q does not mention %q", msg, wantIn)
	}
	for _, secret := range []string{code, phone, "verification code", "hunter2"} {
		if strings.Contains(msg, secret) {
			t.Errorf("error %q leaks %q", msg, secret)
		}
	}
}
