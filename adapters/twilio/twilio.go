package twilio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-auth/vigil"
)

const (
	// DefaultTimeout bounds one request when a config's Timeout is zero.
	DefaultTimeout = 10 * time.Second
	// DefaultBaseURL is Twilio's REST API (Programmable Messaging).
	DefaultBaseURL = "https://api.twilio.com"
	// DefaultVerifyBaseURL is Twilio's Verify API.
	DefaultVerifyBaseURL = "https://verify.twilio.com"

	// ProviderSMS names Programmable Messaging SMS in SendResult and
	// StatusUpdate.
	ProviderSMS = "twilio"
	// ProviderWhatsApp names Programmable Messaging WhatsApp.
	ProviderWhatsApp = "twilio_whatsapp"
	// ProviderVerify names Twilio Verify.
	ProviderVerify = "twilio_verify"

	// maxResponse caps how much of a response is read.
	maxResponse = 64 << 10
	// maxSIDLen caps a SID taken from an answer or a callback; Twilio's
	// are 34 characters.
	maxSIDLen = 64
)

// Credentials authenticate to Twilio's REST APIs: the account SID with
// either its Auth Token or an API key (SID and secret). API keys are the
// better choice for sending, since they can be revoked one by one; only
// the Auth Token can check status callbacks (see Callbacks).
type Credentials struct {
	// AccountSID is the account messages are sent from (AC…).
	AccountSID string
	// AuthToken authenticates as the account itself.
	AuthToken string
	// APIKeySID (SK…) and APIKeySecret authenticate with an API key of
	// the account. They exclude AuthToken.
	APIKeySID    string
	APIKeySecret string
}

// basicAuth checks c and returns the HTTP basic credentials, appending
// every problem to errs.
func (c Credentials) basicAuth(errs []error) (user, pass string, _ []error) {
	if !validSID(c.AccountSID, "AC") {
		errs = append(errs, errors.New("AccountSID must be AC followed by 32 hexadecimal digits"))
	}
	keyed := c.APIKeySID != "" || c.APIKeySecret != ""
	switch {
	case c.AuthToken != "" && keyed:
		errs = append(errs, errors.New("AuthToken and APIKeySID/APIKeySecret exclude each other"))
	case keyed:
		if !validSID(c.APIKeySID, "SK") {
			errs = append(errs, errors.New("APIKeySID must be SK followed by 32 hexadecimal digits"))
		}
		if c.APIKeySecret == "" {
			errs = append(errs, errors.New("APIKeySID needs APIKeySecret"))
		}
		return c.APIKeySID, c.APIKeySecret, errs
	case c.AuthToken == "":
		errs = append(errs, errors.New("AuthToken, or APIKeySID and APIKeySecret, are required"))
	}
	return c.AccountSID, c.AuthToken, errs
}

