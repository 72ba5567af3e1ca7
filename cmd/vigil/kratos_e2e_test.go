package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil/internal/kratostest"
	"github.com/vigil-auth/vigil/internal/pgtest"
	"github.com/vigil-auth/vigil/internal/smtptest"
)

// The tests in this file run Vigil, wired as `vigil serve` wires it, on
// PostgreSQL beside a real Ory Kratos (KRATOS_BIN) configured with
// examples/kratos. They skip with one line when no Kratos binary is found.

const kratosPassword = "correct-horse-battery-staple-42"

// smsSink is a generic HTTP SMS provider: it records Kratos-courier-shaped
// bodies ({"to","body"}).
type smsSink struct {
	srv  *httptest.Server
	mu   sync.Mutex
	sent []struct{ To, Body string }
}

func newSMSSink(t *testing.T) *smsSink {
	t.Helper()
	s := &smsSink{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m struct {
			To   string `json:"to"`
			Body string `json:"body"`
		}
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.sent = append(s.sent, struct{ To, Body string }{m.To, m.Body})
		s.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *smsSink) messages() []struct{ To, Body string } {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]struct{ To, Body string }(nil), s.sent...)
}

// switchProxy forwards to a target while up and answers 503 while down:
// an outage of Kratos' admin API.
type switchProxy struct {
	srv  *httptest.Server
	down atomic.Bool
}

func newSwitchProxy(t *testing.T, target string) *switchProxy {
	t.Helper()
	u, err := url.Parse(target)
	require.NoError(t, err)
	p := &switchProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

type kratosEnv struct {
	kratos    *kratostest.Kratos
	vigil     *Main
	mail      *smtptest.Server
	sms       *smsSink
	adminLink *switchProxy // Vigil reaches Kratos' admin API through it
	public    string       // Vigil's public listener
}

type kratosOptions struct {
	configure func(*Config)
	// hookURL rewrites the hook base URL Kratos calls (default Vigil's
	// admin listener).
	hookURL func(vigilAdmin string) string
	// replace adds text replacements to the Kratos config copy.
	replace map[string]string
}

func startWithKratos(t *testing.T, o kratosOptions) *kratosEnv {
	t.Helper()
	kratostest.Bin(t)
	e := &kratosEnv{mail: smtptest.Start(t), sms: newSMSSink(t)}

	cfg := testConfig(t)
	cfg.DSN = pgtest.DSN(t)
	cfg.Delivery.Email.Provider = providerSMTP
	cfg.Delivery.Email.SMTP.URL = e.mail.URL()
	cfg.Delivery.Email.SMTP.From = "Vigil <no-reply@example.com>"
	cfg.Delivery.SMS.Provider = providerHTTP
	cfg.Delivery.SMS.HTTP.URL = e.sms.srv.URL
	if o.configure != nil {
		o.configure(&cfg)
	}

	vigilAdmin := "http://127.0.0.1:" + strconv.Itoa(cfg.Serve.Admin.Port)
	hookBase := vigilAdmin
	if o.hookURL != nil {
		hookBase = o.hookURL(vigilAdmin)
	}
	replace := map[string]string{
		"http://127.0.0.1:4481":   hookBase,
		"change-me-hooks-api-key": cfg.Hooks.APIKey,
	}
	maps.Copy(replace, o.replace)
	e.kratos = kratostest.Start(t, kratostest.Options{
		// Tests run in their package's directory.
		ConfigDir: filepath.Join("..", "..", "examples", "kratos"),
		Replace:   replace,
	})
	e.adminLink = newSwitchProxy(t, e.kratos.AdminURL)
	cfg.Kratos.AdminURL = e.adminLink.srv.URL
	cfg.Kratos.PublicURL = e.kratos.PublicURL
	require.NoError(t, cfg.Validate())

	var stdout, stderr syncBuffer
	e.vigil = NewMain(cfg, &stdout, &stderr)
	require.NoError(t, e.vigil.Serve(context.Background(), OpenOptions{Migrate: true}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("vigil log:\n%s", stderr.String())
		}
		_ = e.vigil.Close(context.Background())
	})
	e.public = "http://" + e.vigil.PublicAddr.String()
	return e
}

var sixDigits = regexp.MustCompile(`\b\d{6}\b`)

