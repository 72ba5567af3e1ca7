package smtp_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/adapters/smtp"
	"github.com/vigil-auth/vigil/internal/smtptest"
)

const code = "482915"

func outbound() vigil.Outbound {
	return vigil.Outbound{
		ID:      "msg_01HZX3",
		Channel: vigil.ChannelEmail,
		To:      "alice@example.com",
		Subject: "Verify your email",
		Text:    "Your code is " + code + ".\n\nIt expires in 15 minutes.\n",
		HTML:    "<p>Your code is <b>" + code + "</b>.</p>",
	}
}

type testBundle struct {
	srv    *smtptest.Server
	sender *smtp.Sender
}

// setup starts a server with opts and a Sender configured for it.
func setup(t *testing.T, opts ...smtptest.Option) testBundle {
	t.Helper()
	srv := smtptest.Start(t, opts...)
	sender, err := smtp.New(smtp.Config{URL: srv.URL(), From: "Vigil <no-reply@vigil.example>", TLSConfig: srv.TLSConfig()})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return testBundle{srv: srv, sender: sender}
}

func only(t *testing.T, srv *smtptest.Server) smtptest.Message {
	t.Helper()
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("server got %d messages, want 1", len(msgs))
	}
	return msgs[0]
}

func TestSend(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		opts     []smtptest.Option
		wantTLS  bool
		wantAuth string
	}{
		{name: "plain"},
		{name: "auth PLAIN", opts: []smtptest.Option{smtptest.WithAuth("vigil", "p@ss:w/rd")}, wantAuth: "vigil"},
		{name: "auth LOGIN only", opts: []smtptest.Option{smtptest.WithAuth("vigil", "s3cret"), smtptest.WithAuthMechanisms("LOGIN")}, wantAuth: "vigil"},
		{name: "STARTTLS with auth", opts: []smtptest.Option{smtptest.WithSTARTTLS(), smtptest.WithAuth("vigil", "s3cret")}, wantTLS: true, wantAuth: "vigil"},
		{name: "implicit TLS with auth", opts: []smtptest.Option{smtptest.WithImplicitTLS(), smtptest.WithAuth("vigil", "s3cret")}, wantTLS: true, wantAuth: "vigil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tb := setup(t, tt.opts...)
			start := time.Now()
			res, err := tb.sender.Send(context.Background(), outbound())
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			got := only(t, tb.srv)
			if got.From != "no-reply@vigil.example" || len(got.To) != 1 || got.To[0] != "alice@example.com" {
				t.Errorf("envelope = %q -> %q", got.From, got.To)
			}
			if got.TLS != tt.wantTLS || got.Auth != tt.wantAuth {
				t.Errorf("TLS = %v, Auth = %q; want %v, %q", got.TLS, got.Auth, tt.wantTLS, tt.wantAuth)
			}
			p := got.MustParse(t)
			checks := []struct{ name, got, want string }{
				{"From", p.Header.Get("From"), `"Vigil" <no-reply@vigil.example>`},
				{"To", p.Header.Get("To"), "<alice@example.com>"},
				{"Subject", p.Subject, "Verify your email"},
				{"Message-ID", p.Header.Get("Message-ID"), "<msg_01HZX3@vigil.example>"},
				{"MIME-Version", p.Header.Get("MIME-Version"), "1.0"},
				{"Auto-Submitted", p.Header.Get("Auto-Submitted"), "auto-generated"},
				{"media type", p.MediaType, "multipart/alternative"},
				{"text", p.Text(), "Your code is " + code + ".\r\n\r\nIt expires in 15 minutes.\r\n"},
				{"html", p.HTML(), "<p>Your code is <b>" + code + "</b>.</p>"},
				{"provider", res.Provider, "smtp"},
				{"provider id", res.ProviderID, "msg_01HZX3@vigil.example"},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
				}
			}
			if len(p.Parts) != 2 || p.Parts[0].MediaType != "text/plain" || p.Parts[1].MediaType != "text/html" {
				t.Fatalf("parts = %+v, want text/plain then text/html", p.Parts)
			}
			for _, part := range p.Parts {
				if part.Params["charset"] != "utf-8" || part.Header.Get("Content-Transfer-Encoding") != "quoted-printable" {
					t.Errorf("%s part header = %v", part.MediaType, part.Header)
				}
			}
			date, err := p.Header.Date()
			if err != nil {
				t.Fatalf("Date: %v", err)
			}
			if date.Before(start.Add(-time.Second)) || date.After(time.Now().Add(time.Second)) {
				t.Errorf("Date = %v, not now", date)
			}
		})
	}
}

