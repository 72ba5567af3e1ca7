package webauthn_test

import (
	"testing"

	vigil "github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/adapters/webauthn"
	"github.com/vigil-auth/vigil/internal/webauthntest"
)

// fuzzBundle is setup for a fuzz target: an RP, a registered credential
// and a genuine response to start mutating from.
func fuzzBundle(f *testing.F) *testBundle {
	f.Helper()
	rp, err := webauthn.New(webauthn.Config{RPID: "example.com", RPName: "Example", Origins: []string{origin}})
	if err != nil {
		f.Fatal(err)
	}
	return &testBundle{
		rp:    rp,
		auth:  webauthntest.New(f),
		user:  vigil.WebAuthnUser{Handle: []byte("identity-1"), Name: "alice", DisplayName: "Alice"},
		creds: map[string]*vigil.WebAuthnCredential{},
	}
}

func seedJunk(f *testing.F) {
	for _, s := range []string{"", "{}", "null", "[]", `{"id":"AA","rawId":"AA","type":"public-key","response":{}}`, "\x00\xff"} {
		f.Add([]byte(s))
	}
}

// FuzzFinishLogin: whatever the client sends, FinishLogin does not panic,
// and with a good session and store every failure is the client's
// (EINVALID), never internal.
func FuzzFinishLogin(f *testing.F) {
	tb := fuzzBundle(f)
	cred := registerF(f, tb)
	options, session, err := tb.rp.BeginLogin()
	if err != nil {
		f.Fatal(err)
	}
	resp, err := tb.auth.Get(options, origin)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(resp)
	seedJunk(f)

	lookup := func(id, _ []byte) (*vigil.WebAuthnCredential, error) {
		if string(id) != string(cred.CredentialID) {
			return nil, vigil.ErrNotFound
		}
		c := *cred
		return &c, nil
	}
	f.Fuzz(func(t *testing.T, response []byte) {
		a, err := tb.rp.FinishLogin(session, response, lookup)
		if err != nil {
			if code := vigil.ErrorCode(err); code != vigil.EINVALID {
				t.Fatalf("code %s for a client's response: %v", code, err)
			}
			return
		}
		if a == nil || a.Credential == nil || string(a.Credential.CredentialID) != string(cred.CredentialID) {
			t.Fatalf("success without the credential: %+v", a)
		}
	})
}

// FuzzFinishRegistration: as FuzzFinishLogin, for registrations.
func FuzzFinishRegistration(f *testing.F) {
	tb := fuzzBundle(f)
	options, session, err := tb.rp.BeginRegistration(tb.user, nil)
	if err != nil {
		f.Fatal(err)
	}
	resp, err := tb.auth.Create(options, origin)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(resp)
	seedJunk(f)

	f.Fuzz(func(t *testing.T, response []byte) {
		c, err := tb.rp.FinishRegistration(tb.user, session, response)
		if err != nil {
			if code := vigil.ErrorCode(err); code != vigil.EINVALID {
				t.Fatalf("code %s for a client's response: %v", code, err)
			}
			return
		}
		if c == nil || len(c.CredentialID) == 0 || len(c.Data) == 0 {
			t.Fatalf("success without a credential: %+v", c)
		}
	})
}

func registerF(f *testing.F, tb *testBundle) *vigil.WebAuthnCredential {
	f.Helper()
	options, session, err := tb.rp.BeginRegistration(tb.user, nil)
	if err != nil {
		f.Fatal(err)
	}
	resp, err := tb.auth.Create(options, origin)
	if err != nil {
		f.Fatal(err)
	}
	cred, err := tb.rp.FinishRegistration(tb.user, session, resp)
	if err != nil {
		f.Fatal(err)
	}
	return cred
}
