package smtptest_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net/smtp"
	"net/textproto"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vigil-auth/vigil/internal/smtptest"
)

// step is one line sent and the reply code expected for it.
type step struct {
	send string
	code int
}

// converse dials srv and plays steps, failing on the first unexpected code.
func converse(t *testing.T, addr string, steps []step) {
	t.Helper()
	c, err := textproto.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if _, _, err := c.ReadResponse(220); err != nil {
		t.Fatalf("greeting: %v", err)
	}
	for _, s := range steps {
		if err := c.PrintfLine("%s", s.send); err != nil {
			t.Fatalf("send %q: %v", s.send, err)
		}
		if s.code == 0 { // a data line: no reply
			continue
		}
		code, msg, err := c.ReadResponse(0)
		if err != nil && code == 0 {
			t.Fatalf("reply to %q: %v", s.send, err)
		}
		if code != s.code {
			t.Fatalf("reply to %q: got %d %s, want %d", s.send, code, msg, s.code)
		}
	}
}

func TestConversation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		opts     []smtptest.Option
		steps    []step
		wantMsgs int
	}{
		{
			name: "full transaction",
			steps: []step{
				{"EHLO client.test", 250},
				{"MAIL FROM:<vigil@example.com> BODY=8BITMIME", 250},
				{"RCPT TO:<alice@example.com>", 250},
				{"RCPT TO:<bob@example.com>", 250},
				{"DATA", 354},
				{"Subject: hi", 0},
				{"", 0},
				{"..leading dot", 0},
				{".", 250},
				{"QUIT", 221},
			},
			wantMsgs: 1,
		},
		{
			name: "HELO works too",
			steps: []step{
				{"HELO client.test", 250},
				{"MAIL FROM:<>", 250},
				{"RCPT TO:<alice@example.com>", 250},
				{"DATA", 354},
				{"x", 0},
				{".", 250},
			},
			wantMsgs: 1,
		},
		{
			name: "bad sequence",
			steps: []step{
				{"MAIL FROM:<vigil@example.com>", 503},
				{"EHLO client.test", 250},
				{"RCPT TO:<alice@example.com>", 503},
				{"DATA", 503},
				{"MAIL FROM:<vigil@example.com>", 250},
				{"MAIL FROM:<vigil@example.com>", 503},
				{"DATA", 503},
			},
		},
		{
			name: "RSET clears the transaction",
			steps: []step{
				{"EHLO client.test", 250},
				{"MAIL FROM:<vigil@example.com>", 250},
				{"RSET", 250},
				{"RCPT TO:<alice@example.com>", 503},
			},
		},
		{
			name: "other commands",
			steps: []step{
				{"NOOP", 250},
				{"VRFY alice", 252},
				{"FROB", 502},
				{"EHLO", 501},
				{"EHLO client.test", 250},
				{"MAIL TO:<x@example.com>", 501},
				{"AUTH PLAIN AGFsaWNlAHM=", 502},
				{"STARTTLS", 502},
				{strings.Repeat("x", 5000), 500},
				{"NOOP", 250},
			},
		},
		{
			name: "auth required before MAIL",
			opts: []smtptest.Option{smtptest.WithAuth("vigil", "s3cret")},
			steps: []step{
				{"EHLO client.test", 250},
				{"MAIL FROM:<vigil@example.com>", 530},
				{"AUTH PLAIN " + plain("vigil", "wrong"), 535},
				{"AUTH PLAIN " + plain("mallory", "s3cret"), 535},
				{"AUTH CRAM-MD5", 504},
				{"AUTH PLAIN " + plain("vigil", "s3cret"), 235},
				{"AUTH PLAIN " + plain("vigil", "s3cret"), 503},
				{"MAIL FROM:<vigil@example.com>", 250},
			},
		},
		{
			name: "auth LOGIN",
			opts: []smtptest.Option{smtptest.WithAuth("vigil", "s3cret"), smtptest.WithAuthMechanisms("LOGIN")},
			steps: []step{
				{"EHLO client.test", 250},
				{"AUTH PLAIN " + plain("vigil", "s3cret"), 504},
				{"AUTH LOGIN", 334},
				{b64("vigil"), 334},
				{b64("s3cret"), 235},
				{"MAIL FROM:<vigil@example.com>", 250},
			},
		},
		{
			name: "auth PLAIN with challenge, then cancelled",
			opts: []smtptest.Option{smtptest.WithAuth("vigil", "s3cret")},
			steps: []step{
				{"EHLO client.test", 250},
				{"AUTH PLAIN", 334},
				{"*", 501},
				{"AUTH PLAIN", 334},
				{plain("vigil", "s3cret"), 235},
			},
		},
		{
			name: "STARTTLS required before MAIL and AUTH",
			opts: []smtptest.Option{smtptest.WithSTARTTLS(), smtptest.WithAuth("vigil", "s3cret")},
			steps: []step{
				{"EHLO client.test", 250},
				{"AUTH PLAIN " + plain("vigil", "s3cret"), 530},
				{"MAIL FROM:<vigil@example.com>", 530},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := smtptest.Start(t, tt.opts...)
			converse(t, srv.Addr(), tt.steps)
			if tt.wantMsgs > 0 {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if _, err := srv.WaitFor(ctx, tt.wantMsgs); err != nil {
					t.Fatal(err)
				}
			}
			if got := len(srv.Messages()); got != tt.wantMsgs {
				t.Fatalf("got %d messages, want %d", got, tt.wantMsgs)
			}
		})
	}
}

