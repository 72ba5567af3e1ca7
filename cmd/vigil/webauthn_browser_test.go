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
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	cdpwebauthn "github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// The test in this file runs the binary behind a real, headless Chromium
// whose WebAuthn requests a virtual authenticator (CDP's WebAuthn domain)
// answers: the pages' own script registers and asserts credentials, and
// the test checks what Vigil does with them. It skips with one line when
// no Chromium is found ($CHROMIUM_BIN, /usr/bin/chromium,
// /usr/bin/chromium-browser).

const deviceCookieName = "vigil_device"

// chromiumPath finds the browser, or "" when there is none.
func chromiumPath() string {
	for _, p := range []string{os.Getenv("CHROMIUM_BIN"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// browser is one tab of a headless Chromium with a virtual platform
// authenticator (user verification on, presence simulated: without it,
// navigator.credentials.create waits for a touch that never comes).
type browser struct {
	ctx  context.Context //nolint:containedctx // a chromedp context is the tab itself: every action runs on it
	auth cdpwebauthn.AuthenticatorID
}

func startBrowser(t *testing.T, bin string) *browser {
	t.Helper()
	opts := slices.Clone(chromedp.DefaultExecAllocatorOptions[:])
	opts = append(opts,
		chromedp.ExecPath(bin),
		// Chromium refuses to run as root with its sandbox; CI runs as
		// root. The pages are ours, served on loopback.
		chromedp.NoSandbox,
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(cancel)
	// The first call starts the browser and binds it to the context it
	// gets: that context must not carry a timeout.
	require.NoError(t, chromedp.Do(ctx), "start %s", bin)
	b := &browser{ctx: ctx}
	_, err := chromedp.Call(b.step(t, 10*time.Second), cdpwebauthn.Enable, cdpwebauthn.EnableParams{EnableUI: new(false)})
	require.NoError(t, err)
	b.newAuthenticator(t)
	return b
}

// step is a context for one browser action, bounded by d.
func (b *browser) step(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, d)
	t.Cleanup(cancel)
	return ctx
}

// newAuthenticator replaces the tab's authenticator (if any) with a new
// one that holds no credentials: a different device.
func (b *browser) newAuthenticator(t *testing.T) {
	t.Helper()
	ctx := b.step(t, 10*time.Second)
	if b.auth != "" {
		_, err := chromedp.Call(ctx, cdpwebauthn.RemoveVirtualAuthenticator, cdpwebauthn.RemoveVirtualAuthenticatorParams{AuthenticatorID: b.auth})
		require.NoError(t, err)
	}
	res, err := chromedp.Call(ctx, cdpwebauthn.AddVirtualAuthenticator, cdpwebauthn.AddVirtualAuthenticatorParams{
		Options: &cdpwebauthn.VirtualAuthenticatorOptions{
			Protocol:                    cdpwebauthn.AuthenticatorProtocolCtap2,
			Ctap2version:                cdpwebauthn.Ctap2versionCtap21,
			Transport:                   cdpwebauthn.AuthenticatorTransportInternal,
			HasResidentKey:              true,
			HasUserVerification:         true,
			IsUserVerified:              true,
			AutomaticPresenceSimulation: true,
		},
	})
	require.NoError(t, err)
	b.auth = res.AuthenticatorID
}

func (b *browser) open(t *testing.T, u string) {
	t.Helper()
	require.NoError(t, chromedp.Do(b.step(t, 15*time.Second), chromedp.Navigate(u)), "open %s", u)
}

// press clicks #start and waits for #status to settle; it returns the
// final data-state ("done" or "error") and the status text.
func (b *browser) press(t *testing.T) (state, text string) {
	t.Helper()
	ctx := b.step(t, 30*time.Second)
	ran, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`typeof window.vigilWebAuthn === "object"`))
	require.NoError(t, err)
	require.True(t, ran, "the page's script did not run: does the CSP allow its hash?")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.ID("start"))))
	got, err := chromedp.Run(ctx, chromedp.Poll[string](`(() => {
		const s = document.getElementById("status");
		const v = s && s.getAttribute("data-state");
		return (v === "done" || v === "error") ? v + "|" + s.textContent : "";
	})()`, chromedp.WithPollingTimeout(25*time.Second)))
	require.NoError(t, err, "#status never settled")
	state, text, _ = strings.Cut(got, "|")
	return state, text
}

