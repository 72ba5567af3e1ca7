package smtptest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	maxLineLen  = 4096
	maxDataSize = 10 << 20
	idleTimeout = time.Minute
)

// Message is one message the server accepted.
type Message struct {
	From string   // envelope sender (MAIL FROM), without angle brackets
	To   []string // envelope recipients (RCPT TO), in order
	// Data is the message as received after DATA: CRLF line endings,
	// dot-unstuffed, without the terminating ".".
	Data []byte
	TLS  bool   // the session was encrypted when DATA was sent
	Auth string // the authenticated user, empty without AUTH
}

// Hook decides the reply to one command. arg is the address for MAIL and
// RCPT and the received message for DATA. A zero code lets the server
// answer as it normally would; any other code is sent with text as the
// reply, and a code outside 2xx rejects the command.
type Hook func(arg string) (code int, text string)

// Reply returns a Hook that always answers with code and text.
func Reply(code int, text string) Hook {
	return func(string) (int, string) { return code, text }
}

// Option configures a Server at Start.
type Option func(*options)

type options struct {
	user, password string
	mechanisms     []string
	startTLS       bool
	implicitTLS    bool
}

// WithAuth makes the server require AUTH with these credentials before MAIL.
func WithAuth(user, password string) Option {
	return func(o *options) { o.user, o.password = user, password }
}

// WithAuthMechanisms sets the SASL mechanisms advertised and accepted with
// WithAuth, among "PLAIN" and "LOGIN" (default both).
func WithAuthMechanisms(mechanisms ...string) Option {
	return func(o *options) { o.mechanisms = mechanisms }
}

// WithSTARTTLS makes the server offer STARTTLS and refuse AUTH and MAIL
// before it, like a submission server on port 587.
func WithSTARTTLS() Option {
	return func(o *options) { o.startTLS = true }
}

// WithImplicitTLS makes the server speak TLS from the first byte, like a
// submission server on port 465.
func WithImplicitTLS() Option {
	return func(o *options) { o.implicitTLS = true }
}

// Server is a running SMTP server. Its methods are safe for concurrent use.
type Server struct {
	opts      options
	ln        net.Listener
	serverTLS *tls.Config
	clientTLS *tls.Config

	mu      sync.Mutex
	msgs    []Message
	changed chan struct{} // closed and replaced whenever msgs grows
	hooks   map[string]Hook
	conns   map[net.Conn]struct{}
	closed  bool

	wg sync.WaitGroup
}

// Start starts a server on 127.0.0.1 with a free port; it is closed when
// the test ends.
func Start(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s := &Server{
		changed: make(chan struct{}),
		hooks:   make(map[string]Hook),
		conns:   make(map[net.Conn]struct{}),
	}
	for _, o := range opts {
		o(&s.opts)
	}
	if s.opts.startTLS && s.opts.implicitTLS {
		tb.Fatal("smtptest: WithSTARTTLS and WithImplicitTLS exclude each other")
	}
	mechs := []string{"PLAIN", "LOGIN"}
	if len(s.opts.mechanisms) > 0 {
		mechs = nil
		for _, m := range s.opts.mechanisms {
			mechs = append(mechs, strings.ToUpper(m))
		}
	}
	s.opts.mechanisms = mechs
	if s.opts.startTLS || s.opts.implicitTLS {
		var err error
		s.serverTLS, s.clientTLS, err = selfSigned()
		if err != nil {
			tb.Fatalf("smtptest: certificate: %v", err)
		}
	}
	ln, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("smtptest: listen: %v", err)
	}
	if s.opts.implicitTLS {
		ln = tls.NewListener(ln, s.serverTLS)
	}
	s.ln = ln
	s.wg.Add(1)
	go s.serve()
	tb.Cleanup(s.Close)
	return s
}

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the URL to configure a client with: smtp:// with tls=none or
// tls=starttls, or smtps:// for implicit TLS, carrying the credentials of
// WithAuth.
func (s *Server) URL() string {
	u := url.URL{Scheme: "smtp", Host: s.Addr(), Path: "/"}
	switch {
	case s.opts.implicitTLS:
		u.Scheme = "smtps"
	case s.opts.startTLS:
		u.RawQuery = "tls=starttls"
	default:
		u.RawQuery = "tls=none"
	}
	if s.opts.user != "" {
		u.User = url.UserPassword(s.opts.user, s.opts.password)
	}
	return u.String()
}

