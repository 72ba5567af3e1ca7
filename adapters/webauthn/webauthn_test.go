package webauthn_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/stretchr/testify/require"

	vigil "github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/adapters/webauthn"
	"github.com/vigil-auth/vigil/internal/webauthntest"
)

const origin = "https://login.example.com"

var b64 = base64.RawURLEncoding

type testBundle struct {
	rp    *webauthn.RP
	auth  *webauthntest.Authenticator
	user  vigil.WebAuthnUser
	creds map[string]*vigil.WebAuthnCredential // by credential id
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	rp, err := webauthn.New(webauthn.Config{
		RPID:    "example.com",
		RPName:  "Example",
		Origins: []string{origin, "https://example.com"},
	})
	require.NoError(t, err)
	return &testBundle{
		rp:    rp,
		auth:  webauthntest.New(t),
		user:  vigil.WebAuthnUser{Handle: []byte("3f2504e0-4f89-11d3-9a0c-0305e82c3301"), Name: "alice@example.com", DisplayName: "Alice"},
		creds: map[string]*vigil.WebAuthnCredential{},
	}
}

// register runs a registration ceremony and keeps the credential as a
// store would.
func (tb *testBundle) register(t *testing.T) *vigil.WebAuthnCredential {
	t.Helper()
	options, session, err := tb.rp.BeginRegistration(tb.user, nil)
	require.NoError(t, err)
	resp, err := tb.auth.Create(options, origin)
	require.NoError(t, err)
	cred, err := tb.rp.FinishRegistration(tb.user, session, resp)
	require.NoError(t, err)
	cred.ID = "cred-" + b64.EncodeToString(cred.CredentialID)[:8]
	cred.IdentityID = string(tb.user.Handle)
	tb.creds[string(cred.CredentialID)] = cred
	return cred
}

// lookup finds a kept credential as a store would.
func (tb *testBundle) lookup(credentialID, _ []byte) (*vigil.WebAuthnCredential, error) {
	c, ok := tb.creds[string(credentialID)]
	if !ok {
		return nil, vigil.ErrNotFound
	}
	cc := *c
	return &cc, nil
}

// assert answers a fresh login ceremony, returning its session and the
// response.
func (tb *testBundle) assert(t *testing.T) (session, resp []byte) {
	t.Helper()
	options, session, err := tb.rp.BeginLogin()
	require.NoError(t, err)
	resp, err = tb.auth.Get(options, origin)
	require.NoError(t, err)
	return session, resp
}

// login runs a login ceremony and writes the credential back.
func (tb *testBundle) login(t *testing.T) *vigil.WebAuthnAssertion {
	t.Helper()
	session, resp := tb.assert(t)
	a, err := tb.rp.FinishLogin(session, resp, tb.lookup)
	require.NoError(t, err)
	tb.creds[string(a.Credential.CredentialID)] = a.Credential
	return a
}

func requireInvalid(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, vigil.EINVALID, vigil.ErrorCode(err), "error: %v", err)
	msg := vigil.ErrorMessage(err)
	require.NotEmpty(t, msg)
	require.Less(t, len(msg), 120)
}

// requireRefusedFor checks that err is EINVALID for the reason given: a
// substring of the error or of go-webauthn's debug information.
func requireRefusedFor(t *testing.T, err error, reason string) {
	t.Helper()
	requireInvalid(t, err)
	if strings.Contains(err.Error(), reason) {
		return
	}
	pe, ok := errors.AsType[*protocol.Error](err)
	require.True(t, ok, "error %q is not about %q", err, reason)
	require.Contains(t, pe.DevInfo, reason, "error %q", err)
}

// obj is m[key] as a JSON object.
func obj(t *testing.T, m map[string]any, key string) map[string]any {
	t.Helper()
	v, ok := m[key].(map[string]any)
	require.True(t, ok, "%s is not an object", key)
	return v
}

// editJSON decodes b, lets edit change it, and encodes it again.
func editJSON(t *testing.T, b []byte, edit func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	edit(m)
	out, err := json.Marshal(m)
	require.NoError(t, err)
	return out
}

