package hooks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/flows"
	"github.com/vigil-auth/vigil/hooks"
	"github.com/vigil-auth/vigil/internal/vigiltest"
)

const (
	hookKey  = "hook-key-0123456789"
	identity = "9ab7e622-dfe6-4e57-b6df-8a9eb1bc23d9" // in the golden payloads
)

type testBundle struct {
	db    *vigiltest.DB
	svc   *flows.Service
	srv   *httptest.Server
	email *vigiltest.Sender
	sms   *vigiltest.Sender
	clock *vigiltest.Clock
}

func setup(t *testing.T, mod func(*flows.Config)) *testBundle {
	t.Helper()
	cfg := flows.Defaults()
	cfg.EnableSMS = true
	cfg.ResendFloor = 0
	if mod != nil {
		mod(&cfg)
	}
	keys, err := vigil.NewKeyring("0123456789abcdef0123456789abcdef-hooks-test")
	require.NoError(t, err)
	b := &testBundle{db: vigiltest.OpenSQLite(t), email: &vigiltest.Sender{}, sms: &vigiltest.Sender{}, clock: vigiltest.NewClock()}
	b.svc, err = flows.New(cfg, flows.Deps{Store: b.db.Store, Keys: keys, Clock: b.clock,
		Senders: map[vigil.Channel]vigil.Sender{vigil.ChannelEmail: b.email, vigil.ChannelSMS: b.sms}})
	require.NoError(t, err)
	b.srv = httptest.NewServer(hooks.New(hooks.Config{APIKey: hookKey, Logger: slog.New(slog.DiscardHandler)}, b.svc))
	t.Cleanup(b.srv.Close)
	return b
}

func golden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	require.NoError(t, err)
	return b
}

// call posts a body to a hook as Kratos does.
func (b *testBundle) call(t *testing.T, hook string, body []byte, hdr map[string]string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.srv.URL+"/hooks/kratos/"+hook, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Vigil-Key", hookKey)
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, out
}

func (b *testBundle) deliver(t *testing.T) {
	t.Helper()
	ms, err := b.db.Store.ListMessages(context.Background(), vigil.MessageFilter{Limit: 500})
	require.NoError(t, err)
	for _, m := range ms {
		if !m.Status.Done() {
			_, err := b.svc.Deliver(context.Background(), m.ID)
			require.NoError(t, err)
		}
	}
}

// kratosMessages is the shape Kratos reads from an interrupting answer.
type kratosMessages struct {
	Messages []struct {
		InstancePtr string `json:"instance_ptr"`
		Messages    []struct {
			ID      int            `json:"id"`
			Text    string         `json:"text"`
			Type    string         `json:"type"`
			Context map[string]any `json:"context"`
		} `json:"messages"`
	} `json:"messages"`
}

func parseMessages(t *testing.T, body []byte) kratosMessages {
	t.Helper()
	var m kratosMessages
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&m), "%s", body)
	require.Len(t, m.Messages, 1)
	require.Equal(t, "#/", m.Messages[0].InstancePtr)
	require.Len(t, m.Messages[0].Messages, 1)
	require.Equal(t, "error", m.Messages[0].Messages[0].Type)
	return m
}

var codeRE = regexp.MustCompile(`\b\d{6}\b`)

