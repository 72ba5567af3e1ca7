package engagelabtest

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/big"
	"mime"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Default credentials and template, what Start uses without options.
const (
	DevKey     = "test-dev-key"
	DevSecret  = "test-dev-secret"
	TemplateID = "vigil-otp"
)

// Endpoints, for Fail.
const (
	Send   = "/v1/messages"
	Verify = "/v1/verifications"
)

// DefaultTTL is how long a code stays checkable without WithTTL.
const DefaultTTL = 5 * time.Minute

// firstMessageID is where message ids start: EngageLab's are 19 digits.
const firstMessageID = 1725407449772531712

// maxBody caps a request body.
const maxBody = 1 << 20

// languages are the template languages EngageLab documents.
var languages = map[string]bool{"default": true, "zh_CN": true, "zh_HK": true, "en": true, "ja": true, "th": true, "es": true}

// Message is one code the server generated and "sent".
type Message struct {
	ID         string
	To         string
	TemplateID string
	Language   string // as sent; "default" when the request had none
	Params     map[string]string
	Channel    string // send_channel: "sms" or "email"
	Code       string
	SentAt     time.Time
	ExpiresAt  time.Time
	Verified   bool
	// Checks counts verification requests for this message.
	Checks int
}

// Request is one request the server received, whatever it answered.
type Request struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
}

// Failure is an answer to inject with Fail. With Status set, the server
// answers Status with EngageLab's error body {"code": Code, "message":
// Message}; with Body set, it writes Body verbatim (Status, or 200); with
// neither, it answers normally after Delay.
type Failure struct {
	Status  int
	Code    int
	Message string
	Body    string
	// Delay is waited before answering (or until the client gives up).
	Delay time.Duration
}

// Option configures a Server at Start.
type Option func(*Server)

// WithCredentials sets the dev key and secret the server accepts.
func WithCredentials(key, secret string) Option {
	return func(s *Server) { s.key, s.secret = key, secret }
}

// WithTemplates sets the template ids the server knows (default:
// TemplateID). Others are refused with code 4001.
func WithTemplates(ids ...string) Option {
	return func(s *Server) {
		s.templates = make(map[string]bool, len(ids))
		for _, id := range ids {
			s.templates[id] = true
		}
	}
}

// WithTTL sets how long a code stays checkable.
func WithTTL(d time.Duration) Option {
	return func(s *Server) { s.ttl = d }
}

// WithClock makes the server read the time from now.
func WithClock(now func() time.Time) Option {
	return func(s *Server) { s.now = now }
}

// Server is a fake EngageLab OTP API. It is safe for concurrent use.
type Server struct {
	srv  *httptest.Server
	done chan struct{} // closed at cleanup: ends pending delays

	key, secret string
	templates   map[string]bool
	ttl         time.Duration
	now         func() time.Time

	mu       sync.Mutex
	nextID   int64
	messages map[string]*Message
	order    []string
	requests []Request
	failures map[string][]Failure
}

// Start runs a fake EngageLab OTP API on 127.0.0.1 until the test ends.
// Point engagelab.Config.BaseURL at URL().
func Start(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s := &Server{
		done:      make(chan struct{}),
		key:       DevKey,
		secret:    DevSecret,
		templates: map[string]bool{TemplateID: true},
		ttl:       DefaultTTL,
		now:       time.Now,
		nextID:    firstMessageID,
		messages:  make(map[string]*Message),
		failures:  make(map[string][]Failure),
	}
	for _, o := range opts {
		o(s)
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	tb.Cleanup(func() {
		close(s.done)
		s.srv.Close()
	})
	return s
}

// URL is the server's base URL, for engagelab.Config.BaseURL.
func (s *Server) URL() string { return s.srv.URL }

// Fail queues f as the answer to the next request to endpoint (Send or
// Verify). Queued failures are used in order, one per request.
func (s *Server) Fail(endpoint string, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[endpoint] = append(s.failures[endpoint], f)
}

// Messages returns every message sent so far, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, 0, len(s.order))
	for _, id := range s.order {
		out = append(out, copyMessage(s.messages[id]))
	}
	return out
}

// Message returns the message with id.
func (s *Server) Message(id string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.messages[id]
	if !ok {
		return Message{}, false
	}
	return copyMessage(m), true
}

// Code returns the code generated for message id, failing the test when
// there is no such message.
func (s *Server) Code(tb testing.TB, id string) string {
	tb.Helper()
	m, ok := s.Message(id)
	if !ok {
		tb.Fatalf("engagelabtest: no message %q", id)
	}
	return m.Code
}

// Expire makes message id's code expired.
func (s *Server) Expire(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m, ok := s.messages[id]; ok {
		m.ExpiresAt = s.now().Add(-time.Second)
	}
}

// Requests returns every request received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		out[i] = Request{Method: r.Method, Path: r.Path, Header: r.Header.Clone(), Body: append([]byte(nil), r.Body...)}
	}
	return out
}

