package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/adapters/webauthn"
	"github.com/vigil-auth/vigil/flows"
	"github.com/vigil-auth/vigil/internal/webauthntest"
	"github.com/vigil-auth/vigil/ui"
)

// These tests drive the trusted-device endpoints through HTTP on the real
// engine, a real SQLite file, the real WebAuthn relying party and a
// software authenticator that speaks the WebAuthn wire format.

const (
	rpOrigin   = "https://login.example.com"
	rpID       = "example.com"
	publicURL  = "https://vigil.example.com"
	firefoxUA  = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
	cookieName = "vigil_device"
)

// sessions is a vigil.Identities whose Whoami knows the session tokens
// the test handed out (X-Session-Token); Kratos' own protocol is tested
// with the Kratos adapter, not here.
type sessions struct {
	mu     sync.Mutex
	tokens map[string]string // session token → identity id
}

func (s *sessions) MarkVerified(context.Context, string, vigil.Channel, string, vigil.VerificationSummary) error {
	return nil
}

func (s *sessions) SetSummary(context.Context, string, vigil.VerificationSummary) error { return nil }

func (s *sessions) Whoami(_ context.Context, c vigil.SessionCredentials) (*vigil.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.tokens[c.SessionToken]; ok {
		return &vigil.Session{ID: "session-" + c.SessionToken, IdentityID: id}, nil
	}
	return nil, vigil.Errorf(vigil.EUNAUTHORIZED, "No valid session.")
}

// login hands out a session token for identity.
func (s *sessions) login(identity string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	token := "session-" + uuid.NewString()
	s.tokens[token] = identity
	return token
}

type deviceBundle struct {
	*testBundle
	sessions *sessions
	rules    flows.DeviceRules
}

// setupDevices is a bundle whose gate challenges new devices, with
// sessions, a WebAuthn relying party, the production cookie settings but
// Secure off, and per-IP limits out of the way; mod changes them before
// they are built.
func setupDevices(t *testing.T, mod func(*flows.Config, *flows.Deps, *Config)) *deviceBundle {
	t.Helper()
	rp, err := webauthn.New(webauthn.Config{RPID: rpID, RPName: "Example", Origins: []string{rpOrigin}})
	require.NoError(t, err)
	b := &deviceBundle{sessions: &sessions{tokens: map[string]string{}}}
	b.testBundle = setupWith(t, func(c *flows.Config, d *flows.Deps, s *Config) {
		// Every request of a test comes from one address; the per-IP
		// limits have a test of their own.
		c.CheckPerIP = 10000
		c.Devices.StepUp = true
		c.PublicURL = publicURL
		d.Identities = b.sessions
		d.WebAuthn = rp
		s.DeviceCookie = DeviceCookie{MaxAge: c.Devices.TrustFor}
		if mod != nil {
			mod(c, d, s)
		}
		b.rules = c.Devices
	})
	return b
}

// emailOf is an identity's email address; each test identity has its own.
func emailOf(identity string) string { return "u" + identity[:8] + "@example.com" }

// kratosIdentity is identity as Kratos sends it to the login hook: its
// email is verified there, so the address policy holds.
func kratosIdentity(identity string) vigil.Identity {
	return vigil.Identity{ID: identity, Active: true, Addresses: []vigil.IdentityAddress{
		{Channel: vigil.ChannelEmail, Value: emailOf(identity), Verified: true},
	}}
}

// gate asks the login hook's question for identity, presenting token.
func (b *deviceBundle) gate(t *testing.T, identity, token string) *flows.Decision {
	t.Helper()
	d, err := b.svc.Gate(context.Background(), flows.LoginRequest{
		Identity: kratosIdentity(identity), FlowID: uuid.NewString(), DeviceToken: token,
		Origin: flows.Origin{ClientIP: "203.0.113.7", UserAgent: firefoxUA},
	})
	require.NoError(t, err)
	return d
}

// stepUp logs identity in from a new device: it returns the step-up
// challenge's id and the code that was mailed.
func (b *deviceBundle) stepUp(t *testing.T, identity string) (id, code string) {
	t.Helper()
	d := b.gate(t, identity, "")
	require.False(t, d.Allow)
	require.Equal(t, flows.ReasonNewDevice, d.Reason)
	require.NotEmpty(t, d.ChallengeID)
	b.deliver(t, identity)
	return d.ChallengeID, codeIn(t, b.email.lastTo(t, emailOf(identity)))
}

// lastTo is the newest message to one address: tests that share a bundle
// run in parallel.
func (s *recordingSender) lastTo(t *testing.T, to string) vigil.Outbound {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range slices.Backward(s.sent) {
		if m.To == to {
			return m
		}
	}
	t.Fatalf("nothing was sent to %s", to)
	return vigil.Outbound{}
}

// submit posts a code check from Firefox.
func (b *deviceBundle) submit(t *testing.T, id string, body map[string]any) *httptest.ResponseRecorder {
	t.Helper()
	return do(t, b.srv.Public(), req{
		method: http.MethodPost, path: "/self-service/verifications/" + id + "/code",
		body: string(must(json.Marshal(body))), headers: map[string]string{"User-Agent": firefoxUA},
	})
}

// trust passes a step-up for identity and trusts the device as kind;
// it returns the device and its token, from the cookie or the body.
func (b *deviceBundle) trust(t *testing.T, identity string, kind vigil.DeviceKind) (flows.DeviceView, string) {
	t.Helper()
	id, code := b.stepUp(t, identity)
	w := b.submit(t, id, map[string]any{"code": code, "trust_device": true, "device_kind": kind})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	a := decode[codeAnswer](t, w)
	require.NotNil(t, a.Device)
	token := a.DeviceToken
	if token == "" {
		token = deviceCookie(t, w).Value
	}
	require.Len(t, token, 43)
	return *a.Device, token
}

// deviceCookie is the device cookie the response sets; it fails when
// there is none.
func deviceCookie(t *testing.T, w *httptest.ResponseRecorder) *http.Cookie {
	t.Helper()
	for _, c := range w.Result().Cookies() {
		if c.Name == cookieName {
			return c
		}
	}
	t.Fatalf("no %s cookie in %q", cookieName, w.Header().Values("Set-Cookie"))
	return nil
}

var setCookieRE = regexp.MustCompile(`^vigil_device=[A-Za-z0-9_-]{43}; Path=/; Max-Age=2592000; HttpOnly; SameSite=Lax$`)

