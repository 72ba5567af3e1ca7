package smtp

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"time"

	"github.com/vigil-auth/vigil"
)

const (
	contentType = "Content-Type"
	transferEnc = "Content-Transfer-Encoding"
)

// compose renders m as an RFC 5322 message with CRLF line endings.
func (s *Sender) compose(m vigil.Outbound, rcpt, msgID string) ([]byte, error) {
	var b bytes.Buffer
	header := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	header("Date", s.now().Format(time.RFC1123Z))
	header("From", s.from.String())
	header("To", (&mail.Address{Address: rcpt}).String())
	header("Subject", encodeSubject(m.Subject))
	header("Message-ID", msgID)
	header("MIME-Version", "1.0")
	// RFC 3834: keeps vacation responders from answering a code mail.
	header("Auto-Submitted", "auto-generated")

	textHeader := textproto.MIMEHeader{
		contentType: {"text/plain; charset=utf-8"},
		transferEnc: {"quoted-printable"},
	}
	if m.HTML == "" {
		for _, k := range []string{contentType, transferEnc} {
			header(k, textHeader.Get(k))
		}
		b.WriteString("\r\n")
		if err := writeQP(&b, m.Text); err != nil {
			return nil, err
		}
		// SMTP ends DATA on a line of its own and would add this anyway;
		// adding it here keeps the sent bytes what compose returned.
		if !bytes.HasSuffix(b.Bytes(), []byte("\r\n")) {
			b.WriteString("\r\n")
		}
		return b.Bytes(), nil
	}

	mw := multipart.NewWriter(&b)
	header(contentType, mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": mw.Boundary()}))
	b.WriteString("\r\n")
	htmlHeader := textproto.MIMEHeader{
		contentType: {"text/html; charset=utf-8"},
		transferEnc: {"quoted-printable"},
	}
	// RFC 2046: the preferred alternative comes last.
	for _, p := range []struct {
		h    textproto.MIMEHeader
		body string
	}{{textHeader, m.Text}, {htmlHeader, m.HTML}} {
		w, err := mw.CreatePart(p.h)
		if err != nil {
			return nil, fmt.Errorf("smtp: compose: %w", err)
		}
		if err := writeQP(w, p.body); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, fmt.Errorf("smtp: compose: %w", err)
	}
	return b.Bytes(), nil
}

func writeQP(w io.Writer, body string) error {
	qp := quotedprintable.NewWriter(w)
	if _, err := io.WriteString(qp, body); err != nil {
		return fmt.Errorf("smtp: encode body: %w", err)
	}
	if err := qp.Close(); err != nil {
		return fmt.Errorf("smtp: encode body: %w", err)
	}
	return nil
}

// encodeSubject folds line breaks into spaces (a subject is one line, and a
// raw CRLF would start a new header) and RFC 2047 encodes non-ASCII.
func encodeSubject(subject string) string {
	subject = strings.Join(strings.Fields(strings.NewReplacer("\r", " ", "\n", " ").Replace(subject)), " ")
	return mime.QEncoding.Encode("utf-8", subject)
}

// messageID derives "<left@domain>" from the Outbound ID, so that every
// retry of one message carries the same Message-ID. An ID that is not a
// valid dot-atom is hashed; a missing one gets a random value.
func messageID(id, domain string) string {
	left := id
	switch {
	case id == "":
		var r [16]byte
		_, _ = rand.Read(r[:]) // never fails (crypto/rand)
		left = hex.EncodeToString(r[:])
	case !isDotAtom(id) || len(id) > 64:
		sum := sha256.Sum256([]byte(id))
		left = hex.EncodeToString(sum[:16])
	}
	return "<" + left + "@" + domain + ">"
}

// isDotAtom reports whether s is an RFC 5322 dot-atom-text.
func isDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := range len(s) {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-/=?^_`{|}~.", c) >= 0:
		default:
			return false
		}
	}
	return true
}
