package webauthntest_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"slices"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil/internal/webauthntest"
)

const origin = "https://login.example.com"

var b64 = base64.RawURLEncoding

func creationOptions(t *testing.T, rpID string, userID []byte, exclude ...[]byte) []byte {
	t.Helper()
	ex := []map[string]string{}
	for _, id := range exclude {
		ex = append(ex, map[string]string{"type": "public-key", "id": b64.EncodeToString(id)})
	}
	b, err := json.Marshal(map[string]any{"publicKey": map[string]any{
		"rp":                 map[string]string{"id": rpID, "name": "Example"},
		"user":               map[string]string{"id": b64.EncodeToString(userID), "name": "alice", "displayName": "Alice"},
		"challenge":          b64.EncodeToString([]byte("0123456789abcdef-create")),
		"pubKeyCredParams":   []map[string]any{{"type": "public-key", "alg": -7}},
		"excludeCredentials": ex,
		"extensions":         map[string]any{"credProps": true},
	}})
	require.NoError(t, err)
	return b
}

func requestOptions(t *testing.T, rpID string, challenge []byte) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"publicKey": map[string]any{"challenge": b64.EncodeToString(challenge), "rpId": rpID}})
	require.NoError(t, err)
	return b
}

type registration struct {
	ID       []byte
	Client   map[string]any
	AuthData []byte
	Key      *ecdsa.PublicKey
	Ext      map[string]any
}

// parseRegistration decodes a registration response by the spec alone.
func parseRegistration(t *testing.T, resp []byte) registration {
	t.Helper()
	//nolint:tagliatelle // WebAuthn's wire names
	var r struct {
		ID       string         `json:"id"`
		RawID    string         `json:"rawId"`
		Type     string         `json:"type"`
		Ext      map[string]any `json:"clientExtensionResults"`
		Response struct {
			ClientDataJSON    string `json:"clientDataJSON"`
			AttestationObject string `json:"attestationObject"`
		} `json:"response"`
	}
	require.NoError(t, json.Unmarshal(resp, &r))
	require.Equal(t, "public-key", r.Type)
	require.Equal(t, r.ID, r.RawID)
	id, err := b64.DecodeString(r.RawID)
	require.NoError(t, err)

	cdj, err := b64.DecodeString(r.Response.ClientDataJSON)
	require.NoError(t, err)
	var client map[string]any
	require.NoError(t, json.Unmarshal(cdj, &client))

	attRaw, err := b64.DecodeString(r.Response.AttestationObject)
	require.NoError(t, err)
	var att struct {
		Fmt      string         `cbor:"fmt"`
		AttStmt  map[string]any `cbor:"attStmt"`
		AuthData []byte         `cbor:"authData"`
	}
	require.NoError(t, cbor.Unmarshal(attRaw, &att))
	require.Equal(t, "none", att.Fmt)
	require.Empty(t, att.AttStmt)

	ad := att.AuthData
	require.Greater(t, len(ad), 55)
	require.Equal(t, make([]byte, 16), ad[37:53], "AAGUID")
	n := int(binary.BigEndian.Uint16(ad[53:55]))
	require.Equal(t, id, ad[55:55+n])
	var cose map[int]any
	rest, err := cbor.UnmarshalFirst(ad[55+n:], &cose)
	require.NoError(t, err)
	require.Empty(t, rest)
	require.EqualValues(t, 2, cose[1])
	require.EqualValues(t, -7, cose[3])
	require.EqualValues(t, 1, cose[-1])
	x, okX := cose[-2].([]byte)
	y, okY := cose[-3].([]byte)
	require.True(t, okX && okY, "x and y are byte strings")
	require.Len(t, x, 32)
	require.Len(t, y, 32)
	key, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), slices.Concat([]byte{4}, x, y))
	require.NoError(t, err)
	return registration{ID: id, Client: client, AuthData: ad, Key: key, Ext: r.Ext}
}

