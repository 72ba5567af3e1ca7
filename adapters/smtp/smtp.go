package smtp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/mail"
	netsmtp "net/smtp"
	"slices"
	"strings"
	"time"

	"github.com/vigil-auth/vigil"
)

// dialTimeout bounds connecting, within the overall deadline.
const dialTimeout = 10 * time.Second

// Sender sends email through one SMTP server. It is safe for concurrent use.
type Sender struct {
	ep        endpoint
	from      *mail.Address
	domain    string // of From, for Message-IDs
	localName string
	timeout   time.Duration
	tlsConfig *tls.Config
	now       func() time.Time
}

var _ vigil.Sender = (*Sender)(nil)

// New checks cfg and returns a Sender. It does not connect.
func New(cfg Config) (*Sender, error) {
	ep, err := parseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("smtp: %w", err)
	}
	if cfg.From == "" {
		return nil, errors.New("smtp: From is empty")
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("smtp: From %q: %w", cfg.From, err)
	}
	at := strings.LastIndexByte(from.Address, '@')
	if at < 0 {
		return nil, fmt.Errorf("smtp: From %q has no domain", cfg.From)
	}
	if cfg.Timeout < 0 {
		return nil, errors.New("smtp: Timeout is negative")
	}
	s := &Sender{
		ep:        ep,
		from:      from,
		domain:    from.Address[at+1:],
		localName: cfg.LocalName,
		timeout:   cfg.Timeout,
		now:       time.Now,
	}
	if s.localName == "" {
		s.localName = "localhost"
	}
	if strings.ContainsAny(s.localName, " \r\n") {
		return nil, errors.New("smtp: LocalName must be one word")
	}
	if s.timeout == 0 {
		s.timeout = DefaultTimeout
	}
	if cfg.TLSConfig != nil {
		s.tlsConfig = cfg.TLSConfig.Clone()
	} else {
		s.tlsConfig = &tls.Config{}
	}
	if s.tlsConfig.ServerName == "" {
		s.tlsConfig.ServerName = ep.host
	}
	if s.tlsConfig.MinVersion == 0 {
		s.tlsConfig.MinVersion = tls.VersionTLS12
	}
	return s, nil
}