// validSID reports whether s is prefix followed by 32 hexadecimal digits,
// the shape of every Twilio SID.
func validSID(s, prefix string) bool {
	if len(s) != 34 || !strings.HasPrefix(s, prefix) {
		return false
	}
	for i := 2; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// plausibleSID reports whether s can be kept as a provider ID: letters
// and digits only, not too long. Answers are not trusted to be Twilio's.
func plausibleSID(s string) bool {
	if s == "" || len(s) > maxSIDLen {
		return false
	}
	for i := range len(s) {
		if !isAlnum(s[i]) {
			return false
		}
	}
	return true
}

// isE164 reports whether s is a phone number in E.164: "+" and 7 to 15
// digits, the first not 0 (the shortest numbers in use have 7).
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

// parseBaseURL checks an http or https base URL and returns it without a
// trailing slash. name is the config field, for the error.
func parseBaseURL(raw, def, name string) (string, error) {
	if raw == "" {
		return def, nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%s must be an absolute http or https URL without credentials, query or fragment", name)
	}
	return strings.TrimRight(raw, "/"), nil
}

// client posts forms to one of Twilio's APIs.
type client struct {
	user, pass string
	timeout    time.Duration
	http       *http.Client
}

// maxIdleConns is how many idle connections to Twilio are kept: as many as
// a process runs deliveries at once by default.
const maxIdleConns = 64

func newClient(user, pass string, timeout time.Duration, hc *http.Client) (*client, error) {
	if timeout < 0 {
		return nil, errors.New("negative Timeout")
	}
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	if hc == nil {
		// Deliveries run many at once: keep a connection per worker, so
		// that each send does not pay a new TLS handshake (the default
		// transport keeps two per host).
		hc = &http.Client{
			// A redirected POST is a wrong base URL, not something to follow.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
		if tr, ok := http.DefaultTransport.(*http.Transport); ok {
			pooled := tr.Clone()
			pooled.MaxIdleConnsPerHost = maxIdleConns
			hc.Transport = pooled
		}
	}
	return &client{user: user, pass: pass, timeout: timeout, http: hc}, nil
}

// response is what Twilio answered. readErr is set when the body could
// not be read whole: for a 201 the request still took effect.
type response struct {
	status  int
	header  http.Header
	body    []byte
	readErr error
}

func (r response) ok() bool { return r.status >= 200 && r.status < 300 }

// post sends form to endpoint within the client's timeout. op names the
// operation in errors ("send message"); errors never carry the form, the
// credentials or the full URL (it holds the account SID).
func (c *client) post(ctx context.Context, op, endpoint string, form url.Values) (response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return response{}, fmt.Errorf("twilio: %s: build request: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(c.user, c.pass)

	resp, err := c.http.Do(req)
	if err != nil {
		return response{}, transportError(ctx, op, req.URL.Host, err)
	}
	defer resp.Body.Close()
	body, readErr := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	return response{status: resp.StatusCode, header: resp.Header, body: body, readErr: readErr}, nil
}

// transportError describes a failure to get an answer. *url.Error would
// print the whole URL.
func transportError(ctx context.Context, op, host string, err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		return fmt.Errorf("twilio: %s: POST %s: %w (%w)", op, host, ctxErr, err)
	}
	return fmt.Errorf("twilio: %s: POST %s: %w", op, host, err)
}

// APIError is an answer from Twilio other than 2xx. It keeps Twilio's
// error code but not its message, which often quotes the phone number
// ("The 'To' number +15005550001 is not a valid phone number.").
type APIError struct {
	// Op is what was attempted: "send message", "start verification" or
	// "check verification".
	Op         string
	StatusCode int
	// Code is Twilio's error code (21211, 60203); zero when the answer
	// had none, as from a proxy in front of Twilio.
	Code int
	// RetryAfter is the answer's Retry-After, zero when absent.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("twilio: %s: Twilio answered %d %s", e.Op, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Code != 0 {
		msg += fmt.Sprintf(", error %d", e.Code)
	}
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return msg
}

// transientCodes are Twilio error codes that waiting can fix, whatever
// the HTTP status they come with.
var transientCodes = map[int]bool{
	20429: true, // too many requests
	21611: true, // the From number's queue holds more than 10 hours of messages
	60203: true, // Verify: max send attempts; clears when the verification expires
	60212: true, // Verify: too many concurrent requests for the number
}

// Permanent reports whether sending again cannot help. 408, 429 and 5xx
// answers and the codes in transientCodes are transient; every other
// answer is permanent: an invalid or unsubscribed number (21211, 21610,
// 21614), a trial account's unverified number (21608), geographic
// permissions (21408), a bad sender (21212, 21606), credentials Twilio
// refuses (20003), Verify's invalid parameter (60200), landline (60205)
// and fraud blocks (60410, 60605), and redirects.
func (e *APIError) Permanent() bool {
	if transientCodes[e.Code] {
		return false
	}
	switch {
	case e.StatusCode == http.StatusRequestTimeout, e.StatusCode == http.StatusTooManyRequests:
		return false
	case e.StatusCode >= 500 && e.StatusCode < 600:
		return false
	}
	return true
}

// apiError reads Twilio's error body ({"code": 21211, "message": …,
// "more_info": …, "status": 400}) into an *APIError, marked permanent
// when it is.
func apiError(op string, r response, now time.Time) error {
	e := &APIError{
		Op:         op,
		StatusCode: r.status,
		Code:       errorCode(r.body),
		RetryAfter: retryAfter(r.header.Get("Retry-After"), now),
	}
	if e.Permanent() {
		return vigil.Permanent(e)
	}
	return e
}

// errorCode returns the "code" of a Twilio error body, or zero.
func errorCode(body []byte) int {
	var v struct {
		Code any `json:"code"`
	}
	if json.Unmarshal(body, &v) != nil {
		return 0
	}
	switch c := v.Code.(type) {
	case float64:
		if c > 0 && c < 1e9 && c == float64(int(c)) {
			return int(c)
		}
	case string: // not Twilio's shape, but cheap to accept
		if n, err := strconv.Atoi(c); err == nil && n > 0 && n < 1e9 {
			return n
		}
	}
	return 0
}

// retryAfter parses a Retry-After header, seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
