package console_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/adapters/console"
)

const (
	code = "606991"
	link = "http://127.0.0.1:4480/verify?token=Zm9vYmFyYmF6"
)

var (
	email = vigil.Outbound{
		ID:      "msg_email",
		Channel: vigil.ChannelEmail,
		To:      "alice@example.com",
		Subject: "Use code " + code + " to verify your account",
		Text:    "Verify with the code " + code + "\n\nor open " + link + "\n",
		HTML:    "<p>" + code + "</p>",
	}
	sms = vigil.Outbound{
		ID:      "msg_sms",
		Channel: vigil.ChannelSMS,
		To:      "+4915123456780",
		Text:    "Your verification code is: " + code,
	}
)

func TestSendHidesSecrets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		m       vigil.Outbound
		want    []string
		mustNot []string
	}{
		{
			name:    "email",
			m:       email,
			want:    []string{"email", "msg_email", "a***@example.com", `"Use code **** to verify your account"`, "text hidden"},
			mustNot: []string{code, link, "alice@", "Verify with"},
		},
		{
			name:    "sms",
			m:       sms,
			want:    []string{"sms", "msg_sms", "+49 ****780"},
			mustNot: []string{code, "+4915123456780", "15123456780", "verification code"},
		},
		{
			name: "link in the subject",
			m: vigil.Outbound{
				ID: "msg_x", Channel: vigil.ChannelEmail, To: "bob@example.org",
				Subject: "Open " + link + " now", Text: link,
			},
			want:    []string{`"Open [link] now"`, "b***@example.org"},
			mustNot: []string{"Zm9vYmFyYmF6", "127.0.0.1"},
		},
		{
			name:    "channel unset, guessed",
			m:       vigil.Outbound{ID: "msg_y", To: "+14155550123", Text: code},
			want:    []string{"sms", "+1 ****123"},
			mustNot: []string{code, "4155550123"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			res, err := console.New(&out, false).Send(context.Background(), tt.m)
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if res.Provider != "console" || res.ProviderID != tt.m.ID {
				t.Errorf("result = %+v", res)
			}
			got := out.String()
			t.Logf("output: %s", got)
			if strings.Count(got, "\n") != 1 || !strings.HasSuffix(got, "\n") {
				t.Errorf("output is not one line: %q", got)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("output %q lacks %q", got, w)
				}
			}
			for _, s := range tt.mustNot {
				if strings.Contains(got, s) {
					t.Errorf("output %q leaks %q", got, s)
				}
			}
		})
	}
}

func TestSendShowsSecretsInDevMode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		m    vigil.Outbound
		want []string
	}{
		{"email", email, []string{"alice@example.com", email.Subject, email.Text, "HTML alternative"}},
		{"sms", sms, []string{"+4915123456780", sms.Text + "\n", "msg_sms"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			if _, err := console.New(&out, true).Send(context.Background(), tt.m); err != nil {
				t.Fatalf("Send: %v", err)
			}
			got := out.String()
			t.Logf("output:\n%s", got)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("output lacks %q:\n%s", w, got)
				}
			}
		})
	}
}

// writeRecorder keeps every Write separately and notices overlapping ones.
type writeRecorder struct {
	inFlight atomic.Int32
	overlap  atomic.Bool
	mu       sync.Mutex
	writes   []string
}

func (w *writeRecorder) Write(p []byte) (int, error) {
	if w.inFlight.Add(1) > 1 {
		w.overlap.Store(true)
	}
	defer w.inFlight.Add(-1)
	w.mu.Lock()
	w.writes = append(w.writes, string(p))
	w.mu.Unlock()
	return len(p), nil
}

func TestSendConcurrent(t *testing.T) {
	t.Parallel()
	for _, dev := range []bool{false, true} {
		t.Run(fmt.Sprintf("dev=%v", dev), func(t *testing.T) {
			t.Parallel()
			w := &writeRecorder{}
			s := console.New(w, dev)
			const n = 50
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					m := sms
					m.ID = fmt.Sprintf("msg_%d", i)
					if _, err := s.Send(context.Background(), m); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if w.overlap.Load() {
				t.Error("writes overlapped")
			}
			if len(w.writes) != n {
				t.Fatalf("got %d writes, want %d (one per message)", len(w.writes), n)
			}
			for _, wr := range w.writes {
				if strings.Count(wr, "msg_") != 1 {
					t.Errorf("a write does not hold exactly one message: %q", wr)
				}
			}
		})
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestSendErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		s         *console.Sender
		cancelled bool
		wantIs    error
	}{
		{name: "writer fails", s: console.New(failingWriter{}, false)},
		{name: "context cancelled", s: console.New(&bytes.Buffer{}, false), cancelled: true, wantIs: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancelled {
				cancel()
			}
			_, err := tt.s.Send(ctx, sms)
			if err == nil {
				t.Fatal("Send succeeded")
			}
			if vigil.IsPermanent(err) {
				t.Errorf("err %v is permanent, want transient", err)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("err = %v, want %v", err, tt.wantIs)
			}
		})
	}
}
