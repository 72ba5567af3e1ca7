package smtp

import (
	"context"
	"errors"
	"fmt"
	"net/textproto"
	"os"
	"strings"
	"unicode"

	"github.com/vigil-auth/vigil"
)

// maxReplyText caps the server text kept in a ReplyError.
const maxReplyText = 200

// ReplyError is an SMTP server's refusal of one command.
type ReplyError struct {
	Command string // e.g. "RCPT TO", "end of DATA"
	Code    int    // e.g. 550
	// Text is the server's explanation, without the recipient's address
	// and cut to a couple of hundred characters.
	Text string
}

func (e *ReplyError) Error() string {
	return fmt.Sprintf("smtp: %s: server replied %d %s", e.Command, e.Code, e.Text)
}

// Permanent reports whether the reply is a 5xx, after which sending the
// same message again cannot succeed.
func (e *ReplyError) Permanent() bool { return e.Code >= 500 && e.Code < 600 }

// classify turns an error from one step of the session into a Vigil
// delivery error: 5xx replies are permanent, anything else is transient.
func (s *Sender) classify(ctx context.Context, stage, rcpt string, err error) error {
	if tp, ok := errors.AsType[*textproto.Error](err); ok {
		re := &ReplyError{Command: stage, Code: tp.Code, Text: redact(tp.Msg, rcpt)}
		if re.Permanent() {
			return vigil.Permanent(re)
		}
		return re
	}
	ctxErr := ctx.Err()
	if ctxErr == nil && errors.Is(err, os.ErrDeadlineExceeded) {
		// The connection deadline is ctx's deadline, and it can pass a
		// moment before ctx's own timer marks ctx done.
		ctxErr = context.DeadlineExceeded
	}
	if ctxErr != nil {
		// Say why the connection gave up, not just "i/o timeout".
		return fmt.Errorf("smtp: %s: %w (%w)", stage, ctxErr, err)
	}
	return fmt.Errorf("smtp: %s: %w", stage, err)
}

// redact removes rcpt from a server's reply text (servers echo it:
// "<alice@example.com>: Recipient address rejected"), drops control
// characters and caps the length, so the text is fit for logs.
func redact(text, rcpt string) string {
	if rcpt != "" {
		// ASCII-only folding keeps byte offsets equal in text and lower.
		lower, lrcpt := asciiLower(text), asciiLower(rcpt)
		var b strings.Builder
		for {
			i := strings.Index(lower, lrcpt)
			if i < 0 {
				b.WriteString(text)
				break
			}
			b.WriteString(text[:i])
			b.WriteString("[recipient]")
			text, lower = text[i+len(rcpt):], lower[i+len(rcpt):]
		}
		text = b.String()
	}
	text = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, text)
	if len(text) > maxReplyText {
		cut := maxReplyText
		for cut > 0 && !isRuneStart(text[cut]) {
			cut--
		}
		text = text[:cut] + "…"
	}
	return text
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// asciiLower folds A-Z byte by byte, so byte offsets stay valid even in
// text that is not valid UTF-8.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
