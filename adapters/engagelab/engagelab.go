package engagelab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-auth/vigil"
)

const (
	// DefaultBaseURL is EngageLab's OTP API.
	DefaultBaseURL = "https://otp.api.engagelab.cc"
	// DefaultTimeout bounds one call when Config.Timeout is zero.
	DefaultTimeout = 10 * time.Second
	// DefaultLanguage asks EngageLab for the template's default language.
	DefaultLanguage = "default"

	// pathMessages is the endpoint that generates and sends a code.
	pathMessages = "/v1/messages"
	// pathVerifications is the endpoint that checks a code.
	pathVerifications = "/v1/verifications"

	// maxResponse caps how much of an answer is read.
	maxResponse = 64 << 10
	// maxMessageID caps the message_id kept from an answer.
	maxMessageID = 256
	// maxCode caps a code worth asking about; EngageLab's are a few digits.
	maxCode = 32
	// maxRecipient is the longest e-mail address (RFC 5321) and far more
	// than any E.164 number.
	maxRecipient = 320
	// provider names this adapter in SendResult.
	provider = "engagelab"
)

// languages are the template languages EngageLab documents, keyed by their
// lower-case form so configuration may write "zh-CN" or "zh_cn".
var languages = map[string]string{
	"default": "default",
	"zh_cn":   "zh_CN",
	"zh_hk":   "zh_HK",
	"en":      "en",
	"ja":      "ja",
	"th":      "th",
	"es":      "es",
}

// Config configures a Sender.
type Config struct {
	// BaseURL is DefaultBaseURL when empty. A path (a proxy's prefix) is
	// kept; pathMessages and pathVerifications are appended to it.
	BaseURL string
	// DevKey and DevSecret are the API key pair from the EngageLab OTP
	// console, sent as HTTP basic auth.
	DevKey    string
	DevSecret string
	// TemplateID is the OTP template used unless Templates names another
	// for the request's locale.
	TemplateID string
	// Language is the template language for locales EngageLab has no
	// language for (see the package documentation): "default" (the
	// template's default language) when empty, else one of zh_CN, zh_HK,
	// en, ja, th or es.
	Language string
	// Templates maps a BCP 47 language tag ("de", "pt-BR") to a template
	// whose default language is that language, for languages EngageLab's
	// templates do not offer. The longest matching prefix of the request's
	// locale wins; the template is sent with language "default".
	Templates map[string]string
	// Params fills custom variables of the templates ({{brand}}) on every
	// send.
	Params map[string]string
	// Timeout bounds one call; a shorter context deadline wins. Zero means
	// DefaultTimeout.
	Timeout time.Duration
	// HTTPClient, when set, is used as is. The default client does not
	// follow redirects: a redirected POST is a misconfigured BaseURL.
	HTTPClient *http.Client
}

// Sender sends and checks codes through EngageLab OTP. It is safe for
// concurrent use.
type Sender struct {
	base      string // no trailing slash
	safeBase  string // for errors: no userinfo, no query
	key       string
	secret    string
	template  string
	language  string
	templates map[string]string // normalised tag → template id
	params    map[string]string
	timeout   time.Duration
	client    *http.Client
}

var _ vigil.OTPSender = (*Sender)(nil)