// emailCode waits for the n-th email and returns the code in it.
func (e *kratosEnv) emailCode(t *testing.T, n int) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	msgs, err := e.mail.WaitFor(ctx, n)
	require.NoError(t, err, "waiting for email %d", n)
	code := sixDigits.FindString(msgs[n-1].MustParse(t).Text())
	require.NotEmpty(t, code)
	return code
}

func (e *kratosEnv) smsCode(t *testing.T, n int) (to, code string) {
	t.Helper()
	require.Eventually(t, func() bool { return len(e.sms.messages()) >= n }, 20*time.Second, 50*time.Millisecond, "waiting for sms %d", n)
	m := e.sms.messages()[n-1]
	return m.To, sixDigits.FindString(m.Body)
}

// uiMessage is the one global message of a refused login flow.
func uiMessage(t *testing.T, body []byte) (id int, ctx map[string]any) {
	t.Helper()
	var flow struct {
		UI struct {
			Messages []struct {
				ID      int            `json:"id"`
				Context map[string]any `json:"context"`
			} `json:"messages"`
		} `json:"ui"`
	}
	require.NoError(t, json.Unmarshal(body, &flow), "%s", body)
	require.Len(t, flow.UI.Messages, 1, "%s", body)
	return flow.UI.Messages[0].ID, flow.UI.Messages[0].Context
}

// submitCode posts a code to Vigil's public API as the user's app would.
func (e *kratosEnv) submitCode(t *testing.T, challenge, code string) {
	t.Helper()
	resp, err := http.Post(e.public+"/self-service/verifications/"+challenge+"/code", "application/json",
		bytes.NewReader([]byte(`{"code":"`+code+`"}`)))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
}

// address returns the Kratos verifiable address with the channel.
func address(t *testing.T, identity map[string]any, via string) map[string]any {
	t.Helper()
	addrs, _ := identity["verifiable_addresses"].([]any)
	for _, a := range addrs {
		m, _ := a.(map[string]any)
		if m["via"] == via {
			return m
		}
	}
	t.Fatalf("no %s address in %v", via, identity)
	return nil
}

func (e *kratosEnv) waitVerifiedAtKratos(t *testing.T, id, via string, within time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool {
		return address(t, e.kratos.Identity(t, id), via)["verified"] == true
	}, within, 200*time.Millisecond, "Kratos never shows the %s address verified", via)
	ident := e.kratos.Identity(t, id)
	require.Equal(t, "completed", address(t, ident, via)["status"])
	meta, _ := ident["metadata_public"].(map[string]any)
	v, _ := meta["vigil"].(map[string]any)
	require.Equal(t, true, v["verified"], "metadata_public.vigil: %v", meta)
}

func TestKratosRegisterVerifyLogin(t *testing.T) {
	t.Parallel()
	e := startWithKratos(t, kratosOptions{})

	id, resp := e.kratos.Register(t, map[string]any{"email": "Alice@Example.com", "phone": "+4915123456789"}, kratosPassword, nil)
	require.NotEmpty(t, id, "registration: %d %s", resp.Status, resp.Body)
	code := e.emailCode(t, 1)

	flow := e.kratos.LoginFlow(t)
	status, body := e.kratos.SubmitLogin(t, flow, "alice@example.com", kratosPassword, nil)
	require.Equal(t, http.StatusBadRequest, status, "%s", body)
	msgID, ctx := uiMessage(t, body)
	require.Equal(t, 4070001, msgID)
	require.Equal(t, "verification_required", ctx["reason"])
	require.Equal(t, "email", ctx["channel"])
	require.Equal(t, "a***@example.com", ctx["destination"])
	challenge, _ := ctx["challenge_id"].(string)
	require.NotEmpty(t, challenge)
	require.Empty(t, kratostest.SessionTokenOrEmpty(body), "a refused login leaves no session")

	e.submitCode(t, challenge, code)
	e.waitVerifiedAtKratos(t, id, "email", 20*time.Second)

	status, body = e.kratos.SubmitLogin(t, flow, "alice@example.com", kratosPassword, nil)
	require.Equal(t, http.StatusOK, status, "the same flow, submitted again: %s", body)
	token := kratostest.SessionToken(t, body)

	// Forward-auth and the user's own status recognise the session.
	req, err := http.NewRequest(http.MethodGet, e.public+"/authz", nil)
	require.NoError(t, err)
	req.Header.Set("X-Session-Token", token)
	r, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	r.Body.Close()
	require.Equal(t, http.StatusOK, r.StatusCode)
	require.Equal(t, id, r.Header.Get("X-Vigil-Identity"))
	r, err = http.Get(e.public + "/authz")
	require.NoError(t, err)
	r.Body.Close()
	require.Equal(t, http.StatusUnauthorized, r.StatusCode)

	require.Len(t, e.mail.Messages(), 1, "one code, no more")
}