type assertion struct {
	ID, AuthData, ClientDataJSON, Signature, UserHandle []byte
	Client                                              map[string]any
}

func parseAssertion(t *testing.T, resp []byte) assertion {
	t.Helper()
	//nolint:tagliatelle // WebAuthn's wire names
	var r struct {
		RawID    string `json:"rawId"`
		Response struct {
			ClientDataJSON    string `json:"clientDataJSON"`
			AuthenticatorData string `json:"authenticatorData"`
			Signature         string `json:"signature"`
			UserHandle        string `json:"userHandle"`
		} `json:"response"`
	}
	require.NoError(t, json.Unmarshal(resp, &r))
	var a assertion
	for dst, src := range map[*[]byte]string{&a.ID: r.RawID, &a.AuthData: r.Response.AuthenticatorData, &a.ClientDataJSON: r.Response.ClientDataJSON, &a.Signature: r.Response.Signature, &a.UserHandle: r.Response.UserHandle} {
		b, err := b64.DecodeString(src)
		require.NoError(t, err)
		*dst = b
	}
	require.NoError(t, json.Unmarshal(a.ClientDataJSON, &a.Client))
	return a
}

func TestCreate(t *testing.T) {
	t.Parallel()
	a := webauthntest.New(t)
	resp, err := a.Create(creationOptions(t, "example.com", []byte("user-1")), origin)
	require.NoError(t, err)
	reg := parseRegistration(t, resp)

	require.Equal(t, "webauthn.create", reg.Client["type"])
	require.Equal(t, b64.EncodeToString([]byte("0123456789abcdef-create")), reg.Client["challenge"])
	require.Equal(t, origin, reg.Client["origin"])
	rpHash := sha256.Sum256([]byte("example.com"))
	require.Equal(t, rpHash[:], reg.AuthData[:32])
	require.Equal(t, webauthntest.FlagUP|webauthntest.FlagUV|webauthntest.FlagAT, reg.AuthData[32])
	require.Zero(t, binary.BigEndian.Uint32(reg.AuthData[33:37]))
	require.Len(t, reg.ID, 32)
	require.Equal(t, map[string]any{"credProps": map[string]any{"rk": true}}, reg.Ext)

	creds := a.Credentials()
	require.Len(t, creds, 1)
	require.Equal(t, reg.ID, creds[0].ID)
	require.Equal(t, "example.com", creds[0].RPID)
	require.Equal(t, []byte("user-1"), creds[0].UserHandle)
	require.True(t, creds[0].Key.PublicKey.Equal(reg.Key))
}

func TestGet(t *testing.T) {
	t.Parallel()
	a := webauthntest.New(t)
	resp, err := a.Create(creationOptions(t, "example.com", []byte("user-1")), origin)
	require.NoError(t, err)
	reg := parseRegistration(t, resp)

	for want := uint32(1); want <= 3; want++ {
		challenge := []byte("0123456789abcdef-get-" + string(rune('0'+want)))
		resp, err := a.Get(requestOptions(t, "example.com", challenge), origin)
		require.NoError(t, err)
		as := parseAssertion(t, resp)

		require.Equal(t, reg.ID, as.ID)
		require.Equal(t, []byte("user-1"), as.UserHandle)
		require.Equal(t, "webauthn.get", as.Client["type"])
		require.Equal(t, b64.EncodeToString(challenge), as.Client["challenge"])
		require.Equal(t, origin, as.Client["origin"])
		require.Len(t, as.AuthData, 37)
		rpHash := sha256.Sum256([]byte("example.com"))
		require.Equal(t, rpHash[:], as.AuthData[:32])
		require.Equal(t, webauthntest.FlagUP|webauthntest.FlagUV, as.AuthData[32])
		require.Equal(t, want, binary.BigEndian.Uint32(as.AuthData[33:37]))

		cdh := sha256.Sum256(as.ClientDataJSON)
		digest := sha256.Sum256(append(as.AuthData, cdh[:]...))
		require.True(t, ecdsa.VerifyASN1(reg.Key, digest[:], as.Signature), "signature")
	}
}