func TestTrustDeviceOnCodeCheck(t *testing.T) {
	t.Parallel()
	b := setupDevices(t, nil)

	t.Run("a browser gets an HttpOnly cookie, never the token in the body", func(t *testing.T) {
		t.Parallel()
		identity := uuid.NewString()
		id, code := b.stepUp(t, identity)
		flow := uuid.NewString()
		w := b.submit(t, id, map[string]any{"code": code, "flow_id": flow, "trust_device": true})
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		require.Len(t, w.Header().Values("Set-Cookie"), 1)
		require.Regexp(t, setCookieRE, w.Header().Get("Set-Cookie"))
		require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
		requireSchema(t, "CodeAnswer", w.Body.Bytes())
		require.NotContains(t, w.Body.String(), "device_token")
		token := deviceCookie(t, w).Value
		require.NotContains(t, w.Body.String(), token)

		a := decode[codeAnswer](t, w)
		require.Equal(t, vigil.StateVerified, a.State)
		require.Equal(t, vigil.DeviceBrowser, a.Device.Kind)
		require.Equal(t, "Firefox on Linux", a.Device.Name, "named after the User-Agent")
		require.Equal(t, identity, a.Device.IdentityID)
		require.True(t, a.Device.Trusted)
		require.Equal(t, "user", a.Device.CreatedBy)

		// The cookie is what the login hook lets through; the flow named
		// in the check is let through too.
		require.True(t, b.gate(t, identity, token).Allow)
		d, err := b.svc.Gate(context.Background(), flows.LoginRequest{Identity: kratosIdentity(identity), FlowID: flow})
		require.NoError(t, err)
		require.True(t, d.Allow)
		b.noSecretsLogged(t, token)
	})

	t.Run("a mobile app gets the token in the body and no cookie", func(t *testing.T) {
		t.Parallel()
		identity := uuid.NewString()
		id, code := b.stepUp(t, identity)
		w := b.submit(t, id, map[string]any{"code": code, "trust_device": true, "device_kind": "mobile_app", "device_name": "Ann's phone"})
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		require.Empty(t, w.Header().Values("Set-Cookie"))
		require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
		requireSchema(t, "CodeAnswer", w.Body.Bytes())
		a := decode[codeAnswer](t, w)
		require.Len(t, a.DeviceToken, 43)
		require.Equal(t, vigil.DeviceMobileApp, a.Device.Kind)
		require.Equal(t, "Ann's phone", a.Device.Name)
		require.True(t, b.gate(t, identity, a.DeviceToken).Allow)
	})

	t.Run("without trust_device nothing is trusted", func(t *testing.T) {
		t.Parallel()
		identity := uuid.NewString()
		id, code := b.stepUp(t, identity)
		w := b.submit(t, id, map[string]any{"code": code})
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		require.Empty(t, w.Header().Values("Set-Cookie"))
		require.NotContains(t, w.Body.String(), `"device`)
		requireSchema(t, "CodeAnswer", w.Body.Bytes())
	})

	t.Run("malformed device fields are refused before the code is tried", func(t *testing.T) {
		t.Parallel()
		identity := uuid.NewString()
		id, code := b.stepUp(t, identity)
		for name, body := range map[string]map[string]any{
			"unknown kind":       {"code": code, "trust_device": true, "device_kind": "toaster"},
			"flow id not a uuid": {"code": code, "flow_id": "flow-1"},
			"upper-case flow id": {"code": code, "flow_id": strings.ToUpper(uuid.NewString())},
			"control character":  {"code": code, "trust_device": true, "device_name": "my\x07phone"},
			"newline":            {"code": code, "trust_device": true, "device_name": "line\nbreak"},
			"bidi override":      {"code": code, "trust_device": true, "device_name": "abc\u202edef"},
			"name too long":      {"code": code, "trust_device": true, "device_name": strings.Repeat("x", 101)},
		} {
			t.Run(name, func(t *testing.T) {
				w := b.submit(t, id, body)
				requireError(t, w, http.StatusBadRequest, vigil.EINVALID)
				require.Empty(t, w.Header().Values("Set-Cookie"))
			})
		}
		for name, body := range map[string]string{
			"kind not a string":  `{"code":"` + code + `","trust_device":true,"device_kind":1}`,
			"trust not a bool":   `{"code":"` + code + `","trust_device":"yes"}`,
			"name not a string":  `{"code":"` + code + `","trust_device":true,"device_name":["a"]}`,
			"flow id not a text": `{"code":"` + code + `","flow_id":{}}`,
		} {
			t.Run(name, func(t *testing.T) {
				requireError(t, b.public(t, http.MethodPost, "/self-service/verifications/"+id+"/code", body), http.StatusBadRequest, codeInvalidField)
			})
		}
		// None of it cost an attempt: the first wrong code leaves two.
		e := requireError(t, b.submit(t, id, map[string]any{"code": otherCode(code)}), http.StatusBadRequest, vigil.EWRONGCODE)
		require.Equal(t, 2, *e.AttemptsLeft)
		// A kind without trust_device is ignored.
		w := b.submit(t, id, map[string]any{"code": code, "device_kind": "security_key"})
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		require.Empty(t, w.Header().Values("Set-Cookie"))
	})

	t.Run("a wrong code trusts nothing", func(t *testing.T) {
		t.Parallel()
		identity := uuid.NewString()
		id, code := b.stepUp(t, identity)
		w := b.submit(t, id, map[string]any{"code": otherCode(code), "trust_device": true})
		requireError(t, w, http.StatusBadRequest, vigil.EWRONGCODE)
		require.Empty(t, w.Header().Values("Set-Cookie"))
		w = b.admin(t, http.MethodGet, "/admin/identities/"+identity+"/devices", "")
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		require.Empty(t, decode[deviceList](t, w).Devices)
	})
}

// The cookie follows the configuration: name, domain, Secure, SameSite
// and a Max-Age of the trust's life.
func TestDeviceCookieSettings(t *testing.T) {
	t.Parallel()
	b := setupDevices(t, func(c *flows.Config, _ *flows.Deps, s *Config) {
		c.Devices.TrustFor = 14 * 24 * time.Hour
		s.DeviceCookie = DeviceCookie{Name: "acme_dev", Domain: "example.com", Secure: true, SameSite: http.SameSiteStrictMode, MaxAge: c.Devices.TrustFor}
	})
	identity := uuid.NewString()
	id, code := b.stepUp(t, identity)
	w := b.submit(t, id, map[string]any{"code": code, "trust_device": true})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Regexp(t, `^acme_dev=[A-Za-z0-9_-]{43}; Path=/; Domain=example.com; Max-Age=1209600; HttpOnly; Secure; SameSite=Strict$`, w.Header().Get("Set-Cookie"))
	a := decode[codeAnswer](t, w)
	require.WithinDuration(t, b.clock.Now().Add(b.rules.IdleFor), a.Device.TrustedUntil, time.Second, "the idle limit ends trust first")

	// The refresh reads the configured name.
	token := strings.TrimPrefix(strings.SplitN(w.Header().Get("Set-Cookie"), ";", 2)[0], "acme_dev=")
	w = do(t, b.srv.Public(), req{method: http.MethodPost, path: "/self-service/devices/token", headers: map[string]string{
		"X-Session-Token": b.sessions.login(identity), "Cookie": "vigil_device=" + token,
	}})
	requireError(t, w, http.StatusBadRequest, vigil.EINVALID)
	w = do(t, b.srv.Public(), req{method: http.MethodPost, path: "/self-service/devices/token", headers: map[string]string{
		"X-Session-Token": b.sessions.login(identity), "Cookie": "acme_dev=" + token,
	}})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Regexp(t, `^acme_dev=[A-Za-z0-9_-]{43}; Path=/; Domain=example.com; Max-Age=1209600; HttpOnly; Secure; SameSite=Strict$`, w.Header().Get("Set-Cookie"))
}

