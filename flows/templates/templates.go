package templates

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/vigil-auth/vigil"
)

// Kind names a message Vigil sends. The value is the file name prefix in a
// template directory.
type Kind string

const (
	// KindVerificationCode carries a code that confirms an address.
	KindVerificationCode Kind = "verification_code"
	// KindVerificationLink carries a link that confirms an address.
	KindVerificationLink Kind = "verification_link"
	// KindLoginCode carries a login step-up code.
	KindLoginCode Kind = "login_code"
	// KindNewDevice tells the owner that a new device signed in or was
	// trusted.
	KindNewDevice Kind = "new_device"
	// KindAddressChanged tells an address that it was replaced on its
	// account.
	KindAddressChanged Kind = "address_changed"
	// KindAppUnreachable carries a code sent because the app could not be
	// reached by push.
	KindAppUnreachable Kind = "app_unreachable"
)

var kinds = []Kind{
	KindVerificationCode, KindVerificationLink, KindLoginCode,
	KindNewDevice, KindAddressChanged, KindAppUnreachable,
}

// Kinds lists every kind in a fixed order.
func Kinds() []Kind { return slices.Clone(kinds) }

// Valid reports whether k is one of the kinds above.
func (k Kind) Valid() bool { return slices.Contains(kinds, k) }

// Part is one template of a kind. The value is the file name suffix before
// .tmpl.
type Part string

const (
	PartSubject Part = "subject" // email subject, text/template, one line
	PartText    Part = "txt"     // email plain-text body, text/template
	PartHTML    Part = "html"    // email HTML body, html/template
	PartSMS     Part = "sms"     // SMS text, text/template
)

var parts = []Part{PartSubject, PartText, PartHTML, PartSMS}

// Parts lists every part in a fixed order.
func Parts() []Part { return slices.Clone(parts) }

// Valid reports whether p is one of the parts above.
func (p Part) Valid() bool { return slices.Contains(parts, p) }

// Data is what the templates see. Which fields a kind needs is checked by
// Render; the rest may be empty and the built-in texts leave them out.
type Data struct {
	// Code is the one-time code (verification_code, login_code,
	// app_unreachable).
	Code string
	// Link is the verification link (verification_link).
	Link string
	// Minutes is the time left, rounded up; Hours is the time left in
	// whole hours once at least two hours are left, else 0. Expiry
	// computes both.
	Minutes int
	Hours   int
	// Destination is the masked address a notice is about (a***@example.com).
	Destination string
	// Channel is the channel of the address a notice is about; Render sets
	// it to the delivery channel when empty. Templates compare it with
	// "email" and "sms" and pick their own words, so grammar stays right
	// in every language.
	Channel vigil.Channel
	// Product is the operator's product name ("Acme"); empty leaves the
	// name out of the texts.
	Product string
	// Device is a short description of a device ("Firefox on Linux"). It
	// comes from a User-Agent, so Render strips control and bidi
	// characters and caps its length.
	Device string
	// Time is when the event happened (new_device). Templates format it
	// in its own location, so pass UTC unless the person's zone is known.
	Time time.Time
}

// Expiry turns the time left into Minutes (rounded up) and Hours (whole
// hours, set once at least two hours are left).
func Expiry(left time.Duration) (minutes, hours int) {
	if left <= 0 {
		return 0, 0
	}
	minutes = int((left + time.Minute - 1) / time.Minute)
	if left >= 2*time.Hour {
		hours = int(left / time.Hour)
	}
	return minutes, hours
}

