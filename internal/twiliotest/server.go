package twiliotest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	// maxForm caps a request body, as Twilio's edge does (far more than
	// any valid request).
	maxForm = 1 << 20
	// apiVersion is Programmable Messaging's version in paths and answers.
	apiVersion = "2010-04-01"
	// maxBody is Twilio's limit on a message body, in characters.
	maxBody = 1600
)

// Endpoint names one of the API operations the server speaks.
type Endpoint string

const (
	// EndpointMessages is POST /2010-04-01/Accounts/{AccountSid}/Messages.json.
	EndpointMessages Endpoint = "messages"
	// EndpointVerifications is POST /v2/Services/{ServiceSid}/Verifications.
	EndpointVerifications Endpoint = "verifications"
	// EndpointVerificationCheck is POST /v2/Services/{ServiceSid}/VerificationCheck.
	EndpointVerificationCheck Endpoint = "verification_check"
)

// Message is one message the server created.
type Message struct {
	SID                 string // SM…
	AccountSID          string
	To                  string // as posted, "whatsapp:" prefix included
	From                string // as posted; empty with a Messaging Service only
	MessagingServiceSID string
	Body                string
	StatusCallback      string
	ValidityPeriod      string
	Status              string // "queued", or "accepted" through a Messaging Service
	// Username is the basic-auth user the request came with: the account
	// SID or an API key SID.
	Username string
	// Form is every parameter posted.
	Form    url.Values
	Header  http.Header
	Created time.Time
}

// Option configures a Server at Start.
type Option func(*Server)

// WithAccount sets the account SID and Auth Token instead of random ones.
func WithAccount(accountSID, authToken string) Option {
	return func(s *Server) { s.AccountSID, s.AuthToken = accountSID, authToken }
}

// WithAPIKey sets the API key SID and secret instead of random ones.
func WithAPIKey(sid, secret string) Option {
	return func(s *Server) { s.APIKeySID, s.APIKeySecret = sid, secret }
}

// WithVerifyLimits sets Verify's limits instead of Twilio's defaults: 5
// sends and 5 checks per verification, which expires after 10 minutes.
func WithVerifyLimits(maxSends, maxChecks int, ttl time.Duration) Option {
	return func(s *Server) { s.maxSends, s.maxChecks, s.ttl = maxSends, maxChecks, ttl }
}

// Server is a running fake of Twilio's Programmable Messaging and Verify
// APIs. Its methods are safe for concurrent use.
type Server struct {
	// Credentials and SIDs the server accepts; random unless set with
	// options. Read them, do not change them.
	AccountSID       string
	AuthToken        string
	APIKeySID        string
	APIKeySecret     string
	VerifyServiceSID string

	srv       *httptest.Server
	quit      chan struct{}
	closeOnce sync.Once
	maxSends  int
	maxChecks int
	ttl       time.Duration

	mu            sync.Mutex
	messages      []Message
	messageIndex  map[string]int
	changed       chan struct{} // closed and replaced whenever messages grows
	verifications []*Verification
	verification  map[string]*Verification
	faults        []*Fault
	requests      map[Endpoint]int
}

// Start starts a server on 127.0.0.1 with a free port; it is closed when
// the test ends.
func Start(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s := &Server{
		AccountSID:       newSID("AC"),
		AuthToken:        randomHex(),
		APIKeySID:        newSID("SK"),
		APIKeySecret:     randomHex(),
		VerifyServiceSID: newSID("VA"),
		quit:             make(chan struct{}),
		maxSends:         5,
		maxChecks:        5,
		ttl:              10 * time.Minute,
		messageIndex:     make(map[string]int),
		changed:          make(chan struct{}),
		verification:     make(map[string]*Verification),
		requests:         make(map[Endpoint]int),
	}
	for _, o := range opts {
		o(s)
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	tb.Cleanup(s.Close)
	return s
}

// URL is the base URL of both APIs: use it as the adapter's BaseURL and
// VerifyBaseURL.
func (s *Server) URL() string { return s.srv.URL }

// Close releases hanging requests and stops the server.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.quit)
		s.srv.Close()
	})
}

// Messages returns the messages created so far, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, len(s.messages))
	copy(out, s.messages)
	return out
}

// Message returns the message with this SID.
func (s *Server) Message(sid string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.messageIndex[sid]
	if !ok {
		return Message{}, false
	}
	return s.messages[i], true
}

// WaitForMessages waits until at least n messages were created and returns
// them, or returns ctx's error.
func (s *Server) WaitForMessages(ctx context.Context, n int) ([]Message, error) {
	for {
		s.mu.Lock()
		if len(s.messages) >= n {
			out := make([]Message, len(s.messages))
			copy(out, s.messages)
			s.mu.Unlock()
			return out, nil
		}
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("twiliotest: waiting for %d messages: %w", n, ctx.Err())
		}
	}
}

// Requests returns how many requests reached endpoint, refused and
// faulted ones included.
func (s *Server) Requests(e Endpoint) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[e]
}

var (
	messagesPath = "/" + apiVersion + "/Accounts/"
	servicesPath = "/v2/Services/"
)

