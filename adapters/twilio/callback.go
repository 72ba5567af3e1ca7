package twilio

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // Twilio signs callbacks with HMAC-SHA1; the algorithm is Twilio's choice, not ours.
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/vigil-auth/vigil"
)

// DefaultMaxCallbackBody caps a status callback's body when
// CallbackConfig.MaxBody is zero. Twilio's are well under 2 KiB.
const DefaultMaxCallbackBody = 64 << 10

// SignatureHeader is the header Twilio signs its requests with.
const SignatureHeader = "X-Twilio-Signature"

// maxErrorCode caps the length of an ErrorCode kept from a callback.
const maxErrorCode = 10

// CallbackConfig configures Callbacks.
type CallbackConfig struct {
	// AuthToken is the account's (primary) Auth Token. Twilio signs
	// callbacks with it; API keys cannot check signatures, so it is
	// required even when messages are sent with an API key.
	AuthToken string
	// SecondaryAuthToken, when set, is accepted too: set it while
	// rotating the Auth Token, so callbacks signed before and after the
	// promotion both pass.
	SecondaryAuthToken string
	// MaxBody caps the request body; zero means DefaultMaxCallbackBody.
	MaxBody int64
}

// Callbacks checks and reads Twilio's message status callbacks. It is safe
// for concurrent use.
type Callbacks struct {
	keys    [][]byte
	maxBody int64
}