// needs says what Render refuses to go without, per kind: a code message
// without its code is a bug, not a text to send.
func (k Kind) needs(d Data) error {
	var missing []string
	switch k {
	case KindVerificationCode, KindLoginCode, KindAppUnreachable:
		if d.Code == "" {
			missing = append(missing, "Code")
		}
	case KindVerificationLink:
		if d.Link == "" {
			missing = append(missing, "Link")
		}
	case KindNewDevice:
		if d.Time.IsZero() {
			missing = append(missing, "Time")
		}
	}
	switch k {
	case KindVerificationCode, KindLoginCode, KindAppUnreachable, KindVerificationLink:
		if d.Minutes <= 0 && d.Hours <= 0 {
			missing = append(missing, "Minutes or Hours")
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("render %s: missing %s", k, strings.Join(missing, ", "))
	}
	return nil
}

// Rendered is a message in one language, ready to become a vigil.Outbound.
type Rendered struct {
	// Lang is the language the body is written in (BCP 47).
	Lang string
	// Subject is the email subject, on one line; empty for SMS.
	Subject string
	// Text is the email plain-text body, or the SMS text.
	Text string
	// HTML is the email HTML body; empty for SMS.
	HTML string
}

// Render writes the message of kind for channel ch in the supported
// language closest to lang (the set's default when none is close).
func (s *Set) Render(kind Kind, ch vigil.Channel, lang string, d Data) (Rendered, error) {
	if !kind.Valid() {
		return Rendered{}, fmt.Errorf("render: unknown kind %q", kind)
	}
	if !ch.Valid() {
		return Rendered{}, fmt.Errorf("render %s: unknown channel %q", kind, ch)
	}
	if err := kind.needs(d); err != nil {
		return Rendered{}, err
	}
	if d.Channel == "" {
		d.Channel = ch
	} else if !d.Channel.Valid() {
		return Rendered{}, fmt.Errorf("render %s: unknown data channel %q", kind, d.Channel)
	}
	d.Destination = clean(d.Destination, maxDestination)
	d.Product = clean(d.Product, maxName)
	d.Device = clean(d.Device, maxName)

	if s == nil || s.langs == nil {
		return Rendered{}, errors.New("render: the template set was not loaded (use Builtin or Load)")
	}
	tmpl := s.langs[s.Pick(lang, "")]
	if ch == vigil.ChannelSMS {
		e := tmpl[slot{kind, PartSMS}]
		text, err := e.execute(d)
		if err != nil {
			return Rendered{}, fmt.Errorf("render %s: %w", kind, err)
		}
		return Rendered{Lang: e.lang, Text: text}, nil
	}
	var r Rendered
	for _, p := range []Part{PartSubject, PartText, PartHTML} {
		e := tmpl[slot{kind, p}]
		out, err := e.execute(d)
		if err != nil {
			return Rendered{}, fmt.Errorf("render %s: %w", kind, err)
		}
		switch p {
		case PartSubject:
			r.Subject = out
		case PartText:
			r.Text = out
			r.Lang = e.lang
		default:
			r.HTML = out
		}
	}
	return r, nil
}

// execute runs one template and tidies what it wrote: a subject becomes
// one line (no header can be smuggled in through a value), SMS and text
// lose the whitespace that editors leave around them.
func (e *entry) execute(d Data) (string, error) {
	var buf bytes.Buffer
	var err error
	if e.html != nil {
		err = e.html.Execute(&buf, d)
	} else {
		err = e.text.Execute(&buf, d)
	}
	if err != nil {
		return "", err
	}
	out := buf.String()
	switch e.part {
	case PartSubject:
		return strings.Join(strings.Fields(out), " "), nil
	case PartSMS:
		return strings.TrimSpace(out), nil
	case PartText:
		return strings.TrimSpace(out) + "\n", nil
	default:
		return out, nil
	}
}

const (
	maxName        = 64
	maxDestination = 320
)

// clean keeps a value that may come from outside (a User-Agent) from
// breaking lines, reordering text with bidi controls, or running on.
func clean(s string, limit int) string {
	var b strings.Builder
	n := 0
	space := false
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			space = b.Len() > 0
			continue
		case unicode.IsControl(r), unicode.Is(unicode.Bidi_Control, r), r == unicode.ReplacementChar:
			continue
		}
		if n == limit {
			break
		}
		if space {
			b.WriteByte(' ')
			n++
			space = false
			if n == limit {
				break
			}
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}