func TestKratosRequirePhone(t *testing.T) {
	t.Parallel()
	e := startWithKratos(t, kratosOptions{configure: func(c *Config) {
		c.Verification.EnableSMSVerification = true
		c.Verification.Require = "phone"
	}})
	id, resp := e.kratos.Register(t, map[string]any{"email": "bob@example.com", "phone": "+49 151 23456780"}, kratosPassword, nil)
	require.NotEmpty(t, id, "registration: %d %s", resp.Status, resp.Body)
	to, code := e.smsCode(t, 1)
	require.Equal(t, "+4915123456780", to)

	// An unverified user also cannot reach the app through forward-auth.
	flow := e.kratos.LoginFlow(t)
	status, body := e.kratos.SubmitLogin(t, flow, "bob@example.com", kratosPassword, nil)
	require.Equal(t, http.StatusBadRequest, status, "%s", body)
	msgID, ctx := uiMessage(t, body)
	require.Equal(t, 4070001, msgID)
	require.Equal(t, "sms", ctx["channel"])
	require.Equal(t, "+49 151 ****780", ctx["destination"])

	challenge, _ := ctx["challenge_id"].(string)
	e.submitCode(t, challenge, code)
	e.waitVerifiedAtKratos(t, id, "sms", 20*time.Second)
	status, body = e.kratos.SubmitLogin(t, flow, "bob@example.com", kratosPassword, nil)
	require.Equal(t, http.StatusOK, status, "%s", body)
	require.Empty(t, e.mail.Messages(), "require phone: no email")
}

func TestKratosHookSecret(t *testing.T) {
	t.Parallel()
	for name, replace := range map[string]map[string]string{
		"wrong key":   {"change-me-hooks-api-key": "not-the-hooks-key-at-all"},
		"missing key": {"name: X-Vigil-Key": "name: X-Something-Else"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := startWithKratos(t, kratosOptions{replace: replace})
			// Replace applies after the default key replacement only where
			// the test's map names it; make sure the wrong value wins.
			id, _ := e.kratos.Register(t, map[string]any{"email": "carol@example.com"}, kratosPassword, nil)
			status, body := e.kratos.Login(t, "carol@example.com", kratosPassword, nil)
			require.NotEqual(t, http.StatusOK, status, "no session without a valid hook key: %s", body)
			require.Empty(t, kratostest.SessionTokenOrEmpty(body))
			time.Sleep(500 * time.Millisecond)
			require.Empty(t, e.mail.Messages(), "a refused hook call changes nothing")
			if id != "" {
				st, err := e.vigil.Service.IdentityStatus(context.Background(), id)
				require.NoError(t, err)
				require.Empty(t, st.Addresses)
			}
		})
	}
}

func TestKratosRetryOfOneTriggerSendsOneMessage(t *testing.T) {
	t.Parallel()
	// Between Kratos and Vigil: the first call of each trigger id reaches
	// Vigil, but Kratos is told 500, so it retries the same execution.
	var mu sync.Mutex
	seen := map[string]int{}
	var vigilAdmin string
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		trigger := r.Header.Get("Ory-Webhook-Trigger-Id")
		mu.Lock()
		seen[trigger]++
		first := seen[trigger] == 1
		mu.Unlock()
		u, _ := url.Parse(vigilAdmin)
		rec := httptest.NewRecorder()
		httputil.NewSingleHostReverseProxy(u).ServeHTTP(rec, r)
		if first {
			http.Error(w, "lost answer", http.StatusInternalServerError)
			return
		}
		maps.Copy(w.Header(), rec.Header())
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(flaky.Close)
	e := startWithKratos(t, kratosOptions{hookURL: func(admin string) string {
		vigilAdmin = admin
		return flaky.URL
	}})

	id, resp := e.kratos.Register(t, map[string]any{"email": "dan@example.com"}, kratosPassword, nil)
	require.NotEmpty(t, id, "registration: %d %s", resp.Status, resp.Body)
	status, body := e.kratos.Login(t, "dan@example.com", kratosPassword, nil)
	require.Equal(t, http.StatusBadRequest, status, "%s", body)
	msgID, _ := uiMessage(t, body)
	require.Equal(t, 4070001, msgID)

	e.emailCode(t, 1)
	time.Sleep(time.Second)
	require.Len(t, e.mail.Messages(), 1, "Kratos retried, Vigil sent once")
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, seen, 2, "one registration and one login execution")
	for trigger, n := range seen {
		require.Equal(t, 2, n, "trigger %s was retried once", trigger)
	}
}