func TestRecordedMessage(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t)
	converse(t, srv.Addr(), []step{
		{"EHLO client.test", 250},
		{"MAIL FROM:<vigil@example.com>", 250},
		{"RCPT TO:<alice@example.com>", 250},
		{"RCPT TO:<bob@example.com>", 250},
		{"DATA", 354},
		{"Subject: hi", 0},
		{"", 0},
		{"..leading dot", 0},
		{"line", 0},
		{".", 250},
	})
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("got %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.From != "vigil@example.com" {
		t.Errorf("From = %q", m.From)
	}
	if strings.Join(m.To, ",") != "alice@example.com,bob@example.com" {
		t.Errorf("To = %q", m.To)
	}
	if want := "Subject: hi\r\n\r\n.leading dot\r\nline\r\n"; string(m.Data) != want {
		t.Errorf("Data = %q, want %q", m.Data, want)
	}
	if m.TLS || m.Auth != "" {
		t.Errorf("TLS = %v, Auth = %q on a plain anonymous session", m.TLS, m.Auth)
	}
}

func TestNetSMTPClient(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		opts     []smtptest.Option
		wantTLS  bool
		wantAuth string
	}{
		{name: "plain"},
		{name: "auth", opts: []smtptest.Option{smtptest.WithAuth("vigil", "s3cret")}, wantAuth: "vigil"},
		{name: "starttls", opts: []smtptest.Option{smtptest.WithSTARTTLS(), smtptest.WithAuth("vigil", "s3cret")}, wantTLS: true, wantAuth: "vigil"},
		{name: "implicit tls", opts: []smtptest.Option{smtptest.WithImplicitTLS()}, wantTLS: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := smtptest.Start(t, tt.opts...)
			var c *smtp.Client
			var err error
			if strings.HasPrefix(srv.URL(), "smtps://") {
				conn, derr := tls.Dial("tcp", srv.Addr(), srv.TLSConfig())
				if derr != nil {
					t.Fatal(derr)
				}
				c, err = smtp.NewClient(conn, "127.0.0.1")
			} else {
				c, err = smtp.Dial(srv.Addr())
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if ok, _ := c.Extension("STARTTLS"); ok {
				if err := c.StartTLS(srv.TLSConfig()); err != nil {
					t.Fatal(err)
				}
			}
			if ok, _ := c.Extension("AUTH"); ok {
				if err := c.Auth(smtp.PlainAuth("", "vigil", "s3cret", "127.0.0.1")); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.Mail("vigil@example.com"); err != nil {
				t.Fatal(err)
			}
			if err := c.Rcpt("alice@example.com"); err != nil {
				t.Fatal(err)
			}
			w, err := c.Data()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write([]byte("Subject: hi\r\n\r\nbody\r\n")); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if err := c.Quit(); err != nil {
				t.Fatal(err)
			}
			msgs := srv.Messages()
			if len(msgs) != 1 {
				t.Fatalf("got %d messages, want 1", len(msgs))
			}
			if msgs[0].TLS != tt.wantTLS || msgs[0].Auth != tt.wantAuth {
				t.Errorf("TLS = %v, Auth = %q; want %v, %q", msgs[0].TLS, msgs[0].Auth, tt.wantTLS, tt.wantAuth)
			}
		})
	}
}