func TestGoldenLoginBlocksThenAllows(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	status, body := b.call(t, "login", golden(t, "login"), map[string]string{"Ory-Webhook-Trigger-Id": "t-1"})
	require.Equal(t, http.StatusForbidden, status)
	msg := parseMessages(t, body).Messages[0].Messages[0]
	require.Equal(t, hooks.MsgVerificationRequired, msg.ID)
	require.Equal(t, "verification_required", msg.Context["reason"])
	require.Equal(t, "email", msg.Context["channel"])
	require.Equal(t, "a***@example.com", msg.Context["destination"])
	require.Contains(t, msg.Text, "a***@example.com")
	challenge, _ := msg.Context["challenge_id"].(string)
	require.NotEmpty(t, challenge)

	// Kratos retries the same execution: same answer, nothing new sent.
	status2, body2 := b.call(t, "login", golden(t, "login"), map[string]string{"Ory-Webhook-Trigger-Id": "t-1"})
	require.Equal(t, status, status2)
	require.Equal(t, body, body2)
	// A new login while the code is valid reuses the challenge.
	_, body3 := b.call(t, "login", golden(t, "login"), map[string]string{"Ory-Webhook-Trigger-Id": "t-2"})
	require.Equal(t, challenge, parseMessages(t, body3).Messages[0].Messages[0].Context["challenge_id"])
	b.deliver(t)
	require.Len(t, b.email.Sent(), 1, "one code for all of it")
	require.Empty(t, b.sms.Sent(), "require any: email only")

	code := codeRE.FindString(b.email.Last(t).Text)
	_, err := b.svc.CheckCode(context.Background(), challenge, code, "")
	require.NoError(t, err)
	status, body = b.call(t, "login", golden(t, "login"), map[string]string{"Ory-Webhook-Trigger-Id": "t-3"})
	require.Equal(t, http.StatusNoContent, status, "%s", body)
	require.Empty(t, body)

	// A block is kept for Kratos' retries; an allow is not even recorded:
	// the allow path writes nothing.
	_, err = b.db.Store.GetHookResult(context.Background(), "t-1")
	require.NoError(t, err)
	_, err = b.db.Store.GetHookResult(context.Background(), "t-3")
	require.ErrorIs(t, err, vigil.ErrNotFound)
}

func TestLoginAllowsWhatKratosVerified(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	body := strings.Replace(string(golden(t, "login")), `"verified": false`, `"verified": true`, 1)
	status, out := b.call(t, "login", []byte(body), nil)
	require.Equal(t, http.StatusNoContent, status, "%s", out)
	addrs, err := b.db.Store.ListAddresses(context.Background(), identity)
	require.NoError(t, err)
	require.Empty(t, addrs, "the allow path writes nothing")
	require.Empty(t, b.email.Sent())
}

func TestLoginPolicies(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		mod     func(*flows.Config)
		body    func(string) string
		status  int
		msgID   int
		channel string
	}{
		{"require phone sends an sms", func(c *flows.Config) { c.Require = flows.RequirePhone }, nil, 403, hooks.MsgVerificationRequired, "sms"},
		{"gate off", func(c *flows.Config) { c.RequiredOnLogin = false }, nil, 204, 0, ""},
		{"soft mode lets through", func(c *flows.Config) { c.Soft = true }, nil, 204, 0, ""},
		{"inactive identity", nil, func(s string) string { return strings.ReplaceAll(s, `"state": "active"`, `"state": "inactive"`) }, 403, hooks.MsgInactive, ""},
		{"no verifiable address, block", nil, noAddresses, 403, hooks.MsgNoAddress, ""},
		{"no verifiable address, allow", func(c *flows.Config) { c.NoAddress = flows.NoAddressAllow }, noAddresses, 204, 0, ""},
		{"phone required but sms disabled", func(c *flows.Config) { c.Require = flows.RequirePhone; c.EnableSMS = false }, nil, 403, hooks.MsgNoAddress, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, tc.mod)
			body := string(golden(t, "login"))
			if tc.body != nil {
				body = tc.body(body)
			}
			status, out := b.call(t, "login", []byte(body), nil)
			require.Equal(t, tc.status, status, "%s", out)
			if tc.msgID == 0 {
				return
			}
			msg := parseMessages(t, out).Messages[0].Messages[0]
			require.Equal(t, tc.msgID, msg.ID)
			if tc.channel != "" {
				require.Equal(t, tc.channel, msg.Context["channel"])
			}
		})
	}
}

func noAddresses(s string) string {
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		panic(err)
	}
	id, ok := m["identity"].(map[string]any)
	if !ok {
		panic("golden login has no identity object")
	}
	id["verifiable_addresses"] = []any{}
	out, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(out)
}

func TestLoginLockedAndRateLimited(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	_, body := b.call(t, "login", golden(t, "login"), nil)
	challenge, ok := parseMessages(t, body).Messages[0].Messages[0].Context["challenge_id"].(string)
	require.True(t, ok)
	for range 3 {
		_, err := b.svc.CheckCode(context.Background(), challenge, "000000", "")
		require.Error(t, err)
	}
	status, body := b.call(t, "login", golden(t, "login"), nil)
	require.Equal(t, http.StatusForbidden, status)
	msg := parseMessages(t, body).Messages[0].Messages[0]
	require.Equal(t, hooks.MsgLocked, msg.ID)
	require.EqualValues(t, 60, msg.Context["retry_after"])

	// After the lock the dead code is replaced once the cooldown allows.
	b.clock.Advance(61 * time.Second)
	status, body = b.call(t, "login", golden(t, "login"), nil)
	require.Equal(t, http.StatusForbidden, status)
	require.Equal(t, hooks.MsgVerificationRequired, parseMessages(t, body).Messages[0].Messages[0].ID)
}

