package ui

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io"
	"time"
)

// EnrollPage is the page an admin's enrollment link opens
// (GET /devices/enroll?token=...): it registers a WebAuthn credential on
// the device that opened it.
type EnrollPage struct {
	// Token is the enrollment link's token; the page's script sends it
	// with both halves of the ceremony.
	Token string
	// Name is the device name the admin chose.
	Name      string
	ExpiresAt time.Time
	// Product names what the device is trusted for; default "your
	// account".
	Product string
	// Problem, when not empty, renders an error page instead of the
	// enrollment: Expired, Used or Invalid for the link, Failed for
	// anything else (any other Kind counts as Failed).
	Problem Kind
	// RequestID is shown when not empty, so that support can find the
	// log line.
	RequestID string
	// Dev adds a development-mode note.
	Dev bool
}

// ProofPage is the page a trusted device proves itself on
// (GET /devices/webauthn): a WebAuthn assertion with a discoverable
// credential earns a fresh device token.
type ProofPage struct {
	// Product names what the device is trusted for; default "your
	// account".
	Product   string
	RequestID string
	Dev       bool
}

//go:embed templates/devices.html templates/webauthn.js
var deviceFiles embed.FS

var (
	script     = mustRead(deviceFiles, "templates/webauthn.js")
	deviceTmpl = template.Must(template.New("devices.html").Funcs(template.FuncMap{
		"css": func() template.CSS { return template.CSS(style) }, //nolint:gosec // our embedded file, not input
		// The script is our own embedded file too; it reads what it
		// needs (the token) from data attributes the template escapes.
		"js":   func() template.JS { return template.JS(script) }, //nolint:gosec // our embedded file, not input
		"when": when,
	}).ParseFS(deviceFiles, "templates/devices.html"))
)

// deviceView is what devices.html reads. Flow is "enroll" or "prove" for
// the pages that run a ceremony (and carry the script), empty for an
// error page, whose Kind says which.
type deviceView struct {
	Flow      string
	Kind      Kind
	Title     string
	Tone      string
	Token     string
	Name      string
	Product   string
	ExpiresAt time.Time
	RequestID string
	Dev       bool
}

// RenderEnroll writes the enrollment page, or its error variant when
// p.Problem is set, as a complete HTML document. Serve it with
// SetHeaders: its script runs only under that policy.
func RenderEnroll(w io.Writer, p EnrollPage) error {
	v := deviceView{
		Flow:      "enroll",
		Token:     p.Token,
		Name:      p.Name,
		Product:   product(p.Product),
		ExpiresAt: p.ExpiresAt,
		RequestID: p.RequestID,
		Dev:       p.Dev,
	}
	v.Title = "Trust this device for " + v.Product
	if v.Name == "" {
		v.Name = "this device"
	}
	if p.Problem != "" {
		v = deviceView{Kind: p.Problem, RequestID: p.RequestID, Dev: p.Dev, Tone: "bad"}
		switch p.Problem {
		case Expired, Used, Invalid:
		default:
			v.Kind = Failed
		}
		v.Title = title(Page{Kind: v.Kind})
	}
	return renderDevice(w, v)
}

// RenderDeviceProof writes the page on which a trusted device proves
// itself with its WebAuthn credential. Serve it with SetHeaders.
func RenderDeviceProof(w io.Writer, p ProofPage) error {
	v := deviceView{Flow: "prove", Product: product(p.Product), RequestID: p.RequestID, Dev: p.Dev}
	v.Title = "Confirm this device for " + v.Product
	return renderDevice(w, v)
}

func renderDevice(w io.Writer, v deviceView) error {
	var buf bytes.Buffer
	if err := deviceTmpl.Execute(&buf, v); err != nil {
		return fmt.Errorf("render device page: %w", err)
	}
	_, err := buf.WriteTo(w)
	return err
}

func product(s string) string {
	if s == "" {
		return "your account"
	}
	return s
}