// TLSConfig returns a client configuration (ServerName 127.0.0.1) that trusts the server's
// certificate, or nil when the server does not speak TLS.
func (s *Server) TLSConfig() *tls.Config {
	if s.clientTLS == nil {
		return nil
	}
	return s.clientTLS.Clone()
}

// OnMail sets the hook for MAIL FROM; nil removes it.
func (s *Server) OnMail(h Hook) { s.setHook("MAIL", h) }

// OnRcpt sets the hook for RCPT TO; nil removes it.
func (s *Server) OnRcpt(h Hook) { s.setHook("RCPT", h) }

// OnData sets the hook run after the message data arrived, deciding the
// final reply to DATA; nil removes it.
func (s *Server) OnData(h Hook) { s.setHook("DATA", h) }

func (s *Server) setHook(cmd string, h Hook) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h == nil {
		delete(s.hooks, cmd)
		return
	}
	s.hooks[cmd] = h
}

func (s *Server) hook(cmd string) Hook {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hooks[cmd]
}

// Messages returns the messages accepted so far, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// WaitFor waits until at least n messages were accepted and returns all
// accepted messages, or returns ctx's error with what arrived so far.
func (s *Server) WaitFor(ctx context.Context, n int) ([]Message, error) {
	for {
		s.mu.Lock()
		msgs := append([]Message(nil), s.msgs...)
		changed := s.changed
		s.mu.Unlock()
		if len(msgs) >= n {
			return msgs, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return msgs, fmt.Errorf("smtptest: %d of %d messages arrived: %w", len(msgs), n, ctx.Err())
		}
	}
}

// Close stops the server, drops open connections and waits for them to
// end. Hooks that block forever make it block too.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	_ = s.ln.Close()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// record keeps m and returns how many messages the server holds now.
func (s *Server) record(m Message) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m)
	close(s.changed)
	s.changed = make(chan struct{})
	return len(s.msgs)
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				_ = c.Close()
			}()
			newSession(s, c).run()
		}()
	}
}

// errQuit ends a session after its reply was written.
var errQuit = errors.New("quit")

type session struct {
	srv  *Server
	conn net.Conn
	r    *bufio.Reader
	w    *bufio.Writer

	tls    bool
	helo   bool
	ehlo   bool
	authed string

	from    string
	hasFrom bool
	rcpts   []string
}

func newSession(srv *Server, c net.Conn) *session {
	_, isTLS := c.(*tls.Conn)
	return &session{
		srv:  srv,
		conn: c,
		r:    bufio.NewReader(c),
		w:    bufio.NewWriter(c),
		tls:  isTLS,
	}
}

func (s *session) run() {
	if err := s.reply(220, "smtptest ESMTP ready"); err != nil {
		return
	}
	for {
		_ = s.conn.SetDeadline(time.Now().Add(idleTimeout))
		line, err := s.readLine()
		if errors.Is(err, errLineTooLong) {
			if s.reply(500, "5.5.2 Line too long") != nil {
				return
			}
			continue
		}
		if err != nil {
			return
		}
		if err := s.command(line); err != nil {
			return
		}
	}
}

var errLineTooLong = errors.New("line too long")

// readLine reads one CRLF (or LF) terminated line without its ending.
func (s *session) readLine() (string, error) {
	var buf []byte
	for {
		chunk, err := s.r.ReadSlice('\n')
		if len(buf)+len(chunk) > maxLineLen {
			// Drop the rest of the line so the session can go on.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = s.r.ReadSlice('\n')
			}
			if err != nil {
				return "", err
			}
			return "", errLineTooLong
		}
		buf = append(buf, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return "", err
		}
		return strings.TrimRight(string(buf), "\r\n"), nil
	}
}

func (s *session) reply(code int, lines ...string) error {
	for i, l := range lines {
		sep := "-"
		if i == len(lines)-1 {
			sep = " "
		}
		fmt.Fprintf(s.w, "%d%s%s\r\n", code, sep, l)
	}
	return s.w.Flush()
}

func (s *session) command(line string) error {
	verb, arg, _ := strings.Cut(line, " ")
	verb = strings.ToUpper(verb)
	switch verb {
	case "EHLO", "HELO":
		return s.hello(verb, arg)
	case "STARTTLS":
		return s.startTLS()
	case "AUTH":
		return s.auth(arg)
	case "MAIL":
		return s.mail(arg)
	case "RCPT":
		return s.rcpt(arg)
	case "DATA":
		return s.data()
	case "RSET":
		s.resetTx()
		return s.reply(250, "2.0.0 OK")
	case "NOOP":
		return s.reply(250, "2.0.0 OK")
	case "VRFY":
		return s.reply(252, "2.1.5 Cannot VRFY user, but will accept message")
	case "QUIT":
		_ = s.reply(221, "2.0.0 Bye")
		return errQuit
	default:
		return s.reply(502, "5.5.2 Command not recognized")
	}
}