func TestHooks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		set      func(*smtptest.Server)
		steps    []step
		wantMsgs int
	}{
		{
			name: "RCPT rejected",
			set:  func(s *smtptest.Server) { s.OnRcpt(smtptest.Reply(550, "5.1.1 No such user")) },
			steps: []step{
				{"EHLO c", 250},
				{"MAIL FROM:<v@example.com>", 250},
				{"RCPT TO:<alice@example.com>", 550},
				{"DATA", 503},
			},
		},
		{
			name: "RCPT hook per address",
			set: func(s *smtptest.Server) {
				s.OnRcpt(func(to string) (int, string) {
					if to == "busy@example.com" {
						return 451, "4.2.1 Try later"
					}
					return 0, ""
				})
			},
			steps: []step{
				{"EHLO c", 250},
				{"MAIL FROM:<v@example.com>", 250},
				{"RCPT TO:<busy@example.com>", 451},
				{"RCPT TO:<alice@example.com>", 250},
				{"DATA", 354},
				{"x", 0},
				{".", 250},
			},
			wantMsgs: 1,
		},
		{
			name: "MAIL rejected",
			set:  func(s *smtptest.Server) { s.OnMail(smtptest.Reply(553, "5.7.1 Sender not allowed")) },
			steps: []step{
				{"EHLO c", 250},
				{"MAIL FROM:<v@example.com>", 553},
				{"RCPT TO:<alice@example.com>", 503},
			},
		},
		{
			name: "DATA rejected after the data",
			set:  func(s *smtptest.Server) { s.OnData(smtptest.Reply(554, "5.6.0 Content rejected")) },
			steps: []step{
				{"EHLO c", 250},
				{"MAIL FROM:<v@example.com>", 250},
				{"RCPT TO:<alice@example.com>", 250},
				{"DATA", 354},
				{"x", 0},
				{".", 554},
				{"RCPT TO:<alice@example.com>", 503}, // the transaction is over
			},
		},
		{
			name: "hook removed",
			set: func(s *smtptest.Server) {
				s.OnRcpt(smtptest.Reply(550, "no"))
				s.OnRcpt(nil)
			},
			steps: []step{
				{"EHLO c", 250},
				{"MAIL FROM:<v@example.com>", 250},
				{"RCPT TO:<alice@example.com>", 250},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := smtptest.Start(t)
			tt.set(srv)
			converse(t, srv.Addr(), tt.steps)
			if got := len(srv.Messages()); got != tt.wantMsgs {
				t.Fatalf("got %d messages, want %d", got, tt.wantMsgs)
			}
		})
	}
}

