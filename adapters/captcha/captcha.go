package captcha

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/vigil-auth/vigil"
)

// Provider names a siteverify service.
type Provider string

// The supported providers.
const (
	Turnstile Provider = "turnstile"
	HCaptcha  Provider = "hcaptcha"
)

// Default siteverify endpoints.
const (
	TurnstileURL = "https://challenges.cloudflare.com/turnstile/v0/siteverify"
	HCaptchaURL  = "https://api.hcaptcha.com/siteverify"
)

const (
	// DefaultTimeout bounds one Verify when Config.Timeout is zero.
	DefaultTimeout = 5 * time.Second
	// maxResponse caps how much of an answer is read; siteverify answers
	// are a few hundred bytes.
	maxResponse = 16 << 10
	// maxTurnstileToken is Cloudflare's documented maximum token length.
	maxTurnstileToken = 2048
	// maxHCaptchaToken bounds hCaptcha tokens, whose length is not
	// documented; real ones are a few KiB.
	maxHCaptchaToken = 32 << 10
	// maxCodes and maxCodeLen bound the error codes kept from an answer.
	maxCodes   = 8
	maxCodeLen = 64
)

// serviceCodes are the error codes that say the check itself failed, not
// the token: a wrong or missing secret, a secret of another site, or the
// provider's own failure. Verify returns them as errors, so a broken
// configuration shows up as an outage instead of as every visitor
// failing the CAPTCHA.
var serviceCodes = []string{
	"missing-input-secret",
	"invalid-input-secret",
	"sitekey-secret-mismatch",
	"internal-error",
}

// Config configures a Verifier.
type Config struct {
	// Provider is Turnstile or HCaptcha.
	Provider Provider
	// Secret is the widget's secret key.
	Secret string
	// SiteKey, for hCaptcha, is sent as sitekey so that tokens solved for
	// another site are refused. Turnstile's siteverify takes no site key
	// (a secret belongs to one widget), so it is not sent there.
	SiteKey string
	// URL is the siteverify endpoint, TurnstileURL or HCaptchaURL when
	// empty.
	URL string
	// Timeout bounds one Verify; a shorter context deadline wins. Zero
	// means DefaultTimeout.
	Timeout time.Duration
	// HTTPClient, when set, is used as is. The default client does not
	// follow redirects.
	HTTPClient *http.Client
	// Logger, when set, gets an Info record for each token the provider
	// refused with error codes, holding the codes (never the token, the
	// secret or the IP).
	Logger *slog.Logger
}

// Verifier checks CAPTCHA tokens with one provider's siteverify API. It is
// safe for concurrent use.
type Verifier struct {
	provider Provider
	secret   string
	siteKey  string
	url      string
	safeURL  string // for errors: no userinfo, no query
	maxToken int
	timeout  time.Duration
	client   *http.Client
	logger   *slog.Logger
}

var _ vigil.Captcha = (*Verifier)(nil)

