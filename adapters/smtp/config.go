package smtp

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// TLSMode is how the connection to the server is encrypted.
type TLSMode string

const (
	// TLSStartTLS upgrades a plaintext connection with STARTTLS and fails
	// when the server does not offer it.
	TLSStartTLS TLSMode = "starttls"
	// TLSImplicit speaks TLS from the first byte (smtps, usually port 465).
	TLSImplicit TLSMode = "implicit"
	// TLSNone sends in the clear; only for local test servers.
	TLSNone TLSMode = "none"
)

// DefaultTimeout bounds one Send when Config.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// Config configures a Sender. See the package documentation for the URL.
type Config struct {
	URL string
	// From is the sender, with an optional display name:
	// "Vigil <no-reply@example.com>". Its domain also ends every Message-ID.
	From string
	// Timeout bounds one whole Send, connection to QUIT; a shorter context
	// deadline wins. Zero means DefaultTimeout.
	Timeout time.Duration
	// LocalName is the name sent with EHLO; empty means "localhost".
	LocalName string
	// TLSConfig, when set, is used for STARTTLS and implicit TLS (tests
	// set RootCAs). ServerName defaults to the URL's host.
	TLSConfig *tls.Config
}

// endpoint is a parsed server URL.
type endpoint struct {
	host     string
	port     string
	mode     TLSMode
	user     string
	password string
	auth     bool
}

func parseURL(raw string) (endpoint, error) {
	var e endpoint
	if raw == "" {
		return e, errors.New("URL is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse quotes the input, which may hold a password.
		return e, errors.New("URL does not parse")
	}
	switch u.Scheme {
	case "smtp":
		e.mode = TLSStartTLS
	case "smtps":
		e.mode = TLSImplicit
	default:
		return e, fmt.Errorf("URL scheme %q: want smtp or smtps", u.Scheme)
	}
	if u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.Fragment != "" {
		return e, errors.New("URL must have no path or fragment")
	}
	e.host = u.Hostname()
	if e.host == "" {
		return e, errors.New("URL has no host")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return e, fmt.Errorf("URL query: %w", err)
	}
	for key, vals := range q {
		if key != "tls" && key != "disable_starttls" {
			return e, fmt.Errorf("URL parameter %q is not supported", key)
		}
		if len(vals) != 1 {
			return e, fmt.Errorf("URL parameter %s given %d times", key, len(vals))
		}
	}
	if q.Has("tls") {
		mode := TLSMode(strings.ToLower(q.Get("tls")))
		switch mode {
		case TLSStartTLS, TLSImplicit, TLSNone:
		default:
			return e, fmt.Errorf("URL parameter tls=%q: want starttls, implicit or none", q.Get("tls"))
		}
		if u.Scheme == "smtps" && mode != TLSImplicit {
			return e, fmt.Errorf("URL scheme smtps means implicit TLS, not tls=%s", mode)
		}
		e.mode = mode
	}
	if q.Has("disable_starttls") { // Kratos' courier spelling of tls=none
		switch v := strings.ToLower(q.Get("disable_starttls")); v {
		case "true":
			if e.mode == TLSImplicit || q.Has("tls") && e.mode == TLSStartTLS {
				return e, fmt.Errorf("URL parameter disable_starttls=true contradicts TLS mode %s", e.mode)
			}
			e.mode = TLSNone
		case "false":
		default:
			return e, fmt.Errorf("URL parameter disable_starttls=%q: want true or false", v)
		}
	}
	e.port = u.Port()
	if e.port == "" {
		switch e.mode {
		case TLSImplicit:
			e.port = "465"
		case TLSStartTLS:
			e.port = "587"
		default:
			e.port = "25"
		}
	}
	if u.User != nil {
		e.user = u.User.Username()
		e.password, _ = u.User.Password()
		e.auth = e.user != ""
	}
	if e.auth && e.mode == TLSNone && !isLocalhost(e.host) {
		return e, errors.New("refusing to send credentials without TLS to a host other than localhost")
	}
	return e, nil
}

// isLocalhost matches the hosts net/smtp lets authenticate in the clear.
func isLocalhost(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

func (e endpoint) addr() string { return net.JoinHostPort(e.host, e.port) }