func TestRegisterThenLogin(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	cred := tb.register(t)
	require.Len(t, cred.CredentialID, 32)
	require.Equal(t, tb.auth.Credentials()[0].ID, cred.CredentialID)
	require.Zero(t, cred.SignCount)
	require.NotEmpty(t, cred.Data)

	a := tb.login(t)
	require.False(t, a.CloneWarning)
	require.Equal(t, cred.CredentialID, a.Credential.CredentialID)
	require.Equal(t, cred.ID, a.Credential.ID, "the stored credential, updated")
	require.Equal(t, cred.IdentityID, a.Credential.IdentityID)
	require.EqualValues(t, 1, a.Credential.SignCount)
	require.NotEqual(t, cred.Data, a.Credential.Data)
}

func TestSignCountAdvances(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.register(t)
	for want := uint32(1); want <= 3; want++ {
		a := tb.login(t)
		require.False(t, a.CloneWarning)
		require.Equal(t, want, a.Credential.SignCount)
	}
}

func TestCounterLoweredWarnsOfClone(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.register(t)
	tb.login(t)
	tb.login(t)
	tb.login(t) // stored counter 3

	tb.auth.SetSignCount(1) // next assertion says 2
	session, resp := tb.assert(t)
	a, err := tb.rp.FinishLogin(session, resp, tb.lookup)
	require.NoError(t, err, "a clone warning is not an error")
	require.True(t, a.CloneWarning)
	require.EqualValues(t, 3, a.Credential.SignCount, "the counter is not lowered")
	tb.creds[string(a.Credential.CredentialID)] = a.Credential

	// The warning belongs to that assertion; a later good one has none.
	tb.auth.SetSignCount(9)
	a = tb.login(t)
	require.False(t, a.CloneWarning)
	require.EqualValues(t, 10, a.Credential.SignCount)
}

func TestClonedAuthenticatorWarns(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.register(t)
	tb.login(t)
	clone := tb.auth.Clone()
	tb.login(t)
	tb.login(t) // stored counter 3

	options, session, err := tb.rp.BeginLogin()
	require.NoError(t, err)
	resp, err := clone.Get(options, origin) // counter 2
	require.NoError(t, err)
	a, err := tb.rp.FinishLogin(session, resp, tb.lookup)
	require.NoError(t, err)
	require.True(t, a.CloneWarning)
}

func TestSignCountColumnIsAuthoritative(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	cred := tb.register(t)
	// A store that kept a newer counter than Data's copy (say Data was
	// written by an older version): the column wins.
	cred.SignCount = 5
	session, resp := tb.assert(t) // counter 1
	a, err := tb.rp.FinishLogin(session, resp, tb.lookup)
	require.NoError(t, err)
	require.True(t, a.CloneWarning)
	require.EqualValues(t, 5, a.Credential.SignCount)
}

func TestWrongOriginRefused(t *testing.T) {
	t.Parallel()
	t.Run("registration", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		options, session, err := tb.rp.BeginRegistration(tb.user, nil)
		require.NoError(t, err)
		resp, err := tb.auth.Create(options, "https://login.example.com.evil.test")
		require.NoError(t, err)
		_, err = tb.rp.FinishRegistration(tb.user, session, resp)
		requireRefusedFor(t, err, "Error validating origin")
	})
	t.Run("login", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		tb.register(t)
		options, session, err := tb.rp.BeginLogin()
		require.NoError(t, err)
		resp, err := tb.auth.Get(options, "https://evil.test")
		require.NoError(t, err)
		_, err = tb.rp.FinishLogin(session, resp, tb.lookup)
		requireRefusedFor(t, err, "Error validating origin")
	})
}