func TestSendTextOnly(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	m := outbound()
	m.HTML = ""
	if _, err := tb.sender.Send(context.Background(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	p := only(t, tb.srv).MustParse(t)
	if p.MediaType != "text/plain" || len(p.Parts) != 1 {
		t.Fatalf("media type %q with %d parts, want one text/plain", p.MediaType, len(p.Parts))
	}
	if p.Header.Get("Content-Transfer-Encoding") != "quoted-printable" || p.Parts[0].Params["charset"] != "utf-8" {
		t.Errorf("header = %v", p.Header)
	}
	if want := "Your code is " + code + ".\r\n\r\nIt expires in 15 minutes.\r\n"; p.Text() != want {
		t.Errorf("text = %q, want %q", p.Text(), want)
	}
}

func TestSendEncoding(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("Überlange Zeile ", 30)
	tests := []struct {
		name        string
		subject     string
		text        string
		wantSubject string
		wantText    string
		rawHas      string // a string the raw message must hold
	}{
		{
			name:        "non-ASCII subject is RFC 2047 encoded",
			subject:     "Bestätigen Sie Ihre E-Mail",
			text:        "Grüße",
			wantSubject: "Bestätigen Sie Ihre E-Mail",
			wantText:    "Grüße\r\n", // a text body always ends its last line
			rawHas:      "Subject: =?utf-8?q?",
		},
		{
			name:        "line breaks in the subject cannot add headers",
			subject:     "Hi\r\nBcc: mallory@example.com",
			text:        "x",
			wantSubject: "Hi Bcc: mallory@example.com",
			wantText:    "x\r\n",
		},
		{
			name:        "long lines are soft-wrapped",
			subject:     "s",
			text:        long,
			wantSubject: "s",
			wantText:    long + "\r\n",
			rawHas:      "=\r\n",
		},
		{
			name:        "leading dots survive SMTP dot-stuffing",
			subject:     "s",
			text:        ".\n..\n.hidden",
			wantSubject: "s",
			wantText:    ".\r\n..\r\n.hidden\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tb := setup(t)
			m := outbound()
			m.Subject, m.Text, m.HTML = tt.subject, tt.text, ""
			if _, err := tb.sender.Send(context.Background(), m); err != nil {
				t.Fatalf("Send: %v", err)
			}
			got := only(t, tb.srv)
			p := got.MustParse(t)
			if p.Subject != tt.wantSubject {
				t.Errorf("subject = %q, want %q", p.Subject, tt.wantSubject)
			}
			if p.Text() != tt.wantText {
				t.Errorf("text = %q, want %q", p.Text(), tt.wantText)
			}
			if len(p.Header["Bcc"]) != 0 {
				t.Errorf("a Bcc header got in: %q", p.Header["Bcc"])
			}
			if !bytes.Contains(got.Data, []byte(tt.rawHas)) {
				t.Errorf("raw message lacks %q:\n%s", tt.rawHas, got.Data)
			}
			for i, line := range bytes.Split(got.Data, []byte("\r\n")) {
				if len(line) > 78 {
					t.Errorf("line %d is %d bytes long", i, len(line))
				}
				for _, c := range line {
					if c >= 0x80 || c == '\r' || c == '\n' {
						t.Fatalf("line %d is not 7-bit clean: %q", i, line)
					}
				}
			}
		})
	}
}

func TestMessageIDFollowsOutboundID(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ids := []string{"msg_1", "msg_1", "msg_2", "has space <and> brackets", ""}
	for _, id := range ids {
		m := outbound()
		m.ID = id
		if _, err := tb.sender.Send(context.Background(), m); err != nil {
			t.Fatalf("Send %q: %v", id, err)
		}
	}
	msgs := tb.srv.Messages()
	got := make([]string, len(msgs))
	for i, m := range msgs {
		got[i] = m.MustParse(t).Header.Get("Message-ID")
		if _, err := mail.ParseAddress(strings.Trim(got[i], "<>")); err != nil {
			t.Errorf("Message-ID %q is not addr-spec shaped: %v", got[i], err)
		}
	}
	if got[0] != got[1] {
		t.Errorf("a retry changed the Message-ID: %q then %q", got[0], got[1])
	}
	for i := 1; i < len(got)-1; i++ {
		if got[i] == got[i+1] {
			t.Errorf("different IDs gave one Message-ID %q", got[i])
		}
	}
}

func TestSendErrors(t *testing.T) {
	t.Parallel()
	echo := func(code int) smtptest.Hook {
		return func(to string) (int, string) {
			return code, "<" + strings.ToUpper(to) + ">: Recipient address rejected"
		}
	}
	tests := []struct {
		name          string
		opts          []smtptest.Option
		cfg           smtp.Config
		set           func(*smtptest.Server)
		wantPermanent bool
		wantCode      int    // of the *smtp.ReplyError, 0 for none
		wantIn        string // the error text holds this
	}{
		{name: "RCPT 550", set: func(s *smtptest.Server) { s.OnRcpt(echo(550)) }, wantPermanent: true, wantCode: 550, wantIn: "RCPT TO"},
		{name: "RCPT 451", set: func(s *smtptest.Server) { s.OnRcpt(echo(451)) }, wantCode: 451, wantIn: "[recipient]"},
		{name: "MAIL 553", set: func(s *smtptest.Server) { s.OnMail(smtptest.Reply(553, "5.7.1 Sender not allowed")) }, wantPermanent: true, wantCode: 553, wantIn: "MAIL FROM"},
		{name: "MAIL 421", set: func(s *smtptest.Server) { s.OnMail(smtptest.Reply(421, "4.3.2 Shutting down")) }, wantCode: 421},
		{name: "DATA 554", set: func(s *smtptest.Server) { s.OnData(smtptest.Reply(554, "5.7.1 Rejected as spam")) }, wantPermanent: true, wantCode: 554, wantIn: "end of DATA"},
		{name: "DATA 452", set: func(s *smtptest.Server) { s.OnData(smtptest.Reply(452, "4.3.1 Insufficient storage")) }, wantCode: 452},
		{
			name:          "AUTH 535",
			opts:          []smtptest.Option{smtptest.WithAuth("vigil", "right")},
			cfg:           smtp.Config{URL: "wrong password, set below"},
			wantPermanent: true, wantCode: 535, wantIn: "AUTH",
		},
		{
			name:   "server without STARTTLS",
			cfg:    smtp.Config{URL: "starttls, set below"},
			wantIn: "does not offer STARTTLS",
		},
		{
			name:   "server does not trust-match",
			opts:   []smtptest.Option{smtptest.WithImplicitTLS()},
			cfg:    smtp.Config{URL: "no root CA, set below"},
			wantIn: "TLS handshake",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := smtptest.Start(t, tt.opts...)
			if tt.set != nil {
				tt.set(srv)
			}
			cfg := smtp.Config{URL: srv.URL(), From: "no-reply@vigil.example", TLSConfig: srv.TLSConfig()}
			switch tt.cfg.URL {
			case "wrong password, set below":
				cfg.URL = "smtp://vigil:wrong@" + srv.Addr() + "/?tls=none"
			case "starttls, set below":
				cfg.URL = "smtp://" + srv.Addr()
			case "no root CA, set below":
				cfg.TLSConfig = nil
			}
			sender, err := smtp.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = sender.Send(context.Background(), outbound())
			checkErr(t, err, tt.wantPermanent, tt.wantIn)
			var re *smtp.ReplyError
			if errors.As(err, &re) != (tt.wantCode != 0) || tt.wantCode != 0 && re.Code != tt.wantCode {
				t.Errorf("ReplyError = %+v, want code %d", re, tt.wantCode)
			}
			if n := len(srv.Messages()); n != 0 {
				t.Errorf("server kept %d messages", n)
			}
		})
	}
}