func TestKratosAdminOutageQueuesSync(t *testing.T) {
	t.Parallel()
	e := startWithKratos(t, kratosOptions{})
	id, resp := e.kratos.Register(t, map[string]any{"email": "eve@example.com"}, kratosPassword, nil)
	require.NotEmpty(t, id, "registration: %d %s", resp.Status, resp.Body)
	code := e.emailCode(t, 1)
	flow := e.kratos.LoginFlow(t)
	status, body := e.kratos.SubmitLogin(t, flow, "eve@example.com", kratosPassword, nil)
	require.Equal(t, http.StatusBadRequest, status, "%s", body)
	_, ctx := uiMessage(t, body)

	e.adminLink.down.Store(true)
	challenge, _ := ctx["challenge_id"].(string)
	e.submitCode(t, challenge, code)
	// Kratos' admin API is down: the gate still decides from Vigil's own
	// record, and the sync waits in the queue.
	status, body = e.kratos.SubmitLogin(t, flow, "eve@example.com", kratosPassword, nil)
	require.Equal(t, http.StatusOK, status, "%s", body)
	require.Equal(t, false, address(t, e.kratos.Identity(t, id), "email")["verified"])

	e.adminLink.down.Store(false)
	e.waitVerifiedAtKratos(t, id, "email", 45*time.Second)
}

// TestKratosMessageLanguage: the code is written in the identity's locale
// trait, else in the language of the browser that registered, as Kratos
// passes them to the hooks.
func TestKratosMessageLanguage(t *testing.T) {
	t.Parallel()
	e := startWithKratos(t, kratosOptions{})
	subject := func(n int) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		msgs, err := e.mail.WaitFor(ctx, n)
		require.NoError(t, err, "waiting for email %d", n)
		return msgs[n-1].MustParse(t).Subject
	}

	id, resp := e.kratos.Register(t, map[string]any{"email": "fritz@example.com", "locale": "de-AT"}, kratosPassword, nil)
	require.NotEmpty(t, id, "%s", resp.Body)
	require.Equal(t, "Bestätigen Sie Ihre E-Mail-Adresse", subject(1), "the locale trait, by its base language")

	flow := e.kratos.RegistrationFlow(t)
	resp = e.kratos.Do(t, http.MethodPost, e.kratos.PublicURL+"/self-service/registration?flow="+url.QueryEscape(flow),
		map[string]any{"method": "password", "password": kratosPassword, "traits": map[string]any{"email": "amelie@example.com"}},
		http.Header{"Accept-Language": {"fr-CH, fr;q=0.9, en;q=0.5"}})
	require.Equal(t, http.StatusOK, resp.Status, "%s", resp.Body)
	require.Equal(t, "Confirmez votre adresse e-mail", subject(2), "no locale trait: the browser's Accept-Language")
}

// checkCode posts a code to Vigil's public API with the rest of what an app
// may send, and returns the answer.
func (e *kratosEnv) checkCode(t *testing.T, challenge string, body map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	resp, err := http.Post(e.public+"/self-service/verifications/"+challenge+"/code", "application/json", bytes.NewReader(b))
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", raw)
	var out map[string]any
	require.NoError(t, json.Unmarshal(raw, &out))
	return out
}