func TestWrongRPIDRefused(t *testing.T) {
	t.Parallel()
	setRP := func(t *testing.T, rpID string) func(m map[string]any) {
		t.Helper()
		return func(m map[string]any) {
			pk := obj(t, m, "publicKey")
			if rp, ok := pk["rp"].(map[string]any); ok {
				rp["id"] = rpID
			} else {
				pk["rpId"] = rpID
			}
		}
	}
	t.Run("registration", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		options, session, err := tb.rp.BeginRegistration(tb.user, nil)
		require.NoError(t, err)
		resp, err := tb.auth.Create(editJSON(t, options, setRP(t, "login.example.com")), origin)
		require.NoError(t, err)
		_, err = tb.rp.FinishRegistration(tb.user, session, resp)
		requireRefusedFor(t, err, "RP Hash mismatch")
	})
	t.Run("login", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		// A credential the authenticator holds for another RP id, which
		// the store knows by its id.
		options, _, err := tb.rp.BeginRegistration(tb.user, nil)
		require.NoError(t, err)
		_, err = tb.auth.Create(editJSON(t, options, setRP(t, "login.example.com")), origin)
		require.NoError(t, err)
		good := tb.register(t)
		other := tb.auth.Credentials()[0]
		forged := *good
		forged.CredentialID = other.ID
		forged.Data = editJSON(t, good.Data, func(m map[string]any) {
			obj(t, m, "credential")["id"] = base64.StdEncoding.EncodeToString(other.ID)
		})
		tb.creds[string(other.ID)] = &forged

		options, session, err := tb.rp.BeginLogin()
		require.NoError(t, err)
		resp, err := tb.auth.GetCredential(other.ID, editJSON(t, options, setRP(t, "login.example.com")), origin)
		require.NoError(t, err)
		_, err = tb.rp.FinishLogin(session, resp, tb.lookup)
		requireRefusedFor(t, err, "RP Hash mismatch")
	})
}

func TestChallengeFromAnotherCeremonyRefused(t *testing.T) {
	t.Parallel()
	t.Run("registration", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		options, _, err := tb.rp.BeginRegistration(tb.user, nil)
		require.NoError(t, err)
		_, otherSession, err := tb.rp.BeginRegistration(tb.user, nil)
		require.NoError(t, err)
		resp, err := tb.auth.Create(options, origin)
		require.NoError(t, err)
		_, err = tb.rp.FinishRegistration(tb.user, otherSession, resp)
		requireRefusedFor(t, err, "Error validating challenge")
	})
	t.Run("login", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		tb.register(t)
		_, resp := tb.assert(t)
		_, otherSession, err := tb.rp.BeginLogin()
		require.NoError(t, err)
		_, err = tb.rp.FinishLogin(otherSession, resp, tb.lookup)
		requireRefusedFor(t, err, "Error validating challenge")
	})
}

func TestReplayedAssertionRefused(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.register(t)
	session, resp := tb.assert(t)
	a, err := tb.rp.FinishLogin(session, resp, tb.lookup)
	require.NoError(t, err)
	tb.creds[string(a.Credential.CredentialID)] = a.Credential

	_, fresh, err := tb.rp.BeginLogin()
	require.NoError(t, err)
	_, err = tb.rp.FinishLogin(fresh, resp, tb.lookup)
	requireRefusedFor(t, err, "Error validating challenge")
}

func TestUnknownCredentialRefused(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.register(t)
	clear(tb.creds)
	session, resp := tb.assert(t)
	_, err := tb.rp.FinishLogin(session, resp, tb.lookup)
	requireRefusedFor(t, err, "not registered")
	require.NotErrorIs(t, err, vigil.ErrNotFound, "must not read as the caller's own not-found")
}

func TestLookupFailureIsInternal(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.register(t)
	session, resp := tb.assert(t)
	boom := errors.New("database is down")
	_, err := tb.rp.FinishLogin(session, resp, func(_, _ []byte) (*vigil.WebAuthnCredential, error) { return nil, boom })
	require.ErrorIs(t, err, boom)
	require.Equal(t, vigil.EINTERNAL, vigil.ErrorCode(err))
}

func TestUserHandleMismatchRefused(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.register(t)
	session, resp := tb.assert(t)
	// userHandle is not signed: a client can send any.
	resp = editJSON(t, resp, func(m map[string]any) {
		obj(t, m, "response")["userHandle"] = b64.EncodeToString([]byte("someone-else"))
	})
	_, err := tb.rp.FinishLogin(session, resp, tb.lookup)
	requireRefusedFor(t, err, "User handle and User ID do not match")
}

