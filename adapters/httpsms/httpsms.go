package httpsms

import (
	"bytes"
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
	// DefaultTimeout bounds one Send when Config.Timeout is zero.
	DefaultTimeout = 10 * time.Second
	// maxResponse caps how much of a response is read.
	maxResponse = 64 << 10
	// maxProviderID caps the ID kept from a response.
	maxProviderID = 256
	// provider names this adapter in SendResult.
	provider = "http"
)

// Config configures a Sender.
type Config struct {
	// URL is the http or https endpoint. Query parameters (some gateways
	// take an API key there) never appear in errors.
	URL string
	// Method is POST (default), PUT or PATCH.
	Method string
	// Headers are added to every request. Content-Type may be overridden;
	// Content-Length, Transfer-Encoding and Idempotency-Key may not, and
	// Authorization only when neither BasicAuth nor BearerToken is set.
	Headers map[string]string
	// BasicAuth and BearerToken exclude each other.
	BasicAuth   *BasicAuth
	BearerToken string
	// Timeout bounds one Send; a shorter context deadline wins. Zero means
	// DefaultTimeout.
	Timeout time.Duration
	// HTTPClient, when set, is used as is. The default client does not
	// follow redirects: a redirected POST is a misconfigured URL.
	HTTPClient *http.Client
}

// BasicAuth is HTTP basic authentication.
type BasicAuth struct {
	Username string
	Password string
}

// Sender posts SMS messages to one HTTP endpoint. It is safe for
// concurrent use.
type Sender struct {
	url     string
	safeURL string // for errors: no userinfo, no query
	method  string
	header  http.Header
	host    string // Host header override
	basic   *BasicAuth
	bearer  string
	timeout time.Duration
	client  *http.Client
}

var _ vigil.Sender = (*Sender)(nil)

// New checks cfg and returns a Sender.
func New(cfg Config) (*Sender, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("httpsms: URL must be an absolute http or https URL")
	}
	s := &Sender{
		url:     cfg.URL,
		safeURL: (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String(),
		method:  strings.ToUpper(cfg.Method),
		header:  make(http.Header),
		basic:   cfg.BasicAuth,
		bearer:  cfg.BearerToken,
		timeout: cfg.Timeout,
		client:  cfg.HTTPClient,
	}
	switch s.method {
	case "":
		s.method = http.MethodPost
	case http.MethodPost, http.MethodPut, http.MethodPatch:
	default:
		return nil, fmt.Errorf("httpsms: method %q: want POST, PUT or PATCH", cfg.Method)
	}
	if s.basic != nil && s.bearer != "" {
		return nil, errors.New("httpsms: BasicAuth and BearerToken exclude each other")
	}
	if s.timeout < 0 {
		return nil, errors.New("httpsms: Timeout is negative")
	}
	if s.timeout == 0 {
		s.timeout = DefaultTimeout
	}
	s.header.Set("Content-Type", "application/json")
	for k, v := range cfg.Headers {
		if !validHeaderName(k) || strings.ContainsAny(v, "\r\n\x00") {
			return nil, fmt.Errorf("httpsms: header %q is not a valid header", k)
		}
		switch http.CanonicalHeaderKey(k) {
		case "Content-Length", "Transfer-Encoding", "Idempotency-Key":
			return nil, fmt.Errorf("httpsms: header %s is set by the sender", k)
		case "Authorization":
			if s.basic != nil || s.bearer != "" {
				return nil, errors.New("httpsms: header Authorization conflicts with BasicAuth or BearerToken")
			}
		case "Host":
			s.host = v
			continue
		}
		s.header.Set(k, v)
	}
	if s.client == nil {
		// Deliveries run many at once: keep a connection per worker (the
		// default transport keeps two per host).
		s.client = &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
		if tr, ok := http.DefaultTransport.(*http.Transport); ok {
			pooled := tr.Clone()
			pooled.MaxIdleConnsPerHost = 64
			s.client.Transport = pooled
		}
	}
	return s, nil
}