func TestSelfServiceDeviceList(t *testing.T) {
	t.Parallel()
	b := setupDevices(t, nil)
	ann, bob := uuid.NewString(), uuid.NewString()
	annDevice, annToken := b.trust(t, ann, "")
	b.trust(t, bob, vigil.DeviceMobileApp)
	annSession, bobSession, nobody := b.sessions.login(ann), b.sessions.login(bob), b.sessions.login(uuid.NewString())

	list := func(session string) *httptest.ResponseRecorder {
		t.Helper()
		h := map[string]string{}
		if session != "" {
			h["X-Session-Token"] = session
		}
		return do(t, b.srv.Public(), req{method: http.MethodGet, path: "/self-service/devices", headers: h})
	}
	revoke := func(session, id string) *httptest.ResponseRecorder {
		t.Helper()
		return do(t, b.srv.Public(), req{method: http.MethodDelete, path: "/self-service/devices/" + id, headers: map[string]string{"X-Session-Token": session}})
	}

	requireError(t, list(""), http.StatusUnauthorized, vigil.EUNAUTHORIZED)
	requireError(t, list("forged"), http.StatusUnauthorized, vigil.EUNAUTHORIZED)

	w := list(annSession)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	requireSchema(t, "DeviceList", w.Body.Bytes())
	got := decode[deviceList](t, w).Devices
	require.Len(t, got, 1, "only the session's own devices")
	require.Equal(t, annDevice.ID, got[0].ID)
	require.Equal(t, firefoxUA, got[0].UserAgent)
	require.NotContains(t, w.Body.String(), annToken)

	w = list(nobody)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.JSONEq(t, `{"devices":[]}`, w.Body.String(), "an empty list, not null")

	// Someone else's device, an unknown and a malformed id: all 404,
	// and the device keeps its trust.
	requireError(t, revoke(bobSession, annDevice.ID), http.StatusNotFound, vigil.ENOTFOUND)
	requireError(t, revoke(bobSession, uuid.NewString()), http.StatusNotFound, vigil.ENOTFOUND)
	requireError(t, revoke(bobSession, "not-an-id"), http.StatusNotFound, vigil.ENOTFOUND)
	requireError(t, revoke("", annDevice.ID), http.StatusUnauthorized, vigil.EUNAUTHORIZED)
	require.True(t, b.gate(t, ann, annToken).Allow)

	w = revoke(annSession, annDevice.ID)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	requireSchema(t, "RevokedDevice", w.Body.Bytes())
	v := decode[struct {
		Device flows.DeviceView `json:"device"`
	}](t, w).Device
	require.NotNil(t, v.RevokedAt)
	require.Equal(t, "user", v.RevokedReason)
	require.False(t, v.Trusted)
	require.Equal(t, flows.ReasonNewDevice, b.gate(t, ann, annToken).Reason, "revoked: the step-up is back")

	// Revoking again answers the device as it is.
	w = revoke(annSession, annDevice.ID)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	again := decode[struct {
		Device flows.DeviceView `json:"device"`
	}](t, w).Device
	require.WithinDuration(t, *v.RevokedAt, *again.RevokedAt, 0)

	requireError(t, do(t, b.srv.Public(), req{method: http.MethodPut, path: "/self-service/devices/" + annDevice.ID}), http.StatusMethodNotAllowed, codeMethodNotAllowed)
}

func TestRefreshDeviceToken(t *testing.T) {
	t.Parallel()
	b := setupDevices(t, nil)
	refresh := func(session, cookie, body string) *httptest.ResponseRecorder {
		t.Helper()
		h := map[string]string{}
		if session != "" {
			h["X-Session-Token"] = session
		}
		if cookie != "" {
			h["Cookie"] = "ory_kratos_session=abc; " + cookieName + "=" + cookie
		}
		return do(t, b.srv.Public(), req{method: http.MethodPost, path: "/self-service/devices/token", body: body, headers: h})
	}

	t.Run("a browser swaps its cookie", func(t *testing.T) {
		t.Parallel()
		identity := uuid.NewString()
		dev, old := b.trust(t, identity, "")
		session := b.sessions.login(identity)
		for _, body := range []string{"", "{}", `{"device_token":""}`} {
			w := refresh(session, old, body)
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			require.Regexp(t, setCookieRE, w.Header().Get("Set-Cookie"))
			require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
			requireSchema(t, "DeviceAnswer", w.Body.Bytes())
			require.NotContains(t, w.Body.String(), "device_token")
			a := decode[deviceAnswer](t, w)
			require.Equal(t, dev.ID, a.Device.ID)
			next := deviceCookie(t, w).Value
			require.NotEqual(t, old, next)
			require.True(t, b.gate(t, identity, next).Allow)
			old = next
		}
	})

	t.Run("a native app swaps its token in the body; the old one revokes the device", func(t *testing.T) {
		t.Parallel()
		identity := uuid.NewString()
		dev, first := b.trust(t, identity, vigil.DeviceMobileApp)
		session := b.sessions.login(identity)
		w := refresh(session, "", `{"device_token":"`+first+`"}`)
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		require.Empty(t, w.Header().Values("Set-Cookie"))
		requireSchema(t, "DeviceAnswer", w.Body.Bytes())
		second := decode[deviceAnswer](t, w).DeviceToken
		require.Len(t, second, 43)
		require.NotEqual(t, first, second)
		require.True(t, b.gate(t, identity, second).Allow)

		// The replaced token again: it was copied. 404, and the device
		// is revoked, so the newest token no longer works either.
		requireError(t, refresh(session, "", `{"device_token":"`+first+`"}`), http.StatusNotFound, vigil.ENOTFOUND)
		w = b.admin(t, http.MethodGet, "/admin/identities/"+identity+"/devices", "")
		got := decode[deviceList](t, w).Devices
		require.Len(t, got, 1)
		require.Equal(t, dev.ID, got[0].ID)
		require.Equal(t, "token_reused", got[0].RevokedReason)
		require.Equal(t, flows.ReasonNewDevice, b.gate(t, identity, second).Reason)
		requireError(t, refresh(session, "", `{"device_token":"`+second+`"}`), http.StatusGone, vigil.EEXPIRED)
	})

	t.Run("a browser's token sent in the body comes back in the body", func(t *testing.T) {
		t.Parallel()
		identity := uuid.NewString()
		_, token := b.trust(t, identity, "")
		w := refresh(b.sessions.login(identity), "", `{"device_token":"`+token+`"}`)
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		require.Empty(t, w.Header().Values("Set-Cookie"))
		require.Len(t, decode[deviceAnswer](t, w).DeviceToken, 43)
	})

	t.Run("refusals", func(t *testing.T) {
		t.Parallel()
		ann, bob := uuid.NewString(), uuid.NewString()
		_, annToken := b.trust(t, ann, vigil.DeviceMobileApp)
		annSession, bobSession := b.sessions.login(ann), b.sessions.login(bob)

		requireError(t, refresh(annSession, "", ""), http.StatusBadRequest, vigil.EINVALID)
		requireError(t, refresh(annSession, "", "{}"), http.StatusBadRequest, vigil.EINVALID)
		requireError(t, refresh("", "", `{"device_token":"`+annToken+`"}`), http.StatusUnauthorized, vigil.EUNAUTHORIZED)
		requireError(t, refresh("forged", annToken, ""), http.StatusUnauthorized, vigil.EUNAUTHORIZED)
		requireError(t, refresh(annSession, "", `{"device_token":"short"}`), http.StatusNotFound, vigil.ENOTFOUND)
		requireError(t, refresh(annSession, "", `{"device_token":"`+strings.Repeat("A", 43)+`"}`), http.StatusNotFound, vigil.ENOTFOUND)
		requireError(t, refresh(annSession, "", `{"device_token":"`+strings.Repeat("A", 5000)+`"}`), http.StatusNotFound, vigil.ENOTFOUND)
		requireError(t, refresh(annSession, "", `{"device_token":1}`), http.StatusBadRequest, codeInvalidField)
		requireError(t, refresh(annSession, "", `{"token":"x"}`), http.StatusBadRequest, codeUnknownField)
		requireError(t, refresh(annSession, "", `nope`), http.StatusBadRequest, codeMalformedJSON)
		w := do(t, b.srv.Public(), req{method: http.MethodPost, path: "/self-service/devices/token", body: `{"device_token":"` + annToken + `"}`,
			contentType: "text/plain", headers: map[string]string{"X-Session-Token": annSession}})
		requireError(t, w, http.StatusUnsupportedMediaType, codeUnsupportedMedia)

		// Someone else's token is unknown to bob, and stays trusted for
		// ann: only its owner's replaced token revokes it.
		requireError(t, refresh(bobSession, "", `{"device_token":"`+annToken+`"}`), http.StatusNotFound, vigil.ENOTFOUND)
		require.True(t, b.gate(t, ann, annToken).Allow)
	})

	t.Run("a device whose trust ended gets 410", func(t *testing.T) {
		t.Parallel()
		b := setupDevices(t, nil)
		identity := uuid.NewString()
		_, token := b.trust(t, identity, vigil.DeviceMobileApp)
		b.clock.Add(b.rules.IdleFor)
		requireError(t, do(t, b.srv.Public(), req{method: http.MethodPost, path: "/self-service/devices/token", body: `{"device_token":"` + token + `"}`,
			headers: map[string]string{"X-Session-Token": b.sessions.login(identity)}}), http.StatusGone, vigil.EEXPIRED)
	})
}

