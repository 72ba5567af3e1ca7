package console

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/vigil-auth/vigil"
)

// Sender prints messages to a writer. It is safe for concurrent use.
type Sender struct {
	mu          sync.Mutex
	w           io.Writer
	showSecrets bool
}

var _ vigil.Sender = (*Sender)(nil)

// New returns a Sender printing to w (os.Stdout in production). With
// showSecrets, the dev mode, it prints full recipients and texts.
func New(w io.Writer, showSecrets bool) *Sender {
	return &Sender{w: w, showSecrets: showSecrets}
}

// Send prints m. It fails only when the writer does, and then transiently.
func (s *Sender) Send(ctx context.Context, m vigil.Outbound) (vigil.SendResult, error) {
	if err := ctx.Err(); err != nil {
		return vigil.SendResult{}, fmt.Errorf("console: %w", err)
	}
	var b bytes.Buffer
	if s.showSecrets {
		writeFull(&b, m)
	} else {
		writeMasked(&b, m)
	}
	s.mu.Lock()
	_, err := s.w.Write(b.Bytes())
	s.mu.Unlock()
	if err != nil {
		return vigil.SendResult{}, fmt.Errorf("console: write: %w", err)
	}
	return vigil.SendResult{Provider: "console", ProviderID: m.ID}, nil
}

func writeMasked(b *bytes.Buffer, m vigil.Outbound) {
	fmt.Fprintf(b, "vigil console: %s message %s to %s", channel(m), m.ID, mask(channel(m), m.To))
	if m.Subject != "" {
		fmt.Fprintf(b, ", subject %q", scrub(m.Subject))
	}
	b.WriteString(" (text hidden; dev mode shows it)\n")
}

func writeFull(b *bytes.Buffer, m vigil.Outbound) {
	const rule = "------------------------------------------------------------\n"
	fmt.Fprintf(b, "==== vigil console: %s message %s ====\n", channel(m), m.ID)
	fmt.Fprintf(b, "To:      %s\n", m.To)
	if m.Subject != "" {
		fmt.Fprintf(b, "Subject: %s\n", m.Subject)
	}
	b.WriteString(rule)
	b.WriteString(m.Text)
	if !strings.HasSuffix(m.Text, "\n") {
		b.WriteString("\n")
	}
	if m.HTML != "" {
		b.WriteString(rule)
		fmt.Fprintf(b, "(HTML alternative, %d bytes, not shown)\n", len(m.HTML))
	}
	b.WriteString(strings.Repeat("=", len(rule)-1) + "\n")
}

// channel is m's channel, or a guess from the recipient when unset.
func channel(m vigil.Outbound) vigil.Channel {
	if m.Channel != "" {
		return m.Channel
	}
	if strings.Contains(m.To, "@") {
		return vigil.ChannelEmail
	}
	return vigil.ChannelSMS
}