func TestHookAuthentication(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	for _, hdr := range []map[string]string{
		{"X-Vigil-Key": ""},
		{"X-Vigil-Key": "wrong"},
		{"X-Vigil-Key": hookKey + "x"},
		{"X-Vigil-Key": "", "Authorization": "Bearer wrong"},
	} {
		status, _ := b.call(t, "registration", golden(t, "registration"), hdr)
		require.Equal(t, http.StatusUnauthorized, status, "%v", hdr)
	}
	addrs, err := b.db.Store.ListAddresses(context.Background(), identity)
	require.NoError(t, err)
	require.Empty(t, addrs, "a refused call changes nothing")

	status, _ := b.call(t, "verification", golden(t, "verification"), map[string]string{"X-Vigil-Key": "", "Authorization": "Bearer " + hookKey})
	require.Equal(t, http.StatusNoContent, status)
	req, err := http.NewRequest(http.MethodPost, b.srv.URL+"/hooks/kratos/verification", bytes.NewReader(golden(t, "verification")))
	require.NoError(t, err)
	req.SetBasicAuth("kratos", hookKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
}

func TestGoldenRegistrationSettingsVerification(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *flows.Config) { c.Require = flows.RequireAll })
	ctx := context.Background()

	status, out := b.call(t, "registration", golden(t, "registration"), map[string]string{"Ory-Webhook-Trigger-Id": "r-1"})
	require.Equal(t, http.StatusNoContent, status, "%s", out)
	status, _ = b.call(t, "registration", golden(t, "registration"), map[string]string{"Ory-Webhook-Trigger-Id": "r-1"})
	require.Equal(t, http.StatusNoContent, status)
	b.deliver(t)
	require.Len(t, b.email.Sent(), 1, "require all: the email ...")
	require.Len(t, b.sms.Sent(), 1, "... and the phone, once each despite the retry")
	require.Equal(t, "+4915123456789", b.sms.Last(t).To)

	// The phone changed in the settings flow: the new number is verified.
	status, _ = b.call(t, "settings", golden(t, "settings"), nil)
	require.Equal(t, http.StatusNoContent, status)
	b.deliver(t)
	require.Len(t, b.sms.Sent(), 2)
	require.Equal(t, "+4915123456780", b.sms.Last(t).To)

	// Kratos verified the email in its own flow: Vigil counts it.
	status, _ = b.call(t, "verification", golden(t, "verification"), nil)
	require.Equal(t, http.StatusNoContent, status)
	st, err := b.svc.IdentityStatus(ctx, identity)
	require.NoError(t, err)
	states := map[string]vigil.AddressState{}
	for _, a := range st.Addresses {
		states[a.Destination] = a.State
	}
	require.Equal(t, vigil.AddressVerified, states["a***@example.com"])
	require.Equal(t, vigil.AddressPending, states["+49 151 ****780"])
	require.False(t, st.Verified, "require all: the phone is still missing")

	rep, err := b.svc.VerifyAudit(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK, rep.Reason)
}

func TestBadBodies(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	preIdentity := strings.ReplaceAll(string(golden(t, "login")), identity, "00000000-0000-0000-0000-000000000000")
	cases := []struct {
		name   string
		body   string
		status int
	}{
		{"not json", "hello", 400},
		{"empty", "", 400},
		{"no identity", `{"flow":{}}`, 400},
		{"id not a uuid", `{"identity":{"id":"x"}}`, 400},
		{"wrong type", `{"identity":{"id":1}}`, 400},
		{"trailing data", `{"identity":{"id":"` + identity + `"}} {}`, 400},
		{"before the identity is stored", preIdentity, 400},
		{"too large", `{"identity":{"id":"` + identity + `","x":"` + strings.Repeat("a", hooks.MaxBody) + `"}}`, 413},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			status, out := b.call(t, "login", []byte(tc.body), nil)
			require.Equal(t, tc.status, status, "%s", out)
			require.Equal(t, hooks.MsgBadRequest, parseMessages(t, out).Messages[0].Messages[0].ID)
		})
	}
}