// validHeaderName reports whether k is an RFC 9110 token.
func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := range len(k) {
		c := k[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// payload is Kratos' courier SMS body. Field order is the key order on the
// wire: Jsonnet sorts keys.
type payload struct {
	Body string `json:"body"`
	To   string `json:"to"`
}

// encode renders p like Jsonnet's manifestation: three-space indent, no
// HTML escaping, a trailing newline.
func encode(p payload) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "   ")
	if err := enc.Encode(p); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Send posts m to the endpoint. See the package documentation for which
// errors are permanent.
func (s *Sender) Send(ctx context.Context, m vigil.Outbound) (vigil.SendResult, error) {
	if m.Channel != "" && m.Channel != vigil.ChannelSMS {
		return vigil.SendResult{}, vigil.Permanent(fmt.Errorf("httpsms: cannot send channel %q", m.Channel))
	}
	if m.To == "" || strings.ContainsAny(m.To, "\r\n\x00") {
		return vigil.SendResult{}, vigil.Permanent(errors.New("httpsms: recipient is empty or malformed"))
	}
	if m.Text == "" {
		return vigil.SendResult{}, vigil.Permanent(errors.New("httpsms: message has no text"))
	}
	body, err := encode(payload{Body: m.Text, To: m.To})
	if err != nil {
		return vigil.SendResult{}, vigil.Permanent(fmt.Errorf("httpsms: encode body: %w", err))
	}

	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, s.method, s.url, bytes.NewReader(body))
	if err != nil {
		return vigil.SendResult{}, fmt.Errorf("httpsms: build request for %s: %w", s.safeURL, err)
	}
	req.Header = s.header.Clone()
	if s.host != "" {
		req.Host = s.host
	}
	if m.ID != "" {
		req.Header.Set("Idempotency-Key", m.ID)
	}
	switch {
	case s.basic != nil:
		req.SetBasicAuth(s.basic.Username, s.basic.Password)
	case s.bearer != "":
		req.Header.Set("Authorization", "Bearer "+s.bearer)
	}

	resp, err := s.client.Do(req)
	if err != nil {
		return vigil.SendResult{}, s.transportError(ctx, err)
	}
	defer resp.Body.Close()
	data, readErr := io.ReadAll(io.LimitReader(resp.Body, maxResponse))

	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		// Accepted: a body we could not read only costs us the ID.
		res := vigil.SendResult{Provider: provider}
		if readErr == nil {
			res.ProviderID = providerID(data)
		}
		return res, nil
	}
	se := &StatusError{
		Method:     s.method,
		URL:        s.safeURL,
		StatusCode: resp.StatusCode,
		RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now()),
	}
	if se.Permanent() {
		return vigil.SendResult{}, vigil.Permanent(se)
	}
	return vigil.SendResult{}, se
}

// transportError describes a failure to get a response. *url.Error would
// print the whole URL, query (and any API key in it) included.
func (s *Sender) transportError(ctx context.Context, err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		return fmt.Errorf("httpsms: %s %s: %w (%w)", s.method, s.safeURL, ctxErr, err)
	}
	return fmt.Errorf("httpsms: %s %s: %w", s.method, s.safeURL, err)
}

// providerID returns the "id", "message_id" or "sid" of a JSON object
// body, a string or a number, or "".
func providerID(body []byte) string {
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil {
		return ""
	}
	for _, key := range []string{"id", "message_id", "sid"} {
		raw, ok := obj[key]
		if !ok {
			continue
		}
		var id string
		if json.Unmarshal(raw, &id) != nil {
			var n json.Number
			if json.Unmarshal(raw, &n) != nil {
				continue
			}
			id = n.String()
		}
		if id != "" && len(id) <= maxProviderID {
			return id
		}
	}
	return ""
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

// StatusError is an answer from the endpoint other than 2xx. It does not
// hold the response body: providers echo the number and the text.
type StatusError struct {
	Method     string
	URL        string // scheme, host and path only
	StatusCode int
	// RetryAfter is the endpoint's Retry-After, zero when absent.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("httpsms: %s %s: endpoint answered %d %s", e.Method, e.URL, e.StatusCode, http.StatusText(e.StatusCode))
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return msg
}

// Permanent reports whether sending again cannot help: everything but
// 408, 429 and 5xx.
func (e *StatusError) Permanent() bool {
	switch {
	case e.StatusCode == http.StatusRequestTimeout, e.StatusCode == http.StatusTooManyRequests:
		return false
	case e.StatusCode >= 500 && e.StatusCode < 600:
		return false
	}
	return true
}