// New checks cfg and returns a Sender. It reports every problem at once.
func New(cfg Config) (*Sender, error) {
	var errs []error
	// Each problem is prefixed on its own: errors.Join puts them on lines.
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("engagelab: "+format, args...)) }
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := url.Parse(base)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		bad("BaseURL must be an absolute http or https URL")
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		// Credentials go in DevKey and DevSecret, never in a URL that
		// could be logged.
		bad("BaseURL must not carry userinfo, a query or a fragment")
	}
	if cfg.DevKey == "" || cfg.DevSecret == "" {
		bad("DevKey and DevSecret are required")
	}
	if strings.Contains(cfg.DevKey, ":") {
		bad("DevKey must not contain a colon (basic auth user-id)")
	}
	if !validID(cfg.TemplateID) {
		bad("TemplateID is required and must be printable")
	}
	lang := DefaultLanguage
	if cfg.Language != "" {
		var ok bool
		if lang, ok = languages[strings.ToLower(strings.ReplaceAll(cfg.Language, "-", "_"))]; !ok {
			bad("Language %q: want default, zh_CN, zh_HK, en, ja, th or es", cfg.Language)
		}
	}
	templates := make(map[string]string, len(cfg.Templates))
	for tag, id := range cfg.Templates {
		norm := strings.Join(subtags(tag), "-")
		switch {
		case norm == "" || !validTag(norm):
			bad("Templates: %q is not a language tag", tag)
		case !validID(id):
			bad("Templates[%q]: template id is empty or not printable", tag)
		case templates[norm] != "":
			bad("Templates: %q is given twice", tag)
		default:
			templates[norm] = id
		}
	}
	for k := range cfg.Params {
		if k == "" {
			bad("Params: empty variable name")
		}
	}
	if cfg.Timeout < 0 {
		bad("Timeout is negative")
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	s := &Sender{
		base:      strings.TrimSuffix(base, "/"),
		safeBase:  strings.TrimSuffix((&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String(), "/"),
		key:       cfg.DevKey,
		secret:    cfg.DevSecret,
		template:  cfg.TemplateID,
		language:  lang,
		templates: templates,
		timeout:   cfg.Timeout,
		client:    cfg.HTTPClient,
	}
	if len(cfg.Params) > 0 {
		s.params = maps.Clone(cfg.Params)
	}
	if s.timeout == 0 {
		s.timeout = DefaultTimeout
	}
	if s.client == nil {
		s.client = &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return s, nil
}

// validID reports whether a template id is non-empty printable text.
func validID(id string) bool {
	if id == "" || len(id) > 256 {
		return false
	}
	return !strings.ContainsFunc(id, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// validTag reports whether a normalised tag is letters, digits and dashes.
func validTag(tag string) bool {
	return !strings.ContainsFunc(tag, func(r rune) bool {
		return (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-'
	})
}

// subtags splits a BCP 47 tag (or a POSIX-style "de_DE") into lower-case
// subtags, dropping extensions and private use (everything from the first
// one-letter subtag on).
func subtags(locale string) []string {
	s := strings.ToLower(strings.TrimSpace(locale))
	if s == "" {
		return nil
	}
	parts := strings.FieldsFunc(s, func(r rune) bool { return r == '-' || r == '_' })
	for i, p := range parts {
		if len(p) == 1 && i > 0 {
			return parts[:i]
		}
	}
	return parts
}

// resolve picks the template and the EngageLab language for a locale.
func (s *Sender) resolve(locale string) (templateID, language string) {
	tags := subtags(locale)
	for i := len(tags); i > 0; i-- {
		if id, ok := s.templates[strings.Join(tags[:i], "-")]; ok {
			return id, DefaultLanguage
		}
	}
	if len(tags) == 0 {
		return s.template, s.language
	}
	switch tags[0] {
	case "en", "ja", "th", "es":
		return s.template, tags[0]
	case "yue":
		return s.template, "zh_HK"
	case "zh":
		// Traditional script, or a region that writes it, reads zh_HK;
		// everything else Simplified.
		for _, t := range tags[1:] {
			switch t {
			case "hant", "hk", "mo", "tw":
				return s.template, "zh_HK"
			}
		}
		return s.template, "zh_CN"
	}
	return s.template, s.language
}

// template is the template object of a send.
type template struct {
	ID       string            `json:"id"`
	Language string            `json:"language"`
	Params   map[string]string `json:"params,omitempty"`
}

// sendRequest is the body of POST /v1/messages.
type sendRequest struct {
	To       string   `json:"to"`
	Template template `json:"template"`
}

// sendResponse is a successful answer of POST /v1/messages.
type sendResponse struct {
	MessageID   id     `json:"message_id"`
	SendChannel string `json:"send_channel"`
}

// verifyRequest is the body of POST /v1/verifications.
type verifyRequest struct {
	MessageID  string `json:"message_id"`
	VerifyCode string `json:"verify_code"`
}

// verifyResponse is a successful answer of POST /v1/verifications.
type verifyResponse struct {
	MessageID id    `json:"message_id"`
	Verified  *bool `json:"verified"`
}

// id is a message id. EngageLab documents a string of digits; a bare
// number is accepted too, digit for digit (a float64 would round it).
type id string

func (i *id) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] != '"' {
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return err
		}
		*i = id(n)
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*i = id(s)
	return nil
}

// errorResponse is EngageLab's error body.
type errorResponse struct {
	Code json.Number `json:"code"`
}

// SendOTP asks EngageLab to generate a code and send it to r.To. The
// returned ProviderID is EngageLab's message_id, which CheckOTP needs.
// See the package documentation for which errors are permanent.
func (s *Sender) SendOTP(ctx context.Context, r vigil.OTPRequest) (vigil.SendResult, error) {
	switch r.Channel {
	case "", vigil.ChannelSMS, vigil.ChannelEmail:
	default:
		return vigil.SendResult{}, vigil.Permanent(fmt.Errorf("engagelab: cannot send channel %q", r.Channel))
	}
	if r.To == "" || len(r.To) > maxRecipient || strings.ContainsFunc(r.To, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
		return vigil.SendResult{}, vigil.Permanent(errors.New("engagelab: recipient is empty or malformed"))
	}
	id, lang := s.resolve(r.Locale)
	req := sendRequest{To: r.To, Template: template{ID: id, Language: lang, Params: s.params}}

	status, body, err := s.post(ctx, "send", pathMessages, req)
	if err != nil {
		return vigil.SendResult{}, err
	}
	if status < 200 || status > 299 {
		e := newError("send", status, body)
		if e.Permanent() {
			return vigil.SendResult{}, vigil.Permanent(e)
		}
		return vigil.SendResult{}, e
	}
	var resp sendResponse
	if err := json.Unmarshal(body, &resp); err != nil || resp.MessageID == "" || len(resp.MessageID) > maxMessageID {
		// EngageLab took the request but gave no message id, so the code
		// it sent can never be checked: send another.
		return vigil.SendResult{}, fmt.Errorf("engagelab: send: answered %d without a usable message_id", status)
	}
	return vigil.SendResult{Provider: provider, ProviderID: string(resp.MessageID), Status: vigil.MessageSent}, nil
}

// CheckOTP asks EngageLab whether c.Code is the code of the send
// c.ProviderID. c.To is not needed: EngageLab checks by message id.
func (s *Sender) CheckOTP(ctx context.Context, c vigil.OTPCheck) (bool, error) {
	if c.ProviderID == "" {
		return false, errors.New("engagelab: check: no message id to check against")
	}
	if !plausibleCode(c.Code) {
		// No EngageLab code looks like this; asking would only risk a
		// parameter error for what is simply a wrong code.
		return false, nil
	}
	status, body, err := s.post(ctx, "check", pathVerifications, verifyRequest{MessageID: c.ProviderID, VerifyCode: c.Code})
	if err != nil {
		return false, err
	}
	if status < 200 || status > 299 {
		e := newError("check", status, body)
		if e.Gone() {
			return false, nil
		}
		return false, e
	}
	var resp verifyResponse
	if err := json.Unmarshal(body, &resp); err != nil || resp.Verified == nil {
		return false, fmt.Errorf("engagelab: check: answered %d without a verified field", status)
	}
	if resp.MessageID != "" && string(resp.MessageID) != c.ProviderID {
		return false, fmt.Errorf("engagelab: check: answered %d for another message", status)
	}
	return *resp.Verified, nil
}

// plausibleCode reports whether code could be an EngageLab code: a few
// letters or digits.
func plausibleCode(code string) bool {
	if code == "" || len(code) > maxCode {
		return false
	}
	return !strings.ContainsFunc(code, func(r rune) bool {
		return (r < '0' || r > '9') && (r < 'a' || r > 'z') && (r < 'A' || r > 'Z')
	})
}

// post sends v as JSON to path and returns the status and at most
// maxResponse bytes of the answer. An error means no complete answer came.
func (s *Sender) post(ctx context.Context, op, path string, v any) (int, []byte, error) {
	payload, err := json.Marshal(v)
	if err != nil {
		return 0, nil, vigil.Permanent(fmt.Errorf("engagelab: %s: encode body: %w", op, err))
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+path, bytes.NewReader(payload))
	if err != nil {
		return 0, nil, fmt.Errorf("engagelab: %s: build request for %s%s: %w", op, s.safeBase, path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(s.key, s.secret)

	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, s.transportError(ctx, op, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return 0, nil, s.transportError(ctx, op, path, fmt.Errorf("read answer: %w", err))
	}
	return resp.StatusCode, body, nil
}

// transportError describes a failure to get an answer. *url.Error would
// print the whole URL.
func (s *Sender) transportError(ctx context.Context, op, path string, err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		return fmt.Errorf("engagelab: %s: POST %s%s: %w (%w)", op, s.safeBase, path, ctxErr, err)
	}
	return fmt.Errorf("engagelab: %s: POST %s%s: %w", op, s.safeBase, path, err)
}

// Error codes EngageLab documents for the OTP API.
const (
	CodeInternal         = 1000
	CodeAuthFailed       = 2001
	CodeTokenExpired     = 2002
	CodeNoPermission     = 2004
	CodeInvalidJSON      = 3001
	CodeBadParameters    = 3002
	CodeValidation       = 3003
	CodeRateLimited      = 3004
	CodeTemplateNotFound = 4001
	CodeSendFailed       = 5001
	CodeInvalidNumber    = 5011
	CodeUnreachable      = 5012
	CodeBlacklisted      = 5013
	CodeContentRejected  = 5014
	CodeIntercepted      = 5015
	CodeInternalSend     = 5016
	CodeNoChinaAccess    = 5017
	CodeHandsetOff       = 5018
	CodeUnsubscribed     = 5019
	CodeNumberUnassigned = 5020
)

// codeText describes EngageLab's codes in our words: their messages may
// quote the recipient, so errors never carry them.
var codeText = map[int]string{
	CodeInternal:         "internal error",
	CodeAuthFailed:       "authentication failed",
	CodeTokenExpired:     "credentials expired or disabled",
	CodeNoPermission:     "no permission for this API",
	CodeInvalidJSON:      "invalid JSON",
	CodeBadParameters:    "bad parameters",
	CodeValidation:       "code expired, already verified or unknown",
	CodeRateLimited:      "rate limited",
	CodeTemplateNotFound: "template not found",
	CodeSendFailed:       "send failed",
	CodeInvalidNumber:    "invalid number",
	CodeUnreachable:      "recipient unreachable",
	CodeBlacklisted:      "number blacklisted",
	CodeContentRejected:  "content violates policy",
	CodeIntercepted:      "message intercepted",
	CodeInternalSend:     "internal send error",
	CodeNoChinaAccess:    "no permission for mainland China",
	CodeHandsetOff:       "handset off or suspended",
	CodeUnsubscribed:     "recipient unsubscribed",
	CodeNumberUnassigned: "number unassigned",
}

// temporaryCodes are the codes that may succeed when sent again later,
// whatever the HTTP status.
var temporaryCodes = []int{CodeInternal, CodeRateLimited, CodeSendFailed, CodeInternalSend, CodeHandsetOff}

// Error is an answer from EngageLab other than 2xx. It carries the HTTP
// status and EngageLab's error code, never EngageLab's message (which may
// quote the recipient) nor anything of the request.
type Error struct {
	Op         string // "send" or "check"
	StatusCode int
	// Code is EngageLab's error code, 0 when the answer had none.
	Code int
}

// newError reads EngageLab's error code from an error answer, if any.
func newError(op string, status int, body []byte) *Error {
	e := &Error{Op: op, StatusCode: status}
	var er errorResponse
	if json.Unmarshal(body, &er) == nil {
		if n, err := strconv.Atoi(er.Code.String()); err == nil && n > 0 {
			e.Code = n
		}
	}
	return e
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("engagelab: %s: EngageLab answered %d %s", e.Op, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Code != 0 {
		msg += fmt.Sprintf(" (code %d", e.Code)
		if t := codeText[e.Code]; t != "" {
			msg += ": " + t
		}
		msg += ")"
	}
	return msg
}

// Permanent reports whether sending again cannot help: everything but
// 408, 429 and 5xx answers and the codes EngageLab marks as retryable
// (internal errors, rate limits, general send failures, a handset that is
// off).
func (e *Error) Permanent() bool {
	switch {
	case e.StatusCode == http.StatusRequestTimeout, e.StatusCode == http.StatusTooManyRequests:
		return false
	case e.StatusCode >= 500 && e.StatusCode < 600:
		return false
	}
	return !slices.Contains(temporaryCodes, e.Code)
}

// Gone reports whether a check failed because EngageLab no longer knows
// the send as checkable: a 4xx with code 3003 (the code expired, was
// already verified, or the message id is unknown). A bare 404 is not
// Gone: it is more likely a wrong BaseURL than an unknown message.
func (e *Error) Gone() bool {
	return e.StatusCode >= 400 && e.StatusCode < 500 && e.Code == CodeValidation
}