func TestAdminDevices(t *testing.T) {
	t.Parallel()
	b := setupDevices(t, nil)
	identity := uuid.NewString()
	dev, token := b.trust(t, identity, "")

	// The admin key is required.
	for _, r := range []req{
		{method: http.MethodGet, path: "/admin/identities/" + identity + "/devices"},
		{method: http.MethodPost, path: "/admin/identities/" + identity + "/devices/enrollments", body: `{}`},
		{method: http.MethodDelete, path: "/admin/devices/" + dev.ID},
	} {
		requireError(t, do(t, b.srv.Admin(), r), http.StatusUnauthorized, vigil.EUNAUTHORIZED)
		r.headers = map[string]string{"Authorization": "Bearer wrong"}
		requireError(t, do(t, b.srv.Admin(), r), http.StatusUnauthorized, vigil.EUNAUTHORIZED)
		// and they live on the admin listener only.
		requireError(t, do(t, b.srv.Public(), r), http.StatusNotFound, vigil.ENOTFOUND)
	}

	w := b.admin(t, http.MethodGet, "/admin/identities/"+identity+"/devices", "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	requireSchema(t, "DeviceList", w.Body.Bytes())
	got := decode[deviceList](t, w).Devices
	require.Len(t, got, 1)
	require.Equal(t, dev.ID, got[0].ID)
	require.NotContains(t, w.Body.String(), token)
	requireError(t, b.admin(t, http.MethodGet, "/admin/identities/not-a-uuid/devices", ""), http.StatusNotFound, vigil.ENOTFOUND)
	w = b.admin(t, http.MethodGet, "/admin/identities/"+uuid.NewString()+"/devices", "")
	require.JSONEq(t, `{"devices":[]}`, w.Body.String())

	requireError(t, b.admin(t, http.MethodDelete, "/admin/devices/"+uuid.NewString(), ""), http.StatusNotFound, vigil.ENOTFOUND)
	requireError(t, b.admin(t, http.MethodDelete, "/admin/devices/nope", ""), http.StatusNotFound, vigil.ENOTFOUND)
	w = b.admin(t, http.MethodDelete, "/admin/devices/"+dev.ID, "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	requireSchema(t, "RevokedDevice", w.Body.Bytes())
	v := decode[struct {
		Device flows.DeviceView `json:"device"`
	}](t, w).Device
	require.Equal(t, "admin", v.RevokedReason)
	require.NotNil(t, v.RevokedAt)
	require.Equal(t, flows.ReasonNewDevice, b.gate(t, identity, token).Reason)

	w = b.admin(t, http.MethodGet, "/admin/audit?identity_id="+identity, "")
	var revoked bool
	for _, e := range decode[auditResponse](t, w).Events {
		if e.Type == vigil.EventDeviceRevoked {
			revoked = true
			require.Equal(t, "admin", e.Actor)
		}
	}
	require.True(t, revoked)
}

func TestAdminEnrollments(t *testing.T) {
	t.Parallel()
	b := setupDevices(t, nil)
	identity := uuid.NewString()
	path := "/admin/identities/" + identity + "/devices/enrollments"

	w := b.admin(t, http.MethodPost, path, `{"name":"Front desk","kind":"security_key"}`)
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	requireSchema(t, "Enrollment", w.Body.Bytes())
	e := decode[flows.Enrollment](t, w)
	require.True(t, strings.HasPrefix(e.URL, publicURL+"/devices/enroll?token="), e.URL)
	require.Equal(t, identity, e.IdentityID)
	require.Equal(t, "Front desk", e.Name)
	require.Equal(t, vigil.DeviceSecurityKey, e.Kind)
	require.WithinDuration(t, b.clock.Now().Add(b.rules.EnrollmentTTL), e.ExpiresAt, time.Second)
	b.noSecretsLogged(t, enrollToken(t, e))

	w = b.admin(t, http.MethodPost, path, `{}`)
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	e = decode[flows.Enrollment](t, w)
	require.Equal(t, vigil.DeviceBrowser, e.Kind)
	require.Equal(t, "Browser", e.Name)

	for name, tt := range map[string]struct {
		body   string
		status int
		code   string
	}{
		"unknown kind":      {`{"kind":"toaster"}`, http.StatusBadRequest, vigil.EINVALID},
		"control character": {`{"name":"a\u0000b"}`, http.StatusBadRequest, vigil.EINVALID},
		"name too long":     {`{"name":"` + strings.Repeat("é", 101) + `"}`, http.StatusBadRequest, vigil.EINVALID},
		"unknown field":     {`{"name":"x","identity_id":"y"}`, http.StatusBadRequest, codeUnknownField},
		"kind not a string": {`{"kind":2}`, http.StatusBadRequest, codeInvalidField},
		"empty body":        {``, http.StatusBadRequest, codeMalformedJSON},
		"array":             {`[]`, http.StatusBadRequest, codeMalformedJSON},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := do(t, b.srv.Admin(), req{method: http.MethodPost, path: path, body: tt.body, contentType: "application/json", admin: true})
			requireError(t, w, tt.status, tt.code)
		})
	}
	requireError(t, b.admin(t, http.MethodPost, "/admin/identities/nope/devices/enrollments", `{}`), http.StatusNotFound, vigil.ENOTFOUND)
	w = do(t, b.srv.Admin(), req{method: http.MethodPost, path: path, body: `{}`, contentType: "text/plain", admin: true})
	requireError(t, w, http.StatusUnsupportedMediaType, codeUnsupportedMedia)
}

