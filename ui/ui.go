package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"strings"
	"time"
)

// Kind names a page variant.
type Kind string

const (
	// Confirm is the page a valid link opens: it names the address and
	// holds a form that posts the token back. Showing it consumes nothing.
	Confirm Kind = "confirm"
	// Verified says the address is confirmed.
	Verified Kind = "verified"
	// Expired says the link is too old.
	Expired Kind = "expired"
	// Used says the link was consumed before.
	Used Kind = "used"
	// Locked says there were too many attempts.
	Locked Kind = "locked"
	// Invalid says the link is unknown, cut off or malformed.
	Invalid Kind = "invalid"
	// Failed says something broke on the server.
	Failed Kind = "failed"
)

// Page is what a page shows. The zero value of every field but Kind is
// fine; an unknown Kind renders as Failed.
type Page struct {
	Kind Kind
	// Channel is "email" or "sms"; it picks the noun ("email address",
	// "phone number") when Destination is empty.
	Channel string
	// Destination is the masked address (a***@example.com). Never the
	// full address: the page may sit in a browser history.
	Destination string
	ExpiresAt   time.Time
	// Token is the link token, for the Confirm form only.
	Token string
	// Action is where the Confirm form posts; default "link", relative,
	// so the page works under any path prefix and the token never ends
	// up in the POST's query string.
	Action string
	// RetryAfter is shown on Locked pages.
	RetryAfter time.Duration
	// RequestID is shown on Failed pages so that support can find the
	// log line.
	RequestID string
	// Dev adds a development-mode note.
	Dev bool
}

//go:embed templates/page.html templates/style.css
var files embed.FS

var (
	style = mustRead(files, "templates/style.css")
	tmpl  = template.Must(template.New("page.html").Funcs(template.FuncMap{
		// The style sheet is our own embedded file, not input: emitting
		// it unescaped is what lets its hash match the CSP.
		"css":  func() template.CSS { return template.CSS(style) }, //nolint:gosec // our embedded file, not input
		"noun": noun,
		"when": when,
		"wait": wait,
	}).ParseFS(files, "templates/page.html"))
)

func mustRead(fsys embed.FS, name string) string {
	b, err := fsys.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// ContentSecurityPolicy allows exactly the inline style sheet of the
// pages, the one inline script of the device pages (by hash: no other
// script runs, injected or not), requests from that script to the same
// origin, and a form that posts back to the same origin: no frames, no
// other sources. One policy serves every page: the verification pages
// carry no script, so the script hash and connect-src grant them nothing.
var ContentSecurityPolicy = fmt.Sprintf(
	"default-src 'none'; script-src 'sha256-%s'; style-src 'sha256-%s'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
	base64.StdEncoding.EncodeToString(sha256Of(script)),
	base64.StdEncoding.EncodeToString(sha256Of(style)),
)

func sha256Of(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return sum[:]
}

// SetHeaders sets the headers every page needs: the CSP, no framing, no
// caching (a confirm page holds a token) and no Referer (so the token in
// the page's own URL never travels on).
func SetHeaders(h http.Header) {
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
}

type view struct {
	Page
	Title string
	Tone  string
}

// Render writes the page as a complete HTML document. It renders into a
// buffer first, so a template failure never leaves half a page behind.
func Render(w io.Writer, p Page) error {
	switch p.Kind {
	case Confirm, Verified, Expired, Used, Locked, Invalid, Failed:
	default:
		p.Kind = Failed
	}
	if p.Action == "" {
		p.Action = "link"
	}
	v := view{Page: p, Title: title(p), Tone: tone(p.Kind)}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, v); err != nil {
		return fmt.Errorf("render %s page: %w", p.Kind, err)
	}
	_, err := buf.WriteTo(w)
	return err
}

func title(p Page) string {
	switch p.Kind {
	case Confirm:
		return "Confirm your " + noun(p.Channel)
	case Verified:
		return strings.ToUpper(noun(p.Channel)[:1]) + noun(p.Channel)[1:] + " confirmed"
	case Expired:
		return "This link has expired"
	case Used:
		return "This link was already used"
	case Locked:
		return "Too many attempts"
	case Invalid:
		return "This link is not valid"
	}
	return "Something went wrong"
}

func tone(k Kind) string {
	switch k {
	case Verified:
		return "ok"
	case Confirm:
		return ""
	}
	return "bad"
}

func noun(channel string) string {
	switch channel {
	case "email":
		return "email address"
	case "sms":
		return "phone number"
	}
	return "address"
}

// when is how pages write an expiry: unambiguous for anyone, whatever
// their time zone.
func when(t time.Time) string { return t.UTC().Format("2 January 2006, 15:04 UTC") }

// wait phrases a duration for people, rounding up so "try again in" is
// never too early.
func wait(d time.Duration) string {
	switch {
	case d <= time.Second:
		return "1 second"
	case d < time.Minute:
		return plural(int((d+time.Second-1)/time.Second), "second")
	case d < time.Hour:
		return plural(int((d+time.Minute-1)/time.Minute), "minute")
	}
	return plural(int((d+time.Hour-1)/time.Hour), "hour")
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