// Send delivers m by email. See the package documentation for which errors
// are permanent.
func (s *Sender) Send(ctx context.Context, m vigil.Outbound) (vigil.SendResult, error) {
	if m.Channel != "" && m.Channel != vigil.ChannelEmail {
		return vigil.SendResult{}, vigil.Permanent(fmt.Errorf("smtp: cannot send channel %q", m.Channel))
	}
	rcpt, err := recipient(m.To)
	if err != nil {
		return vigil.SendResult{}, vigil.Permanent(err)
	}
	if m.Text == "" && m.HTML == "" {
		return vigil.SendResult{}, vigil.Permanent(errors.New("smtp: message has no body"))
	}
	msgID := messageID(m.ID, s.domain)
	data, err := s.compose(m, rcpt, msgID)
	if err != nil {
		return vigil.SendResult{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.deliver(ctx, rcpt, data); err != nil {
		return vigil.SendResult{}, err
	}
	return vigil.SendResult{Provider: "smtp", ProviderID: strings.Trim(msgID, "<>")}, nil
}

// recipient returns the bare address of to, refusing anything that could
// smuggle a second address or a header.
func recipient(to string) (string, error) {
	if strings.ContainsAny(to, "\r\n") {
		return "", errors.New("smtp: recipient contains a line break")
	}
	a, err := mail.ParseAddress(to)
	if err != nil || a.Name != "" || !strings.Contains(a.Address, "@") {
		// The address itself is personal data: not in the error.
		return "", errors.New("smtp: recipient is not a plain email address")
	}
	return a.Address, nil
}

// deliver runs one SMTP session. Every I/O step is bounded by ctx's
// deadline through the connection deadline, and cancelling ctx cuts the
// session short.
func (s *Sender) deliver(ctx context.Context, rcpt string, data []byte) error {
	deadline, _ := ctx.Deadline() // always set by Send
	d := net.Dialer{Timeout: dialTimeout}
	conn, err := d.DialContext(ctx, "tcp", s.ep.addr())
	if err != nil {
		return fmt.Errorf("smtp: connect to %s: %w", s.ep.addr(), err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return fmt.Errorf("smtp: set deadline: %w", err)
	}
	// A deadline in the past makes blocked reads and writes return at once.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	fail := func(stage string, err error) error { return s.classify(ctx, stage, rcpt, err) }

	if s.ep.mode == TLSImplicit {
		tc := tls.Client(conn, s.tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail("TLS handshake", err)
		}
		conn = tc
	}
	c, err := netsmtp.NewClient(conn, s.ep.host)
	if err != nil {
		return fail("greeting", err)
	}
	defer c.Close()
	if err := c.Hello(s.localName); err != nil {
		return fail("EHLO", err)
	}
	if s.ep.mode == TLSStartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return fmt.Errorf("smtp: %s does not offer STARTTLS (set tls=none to send in the clear)", s.ep.addr())
		}
		if err := c.StartTLS(s.tlsConfig); err != nil {
			return fail("STARTTLS", err)
		}
	}
	if s.ep.auth {
		a, err := s.authenticator(c)
		if err != nil {
			return err
		}
		if err := c.Auth(a); err != nil {
			return fail("AUTH", err)
		}
	}
	if err := c.Mail(s.from.Address); err != nil {
		return fail("MAIL FROM", err)
	}
	if err := c.Rcpt(rcpt); err != nil {
		return fail("RCPT TO", err)
	}
	w, err := c.Data()
	if err != nil {
		return fail("DATA", err)
	}
	if _, err := w.Write(data); err != nil {
		return fail("DATA", err)
	}
	if err := w.Close(); err != nil {
		return fail("end of DATA", err)
	}
	// The server has taken the message; a failed QUIT changes nothing.
	_ = c.Quit()
	return nil
}

func (s *Sender) authenticator(c *netsmtp.Client) (netsmtp.Auth, error) {
	ok, offered := c.Extension("AUTH")
	if !ok {
		return nil, fmt.Errorf("smtp: %s does not offer AUTH", s.ep.addr())
	}
	mechs := strings.Fields(strings.ToUpper(offered))
	switch {
	case slices.Contains(mechs, "PLAIN"):
		return netsmtp.PlainAuth("", s.ep.user, s.ep.password, s.ep.host), nil
	case slices.Contains(mechs, "LOGIN"):
		return &loginAuth{user: s.ep.user, password: s.ep.password, host: s.ep.host}, nil
	default:
		return nil, fmt.Errorf("smtp: %s offers AUTH %s; supported are PLAIN and LOGIN", s.ep.addr(), offered)
	}
}

// loginAuth is the LOGIN mechanism, which some servers (Office 365) offer
// instead of PLAIN. Like net/smtp's PlainAuth it sends credentials only
// over TLS or to localhost.
type loginAuth struct {
	user, password, host string
}

func (a *loginAuth) Start(server *netsmtp.ServerInfo) (string, []byte, error) {
	if !server.TLS && !isLocalhost(server.Name) {
		return "", nil, errors.New("unencrypted connection")
	}
	if server.Name != a.host {
		return "", nil, errors.New("wrong host name")
	}
	return "LOGIN", nil, nil
}

func (a *loginAuth) Next(fromServer []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	switch prompt := strings.ToLower(strings.TrimSpace(string(fromServer))); {
	case strings.HasPrefix(prompt, "user"):
		return []byte(a.user), nil
	case strings.HasPrefix(prompt, "pass"):
		return []byte(a.password), nil
	default:
		return nil, fmt.Errorf("unexpected LOGIN prompt %q", prompt)
	}
}