func TestBadSignatureRefused(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.register(t)
	session, resp := tb.assert(t)
	resp = editJSON(t, resp, func(m map[string]any) {
		r := obj(t, m, "response")
		enc, ok := r["signature"].(string)
		require.True(t, ok)
		sig, err := b64.DecodeString(enc)
		require.NoError(t, err)
		sig[len(sig)-1] ^= 0x01
		r["signature"] = b64.EncodeToString(sig)
	})
	_, err := tb.rp.FinishLogin(session, resp, tb.lookup)
	requireRefusedFor(t, err, "signature")
}

func TestNonResidentCredentialRefused(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	options, session, err := tb.rp.BeginRegistration(tb.user, nil)
	require.NoError(t, err)
	resp, err := tb.auth.Create(options, origin)
	require.NoError(t, err)
	resp = editJSON(t, resp, func(m map[string]any) {
		m["clientExtensionResults"] = map[string]any{"credProps": map[string]any{"rk": false}}
	})
	_, err = tb.rp.FinishRegistration(tb.user, session, resp)
	requireRefusedFor(t, err, "rk is false")
}

func TestUnsolicitedExtensionOutputsIgnored(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	options, session, err := tb.rp.BeginRegistration(tb.user, nil)
	require.NoError(t, err)
	resp, err := tb.auth.Create(options, origin)
	require.NoError(t, err)
	resp = editJSON(t, resp, func(m map[string]any) {
		obj(t, m, "clientExtensionResults")["hmacCreateSecret"] = false
	})
	cred, err := tb.rp.FinishRegistration(tb.user, session, resp)
	require.NoError(t, err)
	tb.creds[string(cred.CredentialID)] = cred

	session, resp = tb.assert(t)
	resp = editJSON(t, resp, func(m map[string]any) {
		m["clientExtensionResults"] = map[string]any{"credProps": map[string]any{"rk": true}, "somethingNew": 1}
	})
	_, err = tb.rp.FinishLogin(session, resp, tb.lookup)
	require.NoError(t, err)
}

func TestSessionOfTheOtherCeremonyRefused(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.register(t)

	regOptions, regSession, err := tb.rp.BeginRegistration(tb.user, nil)
	require.NoError(t, err)
	regResp, err := tb.auth.Create(regOptions, origin)
	require.NoError(t, err)
	loginSession, loginResp := tb.assert(t)

	_, err = tb.rp.FinishRegistration(tb.user, loginSession, regResp)
	requireInvalid(t, err)
	_, err = tb.rp.FinishLogin(regSession, loginResp, tb.lookup)
	requireInvalid(t, err)
	_, err = tb.rp.FinishRegistration(tb.user, regSession, loginResp)
	requireInvalid(t, err)
	_, err = tb.rp.FinishLogin(loginSession, regResp, tb.lookup)
	requireInvalid(t, err)
}

func TestRegistrationForAnotherUserRefused(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	options, session, err := tb.rp.BeginRegistration(tb.user, nil)
	require.NoError(t, err)
	resp, err := tb.auth.Create(options, origin)
	require.NoError(t, err)
	other := tb.user
	other.Handle = []byte("another-identity")
	_, err = tb.rp.FinishRegistration(other, session, resp)
	requireRefusedFor(t, err, "ID mismatch for User and Session")
}

func TestBadResponseRefused(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.register(t)
	_, regSession, err := tb.rp.BeginRegistration(tb.user, nil)
	require.NoError(t, err)
	_, loginSession, err := tb.rp.BeginLogin()
	require.NoError(t, err)

	for name, resp := range map[string][]byte{
		"empty":       nil,
		"not JSON":    []byte("hello"),
		"JSON null":   []byte("null"),
		"array":       []byte("[]"),
		"empty obj":   []byte("{}"),
		"trailing":    []byte(`{"id":"AA","rawId":"AA","type":"public-key"} {}`),
		"no response": []byte(`{"id":"AAAA","rawId":"AAAA","type":"public-key"}`),
		"bad base64":  []byte(`{"id":"***","rawId":"***","type":"public-key","response":{}}`),
		"too large":   []byte(`{"id":"` + strings.Repeat("A", 70<<10) + `"}`),
		"bad client data": []byte(`{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{` +
			`"clientDataJSON":"` + b64.EncodeToString([]byte("{")) + `","authenticatorData":"","signature":"","attestationObject":""}}`),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := tb.rp.FinishRegistration(tb.user, regSession, resp)
			requireInvalid(t, err)
			_, err = tb.rp.FinishLogin(loginSession, resp, tb.lookup)
			requireInvalid(t, err)
		})
	}
}