func TestKnobsAndRefusals(t *testing.T) {
	t.Parallel()
	counter := func(t *testing.T, a *webauthntest.Authenticator) uint32 {
		t.Helper()
		resp, err := a.Get(requestOptions(t, "example.com", []byte("0123456789abcdef")), origin)
		require.NoError(t, err)
		return binary.BigEndian.Uint32(parseAssertion(t, resp).AuthData[33:37])
	}
	newWithCredential := func(t *testing.T) (*webauthntest.Authenticator, []byte) {
		t.Helper()
		a := webauthntest.New(t)
		resp, err := a.Create(creationOptions(t, "example.com", []byte("user-1")), origin)
		require.NoError(t, err)
		return a, parseRegistration(t, resp).ID
	}

	t.Run("SetSignCount", func(t *testing.T) {
		t.Parallel()
		a, _ := newWithCredential(t)
		require.EqualValues(t, 1, counter(t, a))
		a.SetSignCount(41)
		require.EqualValues(t, 42, counter(t, a))
		a.SetSignCount(0)
		require.EqualValues(t, 1, counter(t, a))
	})
	t.Run("Clone goes its own way", func(t *testing.T) {
		t.Parallel()
		a, _ := newWithCredential(t)
		require.EqualValues(t, 1, counter(t, a))
		b := a.Clone()
		require.EqualValues(t, 2, counter(t, a))
		require.EqualValues(t, 3, counter(t, a))
		require.EqualValues(t, 2, counter(t, b))
	})
	t.Run("excluded credential", func(t *testing.T) {
		t.Parallel()
		a, id := newWithCredential(t)
		_, err := a.Create(creationOptions(t, "example.com", []byte("user-1"), id), origin)
		require.ErrorIs(t, err, webauthntest.ErrExcluded)
		_, err = a.Create(creationOptions(t, "example.com", []byte("user-1"), []byte("another")), origin)
		require.NoError(t, err)
	})
	t.Run("no credential for the rp id", func(t *testing.T) {
		t.Parallel()
		a, _ := newWithCredential(t)
		_, err := a.Get(requestOptions(t, "example.org", []byte("0123456789abcdef")), "https://example.org")
		require.ErrorIs(t, err, webauthntest.ErrNoCredential)
	})
	t.Run("rp id defaults to the origin host", func(t *testing.T) {
		t.Parallel()
		a := webauthntest.New(t)
		_, err := a.Create(creationOptions(t, "", []byte("user-1")), origin)
		require.NoError(t, err)
		require.Equal(t, "login.example.com", a.Credentials()[0].RPID)
		_, err = a.Get(requestOptions(t, "", []byte("0123456789abcdef")), origin)
		require.NoError(t, err)
	})
	t.Run("GetCredential picks one", func(t *testing.T) {
		t.Parallel()
		a, first := newWithCredential(t)
		_, err := a.Create(creationOptions(t, "example.com", []byte("user-2")), origin)
		require.NoError(t, err)
		resp, err := a.Get(requestOptions(t, "example.com", []byte("0123456789abcdef")), origin)
		require.NoError(t, err)
		require.Equal(t, []byte("user-2"), parseAssertion(t, resp).UserHandle, "newest by default")
		resp, err = a.GetCredential(first, requestOptions(t, "example.com", []byte("0123456789abcdef")), origin)
		require.NoError(t, err)
		require.Equal(t, first, parseAssertion(t, resp).ID)
	})
	t.Run("malformed options", func(t *testing.T) {
		t.Parallel()
		a, _ := newWithCredential(t)
		for _, o := range []string{``, `{}`, `{"publicKey":{}}`, `{"publicKey":{"challenge":"!!"}}`, `[]`} {
			_, err := a.Create([]byte(o), origin)
			require.Error(t, err, o)
			_, err = a.Get([]byte(o), origin)
			require.Error(t, err, o)
		}
	})
}
