package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/adapters/sqlite"
	"github.com/vigil-auth/vigil/flows"
)

// These tests drive the real engine on a real SQLite file through HTTP.

const testSecret = "api-test-secret-0123456789abcdef-0123456789"

// recordingSender is a vigil.Sender that keeps what it was asked to send.
type recordingSender struct {
	mu   sync.Mutex
	sent []vigil.Outbound
}

func (s *recordingSender) Send(_ context.Context, m vigil.Outbound) (vigil.SendResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, m)
	return vigil.SendResult{Provider: "recording", ProviderID: m.ID}, nil
}

func (s *recordingSender) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sent)
}

func (s *recordingSender) last(t *testing.T) vigil.Outbound {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	require.NotEmpty(t, s.sent, "nothing was sent")
	return s.sent[len(s.sent)-1]
}

// testClock is a clock the test moves.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type testBundle struct {
	srv   *Server
	svc   *flows.Service
	email *recordingSender
	sms   *recordingSender
	clock *testClock
	logs  *logBuffer
	reg   *prometheus.Registry
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	return setupWith(t, nil)
}

// setupWith lets a test change the rules, the engine's dependencies and
// the server's configuration before they are built.
func setupWith(t *testing.T, mod func(*flows.Config, *flows.Deps, *Config)) *testBundle {
	t.Helper()
	ctx := context.Background()
	b := &testBundle{
		email: &recordingSender{},
		sms:   &recordingSender{},
		clock: &testClock{now: time.Now().UTC().Truncate(time.Microsecond)},
		logs:  &logBuffer{},
		reg:   prometheus.NewRegistry(),
	}
	store, err := sqlite.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "v.db"), sqlite.Options{Clock: b.clock, Logger: b.logs.logger()})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, store.Close()) })
	require.NoError(t, store.Migrate(ctx))

	keys, err := vigil.NewKeyring(testSecret)
	require.NoError(t, err)
	cfg := flows.Defaults()
	cfg.EnableSMS = true
	cfg.ResendFloor = 0
	deps := flows.Deps{
		Store:    store,
		Keys:     keys,
		Senders:  map[vigil.Channel]vigil.Sender{vigil.ChannelEmail: b.email, vigil.ChannelSMS: b.sms},
		Clock:    b.clock,
		Logger:   b.logs.logger(),
		Observer: NewMetrics(b.reg),
	}
	scfg := Config{Logger: b.logs.logger(), Registry: b.reg, Ready: store.Ping}
	if mod != nil {
		mod(&cfg, &deps, &scfg)
	}
	b.svc, err = flows.New(cfg, deps)
	require.NoError(t, err)
	b.srv, _ = newServer(t, scfg, b.svc)
	return b
}

func (b *testBundle) admin(t *testing.T, method, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	return do(t, b.srv.Admin(), req{method: method, path: path, body: body, admin: true})
}

func (b *testBundle) public(t *testing.T, method, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	return do(t, b.srv.Public(), req{method: method, path: path, body: body})
}

// start starts a verification through the admin API.
func (b *testBundle) start(t *testing.T, identity, address string, ch vigil.Channel, m vigil.Method) startResponse {
	t.Helper()
	body, err := json.Marshal(map[string]string{"identity_id": identity, "address": address, "channel": string(ch), "method": string(m)})
	require.NoError(t, err)
	w := b.admin(t, http.MethodPost, "/admin/verifications", string(body))
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	var st startResponse
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &st))
	require.True(t, validUUID(st.ID))
	require.Equal(t, "/admin/verifications/"+st.ID, w.Header().Get("Location"))
	require.True(t, st.ExpiresAt.After(b.clock.Now()))
	return st
}

// deliver runs the delivery job of every unfinished message of the
// identity once, finding them through the admin API.
func (b *testBundle) deliver(t *testing.T, identity string) {
	t.Helper()
	w := b.admin(t, http.MethodGet, "/admin/messages?identity_id="+identity, "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var list messagesResponse
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &list))
	for _, m := range list.Messages {
		if m.Status.Done() {
			continue
		}
		_, err := b.svc.Deliver(context.Background(), m.ID)
		require.NoError(t, err)
	}
}

