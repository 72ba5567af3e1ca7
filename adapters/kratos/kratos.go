package kratos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	client "github.com/ory/kratos-client-go"

	"github.com/vigil-auth/vigil"
)

const (
	// DefaultTimeout bounds one call (MarkVerified, SetSummary, Whoami)
	// when Config.Timeout is zero.
	DefaultTimeout = 5 * time.Second
	// maxResponse caps how much of one Kratos response is read. An
	// identity without credentials is a few KiB.
	maxResponse = 1 << 20
	userAgent   = "vigil"
)

// Config configures a Client.
type Config struct {
	// AdminURL is Kratos' admin API (e.g. http://127.0.0.1:4434). Vigil
	// reads and patches identities there.
	AdminURL string
	// PublicURL is Kratos' public API (e.g. http://127.0.0.1:4433), for
	// /sessions/whoami.
	PublicURL string
	// Timeout bounds one call of a Client method, including both requests
	// of MarkVerified; a shorter context deadline wins. Zero means
	// DefaultTimeout.
	Timeout time.Duration
	// HTTPClient, when set, is used for the requests. Its Transport is
	// wrapped (to cap response sizes), not replaced. The default client
	// does not follow redirects: Kratos never redirects these endpoints,
	// and a redirect would carry a session token elsewhere.
	HTTPClient *http.Client
}

// Client talks to Kratos' admin and public APIs. It implements
// vigil.Identities and is safe for concurrent use.
type Client struct {
	admin   *client.APIClient
	public  *client.APIClient
	timeout time.Duration
}

var _ vigil.Identities = (*Client)(nil)

// New checks cfg and returns a Client. It makes no request.
func New(cfg Config) (*Client, error) {
	admin, err := baseURL("AdminURL", cfg.AdminURL)
	if err != nil {
		return nil, err
	}
	public, err := baseURL("PublicURL", cfg.PublicURL)
	if err != nil {
		return nil, err
	}
	if cfg.Timeout < 0 {
		return nil, errors.New("kratos: Timeout must not be negative")
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}

	hc := &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	if cfg.HTTPClient != nil {
		c := *cfg.HTTPClient
		hc = &c
	}
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	hc.Transport = &transport{base: base}

	return &Client{
		admin:   newAPIClient(admin, hc),
		public:  newAPIClient(public, hc),
		timeout: timeout,
	}, nil
}

func baseURL(name, raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("kratos: %s must be an absolute http or https URL", name)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("kratos: %s must not have a query or fragment", name)
	}
	// The generated client appends "/admin/...", so a trailing slash would
	// double it.
	return strings.TrimRight(u.String(), "/"), nil
}

func newAPIClient(base string, hc *http.Client) *client.APIClient {
	cfg := client.NewConfiguration()
	cfg.Servers = client.ServerConfigurations{{URL: base}}
	cfg.HTTPClient = hc
	cfg.UserAgent = userAgent
	return client.NewAPIClient(cfg)
}

// withTimeout bounds one Client call.
func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.timeout)
}

// authorizationKey carries a forwarded Authorization header to the
// transport: the generated ToSession request has no parameter for it.
type authorizationKey struct{}

// transport adds a forwarded Authorization header and caps response
// bodies (the generated client reads them whole).
type transport struct {
	base http.RoundTripper
}

func (t *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	if auth, ok := r.Context().Value(authorizationKey{}).(string); ok && auth != "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", auth)
	}
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &cappedBody{rc: resp.Body, left: maxResponse}
	return resp, nil
}

var errResponseTooLarge = fmt.Errorf("response larger than %d bytes", maxResponse)

// cappedBody fails a read past its limit instead of truncating, so an
// oversized answer is an error rather than half a JSON document.
type cappedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var probe [1]byte
		n, err := b.rc.Read(probe[:])
		if n > 0 {
			return 0, errResponseTooLarge
		}
		if err == nil {
			return 0, nil
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *cappedBody) Close() error { return b.rc.Close() }

// apiError turns what the generated client returned for a failed request
// into Vigil's vocabulary: 404 wraps vigil.ErrNotFound; 408, 429, 5xx,
// network failures and deadlines are plain errors the caller may retry;
// every other answer is permanent, since sending the same request again
// cannot help. Only Kratos' error id (a stable name such as
// "session_aal2_required") is kept: its message and reason can quote trait
// values (an address that failed the schema), and errors end up in logs.
func apiError(op string, resp *http.Response, err error) error {
	if resp == nil || resp.StatusCode < 300 {
		return fmt.Errorf("kratos: %s: %w", op, err)
	}
	status := resp.StatusCode
	detail := ""
	if apiErr, ok := errors.AsType[*client.GenericOpenAPIError](err); ok {
		if m, ok := apiErr.Model().(client.ErrorGeneric); ok && m.Error.Id != nil && *m.Error.Id != "" {
			detail = " (" + *m.Error.Id + ")"
		}
	}
	switch {
	case status == http.StatusNotFound:
		return fmt.Errorf("kratos: %s: HTTP %d%s: %w", op, status, detail, vigil.ErrNotFound)
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests, status >= 500:
		return fmt.Errorf("kratos: %s: HTTP %d%s", op, status, detail)
	default:
		return vigil.Permanent(fmt.Errorf("kratos: %s: HTTP %d%s", op, status, detail))
	}
}