func TestSendRefusedBeforeConnecting(t *testing.T) {
	t.Parallel()
	// Nothing listens here: an attempt to connect would fail transiently,
	// so a permanent error shows Send refused first.
	sender, err := smtp.New(smtp.Config{URL: "smtp://" + closedAddr(t) + "/?tls=none", From: "no-reply@vigil.example"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		modify func(*vigil.Outbound)
	}{
		{"empty recipient", func(m *vigil.Outbound) { m.To = "" }},
		{"not an address", func(m *vigil.Outbound) { m.To = "alice" }},
		{"display name", func(m *vigil.Outbound) { m.To = "Alice <alice@example.com>" }},
		{"two addresses", func(m *vigil.Outbound) { m.To = "alice@example.com, bob@example.com" }},
		{"command injection", func(m *vigil.Outbound) { m.To = "alice@example.com\r\nRCPT TO:<mallory@example.com>" }},
		{"SMS channel", func(m *vigil.Outbound) { m.Channel = vigil.ChannelSMS }},
		{"no body", func(m *vigil.Outbound) { m.Text, m.HTML = "", "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := outbound()
			tt.modify(&m)
			_, err := sender.Send(context.Background(), m)
			checkErr(t, err, true, "smtp:")
		})
	}
}

func TestSendConnectionFailure(t *testing.T) {
	t.Parallel()
	sender, err := smtp.New(smtp.Config{URL: "smtp://" + closedAddr(t) + "/?tls=none", From: "no-reply@vigil.example"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = sender.Send(context.Background(), outbound())
	checkErr(t, err, false, "connect to")
}

func TestSendDeadline(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		timeout time.Duration
		cancel  time.Duration // cancel the context after this long; 0 never
		silent  bool          // a server that accepts and never speaks
		want    error
	}{
		{name: "Timeout while RCPT hangs", timeout: 200 * time.Millisecond, want: context.DeadlineExceeded},
		{name: "caller cancels while RCPT hangs", timeout: time.Minute, cancel: 100 * time.Millisecond, want: context.Canceled},
		{name: "server never greets", timeout: 200 * time.Millisecond, silent: true, want: context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url := silentServer(t)
			if !tt.silent {
				srv := smtptest.Start(t)
				release := make(chan struct{})
				t.Cleanup(func() { close(release) }) // runs before srv.Close
				srv.OnRcpt(func(string) (int, string) { <-release; return 0, "" })
				url = srv.URL()
			}
			sender, err := smtp.New(smtp.Config{URL: url, From: "no-reply@vigil.example", Timeout: tt.timeout})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if tt.cancel > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				time.AfterFunc(tt.cancel, cancel)
				defer cancel()
			}
			start := time.Now()
			_, err = sender.Send(ctx, outbound())
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("Send took %v", took)
			}
			checkErr(t, err, false, "smtp:")
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v in its chain", err, tt.want)
			}
		})
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     smtp.Config
		wantErr string
	}{
		{name: "ok", cfg: smtp.Config{URL: "smtp://mail.example.com", From: "Vigil <no-reply@example.com>"}},
		{name: "ok smtps with auth", cfg: smtp.Config{URL: "smtps://u:p@mail.example.com", From: "no-reply@example.com"}},
		{name: "no URL", cfg: smtp.Config{From: "no-reply@example.com"}, wantErr: "URL is empty"},
		{name: "no From", cfg: smtp.Config{URL: "smtp://mail.example.com"}, wantErr: "From is empty"},
		{name: "bad From", cfg: smtp.Config{URL: "smtp://mail.example.com", From: "Vigil"}, wantErr: "From"},
		{name: "negative timeout", cfg: smtp.Config{URL: "smtp://mail.example.com", From: "a@example.com", Timeout: -1}, wantErr: "Timeout"},
		{name: "bad local name", cfg: smtp.Config{URL: "smtp://mail.example.com", From: "a@example.com", LocalName: "a b"}, wantErr: "LocalName"},
		{
			name:    "password not in a parse error",
			cfg:     smtp.Config{URL: "smtp://u:hunter2@mail example.com", From: "a@example.com"},
			wantErr: "does not parse",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := smtp.New(tt.cfg)
			if tt.wantErr == "" {
				if err != nil || s == nil {
					t.Fatalf("New = %v, %v", s, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New error = %v, want %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks the password: %v", err)
			}
		})
	}
}

// checkErr asserts err is set, of the wanted kind, and leaks neither the
// code nor the recipient's address.
func checkErr(t *testing.T, err error, wantPermanent bool, wantIn string) {
	t.Helper()
	if err == nil {
		t.Fatal("Send succeeded, want an error")
	}
	if vigil.IsPermanent(err) != wantPermanent {
		t.Errorf("IsPermanent = %v, want %v (err: %v)", vigil.IsPermanent(err), wantPermanent, err)
	}
	msg := err.Error()
	t.Logf("error: %s", msg)
	if !strings.Contains(msg, wantIn) {
		t.Errorf("error %q does not mention %q", msg, wantIn)
	}
	for _, secret := range []string{code, "alice@example.com", "ALICE@EXAMPLE.COM", "Your code"} {
		if strings.Contains(msg, secret) {
			t.Errorf("error %q leaks %q", msg, secret)
		}
	}
}

// closedAddr returns an address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// silentServer accepts connections and never says a word; it returns the
// smtp:// URL to it.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				_ = c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); <-done })
	return "smtp://" + ln.Addr().String() + "/?tls=none"
}