var (
	codeRE  = regexp.MustCompile(`\b\d{6}\b`)
	tokenRE = regexp.MustCompile(`token=([A-Za-z0-9_%-]+)`)
)

func codeIn(t *testing.T, m vigil.Outbound) string {
	t.Helper()
	c := codeRE.FindString(m.Text)
	require.NotEmpty(t, c, "no code in message")
	return c
}

func tokenIn(t *testing.T, m vigil.Outbound) string {
	t.Helper()
	mm := tokenRE.FindStringSubmatch(m.Text)
	require.Len(t, mm, 2, "no link in message")
	tok, err := url.QueryUnescape(mm[1])
	require.NoError(t, err)
	return tok
}

func otherCode(code string) string {
	if code == "000000" {
		return "111111"
	}
	return "000000"
}

// noSecretsLogged fails when a code or token shows up in any log line of
// the engine, the store or the edge.
func (b *testBundle) noSecretsLogged(t *testing.T, secrets ...string) {
	t.Helper()
	out := b.logs.String()
	require.NotEmpty(t, out)
	for _, s := range secrets {
		require.NotContains(t, out, s, "a secret reached the logs")
	}
}

func decode[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &v), w.Body.String())
	return v
}

func TestCodeFlow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	identity := uuid.NewString()
	st := b.start(t, identity, "Ada@Example.com", vigil.ChannelEmail, vigil.MethodCode)
	b.deliver(t, identity)
	code := codeIn(t, b.email.last(t))
	codePath := "/self-service/verifications/" + st.ID + "/code"

	// A wrong code: 400 with attempts_left.
	w := b.public(t, http.MethodPost, codePath, `{"code":"`+otherCode(code)+`"}`)
	e := requireError(t, w, http.StatusBadRequest, vigil.EWRONGCODE)
	require.NotNil(t, e.AttemptsLeft)
	require.Equal(t, 2, *e.AttemptsLeft)

	// The right one: 200 verified.
	w = b.public(t, http.MethodPost, codePath, `{"code":"`+code+`"}`)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	v := decode[publicVerification](t, w)
	require.Equal(t, vigil.StateVerified, v.State)
	require.Equal(t, st.ID, v.ID)
	require.Equal(t, vigil.ChannelEmail, v.Channel)
	require.NotNil(t, v.VerifiedAt)
	require.NotContains(t, v.Destination, "ada@")
	require.NotContains(t, w.Body.String(), identity, "the public answer does not name the identity")

	// Used once: a second submission is a conflict.
	requireError(t, b.public(t, http.MethodPost, codePath, `{"code":"`+code+`"}`), http.StatusConflict, vigil.EUSED)

	// The admin API agrees.
	w = b.admin(t, http.MethodGet, "/admin/verifications/"+st.ID, "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	view := decode[flows.VerificationView](t, w)
	require.Equal(t, vigil.StateVerified, view.State)
	require.Equal(t, identity, view.IdentityID)

	w = b.admin(t, http.MethodGet, "/admin/identities/"+identity+"/verification", "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	status := decode[flows.IdentityStatus](t, w)
	require.True(t, status.Verified)
	require.Len(t, status.Addresses, 1)
	require.Equal(t, vigil.AddressVerified, status.Addresses[0].State)

	w = b.admin(t, http.MethodGet, "/admin/messages?identity_id="+identity, "")
	msgs := decode[messagesResponse](t, w)
	require.Len(t, msgs.Messages, 1)
	require.Equal(t, vigil.MessageSent, msgs.Messages[0].Status)
	require.NotContains(t, w.Body.String(), code, "bodies only in dev mode")

	// The audit trail: hex hashes chained, and intact.
	w = b.admin(t, http.MethodGet, "/admin/audit?identity_id="+identity, "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	audit := decode[auditResponse](t, w)
	require.NotEmpty(t, audit.Events)
	types := map[string]bool{}
	for _, ev := range audit.Events {
		types[ev.Type] = true
		require.Regexp(t, `^[0-9a-f]{64}$`, ev.Hash)
		require.Equal(t, identity, ev.IdentityID)
	}
	require.True(t, types[vigil.EventVerificationStarted])
	require.True(t, types[vigil.EventVerificationFailed])
	require.True(t, types[vigil.EventVerificationSucceeded])
	require.NotContains(t, w.Body.String(), code)

	w = b.admin(t, http.MethodGet, "/admin/audit?limit=1", "")
	page := decode[auditResponse](t, w)
	require.Len(t, page.Events, 1)
	require.NotNil(t, page.NextAfter)
	w = b.admin(t, http.MethodGet, "/admin/audit?limit=1&after="+itoa(*page.NextAfter), "")
	next := decode[auditResponse](t, w)
	require.Len(t, next.Events, 1)
	require.Greater(t, next.Events[0].Seq, page.Events[0].Seq)
	require.Equal(t, next.Events[0].PrevHash, page.Events[0].Hash)

	w = b.admin(t, http.MethodGet, "/admin/audit/verify", "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	rep := decode[flows.AuditReport](t, w)
	require.True(t, rep.OK)
	require.Positive(t, rep.Checked)

	// Metrics saw it all.
	metrics := do(t, b.srv.Admin(), req{method: http.MethodGet, path: "/metrics"}).Body.String()
	for _, want := range []string{
		`vigil_verifications_started_total{channel="email",purpose="verify_address"} 1`,
		`vigil_code_checks_total{channel="email",outcome="verified"} 1`,
		`vigil_code_checks_total{channel="email",outcome="wrong_code"} 1`,
		`vigil_message_attempts_total{channel="email",outcome="sent"} 1`,
		`route="/self-service/verifications/{id}/code"`,
	} {
		require.Contains(t, metrics, want)
	}
	require.NotContains(t, metrics, st.ID, "no ids in metric labels")

	b.noSecretsLogged(t, code)
}

func itoa(n int64) string { return strings.TrimSpace(string(must(json.Marshal(n)))) }

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// Three wrong codes kill the code and lock the identity for a while; the
// answers carry attempts_left and then retry_after with Retry-After.
func TestWrongCodesLock(t *testing.T) {
	t.Parallel()
	b := setup(t)
	identity := uuid.NewString()
	st := b.start(t, identity, "+4915112345678", vigil.ChannelSMS, vigil.MethodCode)
	b.deliver(t, identity)
	code := codeIn(t, b.sms.last(t))
	path := "/self-service/verifications/" + st.ID + "/code"
	for want := 2; want >= 0; want-- {
		w := b.public(t, http.MethodPost, path, `{"code":"`+otherCode(code)+`"}`)
		e := requireError(t, w, http.StatusBadRequest, vigil.EWRONGCODE)
		require.Equal(t, want, *e.AttemptsLeft)
		if want == 0 {
			require.Positive(t, e.RetryAfter)
			require.NotEmpty(t, w.Header().Get("Retry-After"))
		}
	}
	w := b.public(t, http.MethodPost, path, `{"code":"`+code+`"}`)
	e := requireError(t, w, http.StatusLocked, vigil.ELOCKED)
	require.Positive(t, e.RetryAfter)
	require.Equal(t, itoa(e.RetryAfter), w.Header().Get("Retry-After"))

	w = b.admin(t, http.MethodGet, "/admin/identities/"+identity+"/verification", "")
	status := decode[flows.IdentityStatus](t, w)
	require.True(t, status.Lock.Locked)

	w = b.admin(t, http.MethodPost, "/admin/identities/"+identity+"/unlock", "")
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
	require.Empty(t, w.Body.String())
	w = b.admin(t, http.MethodGet, "/admin/identities/"+identity+"/verification", "")
	require.False(t, decode[flows.IdentityStatus](t, w).Lock.Locked)
	b.noSecretsLogged(t, code)
}

func TestExpiredCode(t *testing.T) {
	t.Parallel()
	b := setup(t)
	identity := uuid.NewString()
	st := b.start(t, identity, "ex@example.com", vigil.ChannelEmail, vigil.MethodCode)
	b.deliver(t, identity)
	code := codeIn(t, b.email.last(t))
	b.clock.Add(16 * time.Minute)
	requireError(t, b.public(t, http.MethodPost, "/self-service/verifications/"+st.ID+"/code", `{"code":"`+code+`"}`), http.StatusGone, vigil.EEXPIRED)
}

func TestUnknownVerification(t *testing.T) {
	t.Parallel()
	b := setup(t)
	requireError(t, b.public(t, http.MethodPost, "/self-service/verifications/"+uuid.NewString()+"/code", `{"code":"123456"}`), http.StatusNotFound, vigil.ENOTFOUND)
	requireError(t, b.public(t, http.MethodPost, "/self-service/verifications/nope/code", `{"code":"123456"}`), http.StatusNotFound, vigil.ENOTFOUND)
	requireError(t, b.admin(t, http.MethodGet, "/admin/verifications/"+uuid.NewString(), ""), http.StatusNotFound, vigil.ENOTFOUND)
}

// A resend answers byte for byte the same for a known address in cooldown,
// an unknown address, a known id and an unknown id: status, headers (but
// Date and X-Request-Id) and body.
func TestResendIsIndistinguishable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	identity := uuid.NewString()
	st := b.start(t, identity, "known@example.com", vigil.ChannelEmail, vigil.MethodCode)
	b.deliver(t, identity)
	ts := httptest.NewServer(b.srv.Public())
	t.Cleanup(ts.Close)

	type answer struct {
		status int
		header http.Header
		body   string
	}
	ask := func(body string) answer {
		t.Helper()
		res, err := http.Post(ts.URL+"/self-service/verifications/resend", "application/json", strings.NewReader(body))
		require.NoError(t, err)
		defer res.Body.Close()
		raw, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		h := res.Header.Clone()
		h.Del("Date")
		h.Del("X-Request-ID")
		return answer{status: res.StatusCode, header: h, body: string(raw)}
	}
	known := ask(`{"address":"known@example.com"}`)
	require.Equal(t, http.StatusAccepted, known.status)
	require.JSONEq(t, `{"state":"accepted"}`, known.body)
	for _, body := range []string{
		`{"address":"unknown@example.com"}`,
		`{"id":"` + st.ID + `"}`,
		`{"id":"` + uuid.NewString() + `"}`,
		`{"address":"+4915112345678"}`,
	} {
		require.Equal(t, known, ask(body), body)
	}
	// After the cooldown the known address does get a new code, with the
	// same answer.
	before := b.email.count()
	b.clock.Add(61 * time.Second)
	require.Equal(t, known, ask(`{"address":"known@example.com"}`))
	b.deliver(t, identity)
	require.Equal(t, before+1, b.email.count())

	// Malformed input is the only thing that gets a 4xx.
	requireError(t, b.public(t, http.MethodPost, "/self-service/verifications/resend", `{"address":"not an address"}`), http.StatusBadRequest, vigil.EADDRESS)
	requireError(t, b.public(t, http.MethodPost, "/self-service/verifications/resend", `{"id":"nope"}`), http.StatusBadRequest, vigil.EINVALID)
}

func TestLinkFlow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	identity := uuid.NewString()
	st := b.start(t, identity, "link@example.com", vigil.ChannelEmail, vigil.MethodLink)
	b.deliver(t, identity)
	token := tokenIn(t, b.email.last(t))
	linkPath := "/self-service/verifications/link?token=" + url.QueryEscape(token)

	pending := func() {
		t.Helper()
		w := b.admin(t, http.MethodGet, "/admin/verifications/"+st.ID, "")
		require.Equal(t, vigil.StatePending, decode[flows.VerificationView](t, w).State)
	}

	// GET shows the confirm page and consumes nothing, however often.
	for range 2 {
		w := b.public(t, http.MethodGet, linkPath, "")
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		requirePageHeaders(t, w)
		page := w.Body.String()
		require.Contains(t, page, `<form method="post" action="link">`)
		require.Contains(t, page, `name="token" value="`+token+`"`)
		require.Contains(t, page, "Confirm your email address")
		require.NotContains(t, page, "link@example.com", "only the masked address")
		pending()
	}
	w := b.public(t, http.MethodHead, linkPath, "")
	require.Equal(t, http.StatusOK, w.Code)
	require.Empty(t, w.Body.String())
	requirePageHeaders(t, w)
	pending()

	// The form post consumes it and shows the success page.
	form := req{method: http.MethodPost, path: "/self-service/verifications/link", body: "token=" + url.QueryEscape(token), contentType: "application/x-www-form-urlencoded", headers: map[string]string{"Accept": "text/html,*/*;q=0.8"}}
	w = do(t, b.srv.Public(), form)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	requirePageHeaders(t, w)
	require.Contains(t, w.Body.String(), "Email address confirmed")
	require.NotContains(t, w.Body.String(), token)

	// Once only: a second post is a 409 page, or 409 JSON for apps.
	w = do(t, b.srv.Public(), form)
	require.Equal(t, http.StatusConflict, w.Code)
	requirePageHeaders(t, w)
	require.Contains(t, w.Body.String(), "already used")
	requireError(t, do(t, b.srv.Public(), req{method: http.MethodPost, path: "/self-service/verifications/link", body: `{"token":"` + token + `"}`}), http.StatusConflict, vigil.EUSED)

	// Opening it again says so too.
	w = b.public(t, http.MethodGet, linkPath, "")
	require.Equal(t, http.StatusConflict, w.Code)
	require.Contains(t, w.Body.String(), "already used")

	// Unknown tokens.
	w = b.public(t, http.MethodGet, "/self-service/verifications/link?token="+strings.Repeat("A", 43), "")
	require.Equal(t, http.StatusNotFound, w.Code)
	require.Contains(t, w.Body.String(), "not valid")
	requireError(t, do(t, b.srv.Public(), req{method: http.MethodPost, path: "/self-service/verifications/link", body: `{"token":"nope"}`}), http.StatusNotFound, vigil.ENOTFOUND)

	b.noSecretsLogged(t, token, url.QueryEscape(token))
}

// An app confirms with JSON and gets JSON; an expired link is a 410.
func TestLinkJSONAndExpiry(t *testing.T) {
	t.Parallel()
	b := setup(t)
	identity := uuid.NewString()
	b.start(t, identity, "app@example.com", vigil.ChannelEmail, vigil.MethodLink)
	b.start(t, identity, "late@example.com", vigil.ChannelEmail, vigil.MethodLink)
	b.deliver(t, identity)
	b.email.mu.Lock()
	first, second := b.email.sent[0], b.email.sent[1]
	b.email.mu.Unlock()
	if first.To != "app@example.com" {
		first, second = second, first
	}
	w := do(t, b.srv.Public(), req{method: http.MethodPost, path: "/self-service/verifications/link", body: `{"token":"` + tokenIn(t, first) + `"}`})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, vigil.StateVerified, decode[publicVerification](t, w).State)

	b.clock.Add(25 * time.Hour)
	late := tokenIn(t, second)
	w = b.public(t, http.MethodGet, "/self-service/verifications/link?token="+url.QueryEscape(late), "")
	require.Equal(t, http.StatusGone, w.Code)
	require.Contains(t, w.Body.String(), "expired")
	w = do(t, b.srv.Public(), req{method: http.MethodPost, path: "/self-service/verifications/link", body: "token=" + url.QueryEscape(late), contentType: "application/x-www-form-urlencoded"})
	require.Equal(t, http.StatusGone, w.Code)
	require.Contains(t, w.Body.String(), "expired")
	requireError(t, do(t, b.srv.Public(), req{method: http.MethodPost, path: "/self-service/verifications/link", body: `{"token":"` + late + `"}`}), http.StatusGone, vigil.EEXPIRED)
}