// New checks cfg and returns a Verifier. It reports every problem at once.
func New(cfg Config) (*Verifier, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("captcha: "+format, args...)) }
	v := &Verifier{
		provider: Provider(strings.ToLower(string(cfg.Provider))),
		secret:   cfg.Secret,
		siteKey:  cfg.SiteKey,
		url:      cfg.URL,
		timeout:  cfg.Timeout,
		client:   cfg.HTTPClient,
		logger:   cfg.Logger,
	}
	switch v.provider {
	case Turnstile:
		v.maxToken = maxTurnstileToken
		if v.url == "" {
			v.url = TurnstileURL
		}
	case HCaptcha:
		v.maxToken = maxHCaptchaToken
		if v.url == "" {
			v.url = HCaptchaURL
		}
	default:
		bad("Provider %q: want turnstile or hcaptcha", cfg.Provider)
	}
	if cfg.Secret == "" {
		bad("Secret is required")
	}
	if v.url != "" {
		u, err := url.Parse(v.url)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("URL must be an absolute http or https URL")
		} else {
			v.safeURL = (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
		}
	}
	if cfg.Timeout < 0 {
		bad("Timeout is negative")
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if v.timeout == 0 {
		v.timeout = DefaultTimeout
	}
	if v.client == nil {
		v.client = &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return v, nil
}

// Result is a siteverify answer, reduced to what may be logged.
type Result struct {
	Success bool
	// ErrorCodes are the provider's codes ("invalid-input-response",
	// "timeout-or-duplicate"), kept only when they look like codes.
	ErrorCodes []string
	// Hostname is the site the token was solved on, when the provider
	// says.
	Hostname string
	// ChallengeTS is when the challenge was solved, zero when unknown.
	ChallengeTS time.Time
	// Action is the widget's action (Turnstile), when set.
	Action string
}

// answer is a siteverify response body. Both providers send "success" and
// "error-codes"; the rest is optional.
type answer struct {
	Success     *bool    `json:"success"`
	ErrorCodes  []string `json:"error-codes"` //nolint:tagliatelle // the providers' field name
	Hostname    string   `json:"hostname"`
	ChallengeTS string   `json:"challenge_ts"`
	Action      string   `json:"action"`
}

// Verify reports whether token is valid for the client at remoteIP (when
// it is a valid IP address). An empty token is false without a call; a
// token the provider refuses is false with a nil error. Errors mean the
// provider could not answer: network failures, the deadline, 429 and 5xx,
// an unreadable answer, and answers whose codes blame the configuration
// or the provider (see the package documentation).
func (v *Verifier) Verify(ctx context.Context, token, remoteIP string) (bool, error) {
	res, err := v.Check(ctx, token, remoteIP)
	if err != nil {
		return false, err
	}
	if !res.Success && v.logger != nil && len(res.ErrorCodes) > 0 {
		v.logger.LogAttrs(ctx, slog.LevelInfo, "captcha token refused",
			slog.String("provider", string(v.provider)),
			slog.Any("error_codes", res.ErrorCodes))
	}
	return res.Success, nil
}

// Check is Verify with the provider's answer: its error codes say why a
// token was refused. An empty or oversized token is refused without a
// call and without codes.
func (v *Verifier) Check(ctx context.Context, token, remoteIP string) (Result, error) {
	if token == "" || len(token) > v.maxToken {
		return Result{}, nil
	}
	form := url.Values{"secret": {v.secret}, "response": {token}}
	if ip := clientIP(remoteIP); ip != "" {
		form.Set("remoteip", ip)
	}
	if v.provider == HCaptcha && v.siteKey != "" {
		form.Set("sitekey", v.siteKey)
	}

	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, v.url, strings.NewReader(form.Encode()))
	if err != nil {
		return Result{}, fmt.Errorf("captcha: %s: build request for %s: %w", v.provider, v.safeURL, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return Result{}, v.transportError(ctx, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return Result{}, v.transportError(ctx, fmt.Errorf("read answer: %w", err))
	}

	status := resp.StatusCode
	if status == http.StatusTooManyRequests || status >= 500 || (status >= 300 && status < 400) || status < 200 {
		return Result{}, &Error{Provider: v.provider, StatusCode: status}
	}
	var a answer
	if err := json.Unmarshal(body, &a); err != nil || a.Success == nil || (*a.Success && status >= 300) {
		// Not a siteverify answer (a proxy, a captive portal, a changed
		// API), or a 4xx that claims success: nothing to trust.
		return Result{}, &Error{Provider: v.provider, StatusCode: status}
	}
	res := Result{
		Success:    *a.Success,
		ErrorCodes: cleanCodes(a.ErrorCodes),
		Hostname:   a.Hostname,
		Action:     a.Action,
	}
	if ts, err := time.Parse(time.RFC3339, a.ChallengeTS); err == nil {
		res.ChallengeTS = ts
	}
	if !res.Success && slices.ContainsFunc(res.ErrorCodes, func(c string) bool { return slices.Contains(serviceCodes, c) }) {
		return Result{}, &Error{Provider: v.provider, StatusCode: status, ErrorCodes: res.ErrorCodes}
	}
	return res, nil
}

// clientIP returns remoteIP as an address siteverify takes ("203.0.113.7",
// "2001:db8::1"), accepting "ip:port" too, or "" when it is neither.
func clientIP(remoteIP string) string {
	addr, err := netip.ParseAddr(remoteIP)
	if err != nil {
		ap, err := netip.ParseAddrPort(remoteIP)
		if err != nil {
			return ""
		}
		addr = ap.Addr()
	}
	return addr.WithZone("").Unmap().String()
}

// cleanCodes keeps the codes that look like codes (lower-case letters,
// digits, '-' and '_'), so whatever a provider or a proxy puts there is
// safe to log.
func cleanCodes(codes []string) []string {
	var out []string
	for _, c := range codes {
		if len(out) == maxCodes {
			break
		}
		if c == "" || len(c) > maxCodeLen || strings.ContainsFunc(c, func(r rune) bool {
			return (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' && r != '_'
		}) {
			continue
		}
		out = append(out, c)
	}
	return out
}

// transportError describes a failure to get an answer. *url.Error would
// print the whole URL.
func (v *Verifier) transportError(ctx context.Context, err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		return fmt.Errorf("captcha: %s: POST %s: %w (%w)", v.provider, v.safeURL, ctxErr, err)
	}
	return fmt.Errorf("captcha: %s: POST %s: %w", v.provider, v.safeURL, err)
}

// Error is a siteverify answer that does not judge the token: a status
// other than 2xx or 4xx, a body that is not a siteverify answer, or error
// codes that blame the configuration or the provider. It never holds the
// token or the secret.
type Error struct {
	Provider   Provider
	StatusCode int
	// ErrorCodes are the answer's codes when it had any.
	ErrorCodes []string
}

func (e *Error) Error() string {
	switch {
	case len(e.ErrorCodes) > 0:
		return fmt.Sprintf("captcha: %s: siteverify could not check the token: %s", e.Provider, strings.Join(e.ErrorCodes, ", "))
	case e.StatusCode >= 200 && e.StatusCode < 300, e.StatusCode >= 400 && e.StatusCode < 500 && e.StatusCode != http.StatusTooManyRequests:
		return fmt.Sprintf("captcha: %s: siteverify answered %d %s with an unreadable body", e.Provider, e.StatusCode, http.StatusText(e.StatusCode))
	}
	return fmt.Sprintf("captcha: %s: siteverify answered %d %s", e.Provider, e.StatusCode, http.StatusText(e.StatusCode))
}