// Without a relying party, enrollment and proofs are refused as a
// request the configuration does not allow: 400, never 500.
func TestDevicesWithoutWebAuthn(t *testing.T) {
	t.Parallel()
	b := setupDevices(t, func(_ *flows.Config, d *flows.Deps, _ *Config) { d.WebAuthn = nil })
	identity := uuid.NewString()
	e := requireError(t, b.admin(t, http.MethodPost, "/admin/identities/"+identity+"/devices/enrollments", `{"name":"x"}`), http.StatusBadRequest, vigil.EINVALID)
	require.Contains(t, e.Error.Message, "webauthn")
	requireError(t, b.public(t, http.MethodPost, "/devices/webauthn/options", `{}`), http.StatusBadRequest, vigil.EINVALID)
	requireError(t, b.public(t, http.MethodPost, "/devices/enroll/options", `{"token":"`+strings.Repeat("A", 43)+`"}`), http.StatusBadRequest, vigil.EINVALID)
	requireError(t, b.public(t, http.MethodPost, "/devices/webauthn/finish", `{"ceremony_id":"`+uuid.NewString()+`","credential":{}}`), http.StatusBadRequest, vigil.EINVALID)
	w := b.public(t, http.MethodGet, "/devices/enroll?token="+strings.Repeat("A", 43), "")
	require.Equal(t, http.StatusBadRequest, w.Code)
	requirePageHeaders(t, w)
	require.Contains(t, w.Body.String(), "not valid")

	// Trusting after a code needs no relying party.
	_, token := b.trust(t, identity, "")
	require.True(t, b.gate(t, identity, token).Allow)
}

func enrollToken(t *testing.T, e flows.Enrollment) string {
	t.Helper()
	u, err := url.Parse(e.URL)
	require.NoError(t, err)
	token := u.Query().Get("token")
	require.Len(t, token, 43)
	return token
}

// enrollment makes an enrollment link for identity through the admin API.
func (b *deviceBundle) enrollment(t *testing.T, identity string, kind vigil.DeviceKind) string {
	t.Helper()
	body := string(must(json.Marshal(map[string]any{"name": "Front desk", "kind": kind})))
	w := b.admin(t, http.MethodPost, "/admin/identities/"+identity+"/devices/enrollments", body)
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	return enrollToken(t, decode[flows.Enrollment](t, w))
}

// ceremony posts to an options endpoint and checks the answer.
func (b *deviceBundle) ceremony(t *testing.T, path, body string) flows.CeremonyStart {
	t.Helper()
	w := b.public(t, http.MethodPost, path, body)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	requireSchema(t, "CeremonyStart", w.Body.Bytes())
	c := decode[flows.CeremonyStart](t, w)
	require.True(t, validUUID(c.ID))
	require.True(t, c.ExpiresAt.After(b.clock.Now()))
	return c
}

func finishBody(t *testing.T, ceremonyID, token string, credential []byte) string {
	t.Helper()
	m := map[string]any{"ceremony_id": ceremonyID, "credential": json.RawMessage(credential)}
	if token != "" {
		m["token"] = token
	}
	return string(must(json.Marshal(m)))
}

// enroll runs an enrollment link on a through HTTP, as the page's script
// does, and returns the finish call's answer.
func (b *deviceBundle) enroll(t *testing.T, a *webauthntest.Authenticator, token string) *httptest.ResponseRecorder {
	t.Helper()
	c := b.ceremony(t, "/devices/enroll/options", `{"token":"`+token+`"}`)
	cred, err := a.Create(c.Options, rpOrigin)
	require.NoError(t, err)
	return b.public(t, http.MethodPost, "/devices/enroll/finish", finishBody(t, c.ID, token, cred))
}

// prove runs an assertion on a and returns the finish call's body.
func (b *deviceBundle) prove(t *testing.T, a *webauthntest.Authenticator, origin string) string {
	t.Helper()
	c := b.ceremony(t, "/devices/webauthn/options", "")
	cred, err := a.Get(c.Options, origin)
	require.NoError(t, err)
	return finishBody(t, c.ID, "", cred)
}

var dataTokenRE = regexp.MustCompile(`data-token="([^"]+)"`)