func TestBadSessionIsInternal(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.register(t)
	_, resp := tb.assert(t)
	for _, s := range [][]byte{nil, []byte("{"), []byte(`"x"`)} {
		_, err := tb.rp.FinishLogin(s, resp, tb.lookup)
		require.Error(t, err)
		require.Equal(t, vigil.EINTERNAL, vigil.ErrorCode(err))
	}
	// A session that decodes but is not one this RP began is refused
	// by go-webauthn's own checks (no challenge).
	_, err := tb.rp.FinishLogin([]byte(`{}`), resp, tb.lookup)
	require.Error(t, err)
}

func TestExcludedCredentials(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	cred := tb.register(t)
	plain := &vigil.WebAuthnCredential{CredentialID: []byte("registered-elsewhere")}

	options, _, err := tb.rp.BeginRegistration(tb.user, []*vigil.WebAuthnCredential{cred, plain})
	require.NoError(t, err)
	//nolint:tagliatelle // WebAuthn's wire names
	var o struct {
		PublicKey struct {
			Exclude []struct {
				Type       string   `json:"type"`
				ID         string   `json:"id"`
				Transports []string `json:"transports"`
			} `json:"excludeCredentials"`
		} `json:"publicKey"`
	}
	require.NoError(t, json.Unmarshal(options, &o))
	require.Len(t, o.PublicKey.Exclude, 2)
	require.Equal(t, "public-key", o.PublicKey.Exclude[0].Type)
	require.Equal(t, b64.EncodeToString(cred.CredentialID), o.PublicKey.Exclude[0].ID)
	require.Equal(t, []string{"internal"}, o.PublicKey.Exclude[0].Transports)
	require.Equal(t, b64.EncodeToString(plain.CredentialID), o.PublicKey.Exclude[1].ID)

	_, err = tb.auth.Create(options, origin)
	require.ErrorIs(t, err, webauthntest.ErrExcluded, "the authenticator honours it")

	_, _, err = tb.rp.BeginRegistration(tb.user, []*vigil.WebAuthnCredential{{CredentialID: []byte("x"), Data: []byte("{")}})
	require.Error(t, err, "a corrupt stored credential is an internal error")
	require.Equal(t, vigil.EINTERNAL, vigil.ErrorCode(err))
}