func (s *session) resetTx() {
	s.from, s.hasFrom, s.rcpts = "", false, nil
}

func (s *session) authRequired() bool { return s.srv.opts.user != "" }

func (s *session) needTLS() bool { return s.srv.opts.startTLS && !s.tls }

func (s *session) hello(verb, arg string) error {
	if strings.TrimSpace(arg) == "" {
		return s.reply(501, "5.5.4 Syntax: "+verb+" hostname")
	}
	s.resetTx()
	s.helo = true
	s.ehlo = verb == "EHLO"
	if !s.ehlo {
		return s.reply(250, "smtptest")
	}
	lines := []string{"smtptest greets " + arg, "8BITMIME", "ENHANCEDSTATUSCODES", "SIZE " + strconv.Itoa(maxDataSize)}
	if s.needTLS() {
		lines = append(lines, "STARTTLS")
	}
	if s.authRequired() && !s.needTLS() {
		lines = append(lines, "AUTH "+strings.Join(s.srv.opts.mechanisms, " "))
	}
	lines = append(lines, "HELP")
	return s.reply(250, lines...)
}

func (s *session) startTLS() error {
	if !s.needTLS() {
		return s.reply(502, "5.5.1 STARTTLS not available")
	}
	if err := s.reply(220, "2.0.0 Ready to start TLS"); err != nil {
		return err
	}
	tc := tls.Server(s.conn, s.srv.serverTLS)
	// The connection deadline bounds the handshake.
	if err := tc.HandshakeContext(context.Background()); err != nil {
		return err
	}
	// RFC 3207: the client starts over with EHLO, and the server forgets
	// everything it learned before.
	s.conn = tc
	s.r = bufio.NewReader(tc)
	s.w = bufio.NewWriter(tc)
	s.tls = true
	s.helo, s.ehlo, s.authed = false, false, ""
	s.resetTx()
	return nil
}

func (s *session) auth(arg string) error {
	switch {
	case !s.authRequired():
		return s.reply(502, "5.5.1 AUTH not available")
	case s.needTLS():
		return s.reply(530, "5.7.0 Must issue a STARTTLS command first")
	case !s.ehlo:
		return s.reply(503, "5.5.1 EHLO first")
	case s.authed != "":
		return s.reply(503, "5.5.1 Already authenticated")
	}
	mech, initial, _ := strings.Cut(strings.TrimSpace(arg), " ")
	mech = strings.ToUpper(mech)
	offered := false
	for _, m := range s.srv.opts.mechanisms {
		offered = offered || m == mech
	}
	if !offered {
		return s.reply(504, "5.5.4 Unrecognized authentication type")
	}
	var user, pass string
	switch mech {
	case "PLAIN":
		resp, ok, err := s.saslResponse(initial, "")
		if err != nil {
			return err
		}
		if !ok {
			return s.reply(501, "5.5.2 Cannot decode response")
		}
		parts := bytes.Split(resp, []byte{0})
		if len(parts) != 3 {
			return s.reply(501, "5.5.2 Malformed PLAIN response")
		}
		user, pass = string(parts[1]), string(parts[2])
	case "LOGIN":
		u, ok, err := s.saslResponse(initial, "Username:")
		if err != nil {
			return err
		}
		if !ok {
			return s.reply(501, "5.5.2 Cannot decode response")
		}
		p, ok, err := s.saslResponse("", "Password:")
		if err != nil {
			return err
		}
		if !ok {
			return s.reply(501, "5.5.2 Cannot decode response")
		}
		user, pass = string(u), string(p)
	default:
		return s.reply(504, "5.5.4 Unrecognized authentication type")
	}
	if user != s.srv.opts.user || pass != s.srv.opts.password {
		return s.reply(535, "5.7.8 Authentication credentials invalid")
	}
	s.authed = user
	return s.reply(235, "2.7.0 Authentication successful")
}