// assert runs navigator.credentials.get in the page, through the page's
// own window.vigilWebAuthn, on options a test fetched itself, and returns
// the credential JSON the page would post.
func (b *browser) assert(t *testing.T, options json.RawMessage) json.RawMessage {
	t.Helper()
	cred, err := chromedp.Run(b.step(t, 20*time.Second), chromedp.Evaluate[json.RawMessage](
		"window.vigilWebAuthn.get("+string(options)+")",
		chromedp.EvalAwaitPromise,
		func(p *runtime.EvaluateParams) { p.UserGesture = new(true) },
	))
	require.NoError(t, err)
	return cred
}

// cookie is the browser's device cookie for origin, "" when it has none.
func (b *browser) cookie(t *testing.T, origin string) *network.Cookie {
	t.Helper()
	res, err := chromedp.Call(b.step(t, 10*time.Second), network.GetCookies, network.GetCookiesParams{URLs: []string{origin + "/"}})
	require.NoError(t, err)
	for _, c := range res.Cookies {
		if c.Name == deviceCookieName {
			return c
		}
	}
	return nil
}

// setCookie stores a device token the test received itself, as the
// browser would have stored it from the same answer.
func (b *browser) setCookie(t *testing.T, origin string, c *http.Cookie) {
	t.Helper()
	p := c.Path
	if p == "" {
		p = "/"
	}
	_, err := chromedp.Call(b.step(t, 10*time.Second), network.SetCookie, network.SetCookieParams{
		Name: c.Name, Value: c.Value, URL: origin + "/", Path: p, HTTPOnly: new(c.HttpOnly),
	})
	require.NoError(t, err)
}

// lowerCounter sets the sign counter of the authenticator's only
// credential to 0: its next assertion reports 1, below what Vigil stored.
// (WebAuthn.addCredential fails on current Chromium; setting the
// property is the supported way.)
func (b *browser) lowerCounter(t *testing.T) {
	t.Helper()
	ctx := b.step(t, 10*time.Second)
	creds, err := chromedp.Call(ctx, cdpwebauthn.GetCredentials, cdpwebauthn.GetCredentialsParams{AuthenticatorID: b.auth})
	require.NoError(t, err)
	require.Len(t, creds.Credentials, 1)
	require.Greater(t, creds.Credentials[0].SignCount, 1.0, "the credential has asserted at least once")
	_, err = chromedp.Call(ctx, cdpwebauthn.SetCredentialProperties, cdpwebauthn.SetCredentialPropertiesParams{
		AuthenticatorID: b.auth, CredentialID: creds.Credentials[0].CredentialID, SignCount: new(0.0),
	})
	require.NoError(t, err)
}

// deviceRP is a vigil serve with devices on, its public listener at
// http://localhost:port (WebAuthn's rp id "localhost" needs that name,
// not 127.0.0.1).
type deviceRP struct {
	*served
	origin string
}

func deviceEnv(dsn string, extra map[string]string) map[string]string {
	env := map[string]string{
		"VIGIL_DSN":                           dsn,
		"VIGIL_SECRETS_SYSTEM":                testSecret,
		"VIGIL_ADMIN_API_KEY":                 testKey,
		"VIGIL_HOOKS_API_KEY":                 testHookKey,
		"VIGIL_DEVICES_STEP_UP_ON_NEW_DEVICE": "true",
		"VIGIL_DEVICES_COOKIE_SECURE":         "false",
		"VIGIL_DEVICES_WEBAUTHN_RP_ID":        "localhost",
		"VIGIL_DEVICES_WEBAUTHN_RP_NAME":      "Vigil e2e",
	}
	maps.Copy(env, extra)
	return env
}