func TestOptions(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	options, session, err := tb.rp.BeginRegistration(tb.user, nil)
	require.NoError(t, err)
	//nolint:tagliatelle // WebAuthn's wire names
	var create struct {
		PublicKey struct {
			RP struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"rp"`
			User struct {
				ID          string `json:"id"`
				Name        string `json:"name"`
				DisplayName string `json:"displayName"`
			} `json:"user"`
			Challenge string `json:"challenge"`
			Params    []struct {
				Type string `json:"type"`
				Alg  int    `json:"alg"`
			} `json:"pubKeyCredParams"`
			Timeout   int            `json:"timeout"`
			Exclude   []any          `json:"excludeCredentials"`
			Selection map[string]any `json:"authenticatorSelection"`
			Attest    string         `json:"attestation"`
			Ext       map[string]any `json:"extensions"`
		} `json:"publicKey"`
	}
	require.NoError(t, json.Unmarshal(options, &create))
	pk := create.PublicKey
	require.Equal(t, "example.com", pk.RP.ID)
	require.Equal(t, "Example", pk.RP.Name)
	require.Equal(t, b64.EncodeToString(tb.user.Handle), pk.User.ID)
	require.Equal(t, "alice@example.com", pk.User.Name)
	require.Equal(t, "Alice", pk.User.DisplayName)
	challenge, err := b64.DecodeString(pk.Challenge)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(challenge), 16)
	require.Contains(t, pk.Params, struct {
		Type string `json:"type"`
		Alg  int    `json:"alg"`
	}{"public-key", -7})
	require.Equal(t, int(webauthn.DefaultTimeout/time.Millisecond), pk.Timeout)
	require.Empty(t, pk.Exclude)
	require.Equal(t, map[string]any{"residentKey": "required", "requireResidentKey": true, "userVerification": "preferred"}, pk.Selection)
	require.Equal(t, "none", pk.Attest)
	require.Equal(t, map[string]any{"credProps": true}, pk.Ext)
	require.Contains(t, string(session), pk.Challenge, "the session holds the challenge")

	options, session, err = tb.rp.BeginLogin()
	require.NoError(t, err)
	var get map[string]map[string]any
	require.NoError(t, json.Unmarshal(options, &get))
	require.NotContains(t, get["publicKey"], "allowCredentials")
	require.Equal(t, "example.com", get["publicKey"]["rpId"])
	require.Equal(t, "preferred", get["publicKey"]["userVerification"])
	require.Contains(t, string(session), get["publicKey"]["challenge"])

	_, otherSession, err := tb.rp.BeginLogin()
	require.NoError(t, err)
	require.NotEqual(t, session, otherSession, "every ceremony has its own challenge")
}

func TestBeginRegistrationRefusesBadHandle(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	for _, h := range [][]byte{nil, bytes.Repeat([]byte("a"), 65)} {
		u := tb.user
		u.Handle = h
		_, _, err := tb.rp.BeginRegistration(u, nil)
		require.Error(t, err)
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	good := webauthn.Config{RPID: "example.com", RPName: "Example", Origins: []string{"https://example.com", "https://login.example.com:8443"}}
	tests := []struct {
		name string
		edit func(c *webauthn.Config)
		want []string // substrings of the error; none: valid
	}{
		{"valid", func(*webauthn.Config) {}, nil},
		{"localhost over http", func(c *webauthn.Config) { c.RPID = "localhost"; c.Origins = []string{"http://localhost:4455"} }, nil},
		{"timeout", func(c *webauthn.Config) { c.Timeout = time.Minute }, nil},
		{"everything wrong at once", func(c *webauthn.Config) { *c = webauthn.Config{Timeout: -1} }, []string{"RPID is required", "RPName is required", "at least one origin", "negative"}},
		{"RPID with scheme", func(c *webauthn.Config) { c.RPID = "https://example.com"; c.Origins = nil }, []string{"not a domain"}},
		{"RPID is an IP", func(c *webauthn.Config) { c.RPID = "192.0.2.1"; c.Origins = nil }, []string{"not a domain"}},
		{"RPID uppercase", func(c *webauthn.Config) { c.RPID = "Example.com" }, []string{"lowercase"}},
		{"origin of another site", func(c *webauthn.Config) { c.Origins = []string{"https://example.org"} }, []string{"subdomain"}},
		{"origin that only ends like RPID", func(c *webauthn.Config) { c.Origins = []string{"https://notexample.com"} }, []string{"subdomain"}},
		{"http origin", func(c *webauthn.Config) { c.Origins = []string{"http://example.com"} }, []string{"https"}},
		{"origin with path", func(c *webauthn.Config) { c.Origins = []string{"https://example.com/login"} }, []string{"no path"}},
		{"origin with trailing slash", func(c *webauthn.Config) { c.Origins = []string{"https://example.com/"} }, []string{"no path"}},
		{"origin without host", func(c *webauthn.Config) { c.Origins = []string{"https://"} }, []string{"scheme://host"}},
		{"bare host", func(c *webauthn.Config) { c.Origins = []string{"example.com"} }, []string{"https"}},
		{"blank name", func(c *webauthn.Config) { c.RPName = "  " }, []string{"RPName"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := good
			tt.edit(&c)
			rp, err := webauthn.New(c)
			if tt.want == nil {
				require.NoError(t, err)
				require.NotNil(t, rp)
				return
			}
			require.Error(t, err)
			for _, w := range tt.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	rp, err := webauthn.New(webauthn.Config{RPID: "example.com", RPName: "Example", Origins: []string{"https://example.com"}, Timeout: 90 * time.Second})
	require.NoError(t, err)
	require.Equal(t, 90*time.Second, rp.Timeout())
	options, _, err := rp.BeginLogin()
	require.NoError(t, err)
	require.Contains(t, string(options), `"timeout":90000`)
}