func copyMessage(m *Message) Message {
	c := *m
	c.Params = maps.Clone(m.Params)
	return c
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	s.mu.Lock()
	s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
	var f *Failure
	if q := s.failures[r.URL.Path]; len(q) > 0 {
		f = &q[0]
		s.failures[r.URL.Path] = q[1:]
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
		switch {
		case f.Body != "":
			status := f.Status
			if status == 0 {
				status = http.StatusOK
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = io.WriteString(w, f.Body)
			return
		case f.Status != 0:
			writeError(w, f.Status, f.Code, f.Message)
			return
		}
	}

	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, 3001, "request body too large")
		return
	}
	if r.URL.Path != Send && r.URL.Path != Verify {
		writeError(w, http.StatusNotFound, 3002, "no such API")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, 3002, "method not allowed")
		return
	}
	if !s.authorized(r) {
		writeError(w, http.StatusUnauthorized, 2001, "authentication failed")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeError(w, http.StatusBadRequest, 3001, "Content-Type must be application/json")
		return
	}
	switch r.URL.Path {
	case Send:
		s.send(w, body)
	case Verify:
		s.verify(w, body)
	}
}

// authorized checks HTTP basic auth like EngageLab: base64(key:secret).
func (s *Server) authorized(r *http.Request) bool {
	const prefix = "Basic "
	h := r.Header.Get("Authorization")
	if !strings.HasPrefix(h, prefix) {
		return false
	}
	raw, err := base64.StdEncoding.DecodeString(h[len(prefix):])
	if err != nil {
		return false
	}
	key, secret, ok := strings.Cut(string(raw), ":")
	return ok && key == s.key && secret == s.secret
}

type sendRequest struct {
	To       *string `json:"to"`
	Template *struct {
		ID       *string           `json:"id"`
		Language *string           `json:"language"`
		Params   map[string]string `json:"params"`
	} `json:"template"`
}

func (s *Server) send(w http.ResponseWriter, body []byte) {
	var req sendRequest
	if err := strictUnmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, 3001, "invalid JSON: "+err.Error())
		return
	}
	if req.To == nil || req.Template == nil || req.Template.ID == nil || *req.Template.ID == "" {
		writeError(w, http.StatusBadRequest, 3002, "to and template.id are required")
		return
	}
	lang := "default"
	if req.Template.Language != nil {
		lang = *req.Template.Language
	}
	if !languages[lang] {
		writeError(w, http.StatusBadRequest, 3002, "unsupported template language "+lang)
		return
	}
	if !s.templates[*req.Template.ID] {
		writeError(w, http.StatusBadRequest, 4001, "template not found")
		return
	}
	channel := recipientChannel(*req.To)
	if channel == "" {
		// EngageLab's message quotes the number; the client must not.
		writeError(w, http.StatusBadRequest, 5011, "invalid phone number "+*req.To)
		return
	}
	code, err := newCode()
	if err != nil {
		writeError(w, http.StatusInternalServerError, 1000, "internal error")
		return
	}

	s.mu.Lock()
	id := strconv.FormatInt(s.nextID, 10)
	s.nextID++
	now := s.now()
	s.messages[id] = &Message{
		ID:         id,
		To:         *req.To,
		TemplateID: *req.Template.ID,
		Language:   lang,
		Params:     maps.Clone(req.Template.Params),
		Channel:    channel,
		Code:       code,
		SentAt:     now,
		ExpiresAt:  now.Add(s.ttl),
	}
	s.order = append(s.order, id)
	s.mu.Unlock()

	writeJSON(w, http.StatusOK, map[string]any{"message_id": id, "send_channel": channel})
}

type verifyRequest struct {
	MessageID  *string `json:"message_id"`
	VerifyCode *string `json:"verify_code"`
}

func (s *Server) verify(w http.ResponseWriter, body []byte) {
	var req verifyRequest
	if err := strictUnmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, 3001, "invalid JSON: "+err.Error())
		return
	}
	if req.MessageID == nil || *req.MessageID == "" || req.VerifyCode == nil || *req.VerifyCode == "" {
		writeError(w, http.StatusBadRequest, 3002, "message_id and verify_code are required")
		return
	}
	s.mu.Lock()
	m, ok := s.messages[*req.MessageID]
	var verified bool
	var status, code int
	var msg string
	switch {
	case !ok:
		// EngageLab does not document the code for an unknown id; the
		// fake answers like an expired one.
		status, code, msg = http.StatusBadRequest, 3003, "message not found"
	case m.Verified:
		m.Checks++
		status, code, msg = http.StatusBadRequest, 3003, "verification code has been verified"
	case !s.now().Before(m.ExpiresAt):
		m.Checks++
		status, code, msg = http.StatusBadRequest, 3003, "verification code has expired"
	default:
		m.Checks++
		verified = *req.VerifyCode == m.Code
		m.Verified = verified
	}
	s.mu.Unlock()

	if status != 0 {
		writeError(w, status, code, msg)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"message_id": *req.MessageID, "verify_code": *req.VerifyCode, "verified": verified})
}

// recipientChannel returns "sms" for an E.164 number, "email" for an
// address, "" for anything else.
func recipientChannel(to string) string {
	if strings.Contains(to, "@") {
		local, domain, _ := strings.Cut(to, "@")
		if local != "" && strings.Contains(domain, ".") && !strings.ContainsAny(to, " \t\r\n") {
			return "email"
		}
		return ""
	}
	digits := strings.TrimPrefix(to, "+")
	if len(digits) == len(to) || len(digits) < 7 || len(digits) > 15 || digits[0] == '0' {
		return ""
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return ""
		}
	}
	return "sms"
}

// newCode returns six random digits.
func newCode() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%06d", n.Int64()), nil
}

// strictUnmarshal decodes one JSON value and refuses fields EngageLab does
// not document: stricter than the real API may be, so a client sending
// anything undocumented fails here first.
func strictUnmarshal(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

func writeError(w http.ResponseWriter, status, code int, message string) {
	writeJSON(w, status, map[string]any{"code": code, "message": message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