func TestWebAuthnOverHTTP(t *testing.T) {
	t.Parallel()
	b := setupDevices(t, nil)

	t.Run("enroll with the link, then prove the device", func(t *testing.T) {
		t.Parallel()
		identity := uuid.NewString()
		token := b.enrollment(t, identity, "")
		page := "/devices/enroll?token=" + url.QueryEscape(token)

		// Opening the link shows the page and uses nothing up.
		for range 2 {
			w := b.public(t, http.MethodGet, page, "")
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			requirePageHeaders(t, w)
			require.Equal(t, ui.ContentSecurityPolicy, w.Header().Get("Content-Security-Policy"))
			require.Equal(t, strconv.Itoa(w.Body.Len()), w.Header().Get("Content-Length"))
			require.Contains(t, w.Body.String(), "Front desk")
			require.Contains(t, w.Body.String(), `data-flow="enroll"`)
			require.Equal(t, token, dataTokenRE.FindStringSubmatch(w.Body.String())[1])
		}
		w := b.public(t, http.MethodHead, page, "")
		require.Equal(t, http.StatusOK, w.Code)
		require.Empty(t, w.Body.String())
		require.NotEmpty(t, w.Header().Get("Content-Length"))
		requirePageHeaders(t, w)

		a := webauthntest.New(t)
		w = b.enroll(t, a, token)
		require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
		require.Regexp(t, setCookieRE, w.Header().Get("Set-Cookie"))
		require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
		requireSchema(t, "DeviceAnswer", w.Body.Bytes())
		enrolled := decode[deviceAnswer](t, w)
		require.Empty(t, enrolled.DeviceToken)
		require.Equal(t, "admin:admin", enrolled.Device.CreatedBy)
		require.Equal(t, "Front desk", enrolled.Device.Name)
		require.Equal(t, vigil.DeviceBrowser, enrolled.Device.Kind)
		require.True(t, enrolled.Device.Trusted)
		first := deviceCookie(t, w).Value
		require.True(t, b.gate(t, identity, first).Allow)

		// The link is used up: the page says so, and so does the API.
		w = b.public(t, http.MethodGet, page, "")
		require.Equal(t, http.StatusConflict, w.Code)
		requirePageHeaders(t, w)
		require.Contains(t, w.Body.String(), "already used")
		require.NotContains(t, w.Body.String(), token)
		requireError(t, b.public(t, http.MethodPost, "/devices/enroll/options", `{"token":"`+token+`"}`), http.StatusConflict, vigil.EUSED)

		// The proof page, then an assertion: a new token, trust renewed.
		w = b.public(t, http.MethodGet, "/devices/webauthn", "")
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		requirePageHeaders(t, w)
		require.Equal(t, ui.ContentSecurityPolicy, w.Header().Get("Content-Security-Policy"))
		require.Contains(t, w.Body.String(), `data-flow="prove"`)
		w = b.public(t, http.MethodHead, "/devices/webauthn", "")
		require.Equal(t, http.StatusOK, w.Code)
		require.Empty(t, w.Body.String())

		body := b.prove(t, a, rpOrigin)
		w = b.public(t, http.MethodPost, "/devices/webauthn/finish", body)
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		require.Regexp(t, setCookieRE, w.Header().Get("Set-Cookie"))
		requireSchema(t, "DeviceAnswer", w.Body.Bytes())
		proved := decode[deviceAnswer](t, w)
		require.Equal(t, enrolled.Device.ID, proved.Device.ID)
		second := deviceCookie(t, w).Value
		require.NotEqual(t, first, second)
		require.True(t, b.gate(t, identity, second).Allow)

		// The same response again: its ceremony is used up.
		requireError(t, b.public(t, http.MethodPost, "/devices/webauthn/finish", body), http.StatusNotFound, vigil.ENOTFOUND)
		require.True(t, b.gate(t, identity, second).Allow, "a refused replay leaves the device alone")
		b.noSecretsLogged(t, token, first, second)
	})

	t.Run("an app's web view gets the cookie and the token in the body", func(t *testing.T) {
		t.Parallel()
		identity := uuid.NewString()
		a := webauthntest.New(t)
		w := b.enroll(t, a, b.enrollment(t, identity, vigil.DeviceMobileApp))
		require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
		requireSchema(t, "DeviceAnswer", w.Body.Bytes())
		enrolled := decode[deviceAnswer](t, w)
		require.Equal(t, vigil.DeviceMobileApp, enrolled.Device.Kind)
		require.Len(t, enrolled.DeviceToken, 43)
		require.Equal(t, enrolled.DeviceToken, deviceCookie(t, w).Value, "a browser ran the ceremony: it gets the cookie too")
		require.True(t, b.gate(t, identity, enrolled.DeviceToken).Allow)

		w = b.public(t, http.MethodPost, "/devices/webauthn/finish", b.prove(t, a, rpOrigin))
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		proved := decode[deviceAnswer](t, w)
		require.Len(t, proved.DeviceToken, 43)
		require.Equal(t, proved.DeviceToken, deviceCookie(t, w).Value)
		require.NotEqual(t, enrolled.DeviceToken, proved.DeviceToken)
		require.True(t, b.gate(t, identity, proved.DeviceToken).Allow)
	})

	t.Run("bad links", func(t *testing.T) {
		t.Parallel()
		for name, path := range map[string]string{
			"unknown":   "/devices/enroll?token=" + strings.Repeat("A", 43),
			"cut off":   "/devices/enroll?token=" + strings.Repeat("A", 20),
			"missing":   "/devices/enroll",
			"empty":     "/devices/enroll?token=",
			"too long":  "/devices/enroll?token=" + strings.Repeat("A", 300),
			"bad bytes": "/devices/enroll?token=%ff%fe%00",
		} {
			w := b.public(t, http.MethodGet, path, "")
			require.Equal(t, http.StatusNotFound, w.Code, name)
			requirePageHeaders(t, w)
			require.Contains(t, w.Body.String(), "not valid", name)
			require.NotContains(t, w.Body.String(), "<script>", name)
			w = b.public(t, http.MethodHead, path, "")
			require.Equal(t, http.StatusNotFound, w.Code, name)
			require.Empty(t, w.Body.String(), name)
		}
		requireError(t, b.public(t, http.MethodPost, "/devices/enroll/options", `{"token":"`+strings.Repeat("A", 43)+`"}`), http.StatusNotFound, vigil.ENOTFOUND)
		requireError(t, b.public(t, http.MethodPost, "/devices/enroll/options", `{"token":""}`), http.StatusNotFound, vigil.ENOTFOUND)
		requireError(t, b.public(t, http.MethodPost, "/devices/enroll/options", `{"token":"`+strings.Repeat("A", 300)+`"}`), http.StatusNotFound, vigil.ENOTFOUND)
	})

	t.Run("an expired link", func(t *testing.T) {
		t.Parallel()
		b := setupDevices(t, nil)
		token := b.enrollment(t, uuid.NewString(), "")
		c := b.ceremony(t, "/devices/enroll/options", `{"token":"`+token+`"}`)
		cred, err := webauthntest.New(t).Create(c.Options, rpOrigin)
		require.NoError(t, err)
		b.clock.Add(b.rules.EnrollmentTTL)
		w := b.public(t, http.MethodGet, "/devices/enroll?token="+token, "")
		require.Equal(t, http.StatusGone, w.Code)
		require.Contains(t, w.Body.String(), "expired")
		requireError(t, b.public(t, http.MethodPost, "/devices/enroll/options", `{"token":"`+token+`"}`), http.StatusGone, vigil.EEXPIRED)
		requireError(t, b.public(t, http.MethodPost, "/devices/enroll/finish", finishBody(t, c.ID, token, cred)), http.StatusGone, vigil.EEXPIRED)
	})

	t.Run("an expired ceremony", func(t *testing.T) {
		t.Parallel()
		b := setupDevices(t, nil)
		a := webauthntest.New(t)
		require.Equal(t, http.StatusCreated, b.enroll(t, a, b.enrollment(t, uuid.NewString(), "")).Code)
		body := b.prove(t, a, rpOrigin)
		b.clock.Add(b.rules.CeremonyTTL)
		requireError(t, b.public(t, http.MethodPost, "/devices/webauthn/finish", body), http.StatusGone, vigil.EEXPIRED)
	})

	t.Run("a response from another origin", func(t *testing.T) {
		t.Parallel()
		a := webauthntest.New(t)
		require.Equal(t, http.StatusCreated, b.enroll(t, a, b.enrollment(t, uuid.NewString(), "")).Code)
		requireError(t, b.public(t, http.MethodPost, "/devices/webauthn/finish", b.prove(t, a, "https://login.example.com.evil.test")), http.StatusBadRequest, vigil.EINVALID)

		token := b.enrollment(t, uuid.NewString(), "")
		c := b.ceremony(t, "/devices/enroll/options", `{"token":"`+token+`"}`)
		cred, err := webauthntest.New(t).Create(c.Options, "https://evil.test")
		require.NoError(t, err)
		requireError(t, b.public(t, http.MethodPost, "/devices/enroll/finish", finishBody(t, c.ID, token, cred)), http.StatusBadRequest, vigil.EINVALID)
		// The ceremony is used up, the link is not.
		requireError(t, b.public(t, http.MethodPost, "/devices/enroll/finish", finishBody(t, c.ID, token, cred)), http.StatusNotFound, vigil.ENOTFOUND)
		require.Equal(t, http.StatusCreated, b.enroll(t, webauthntest.New(t), token).Code)
	})

	t.Run("a copied authenticator revokes the device", func(t *testing.T) {
		t.Parallel()
		identity := uuid.NewString()
		a := webauthntest.New(t)
		require.Equal(t, http.StatusCreated, b.enroll(t, a, b.enrollment(t, identity, "")).Code)
		w := b.public(t, http.MethodPost, "/devices/webauthn/finish", b.prove(t, a, rpOrigin))
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		token := deviceCookie(t, w).Value
		copied := a.Clone()
		copied.SetSignCount(0)
		requireError(t, b.public(t, http.MethodPost, "/devices/webauthn/finish", b.prove(t, copied, rpOrigin)), http.StatusBadRequest, vigil.EINVALID)
		require.Equal(t, flows.ReasonNewDevice, b.gate(t, identity, token).Reason)
		requireError(t, b.public(t, http.MethodPost, "/devices/webauthn/finish", b.prove(t, a, rpOrigin)), http.StatusBadRequest, vigil.EINVALID)
	})

	t.Run("an authenticator registered twice", func(t *testing.T) {
		t.Parallel()
		identity := uuid.NewString()
		a := webauthntest.New(t)
		require.Equal(t, http.StatusCreated, b.enroll(t, a, b.enrollment(t, identity, "")).Code)
		// A second link for the same identity excludes the credential the
		// authenticator already holds.
		token := b.enrollment(t, identity, "")
		c := b.ceremony(t, "/devices/enroll/options", `{"token":"`+token+`"}`)
		_, err := a.Create(c.Options, rpOrigin)
		require.ErrorIs(t, err, webauthntest.ErrExcluded)
	})

	t.Run("malformed ceremonies and credentials are 4xx, never 500", func(t *testing.T) {
		t.Parallel()
		identity := uuid.NewString()
		a := webauthntest.New(t)
		token := b.enrollment(t, identity, "")
		for name, cred := range map[string]string{
			"string":        `"garbage"`,
			"number":        `42`,
			"null":          `null`,
			"empty object":  `{}`,
			"array":         `[1,2]`,
			"no response":   `{"id":"AAAA","rawId":"AAAA","type":"public-key"}`,
			"bad base64":    `{"id":"!!","rawId":"!!","type":"public-key","response":{"clientDataJSON":"!!","attestationObject":"!!"}}`,
			"wrong type":    `{"id":"AAAA","rawId":"AAAA","type":"password","response":{"clientDataJSON":"e30","attestationObject":"oA"}}`,
			"junk cbor":     `{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"e30","attestationObject":"_____w"}}`,
			"huge id field": `{"id":"` + strings.Repeat("A", 40000) + `","type":"public-key"}`,
		} {
			c := b.ceremony(t, "/devices/enroll/options", `{"token":"`+token+`"}`)
			w := b.public(t, http.MethodPost, "/devices/enroll/finish", `{"ceremony_id":"`+c.ID+`","token":"`+token+`","credential":`+cred+`}`)
			requireClientError(t, w, name)
			c = b.ceremony(t, "/devices/webauthn/options", "{}")
			w = b.public(t, http.MethodPost, "/devices/webauthn/finish", `{"ceremony_id":"`+c.ID+`","credential":`+cred+`}`)
			requireClientError(t, w, name)
		}
		for name, body := range map[string]string{
			"no credential":      `{"ceremony_id":"` + uuid.NewString() + `"}`,
			"no ceremony":        `{"credential":{}}`,
			"malformed ceremony": `{"ceremony_id":"x","credential":{}}`,
			"unknown ceremony":   `{"ceremony_id":"` + uuid.NewString() + `","credential":{}}`,
			"ceremony a number":  `{"ceremony_id":1,"credential":{}}`,
			"unknown field":      `{"ceremony_id":"` + uuid.NewString() + `","credential":{},"x":1}`,
			"not json":           `{"ceremony_id":`,
		} {
			requireClientError(t, b.public(t, http.MethodPost, "/devices/webauthn/finish", body), name)
			enrollBody := strings.Replace(body, `{`, `{"token":"`+token+`",`, 1)
			requireClientError(t, b.public(t, http.MethodPost, "/devices/enroll/finish", enrollBody), name)
		}
		requireError(t, b.public(t, http.MethodPost, "/devices/webauthn/finish", `{"ceremony_id":"x","credential":{}}`), http.StatusNotFound, vigil.ENOTFOUND)
		requireError(t, b.public(t, http.MethodPost, "/devices/webauthn/finish", `{"ceremony_id":"`+uuid.NewString()+`"}`), http.StatusBadRequest, vigil.EINVALID)
		requireError(t, b.public(t, http.MethodPost, "/devices/webauthn/options", `{"x":1}`), http.StatusBadRequest, codeUnknownField)

		// A registration ceremony does not finish an assertion, nor the
		// other way round.
		reg := b.ceremony(t, "/devices/enroll/options", `{"token":"`+token+`"}`)
		cred, err := a.Create(reg.Options, rpOrigin)
		require.NoError(t, err)
		requireError(t, b.public(t, http.MethodPost, "/devices/webauthn/finish", finishBody(t, reg.ID, "", cred)), http.StatusNotFound, vigil.ENOTFOUND)

		// After all that the link still enrolls.
		w := b.enroll(t, webauthntest.New(t), token)
		require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
		require.NotContains(t, b.logs.String(), `"level":"ERROR"`, "client mistakes are not server errors")
	})
}