// startRP runs vigil serve with env; the WebAuthn origins are its own
// and more.
func startRP(t *testing.T, bin, dir string, env map[string]string, more ...string) *deviceRP {
	t.Helper()
	port := freePort(t)
	origin := "http://localhost:" + strconv.Itoa(port)
	env = maps.Clone(env)
	env["VIGIL_SERVE_PUBLIC_BASE_URL"] = origin
	env["VIGIL_DEVICES_WEBAUTHN_ORIGINS"] = strings.Join(append([]string{origin}, more...), ",")
	return &deviceRP{served: serveOn(t, bin, dir, env, port), origin: origin}
}

// httpAnswer is an HTTP answer to a public call the test made itself.
type httpAnswer struct {
	status  int
	body    []byte
	cookies []*http.Cookie
}

func (a httpAnswer) device() *http.Cookie {
	for _, c := range a.cookies {
		if c.Name == deviceCookieName {
			return c
		}
	}
	return nil
}

// refused checks a refusal: a 4xx in Vigil's error shape, and no device
// token handed out.
func (a httpAnswer) refused(t *testing.T, what string) string {
	t.Helper()
	require.GreaterOrEqual(t, a.status, 400, "%s: %s", what, a.body)
	require.Less(t, a.status, 500, "%s: %s", what, a.body)
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal(a.body, &e), "%s: %s", what, a.body)
	require.NotEmpty(t, e.Error.Code, "%s: %s", what, a.body)
	require.NotEmpty(t, e.Error.Message, "%s: %s", what, a.body)
	if c := a.device(); c != nil {
		require.True(t, c.Value == "" || c.MaxAge < 0, "%s: a refusal set a device cookie", what)
	}
	return e.Error.Code
}

// post sends JSON to a public endpoint as the page's script does, from
// the page's origin.
func (r *deviceRP) post(t *testing.T, path, origin string, body any) httpAnswer {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, r.public+path, bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Origin", origin)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return httpAnswer{status: resp.StatusCode, body: raw, cookies: resp.Cookies()}
}

type ceremonyStart struct {
	ID        string          `json:"ceremony_id"`
	Options   json.RawMessage `json:"options"`
	ExpiresAt time.Time       `json:"expires_at"`
}

// beginProof fetches assertion options as the proof page would.
func (r *deviceRP) beginProof(t *testing.T, origin string) ceremonyStart {
	t.Helper()
	a := r.post(t, "/devices/webauthn/options", origin, map[string]any{})
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	var c ceremonyStart
	require.NoError(t, json.Unmarshal(a.body, &c), "%s", a.body)
	require.NotEmpty(t, c.ID)
	require.Contains(t, string(c.Options), `"publicKey"`)
	return c
}

func (r *deviceRP) finishProof(t *testing.T, origin, ceremonyID string, cred json.RawMessage) httpAnswer {
	t.Helper()
	return r.post(t, "/devices/webauthn/finish", origin, map[string]any{"ceremony_id": ceremonyID, "credential": cred})
}

type adminDevice struct {
	ID            string     `json:"id"`
	Name          string     `json:"name"`
	Kind          string     `json:"kind"`
	CreatedBy     string     `json:"created_by"`
	TrustedUntil  time.Time  `json:"trusted_until"`
	RevokedAt     *time.Time `json:"revoked_at"`
	RevokedReason string     `json:"revoked_reason"`
	Trusted       bool       `json:"trusted"`
}

func (r *deviceRP) devices(t *testing.T, identity string) []adminDevice {
	t.Helper()
	var out struct {
		Devices []adminDevice `json:"devices"`
	}
	require.Equal(t, http.StatusOK, call(t, http.MethodGet, r.admin+"/admin/identities/"+identity+"/devices", testKey, nil, &out))
	return out.Devices
}