// route finds the endpoint of a path and the SID in it.
func route(path string) (e Endpoint, sid string, ok bool) {
	if rest, found := strings.CutPrefix(path, messagesPath); found {
		if sid, found := strings.CutSuffix(rest, "/Messages.json"); found && sid != "" && !strings.Contains(sid, "/") {
			return EndpointMessages, sid, true
		}
		return "", "", false
	}
	if rest, found := strings.CutPrefix(path, servicesPath); found {
		sid, tail, _ := strings.Cut(rest, "/")
		switch tail {
		case "Verifications":
			return EndpointVerifications, sid, true
		case "VerificationCheck":
			return EndpointVerificationCheck, sid, true
		}
	}
	return "", "", false
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	endpoint, sid, ok := route(r.URL.Path)
	if !ok {
		writeError(w, http.StatusNotFound, 20404, fmt.Sprintf("The requested resource %s was not found", r.URL.Path))
		return
	}
	s.mu.Lock()
	s.requests[endpoint]++
	s.mu.Unlock()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, 20004, "Method not allowed")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxForm))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, 20001, "Request body too large")
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		writeError(w, http.StatusBadRequest, 20001, "Could not parse the request body")
		return
	}
	f := s.takeFault(endpoint, form)
	switch {
	case f == nil:
		s.handle(w, r, endpoint, sid, form)
	case f.Status == 0:
		// A slow Twilio: the request takes effect at once, the answer
		// comes late or, when the client gave up first, never.
		rec := httptest.NewRecorder()
		s.handle(rec, r, endpoint, sid, form)
		if s.wait(r, f) {
			maps.Copy(w.Header(), rec.Header())
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
		}
	default:
		if s.wait(r, f) {
			writeFault(w, f)
		}
	}
}