// Each assertion start stores a ceremony for anyone who asks, so starts
// are limited per client IP.
func TestDeviceProofStartsLimitedPerIP(t *testing.T) {
	t.Parallel()
	b := setupDevices(t, func(c *flows.Config, _ *flows.Deps, s *Config) {
		c.CheckPerIP = 5
		s.TrustProxyHeaders = true
	})
	start := func(ip string) *httptest.ResponseRecorder {
		t.Helper()
		return do(t, b.srv.Public(), req{method: http.MethodPost, path: "/devices/webauthn/options", headers: map[string]string{"X-Forwarded-For": ip}})
	}
	for range 5 {
		require.Equal(t, http.StatusOK, start("198.51.100.1").Code)
	}
	w := start("198.51.100.1")
	e := requireError(t, w, http.StatusTooManyRequests, vigil.ERATELIMITED)
	require.Positive(t, e.RetryAfter)
	require.Equal(t, itoa(e.RetryAfter), w.Header().Get("Retry-After"))
	require.Equal(t, http.StatusOK, start("198.51.100.2").Code, "another address has its own count")
	b.clock.Add(time.Minute)
	require.Equal(t, http.StatusOK, start("198.51.100.1").Code, "the next minute counts afresh")
}

// requireClientError checks a 4xx answer in the error shape.
func requireClientError(t *testing.T, w *httptest.ResponseRecorder, name string) {
	t.Helper()
	require.GreaterOrEqual(t, w.Code, 400, "%s: %s", name, w.Body.String())
	require.Less(t, w.Code, 500, "%s: %s", name, w.Body.String())
	errorOf(t, w)
}