func (r *deviceRP) device(t *testing.T, identity, id string) adminDevice {
	t.Helper()
	for _, d := range r.devices(t, identity) {
		if d.ID == id {
			return d
		}
	}
	require.Failf(t, "no such device", "device %s of %s", id, identity)
	return adminDevice{}
}

func (r *deviceRP) auditTypes(t *testing.T, identity string) []string {
	t.Helper()
	var out struct {
		Events []struct {
			Type string `json:"type"`
		} `json:"events"`
	}
	require.Equal(t, http.StatusOK, call(t, http.MethodGet, r.admin+"/admin/audit?limit=1000&identity_id="+identity, testKey, nil, &out))
	types := make([]string, len(out.Events))
	for i, e := range out.Events {
		types[i] = e.Type
	}
	return types
}

type enrollLink struct {
	ID         string    `json:"id"`
	IdentityID string    `json:"identity_id"`
	URL        string    `json:"url"`
	ExpiresAt  time.Time `json:"expires_at"`
}

func (r *deviceRP) enroll(t *testing.T, identity, name string) enrollLink {
	t.Helper()
	var e enrollLink
	require.Equal(t, http.StatusCreated, call(t, http.MethodPost, r.admin+"/admin/identities/"+identity+"/devices/enrollments", testKey,
		map[string]string{"name": name, "kind": "browser"}, &e))
	require.Equal(t, identity, e.IdentityID)
	require.True(t, strings.HasPrefix(e.URL, r.origin+"/devices/enroll?token="), "enrollment url %q", e.URL)
	require.True(t, e.ExpiresAt.After(time.Now()))
	return e
}

// login calls the login hook as Kratos would for identity with the given
// device cookie ("" for none) and returns the status and, for a block,
// the reason.
func (r *deviceRP) login(t *testing.T, identity, token string) (int, string) {
	t.Helper()
	body := map[string]any{
		"identity": map[string]any{
			"id":    identity,
			"state": "active",
			"verifiable_addresses": []map[string]any{
				{"value": "desk-" + identity[:8] + "@example.com", "via": "email", "verified": true},
			},
		},
		"flow":    map[string]any{"id": uuid.NewString(), "type": "browser"},
		"session": map[string]any{"devices": []map[string]any{{"ip_address": "127.0.0.1", "user_agent": "e2e"}}},
	}
	if token != "" {
		body["request_cookies"] = map[string]string{deviceCookieName: token}
	}
	var out struct {
		Messages []struct {
			Messages []struct {
				ID      int            `json:"id"`
				Context map[string]any `json:"context"`
			} `json:"messages"`
		} `json:"messages"`
	}
	status := call(t, http.MethodPost, r.admin+"/hooks/kratos/login", testHookKey, body, &out)
	if status == http.StatusNoContent {
		return status, ""
	}
	require.NotEmpty(t, out.Messages, "hook answered %d without messages", status)
	require.NotEmpty(t, out.Messages[0].Messages)
	m := out.Messages[0].Messages[0]
	reason, _ := m.Context["reason"].(string)
	if reason == "new_device" {
		require.Equal(t, 4070009, m.ID)
	}
	return status, reason
}

// requireBlocked: a login with token is stopped for a step-up.
func (r *deviceRP) requireBlocked(t *testing.T, identity, token, why string) {
	t.Helper()
	status, reason := r.login(t, identity, token)
	require.Equal(t, http.StatusForbidden, status, why)
	require.Equal(t, "new_device", reason, why)
}

func (r *deviceRP) requirePasses(t *testing.T, identity, token, why string) {
	t.Helper()
	status, reason := r.login(t, identity, token)
	require.Equal(t, http.StatusNoContent, status, "%s (blocked: %s)", why, reason)
}