// handle serves an authenticated request to endpoint.
func (s *Server) handle(w http.ResponseWriter, r *http.Request, endpoint Endpoint, sid string, form url.Values) {
	user, ok := s.authenticate(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="Twilio API"`)
		writeErrorDetail(w, http.StatusUnauthorized, 20003, "Authenticate", "Your AccountSid or AuthToken was incorrect.")
		return
	}
	switch endpoint {
	case EndpointMessages:
		if sid != s.AccountSID {
			writeError(w, http.StatusNotFound, 20404, fmt.Sprintf("The requested resource %s was not found", r.URL.Path))
			return
		}
		s.createMessage(w, r, user, form)
	case EndpointVerifications, EndpointVerificationCheck:
		if sid != s.VerifyServiceSID {
			writeError(w, http.StatusNotFound, 20404, fmt.Sprintf("The requested resource /Services/%s/%s was not found", sid, path(endpoint)))
			return
		}
		if endpoint == EndpointVerifications {
			s.startVerification(w, form)
		} else {
			s.checkVerification(w, form)
		}
	}
}

func path(e Endpoint) string {
	if e == EndpointVerificationCheck {
		return "VerificationCheck"
	}
	return "Verifications"
}

// authenticate checks basic auth against the account and the API key and
// returns the user.
func (s *Server) authenticate(r *http.Request) (string, bool) {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return "", false
	}
	switch {
	case user == s.AccountSID && pass == s.AuthToken:
	case user == s.APIKeySID && pass == s.APIKeySecret:
	default:
		return "", false
	}
	return user, true
}

// messageJSON is Twilio's Message resource, as in the answer to a create.
type messageJSON struct {
	AccountSID          string            `json:"account_sid"`
	APIVersion          string            `json:"api_version"`
	Body                string            `json:"body"`
	DateCreated         string            `json:"date_created"`
	DateSent            *string           `json:"date_sent"`
	DateUpdated         string            `json:"date_updated"`
	Direction           string            `json:"direction"`
	ErrorCode           *int              `json:"error_code"`
	ErrorMessage        *string           `json:"error_message"`
	From                *string           `json:"from"`
	MessagingServiceSID *string           `json:"messaging_service_sid"`
	NumMedia            string            `json:"num_media"`
	NumSegments         string            `json:"num_segments"`
	Price               *string           `json:"price"`
	PriceUnit           *string           `json:"price_unit"`
	SID                 string            `json:"sid"`
	Status              string            `json:"status"`
	SubresourceURIs     map[string]string `json:"subresource_uris"`
	To                  string            `json:"to"`
	URI                 string            `json:"uri"`
}

func (s *Server) createMessage(w http.ResponseWriter, r *http.Request, user string, form url.Values) {
	to, from, service, body := form.Get("To"), form.Get("From"), form.Get("MessagingServiceSid"), form.Get("Body")
	toAddr, toWhatsApp := strings.CutPrefix(to, "whatsapp:")
	fromAddr, fromWhatsApp := strings.CutPrefix(from, "whatsapp:")
	switch {
	case to == "":
		writeError(w, http.StatusBadRequest, 21604, "A 'To' phone number is required.")
	case !isE164(toAddr):
		writeError(w, http.StatusBadRequest, 21211, fmt.Sprintf("Invalid 'To' Phone Number: %s", to))
	case from == "" && service == "":
		writeError(w, http.StatusBadRequest, 21603, "A 'From' phone number is required.")
	case service != "" && !validSID(service, "MG"):
		writeError(w, http.StatusBadRequest, 21701, fmt.Sprintf("The Messaging Service Sid %s is invalid.", service))
	case from != "" && fromWhatsApp && !isE164(fromAddr):
		writeError(w, http.StatusBadRequest, 21212, fmt.Sprintf("Invalid From Number (caller ID): %s", from))
	case from != "" && !fromWhatsApp && !validSender(fromAddr):
		writeError(w, http.StatusBadRequest, 21212, fmt.Sprintf("Invalid From Number (caller ID): %s", from))
	case from != "" && toWhatsApp != fromWhatsApp:
		writeError(w, http.StatusBadRequest, 21910, "Invalid From and To pair. From and To should be of the same channel")
	case body == "" && form.Get("MediaUrl") == "" && form.Get("ContentSid") == "":
		writeError(w, http.StatusBadRequest, 21602, "Message body is required.")
	case len([]rune(body)) > maxBody:
		writeError(w, http.StatusBadRequest, 21617, "The concatenated message body exceeds the 1600 character limit.")
	case form.Get("StatusCallback") != "" && !absoluteURL(form.Get("StatusCallback")):
		writeError(w, http.StatusBadRequest, 21609, "Invalid StatusCallback url")
	default:
		now := time.Now().UTC()
		m := Message{
			SID:                 newSID("SM"),
			AccountSID:          s.AccountSID,
			To:                  to,
			From:                from,
			MessagingServiceSID: service,
			Body:                body,
			StatusCallback:      form.Get("StatusCallback"),
			ValidityPeriod:      form.Get("ValidityPeriod"),
			Status:              "queued",
			Username:            user,
			Form:                form,
			Header:              r.Header.Clone(),
			Created:             now,
		}
		if service != "" && from == "" {
			m.Status = "accepted"
		}
		s.mu.Lock()
		s.messageIndex[m.SID] = len(s.messages)
		s.messages = append(s.messages, m)
		close(s.changed)
		s.changed = make(chan struct{})
		s.mu.Unlock()
		writeJSON(w, http.StatusCreated, s.messageResource(m))
	}
}

func (s *Server) messageResource(m Message) messageJSON {
	date := m.Created.Format(time.RFC1123Z)
	uri := "/" + apiVersion + "/Accounts/" + m.AccountSID + "/Messages/" + m.SID
	res := messageJSON{
		AccountSID:      m.AccountSID,
		APIVersion:      apiVersion,
		Body:            m.Body,
		DateCreated:     date,
		DateUpdated:     date,
		Direction:       "outbound-api",
		NumMedia:        "0",
		NumSegments:     fmt.Sprint(segments(m.Body)),
		SID:             m.SID,
		Status:          m.Status,
		SubresourceURIs: map[string]string{"media": uri + "/Media.json"},
		To:              m.To,
		URI:             uri + ".json",
	}
	if m.From != "" {
		res.From = &m.From
	}
	if m.MessagingServiceSID != "" {
		res.MessagingServiceSID = &m.MessagingServiceSID
	}
	return res
}

// segments estimates how many SMS segments body takes: 160 (153 when
// split) characters in ASCII, 70 (67) otherwise. Twilio's GSM-7 rules are
// finer; the number is only for realistic answers.
func segments(body string) int {
	n, per, single := 0, 153, 160
	for _, r := range body {
		n++
		if r > 0x7e {
			per, single = 67, 70
		}
	}
	if n <= single {
		return 1
	}
	return (n + per - 1) / per
}

// errorJSON is Twilio's error body.
type errorJSON struct {
	Code     int    `json:"code"`
	Detail   string `json:"detail,omitempty"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

func writeError(w http.ResponseWriter, status, code int, msg string) {
	writeErrorDetail(w, status, code, msg, "")
}

func writeErrorDetail(w http.ResponseWriter, status, code int, msg, detail string) {
	writeJSON(w, status, errorJSON{
		Code:     code,
		Detail:   detail,
		Message:  msg,
		MoreInfo: fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code),
		Status:   status,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func newSID(prefix string) string { return prefix + randomHex() }

// randomHex returns 32 random hexadecimal digits.
func randomHex() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// validSID reports whether s is prefix followed by 32 hexadecimal digits.
func validSID(s, prefix string) bool {
	if len(s) != 34 || !strings.HasPrefix(s, prefix) {
		return false
	}
	_, err := hex.DecodeString(s[2:])
	return err == nil
}

// isE164 reports whether s is "+" and 7 to 15 digits, the first not 0.
func isE164(s string) bool {
	if len(s) < 8 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validSender reports whether s is an E.164 number, a short code or an
// alphanumeric sender ID.
func validSender(s string) bool {
	if isE164(s) {
		return true
	}
	if s == "" || len(s) > 11 {
		return false
	}
	for _, c := range s {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == ' ':
		default:
			return false
		}
	}
	return true
}

func absoluteURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