// TestKratosTrustedDevices walks a native app through step-up on new
// devices: device A is challenged, passes, is trusted, and then logs in
// without a challenge; device B is challenged; once A is revoked, A is
// challenged again.
func TestKratosTrustedDevices(t *testing.T) {
	t.Parallel()
	e := startWithKratos(t, kratosOptions{configure: func(c *Config) {
		c.Devices.StepUpOnNewDevice = true
	}})
	const login = "dana@example.com"
	id, resp := e.kratos.Register(t, map[string]any{"email": login}, kratosPassword, nil)
	require.NotEmpty(t, id, "registration: %d %s", resp.Status, resp.Body)

	// The first login verifies the address; passing it for this flow is
	// also the step-up, so no second code is needed.
	flow := e.kratos.LoginFlow(t)
	status, body := e.kratos.SubmitLogin(t, flow, login, kratosPassword, nil)
	require.Equal(t, http.StatusBadRequest, status, "%s", body)
	msgID, ctx := uiMessage(t, body)
	require.Equal(t, 4070001, msgID)
	challenge, _ := ctx["challenge_id"].(string)
	e.checkCode(t, challenge, map[string]any{"code": e.emailCode(t, 1), "flow_id": flow})
	status, body = e.kratos.SubmitLogin(t, flow, login, kratosPassword, nil)
	require.Equal(t, http.StatusOK, status, "%s", body)

	// Device A: a new login from a device Vigil does not know.
	flow = e.kratos.LoginFlow(t)
	status, body = e.kratos.SubmitLogin(t, flow, login, kratosPassword, nil)
	require.Equal(t, http.StatusBadRequest, status, "%s", body)
	msgID, ctx = uiMessage(t, body)
	require.Equal(t, 4070009, msgID)
	require.Equal(t, "new_device", ctx["reason"])
	require.Equal(t, "email", ctx["channel"])
	require.Empty(t, kratostest.SessionTokenOrEmpty(body), "a challenged login leaves no session")
	challenge, _ = ctx["challenge_id"].(string)
	answer := e.checkCode(t, challenge, map[string]any{
		"code": e.emailCode(t, 2), "flow_id": flow,
		"trust_device": true, "device_kind": "mobile_app", "device_name": "Dana's phone",
	})
	tokenA, _ := answer["device_token"].(string)
	require.Len(t, tokenA, 43, "%v", answer)
	deviceA, _ := answer["device"].(map[string]any)
	require.Equal(t, "Dana's phone", deviceA["name"])
	device := map[string]any{"vigil_device": tokenA}
	status, body = e.kratos.SubmitLogin(t, flow, login, kratosPassword, device)
	require.Equal(t, http.StatusOK, status, "the passed flow, submitted again: %s", body)

	// The next login from A passes without a challenge.
	status, body = e.kratos.Login(t, login, kratosPassword, device)
	require.Equal(t, http.StatusOK, status, "%s", body)
	require.NotEmpty(t, kratostest.SessionToken(t, body))
	require.Len(t, e.mail.Messages(), 2, "no code for a trusted device")

	// Device B has no token, or a made-up one: challenged.
	for _, b := range []map[string]any{nil, {"vigil_device": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}} {
		status, body = e.kratos.Login(t, login, kratosPassword, b)
		require.Equal(t, http.StatusBadRequest, status, "%s", body)
		msgID, _ = uiMessage(t, body)
		require.Equal(t, 4070009, msgID)
	}

	// Revoke A: its next login is challenged.
	var list struct {
		Devices []struct {
			ID      string `json:"id"`
			Trusted bool   `json:"trusted"`
		} `json:"devices"`
	}
	admin := "http://" + e.vigil.AdminAddr.String()
	require.Equal(t, http.StatusOK, call(t, http.MethodGet, admin+"/admin/identities/"+id+"/devices", e.vigil.Config.Admin.APIKey, nil, &list))
	require.Len(t, list.Devices, 1)
	require.True(t, list.Devices[0].Trusted)
	require.Equal(t, http.StatusOK, call(t, http.MethodDelete, admin+"/admin/devices/"+list.Devices[0].ID, e.vigil.Config.Admin.APIKey, nil, nil))
	status, body = e.kratos.Login(t, login, kratosPassword, device)
	require.Equal(t, http.StatusBadRequest, status, "%s", body)
	msgID, ctx = uiMessage(t, body)
	require.Equal(t, 4070009, msgID)
	require.Equal(t, "new_device", ctx["reason"])
}