// saslResponse returns the client's decoded response: the initial response
// when one came with AUTH, otherwise the answer to a 334 challenge. ok is
// false when the client cancelled or sent something that does not decode;
// err is a broken connection.
func (s *session) saslResponse(initial, challenge string) (resp []byte, ok bool, err error) {
	if initial == "" {
		if err := s.reply(334, base64.StdEncoding.EncodeToString([]byte(challenge))); err != nil {
			return nil, false, err
		}
		if initial, err = s.readLine(); err != nil {
			return nil, false, err
		}
	}
	switch initial {
	case "*":
		return nil, false, nil
	case "=": // RFC 4954: an empty initial response
		return []byte{}, true, nil
	}
	b, decErr := base64.StdEncoding.DecodeString(initial)
	return b, decErr == nil, nil
}

// path parses "FROM:<addr> params" or "TO:<addr> params".
func path(arg, prefix string) (string, bool) {
	if len(arg) < len(prefix) || !strings.EqualFold(arg[:len(prefix)], prefix) {
		return "", false
	}
	rest := strings.TrimSpace(arg[len(prefix):])
	if !strings.HasPrefix(rest, "<") {
		return "", false
	}
	end := strings.IndexByte(rest, '>')
	if end < 0 {
		return "", false
	}
	return rest[1:end], true
}

func (s *session) mail(arg string) error {
	switch {
	case !s.helo:
		return s.reply(503, "5.5.1 EHLO or HELO first")
	case s.needTLS():
		return s.reply(530, "5.7.0 Must issue a STARTTLS command first")
	case s.authRequired() && s.authed == "":
		return s.reply(530, "5.7.0 Authentication required")
	case s.hasFrom:
		return s.reply(503, "5.5.1 Nested MAIL command")
	}
	from, ok := path(arg, "FROM:")
	if !ok {
		return s.reply(501, "5.5.4 Syntax: MAIL FROM:<address>")
	}
	if code, text := s.runHook("MAIL", from); code != 0 {
		if code/100 != 2 {
			return s.reply(code, text)
		}
		s.from, s.hasFrom = from, true
		return s.reply(code, text)
	}
	s.from, s.hasFrom = from, true
	return s.reply(250, "2.1.0 OK")
}

func (s *session) rcpt(arg string) error {
	if !s.hasFrom {
		return s.reply(503, "5.5.1 MAIL first")
	}
	to, ok := path(arg, "TO:")
	if !ok || to == "" {
		return s.reply(501, "5.5.4 Syntax: RCPT TO:<address>")
	}
	if code, text := s.runHook("RCPT", to); code != 0 {
		if code/100 == 2 {
			s.rcpts = append(s.rcpts, to)
		}
		return s.reply(code, text)
	}
	s.rcpts = append(s.rcpts, to)
	return s.reply(250, "2.1.5 OK")
}

func (s *session) data() error {
	if len(s.rcpts) == 0 {
		return s.reply(503, "5.5.1 RCPT first")
	}
	if err := s.reply(354, "End data with <CR><LF>.<CR><LF>"); err != nil {
		return err
	}
	var buf bytes.Buffer
	tooBig := false
	atLineStart := true
	for {
		_ = s.conn.SetDeadline(time.Now().Add(idleTimeout))
		line, err := s.r.ReadSlice('\n')
		partial := errors.Is(err, bufio.ErrBufferFull)
		if err != nil && !partial {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		if atLineStart {
			if string(line) == ".\r\n" || string(line) == ".\n" {
				break
			}
			if len(line) > 0 && line[0] == '.' {
				line = line[1:]
			}
		}
		atLineStart = !partial
		if buf.Len()+len(line) > maxDataSize {
			tooBig = true
			continue
		}
		buf.Write(line)
	}
	defer s.resetTx()
	if tooBig {
		return s.reply(552, "5.3.4 Message too big")
	}
	msg := Message{
		From: s.from,
		To:   append([]string(nil), s.rcpts...),
		Data: bytes.Clone(buf.Bytes()),
		TLS:  s.tls,
		Auth: s.authed,
	}
	code, text := s.runHook("DATA", string(msg.Data))
	if code != 0 && code/100 != 2 {
		return s.reply(code, text)
	}
	n := s.srv.record(msg)
	if code == 0 {
		code, text = 250, fmt.Sprintf("2.0.0 OK: queued as %d", n)
	}
	return s.reply(code, text)
}

func (s *session) runHook(cmd, arg string) (int, string) {
	h := s.srv.hook(cmd)
	if h == nil {
		return 0, ""
	}
	return h(arg)
}