// Every device endpoint answers bad bodies in the error shape with the
// status the table gives, never with a 500.
func TestDeviceEndpointsBadInput(t *testing.T) {
	t.Parallel()
	b := setupDevices(t, nil)
	identity := uuid.NewString()
	session := b.sessions.login(identity)
	endpoints := []struct {
		jsonEndpoint
		headers map[string]string
		// override changes what a named bad input gets; status 0 skips it.
		override map[string]badInput
	}{
		{
			jsonEndpoint: jsonEndpoint{path: "/devices/enroll/options", valid: `{"token":"abc"}`, typeField: "token"},
			override:     map[string]badInput{"empty object": {status: 404, code: vigil.ENOTFOUND}},
		},
		{
			jsonEndpoint: jsonEndpoint{path: "/devices/enroll/finish", valid: `{"ceremony_id":"x","token":"abc","credential":{}}`, typeField: "ceremony_id"},
			override:     map[string]badInput{"empty object": {status: 404, code: vigil.ENOTFOUND}},
		},
		{
			// The body is an empty object, or none.
			jsonEndpoint: jsonEndpoint{path: "/devices/webauthn/options", valid: `{   }`, typeField: "x"},
			override: map[string]badInput{
				"empty object":      {},
				"empty body":        {},
				"unknown field":     {status: 400, code: codeMalformedJSON},
				"wrong type":        {status: 400, code: codeUnknownField},
				"wrong type object": {status: 400, code: codeUnknownField},
			},
		},
		{
			jsonEndpoint: jsonEndpoint{path: "/devices/webauthn/finish", valid: `{"ceremony_id":"x","credential":{}}`, typeField: "ceremony_id"},
		},
		{
			jsonEndpoint: jsonEndpoint{path: "/self-service/devices/token", valid: `{"device_token":"abc"}`, typeField: "device_token"},
			headers:      map[string]string{"X-Session-Token": session},
			override:     map[string]badInput{"empty body": {status: 400, code: vigil.EINVALID}},
		},
		{
			jsonEndpoint: jsonEndpoint{admin: true, path: "/admin/identities/" + identity + "/devices/enrollments", valid: `{"name":"x"}`, typeField: "name"},
			override:     map[string]badInput{"empty object": {}},
		},
	}
	for _, ep := range endpoints {
		for _, tt := range badInputs(ep.jsonEndpoint) {
			if o, ok := ep.override[tt.name]; ok {
				if o.status == 0 {
					continue
				}
				tt.status, tt.code, tt.mentions = o.status, o.code, ""
			}
			t.Run(ep.path+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				var body = bytes.NewReader([]byte(tt.body))
				var r *http.Request
				if tt.chunked {
					r = httptest.NewRequest(http.MethodPost, ep.path, struct{ *bytes.Reader }{body}) // hides the length
				} else {
					r = httptest.NewRequest(http.MethodPost, ep.path, body)
				}
				switch tt.contentType {
				case "":
					r.Header.Set("Content-Type", "application/json")
				case "-":
				default:
					r.Header.Set("Content-Type", tt.contentType)
				}
				for k, v := range ep.headers {
					r.Header.Set(k, v)
				}
				h := b.srv.Public()
				if ep.admin {
					h = b.srv.Admin()
					r.Header.Set("Authorization", "Bearer "+testAdminKey)
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				e := requireError(t, w, tt.status, tt.code)
				if tt.mentions != "" {
					require.Contains(t, e.Error.Message, tt.mentions)
				}
			})
		}
	}
	t.Cleanup(func() {
		require.NotContains(t, b.logs.String(), `"level":"ERROR"`, "client mistakes are not server errors")
	})
}

// requireSchema checks body against the named schema of the OpenAPI
// document: required fields present, no field the schema does not name
// where it forbids others, types and enums as documented. It is a check
// that the document tells the truth, not a full JSON Schema validator.
func requireSchema(t *testing.T, name string, body []byte) {
	t.Helper()
	var root struct {
		Components struct {
			Schemas map[string]map[string]any `json:"schemas"`
		} `json:"components"`
	}
	require.NoError(t, json.Unmarshal(openAPI, &root))
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	require.NoError(t, dec.Decode(&v))
	var check func(at string, s map[string]any, v any)
	check = func(at string, s map[string]any, v any) {
		if ref, ok := s["$ref"].(string); ok {
			target, ok := root.Components.Schemas[strings.TrimPrefix(ref, "#/components/schemas/")]
			require.True(t, ok, "%s: unresolved %s", at, ref)
			s = target
		}
		if enum, ok := s["enum"].([]any); ok {
			require.Contains(t, enum, v, "%s: not in the documented enum", at)
		}
		switch s["type"] {
		case "object":
			obj, ok := v.(map[string]any)
			require.True(t, ok, "%s: want an object, got %T", at, v)
			required, _ := s["required"].([]any)
			for _, f := range required {
				require.Contains(t, obj, f, "%s: required field missing", at)
			}
			props, _ := s["properties"].(map[string]any)
			for k, fv := range obj {
				ps, ok := props[k].(map[string]any)
				if !ok {
					require.NotEqual(t, false, s["additionalProperties"], "%s: undocumented field %q", at, k)
					continue
				}
				check(at+"."+k, ps, fv)
			}
		case "array":
			arr, ok := v.([]any)
			require.True(t, ok, "%s: want an array, got %T", at, v)
			items, _ := s["items"].(map[string]any)
			for i, e := range arr {
				check(at+"["+strconv.Itoa(i)+"]", items, e)
			}
		case "string":
			str, ok := v.(string)
			require.True(t, ok, "%s: want a string, got %T", at, v)
			if s["format"] == "date-time" {
				_, err := time.Parse(time.RFC3339Nano, str)
				require.NoError(t, err, at)
			}
			if s["format"] == "uuid" {
				require.True(t, validUUID(str), "%s: not a UUID: %q", at, str)
			}
			if n, ok := s["minLength"].(float64); ok {
				require.GreaterOrEqual(t, len(str), int(n), at)
			}
			if n, ok := s["maxLength"].(float64); ok {
				require.LessOrEqual(t, len([]rune(str)), int(n), at)
			}
		case "boolean":
			_, ok := v.(bool)
			require.True(t, ok, "%s: want a boolean, got %T", at, v)
		case "integer":
			n, ok := v.(json.Number)
			require.True(t, ok, "%s: want an integer, got %T", at, v)
			_, err := n.Int64()
			require.NoError(t, err, "%s: want an integer", at)
		}
	}
	s, ok := root.Components.Schemas[name]
	require.True(t, ok, "no schema %s", name)
	check(name, s, v)
}