func requirePageHeaders(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	h := w.Header()
	require.Equal(t, "text/html; charset=utf-8", h.Get("Content-Type"))
	require.Equal(t, "no-referrer", h.Get("Referrer-Policy"))
	require.Equal(t, "no-store", h.Get("Cache-Control"))
	require.Equal(t, "DENY", h.Get("X-Frame-Options"))
	require.Contains(t, h.Get("Content-Security-Policy"), "default-src 'none'")
	require.NotEmpty(t, h.Get("X-Request-ID"))
}

func TestForceVerify(t *testing.T) {
	t.Parallel()
	b := setup(t)
	identity := uuid.NewString()
	w := b.admin(t, http.MethodPost, "/admin/identities/"+identity+"/addresses/verify", `{"address":"+4915112345678","channel":"sms"}`)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	st := decode[flows.AddressStatus](t, w)
	require.Equal(t, vigil.AddressVerified, st.State)
	require.Equal(t, vigil.ChannelSMS, st.Channel)
	require.NotContains(t, st.Destination, "12345678")

	requireError(t, b.admin(t, http.MethodPost, "/admin/identities/"+identity+"/addresses/verify", `{"address":"not a number","channel":"sms"}`), http.StatusBadRequest, vigil.EADDRESS)

	w = b.admin(t, http.MethodGet, "/admin/audit?identity_id="+identity, "")
	events := decode[auditResponse](t, w).Events
	require.NotEmpty(t, events)
	require.Equal(t, vigil.EventAddressForceVerified, events[len(events)-1].Type)
	require.Equal(t, "admin", events[len(events)-1].Actor)
}

func TestStartRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t)
	identity := uuid.NewString()
	requireError(t, b.admin(t, http.MethodPost, "/admin/verifications", `{"identity_id":"`+identity+`","address":"nope","channel":"email"}`), http.StatusBadRequest, vigil.EADDRESS)
	b.start(t, identity, "twice@example.com", vigil.ChannelEmail, vigil.MethodCode)
	b.deliver(t, identity)
	// Restarting inside the cooldown is refused with retry_after.
	w := b.admin(t, http.MethodPost, "/admin/verifications", `{"identity_id":"`+identity+`","address":"twice@example.com","channel":"email"}`)
	e := requireError(t, w, http.StatusTooManyRequests, vigil.ERATELIMITED)
	require.Positive(t, e.RetryAfter)
	require.Equal(t, itoa(e.RetryAfter), w.Header().Get("Retry-After"))
	// A verified address cannot be started again.
	require.Equal(t, http.StatusOK, b.admin(t, http.MethodPost, "/admin/identities/"+identity+"/addresses/verify", `{"address":"done@example.com","channel":"email"}`).Code)
	requireError(t, b.admin(t, http.MethodPost, "/admin/verifications", `{"identity_id":"`+identity+`","address":"done@example.com","channel":"email"}`), http.StatusConflict, vigil.EVERIFIED)
}

func TestBadInputWithEngine(t *testing.T) {
	t.Parallel()
	b := setup(t)
	testBadInput(t, b.srv, b.logs)
}

func TestReadyWithEngine(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, h := range []http.Handler{b.srv.Public(), b.srv.Admin()} {
		w := do(t, h, req{method: http.MethodGet, path: "/health/ready"})
		require.Equal(t, http.StatusOK, w.Code)
	}
}

// Fifty concurrent correct submissions: exactly one success.
func TestConcurrentCorrectCodes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	identity := uuid.NewString()
	st := b.start(t, identity, "race@example.com", vigil.ChannelEmail, vigil.MethodCode)
	b.deliver(t, identity)
	code := codeIn(t, b.email.last(t))
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		codes = map[int]int{}
	)
	for range 50 {
		wg.Go(func() {
			w := b.public(t, http.MethodPost, "/self-service/verifications/"+st.ID+"/code", `{"code":"`+code+`"}`)
			mu.Lock()
			codes[w.Code]++
			mu.Unlock()
		})
	}
	wg.Wait()
	require.Equal(t, 1, codes[http.StatusOK], "%v", codes)
	require.Zero(t, codes[http.StatusInternalServerError], "%v", codes)
}