// NewCallbacks checks cfg and returns Callbacks.
func NewCallbacks(cfg CallbackConfig) (*Callbacks, error) {
	var errs []error
	if cfg.AuthToken == "" {
		errs = append(errs, errors.New("AuthToken is required to check callback signatures"))
	}
	if cfg.MaxBody < 0 {
		errs = append(errs, errors.New("negative MaxBody"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("twilio: %w", errors.Join(errs...))
	}
	c := &Callbacks{keys: [][]byte{[]byte(cfg.AuthToken)}, maxBody: cfg.MaxBody}
	if cfg.SecondaryAuthToken != "" {
		c.keys = append(c.keys, []byte(cfg.SecondaryAuthToken))
	}
	if c.maxBody == 0 {
		c.maxBody = DefaultMaxCallbackBody
	}
	return c, nil
}

// SignatureError is a callback whose X-Twilio-Signature is missing or does
// not match: answer 403.
type SignatureError struct {
	// Missing is true when the request had no signature at all.
	Missing bool
}

func (e *SignatureError) Error() string {
	if e.Missing {
		return "twilio: status callback: no " + SignatureHeader + " header"
	}
	return "twilio: status callback: " + SignatureHeader + " does not match"
}

// Parse checks a status callback's signature and reads it. publicURL is
// the URL Twilio was given as StatusCallback, exactly as given (Twilio
// signs that text, not what a proxy in front of Vigil turns it into);
// when it has no query, the request's query is appended. The body is read
// up to the configured cap.
//
// ok is false, with a nil error, for a report that is no news to Vigil:
// queued, accepted, scheduled, sending, an inbound status or one this
// package does not know. A *SignatureError means the request is not from
// Twilio (answer 403); any other error means a malformed request (answer
// 400, or 413 for an *http.MaxBytesError).
func (c *Callbacks) Parse(r *http.Request, publicURL string) (u vigil.StatusUpdate, ok bool, err error) {
	if r.Method != http.MethodPost {
		return u, false, fmt.Errorf("twilio: status callback: method %s, want POST", r.Method)
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return u, false, errors.New("twilio: status callback: Content-Type is not application/x-www-form-urlencoded")
	}
	if r.Body == nil {
		r.Body = http.NoBody
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, c.maxBody))
	if err != nil {
		return u, false, fmt.Errorf("twilio: status callback: read body: %w", err)
	}
	params, err := url.ParseQuery(string(body))
	if err != nil {
		return u, false, fmt.Errorf("twilio: status callback: body is not a form: %w", err)
	}
	full := publicURL
	if r.URL != nil && (r.URL.RawQuery != "" || r.URL.ForceQuery) && !strings.Contains(publicURL, "?") {
		full += "?" + r.URL.RawQuery
	}
	if err := c.CheckSignature(full, params, r.Header.Get(SignatureHeader)); err != nil {
		return u, false, err
	}
	return ParseStatus(params)
}

// CheckSignature reports whether signature is Twilio's for a request to
// fullURL (query included) with the POST parameters params: base64 of
// HMAC-SHA1, keyed with the Auth Token, over the URL followed by each
// parameter's name and value, sorted by name. It returns a
// *SignatureError when not.
//
// Twilio documents that it leaves the port out of https URLs (and
// credentials out of all URLs) before signing, and its own libraries
// accept the URL with and without the port (the scheme's default port
// when none is given) and with and without credentials; so does this.
// Every candidate is compared in constant time.
func (c *Callbacks) CheckSignature(fullURL string, params url.Values, signature string) error {
	if signature == "" {
		return &SignatureError{Missing: true}
	}
	// Strict: only Twilio's exact encoding, not variants that decode to
	// the same bytes.
	got, err := base64.StdEncoding.Strict().DecodeString(signature)
	if err != nil || len(got) != sha1.Size {
		return &SignatureError{}
	}
	match := false
	for _, candidate := range signedURLs(fullURL) {
		for _, key := range c.keys {
			// No early exit: the time taken does not tell which matched.
			if hmac.Equal(got, sign(key, candidate, params)) {
				match = true
			}
		}
	}
	if !match {
		return &SignatureError{}
	}
	return nil
}

// sign computes Twilio's signature: HMAC-SHA1 over the URL and then each
// parameter name and value, names in byte order; a repeated name's values
// are sorted too, as Twilio's Node library does.
func sign(key []byte, fullURL string, params url.Values) []byte {
	mac := hmac.New(sha1.New, key)
	_, _ = io.WriteString(mac, fullURL)
	for _, name := range slices.Sorted(maps.Keys(params)) {
		values := params[name]
		if len(values) > 1 {
			values = slices.Sorted(slices.Values(values))
		}
		for _, v := range values {
			_, _ = io.WriteString(mac, name)
			_, _ = io.WriteString(mac, v)
		}
	}
	return mac.Sum(nil)
}

// signedURLs returns the forms of fullURL Twilio may have signed: as
// given, with and without credentials, with and without the port. The rest of the URL is
// kept byte for byte, since re-encoding it would change the signature.
func signedURLs(fullURL string) []string {
	scheme, rest, ok := strings.Cut(fullURL, "://")
	if !ok {
		return []string{fullURL}
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	userinfo := ""
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		userinfo, authority = authority[:at+1], authority[at+1:]
	}
	host, port := splitPort(authority)
	if port == "" {
		switch strings.ToLower(scheme) {
		case "https":
			port = "443"
		case "http":
			port = "80"
		}
	}
	hosts := []string{host}
	if port != "" {
		hosts = append(hosts, host+":"+port)
	}
	users := []string{""}
	if userinfo != "" {
		users = append(users, userinfo)
	}
	out := []string{fullURL}
	for _, u := range users {
		for _, h := range hosts {
			if c := scheme + "://" + u + h + tail; c != fullURL {
				out = append(out, c)
			}
		}
	}
	return out
}

// splitPort splits "host:port", "[v6]:port", "host" or "[v6]".
func splitPort(authority string) (host, port string) {
	if strings.HasPrefix(authority, "[") {
		end := strings.IndexByte(authority, ']')
		if end < 0 {
			return authority, ""
		}
		host, rest := authority[:end+1], authority[end+1:]
		if p, ok := strings.CutPrefix(rest, ":"); ok {
			return host, p
		}
		return host, ""
	}
	if i := strings.LastIndexByte(authority, ':'); i >= 0 {
		return authority[:i], authority[i+1:]
	}
	return authority, ""
}

// statuses maps Twilio's message statuses onto Vigil's. Statuses that are
// missing (queued, accepted, scheduled, sending, receiving, received) are
// no news.
var statuses = map[string]vigil.MessageStatus{
	"sent":        vigil.MessageSent,
	"delivered":   vigil.MessageDelivered,
	"read":        vigil.MessageDelivered, // WhatsApp: read implies delivered
	"undelivered": vigil.MessageUndelivered,
	// Some segments arrived and some did not: the code may be in the
	// missing part, so it counts as not delivered.
	"partially_delivered": vigil.MessageUndelivered,
	"failed":              vigil.MessageFailed,
	// A scheduled message canceled before it was sent.
	"canceled": vigil.MessageFailed,
}

// ParseStatus reads the parameters of a status callback Parse or the
// caller has already checked. It reads MessageSid (or the older SmsSid),
// MessageStatus (or SmsStatus) and, for undelivered and failed, ErrorCode.
// Provider is ProviderWhatsApp for a WhatsApp message, else ProviderSMS,
// matching what Sender returned. ok is false for a status that is no news.
func ParseStatus(params url.Values) (u vigil.StatusUpdate, ok bool, err error) {
	sid := first(params, "MessageSid", "SmsSid")
	if !plausibleSID(sid) {
		return u, false, errors.New("twilio: status callback: no valid MessageSid")
	}
	raw := first(params, "MessageStatus", "SmsStatus")
	if raw == "" {
		return u, false, errors.New("twilio: status callback: no MessageStatus")
	}
	status, known := statuses[strings.ToLower(raw)]
	if !known {
		return u, false, nil
	}
	u = vigil.StatusUpdate{Provider: ProviderSMS, ProviderID: sid, Status: status}
	if params.Get("ChannelPrefix") == "whatsapp" ||
		strings.HasPrefix(params.Get("To"), whatsappPrefix) || strings.HasPrefix(params.Get("From"), whatsappPrefix) {
		u.Provider = ProviderWhatsApp
	}
	if status == vigil.MessageUndelivered || status == vigil.MessageFailed {
		if code := params.Get("ErrorCode"); isDigits(code) && len(code) <= maxErrorCode {
			u.ErrorCode = code
		}
	}
	return u, true, nil
}

// first returns the first non-empty value among keys.
func first(params url.Values, keys ...string) string {
	for _, k := range keys {
		if v := params.Get(k); v != "" {
			return v
		}
	}
	return ""
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
