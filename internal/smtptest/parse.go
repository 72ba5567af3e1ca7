package smtptest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"testing"
)

// Parsed is a received message taken apart.
type Parsed struct {
	Header mail.Header // top-level headers as sent (still RFC 2047 encoded)
	// Subject is the Subject header, RFC 2047 decoded.
	Subject string
	// MediaType is the top-level media type, e.g. "multipart/alternative".
	MediaType string
	// Parts are the leaf parts in order, bodies transfer-decoded; a
	// single-part message has one.
	Parts []Part
}

// Part is one leaf MIME part.
type Part struct {
	MediaType string            // e.g. "text/plain"
	Params    map[string]string // Content-Type parameters, e.g. charset
	Header    textproto.MIMEHeader
	Body      string // after undoing Content-Transfer-Encoding
}

// Text returns the body of the first text/plain part, or "".
func (p *Parsed) Text() string { return p.body("text/plain") }

// HTML returns the body of the first text/html part, or "".
func (p *Parsed) HTML() string { return p.body("text/html") }

func (p *Parsed) body(mediaType string) string {
	for _, part := range p.Parts {
		if part.MediaType == mediaType {
			return part.Body
		}
	}
	return ""
}

// Parse takes m.Data apart into headers and decoded parts.
func (m Message) Parse() (*Parsed, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		return nil, fmt.Errorf("smtptest: read message: %w", err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		return nil, fmt.Errorf("smtptest: decode subject: %w", err)
	}
	p := &Parsed{Header: msg.Header, Subject: subject}
	h := textproto.MIMEHeader(msg.Header)
	p.MediaType, err = walk(h, msg.Body, &p.Parts)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// MustParse is Parse that fails the test on error.
func (m Message) MustParse(tb testing.TB) *Parsed {
	tb.Helper()
	p, err := m.Parse()
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// walk appends the leaf parts under h and body to parts and returns the
// media type of h.
func walk(h textproto.MIMEHeader, body io.Reader, parts *[]Part) (string, error) {
	mediaType, params := "text/plain", map[string]string{"charset": "us-ascii"}
	if ct := h.Get("Content-Type"); ct != "" {
		var err error
		mediaType, params, err = mime.ParseMediaType(ct)
		if err != nil {
			return "", fmt.Errorf("smtptest: content type %q: %w", ct, err)
		}
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			// NextRawPart keeps Content-Transfer-Encoding visible, so
			// tests can assert on it; decode below instead.
			part, err := mr.NextRawPart()
			if err == io.EOF {
				return mediaType, nil
			}
			if err != nil {
				return "", fmt.Errorf("smtptest: next part: %w", err)
			}
			if _, err := walk(part.Header, part, parts); err != nil {
				return "", err
			}
		}
	}
	var r io.Reader
	switch cte := strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))); cte {
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, body) // skips CR and LF
	case "", "7bit", "8bit", "binary":
		r = body
	default:
		return "", fmt.Errorf("smtptest: unknown transfer encoding %q", cte)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return "", fmt.Errorf("smtptest: decode %s body: %w", mediaType, err)
	}
	*parts = append(*parts, Part{MediaType: mediaType, Params: params, Header: h, Body: string(b)})
	return mediaType, nil
}