func TestWaitFor(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if msgs, err := srv.WaitFor(ctx, 1); !errors.Is(err, context.DeadlineExceeded) || len(msgs) != 0 {
		t.Fatalf("WaitFor on an idle server = %d msgs, %v; want 0, deadline exceeded", len(msgs), err)
	}

	go func() {
		for range 2 {
			_ = smtp.SendMail(srv.Addr(), nil, "v@example.com", []string{"a@example.com"}, []byte("Subject: x\r\n\r\ny\r\n"))
		}
	}()
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	msgs, err := srv.WaitFor(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) < 2 {
		t.Fatalf("got %d messages, want 2", len(msgs))
	}
}

func TestURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		opts       []smtptest.Option
		wantScheme string
		wantQuery  string
		wantUser   string
		wantTLS    bool
	}{
		{name: "plain", wantScheme: "smtp", wantQuery: "tls=none"},
		{name: "starttls", opts: []smtptest.Option{smtptest.WithSTARTTLS()}, wantScheme: "smtp", wantQuery: "tls=starttls", wantTLS: true},
		{name: "implicit", opts: []smtptest.Option{smtptest.WithImplicitTLS()}, wantScheme: "smtps", wantTLS: true},
		{name: "auth", opts: []smtptest.Option{smtptest.WithAuth("vigil", "p@ss word")}, wantScheme: "smtp", wantQuery: "tls=none", wantUser: "vigil:p@ss word"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := smtptest.Start(t, tt.opts...)
			u, err := url.Parse(srv.URL())
			if err != nil {
				t.Fatal(err)
			}
			if u.Scheme != tt.wantScheme || u.RawQuery != tt.wantQuery || u.Host != srv.Addr() {
				t.Errorf("URL = %s", srv.URL())
			}
			user := ""
			if u.User != nil {
				p, _ := u.User.Password()
				user = u.User.Username() + ":" + p
			}
			if user != tt.wantUser {
				t.Errorf("userinfo = %q, want %q", user, tt.wantUser)
			}
			if (srv.TLSConfig() != nil) != tt.wantTLS {
				t.Errorf("TLSConfig() = %v, want TLS %v", srv.TLSConfig(), tt.wantTLS)
			}
		})
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	raw := "From: Vigil <vigil@example.com>\r\n" +
		"To: <alice@example.com>\r\n" +
		"Subject: =?utf-8?q?Ihr_Best=C3=A4tigungscode?=\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/alternative; boundary=\"b1\"\r\n" +
		"\r\n" +
		"--b1\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: quoted-printable\r\n" +
		"\r\n" +
		"Gr=C3=BC=C3=9Fe, code 123456 =\r\n" +
		"continues\r\n" +
		"--b1\r\n" +
		"Content-Type: text/html; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: base64\r\n" +
		"\r\n" +
		base64.StdEncoding.EncodeToString([]byte("<p>Grüße</p>")) + "\r\n" +
		"--b1--\r\n"
	p, err := smtptest.Message{Data: []byte(raw)}.Parse()
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"subject", p.Subject, "Ihr Bestätigungscode"},
		{"media type", p.MediaType, "multipart/alternative"},
		{"text", p.Text(), "Grüße, code 123456 continues"}, // the last CRLF belongs to the boundary
		{"html", p.HTML(), "<p>Grüße</p>"},
		{"text charset", p.Parts[0].Params["charset"], "utf-8"},
		{"text encoding", p.Parts[0].Header.Get("Content-Transfer-Encoding"), "quoted-printable"},
		{"from", p.Header.Get("From"), "Vigil <vigil@example.com>"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}

	single, err := smtptest.Message{Data: []byte("Subject: plain\r\n\r\nhello\r\n")}.Parse()
	if err != nil {
		t.Fatal(err)
	}
	if single.MediaType != "text/plain" || single.Text() != "hello\r\n" || single.HTML() != "" || len(single.Parts) != 1 {
		t.Errorf("single part = %+v", single)
	}

	if _, err := (smtptest.Message{Data: []byte("no header block")}).Parse(); err == nil {
		t.Error("Parse of garbage succeeded")
	}
}

func plain(user, pass string) string { return b64("\x00" + user + "\x00" + pass) }

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