func TestWebAuthnBrowser(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath()
	if chromium == "" {
		t.Skip("no Chromium: set CHROMIUM_BIN or install /usr/bin/chromium")
	}
	bin := buildVigil(t)
	dir := t.TempDir()
	dsn := "sqlite://" + filepath.Join(dir, "vigil.db")
	a := startRP(t, bin, dir, deviceEnv(dsn, nil))
	b := startBrowser(t, chromium)
	alice := uuid.NewString()

	// 1. An admin's link, opened in the browser, enrolls the device; its
	// cookie lets logins through and no cookie, or a wrong one, does not.
	link := a.enroll(t, alice, "Front desk laptop")
	b.open(t, link.URL)
	title, err := chromedp.Run(b.step(t, 10*time.Second), chromedp.Text(chromedp.CSS("h1")))
	require.NoError(t, err)
	require.Contains(t, title, "Trust this device")
	state, text := b.press(t)
	require.Equal(t, "done", state, text)
	first := b.cookie(t, a.origin)
	require.NotNil(t, first, "the enrollment set no device cookie")
	require.True(t, first.HTTPOnly, "the device cookie is HttpOnly")
	devs := a.devices(t, alice)
	require.Len(t, devs, 1)
	d1 := devs[0]
	require.Equal(t, "Front desk laptop", d1.Name)
	require.Equal(t, "browser", d1.Kind)
	require.True(t, strings.HasPrefix(d1.CreatedBy, "admin"), "created_by %q", d1.CreatedBy)
	require.True(t, d1.Trusted)
	require.Nil(t, d1.RevokedAt)
	require.True(t, d1.TrustedUntil.After(time.Now()))
	a.requirePasses(t, alice, first.Value, "the enrolled device's cookie")
	a.requireBlocked(t, alice, "", "no cookie")
	a.requireBlocked(t, alice, strings.Repeat("x", len(first.Value)), "a made-up cookie")
	require.Subset(t, a.auditTypes(t, alice), []string{"DeviceEnrollmentCreated", "DeviceEnrolled"})

	// The link works once.
	used := mustParseURL(t, link.URL).Query().Get("token")
	require.Equal(t, "already_used", a.post(t, "/devices/enroll/options", a.origin,
		map[string]string{"token": used}).refused(t, "options on a used link"))
	b.open(t, link.URL)
	again, err := chromedp.Run(b.step(t, 10*time.Second), chromedp.Evaluate[string](
		`(document.getElementById("start") ? "a start button; " : "") + document.querySelector("h1").textContent`))
	require.NoError(t, err)
	require.Equal(t, "This link was already used", again, "a used link shows the Used page")
	require.Len(t, a.devices(t, alice), 1)

	proof := a.origin + "/devices/webauthn"
	b.open(t, proof)

	// 3. An assertion answers its ceremony once: replayed, it is refused.
	c := a.beginProof(t, a.origin)
	cred := b.assert(t, c.Options)
	ok := a.finishProof(t, a.origin, c.ID, cred)
	require.Equal(t, http.StatusOK, ok.status, "%s", ok.body)
	second := ok.device()
	require.NotNil(t, second, "the proof set no device cookie")
	require.NotEqual(t, first.Value, second.Value)
	var proved struct {
		Device adminDevice `json:"device"`
	}
	require.NoError(t, json.Unmarshal(ok.body, &proved))
	require.Equal(t, d1.ID, proved.Device.ID)
	b.setCookie(t, a.origin, second)
	require.Equal(t, "not_found", a.finishProof(t, a.origin, c.ID, cred).refused(t, "a replayed assertion"))
	a.requirePasses(t, alice, second.Value, "the token the proof gave")

	// 4. An assertion made on an origin Vigil does not list is refused,
	// though the browser makes it (the rp id, localhost, fits any port).
	proxy := httptest.NewServer(httputil.NewSingleHostReverseProxy(mustParseURL(t, a.public)))
	t.Cleanup(proxy.Close)
	other := "http://localhost:" + mustParseURL(t, proxy.URL).Port()
	b.open(t, other+"/devices/webauthn")
	c = a.beginProof(t, other)
	require.Equal(t, "invalid_request", a.finishProof(t, other, c.ID, b.assert(t, c.Options)).refused(t, "an assertion from another origin"))
	b.open(t, proof)

	// 5. A ceremony finished after its timeout is refused. A second
	// process on the same database gives ceremonies two seconds.
	short := startRP(t, bin, dir, deviceEnv(dsn, map[string]string{"VIGIL_DEVICES_WEBAUTHN_TIMEOUT": "2s"}), a.origin)
	c = short.beginProof(t, a.origin)
	require.WithinDuration(t, time.Now().Add(2*time.Second), c.ExpiresAt, 2*time.Second)
	cred = b.assert(t, c.Options)
	time.Sleep(time.Until(c.ExpiresAt) + 500*time.Millisecond)
	require.Equal(t, "expired", short.finishProof(t, a.origin, c.ID, cred).refused(t, "a ceremony past its timeout"))
	require.Len(t, a.devices(t, alice), 1, "refusals make no devices")
	require.True(t, a.device(t, alice, d1.ID).Trusted, "refusals of the ceremony leave the device trusted")

	// 2. The proof page renews the device's token; the token it replaced,
	// presented again, was copied: the device is revoked.
	state, text = b.press(t)
	require.Equal(t, "done", state, text)
	third := b.cookie(t, a.origin)
	require.NotNil(t, third)
	require.NotEqual(t, second.Value, third.Value, "the proof page set a new token")
	a.requirePasses(t, alice, third.Value, "the token the proof page gave")
	a.requireBlocked(t, alice, second.Value, "a replaced token")
	a.requireBlocked(t, alice, third.Value, "the newest token of a revoked device")
	revoked := a.device(t, alice, d1.ID)
	require.NotNil(t, revoked.RevokedAt)
	require.Equal(t, "token_reused", revoked.RevokedReason)
	require.False(t, revoked.Trusted)
	require.Subset(t, a.auditTypes(t, alice), []string{"DeviceTokenRotated", "DeviceTokenReused"})

	// 6. A second device (a new authenticator) enrolls and proves itself;
	// then its sign counter goes backwards, as a cloned key's would: the
	// assertion is refused and the device revoked.
	b.newAuthenticator(t)
	b.open(t, a.enroll(t, alice, "Kiosk").URL)
	state, text = b.press(t)
	require.Equal(t, "done", state, text)
	var d2 adminDevice
	for _, d := range a.devices(t, alice) {
		if d.ID != d1.ID {
			d2 = d
		}
	}
	require.Equal(t, "Kiosk", d2.Name)
	b.open(t, proof)
	state, text = b.press(t)
	require.Equal(t, "done", state, text)
	fourth := b.cookie(t, a.origin)
	require.NotNil(t, fourth)
	a.requirePasses(t, alice, fourth.Value, "the second device's token")

	b.lowerCounter(t)
	c = a.beginProof(t, a.origin)
	require.Equal(t, "invalid_request", a.finishProof(t, a.origin, c.ID, b.assert(t, c.Options)).refused(t, "an assertion with a lower sign counter"))
	cloned := a.device(t, alice, d2.ID)
	require.NotNil(t, cloned.RevokedAt)
	require.Equal(t, "clone_suspected", cloned.RevokedReason)
	require.Subset(t, a.auditTypes(t, alice), []string{"DeviceCloneSuspected", "DeviceRevoked"})
	a.requireBlocked(t, alice, fourth.Value, "the token of a device with a cloned key")
	require.Len(t, a.devices(t, alice), 2)

	// The page shows a refusal as an error, with Vigil's message.
	b.open(t, proof)
	state, text = b.press(t)
	require.Equal(t, "error", state, text)
	require.NotEmpty(t, text)
	require.NotContains(t, text, "The server refused the request", "the page shows Vigil's message, not its fallback")
}

func mustParseURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	require.NoError(t, err)
	return u
}
