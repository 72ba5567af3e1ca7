package webauthntest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// Flags of authenticator data (WebAuthn §6.1).
const (
	FlagUP byte = 0x01 // user present
	FlagUV byte = 0x04 // user verified
	FlagAT byte = 0x40 // attested credential data included
)

// coseES256 is the COSE algorithm id of ECDSA with P-256 and SHA-256.
const coseES256 = -7

var (
	// ErrExcluded is Create's answer when the authenticator holds a
	// credential in excludeCredentials (a browser's InvalidStateError).
	ErrExcluded = errors.New("webauthntest: authenticator already holds an excluded credential")
	// ErrNoCredential is Get's answer when no credential fits (a
	// browser's NotAllowedError).
	ErrNoCredential = errors.New("webauthntest: no credential for this request")
)

var b64 = base64.RawURLEncoding

var ctap2 = func() cbor.EncMode {
	em, err := cbor.CTAP2EncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	return em
}()

// Authenticator is a software platform authenticator with resident
// credentials. It is safe for concurrent use.
type Authenticator struct {
	mu    sync.Mutex
	creds []*Credential
}

// Credential is a resident credential the authenticator holds.
type Credential struct {
	ID         []byte
	RPID       string
	UserHandle []byte
	Key        *ecdsa.PrivateKey
	SignCount  uint32
}

// New returns an authenticator that holds no credential. It lives as
// long as the test t; keys are generated per credential by Create.
func New(t testing.TB) *Authenticator {
	t.Helper()
	return &Authenticator{}
}

// Credentials returns copies of the credentials held, oldest first.
func (a *Authenticator) Credentials() []Credential {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Credential, len(a.creds))
	for i, c := range a.creds {
		out[i] = *c
	}
	return out
}

// SetSignCount sets every credential's counter; the next assertion
// reports n+1.
func (a *Authenticator) SetSignCount(n uint32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.creds {
		c.SignCount = n
	}
}

// Clone returns an authenticator with the same keys and counters that
// goes its own way from now on, as a copied device would.
func (a *Authenticator) Clone() *Authenticator {
	a.mu.Lock()
	defer a.mu.Unlock()
	b := &Authenticator{}
	for _, c := range a.creds {
		cc := *c
		b.creds = append(b.creds, &cc)
	}
	return b
}

//nolint:tagliatelle // WebAuthn's wire names
type creationOptions struct {
	PublicKey *struct {
		RP struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"rp"`
		User struct {
			ID          string `json:"id"`
			Name        string `json:"name"`
			DisplayName string `json:"displayName"`
		} `json:"user"`
		Challenge        string       `json:"challenge"`
		PubKeyCredParams []credParam  `json:"pubKeyCredParams"`
		Exclude          []descriptor `json:"excludeCredentials"`
		Extensions       struct {
			CredProps bool `json:"credProps"`
		} `json:"extensions"`
	} `json:"publicKey"`
}

//nolint:tagliatelle // WebAuthn's wire names
type requestOptions struct {
	PublicKey *struct {
		Challenge string       `json:"challenge"`
		RPID      string       `json:"rpId"`
		Allow     []descriptor `json:"allowCredentials"`
	} `json:"publicKey"`
}

type credParam struct {
	Type string `json:"type"`
	Alg  int    `json:"alg"`
}

type descriptor struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

//nolint:tagliatelle // WebAuthn's wire names
type clientData struct {
	Type        string `json:"type"`
	Challenge   string `json:"challenge"`
	Origin      string `json:"origin"`
	CrossOrigin bool   `json:"crossOrigin"`
}

type attestationObject struct {
	Fmt      string         `cbor:"fmt"`
	AttStmt  map[string]any `cbor:"attStmt"`
	AuthData []byte         `cbor:"authData"`
}

// Create registers a new resident credential and returns the registration
// response JSON.
func (a *Authenticator) Create(optionsJSON []byte, origin string) ([]byte, error) {
	var o creationOptions
	if err := json.Unmarshal(optionsJSON, &o); err != nil {
		return nil, fmt.Errorf("webauthntest: creation options: %w", err)
	}
	pk := o.PublicKey
	if pk == nil {
		return nil, errors.New("webauthntest: creation options have no publicKey")
	}
	rpID, err := rpIDOr(pk.RP.ID, origin)
	if err != nil {
		return nil, err
	}
	challenge, err := b64.DecodeString(pk.Challenge)
	if err != nil || len(challenge) == 0 {
		return nil, fmt.Errorf("webauthntest: creation options: bad challenge %q", pk.Challenge)
	}
	userHandle, err := b64.DecodeString(pk.User.ID)
	if err != nil || len(userHandle) == 0 || len(userHandle) > 64 {
		return nil, fmt.Errorf("webauthntest: creation options: bad user.id %q", pk.User.ID)
	}
	if !slices.ContainsFunc(pk.PubKeyCredParams, func(p credParam) bool { return p.Type == "public-key" && p.Alg == coseES256 }) {
		return nil, errors.New("webauthntest: creation options do not allow ES256")
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("webauthntest: generate key: %w", err)
	}
	id := make([]byte, 32)
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("webauthntest: credential id: %w", err)
	}
	cose, err := coseKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("webauthntest: public key: %w", err)
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	for _, d := range pk.Exclude {
		ex, err := b64.DecodeString(d.ID)
		if err != nil {
			return nil, fmt.Errorf("webauthntest: excludeCredentials: bad id %q", d.ID)
		}
		if a.holds(ex, rpID) {
			return nil, ErrExcluded
		}
	}
	c := &Credential{ID: id, RPID: rpID, UserHandle: userHandle, Key: key}

	authData := authenticatorData(rpID, FlagUP|FlagUV|FlagAT, c.SignCount)
	// AAGUID zero, as with attestation "none".
	authData = append(authData, make([]byte, 16)...)
	authData = binary.BigEndian.AppendUint16(authData, uint16(len(id))) //nolint:gosec // 32
	authData = append(authData, id...)
	authData = append(authData, cose...)

	att, err := ctap2.Marshal(attestationObject{Fmt: "none", AttStmt: map[string]any{}, AuthData: authData})
	if err != nil {
		return nil, fmt.Errorf("webauthntest: attestation object: %w", err)
	}
	cdj, err := json.Marshal(clientData{Type: "webauthn.create", Challenge: b64.EncodeToString(challenge), Origin: origin})
	if err != nil {
		return nil, err
	}
	ext := map[string]any{}
	if pk.Extensions.CredProps {
		ext["credProps"] = map[string]bool{"rk": true}
	}
	resp, err := json.Marshal(map[string]any{
		"id":                      b64.EncodeToString(id),
		"rawId":                   b64.EncodeToString(id),
		"type":                    "public-key",
		"authenticatorAttachment": "platform",
		"clientExtensionResults":  ext,
		"response": map[string]any{
			"clientDataJSON":     b64.EncodeToString(cdj),
			"attestationObject":  b64.EncodeToString(att),
			"authenticatorData":  b64.EncodeToString(authData),
			"publicKey":          b64.EncodeToString(spki),
			"publicKeyAlgorithm": coseES256,
			"transports":         []string{"internal"},
		},
	})
	if err != nil {
		return nil, err
	}
	a.creds = append(a.creds, c)
	return resp, nil
}

// Get answers request options with the newest fitting credential.
func (a *Authenticator) Get(optionsJSON []byte, origin string) ([]byte, error) {
	return a.get(nil, optionsJSON, origin)
}

// GetCredential answers request options with the credential whose id is
// credentialID, if it fits.
func (a *Authenticator) GetCredential(credentialID, optionsJSON []byte, origin string) ([]byte, error) {
	if len(credentialID) == 0 {
		return nil, ErrNoCredential
	}
	return a.get(credentialID, optionsJSON, origin)
}

func (a *Authenticator) get(want, optionsJSON []byte, origin string) ([]byte, error) {
	var o requestOptions
	if err := json.Unmarshal(optionsJSON, &o); err != nil {
		return nil, fmt.Errorf("webauthntest: request options: %w", err)
	}
	pk := o.PublicKey
	if pk == nil {
		return nil, errors.New("webauthntest: request options have no publicKey")
	}
	rpID, err := rpIDOr(pk.RPID, origin)
	if err != nil {
		return nil, err
	}
	challenge, err := b64.DecodeString(pk.Challenge)
	if err != nil || len(challenge) == 0 {
		return nil, fmt.Errorf("webauthntest: request options: bad challenge %q", pk.Challenge)
	}
	var allow [][]byte
	for _, d := range pk.Allow {
		id, err := b64.DecodeString(d.ID)
		if err != nil {
			return nil, fmt.Errorf("webauthntest: allowCredentials: bad id %q", d.ID)
		}
		allow = append(allow, id)
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	var c *Credential
	for _, cand := range slices.Backward(a.creds) {
		if cand.RPID != rpID ||
			(want != nil && !bytes.Equal(cand.ID, want)) ||
			(allow != nil && !slices.ContainsFunc(allow, func(id []byte) bool { return bytes.Equal(id, cand.ID) })) {
			continue
		}
		c = cand
		break
	}
	if c == nil {
		return nil, ErrNoCredential
	}

	c.SignCount++
	authData := authenticatorData(rpID, FlagUP|FlagUV, c.SignCount)
	cdj, err := json.Marshal(clientData{Type: "webauthn.get", Challenge: b64.EncodeToString(challenge), Origin: origin})
	if err != nil {
		return nil, err
	}
	cdh := sha256.Sum256(cdj)
	digest := sha256.Sum256(append(slices.Clip(authData), cdh[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, c.Key, digest[:])
	if err != nil {
		return nil, fmt.Errorf("webauthntest: sign: %w", err)
	}
	return json.Marshal(map[string]any{
		"id":                      b64.EncodeToString(c.ID),
		"rawId":                   b64.EncodeToString(c.ID),
		"type":                    "public-key",
		"authenticatorAttachment": "platform",
		"clientExtensionResults":  map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(cdj),
			"authenticatorData": b64.EncodeToString(authData),
			"signature":         b64.EncodeToString(sig),
			"userHandle":        b64.EncodeToString(c.UserHandle),
		},
	})
}

// holds reports whether a credential with id for rpID is held; a.mu is
// held by the caller.
func (a *Authenticator) holds(id []byte, rpID string) bool {
	return slices.ContainsFunc(a.creds, func(c *Credential) bool { return c.RPID == rpID && bytes.Equal(c.ID, id) })
}

// authenticatorData is the fixed 37-byte head of authenticator data.
func authenticatorData(rpID string, flags byte, signCount uint32) []byte {
	h := sha256.Sum256([]byte(rpID))
	b := make([]byte, 0, len(h)+1+4)
	b = append(b, h[:]...)
	b = append(b, flags)
	return binary.BigEndian.AppendUint32(b, signCount)
}

// coseKey encodes pub as a COSE_Key (RFC 9053): kty EC2, alg ES256,
// crv P-256, x, y.
func coseKey(pub *ecdsa.PublicKey) ([]byte, error) {
	raw, err := pub.Bytes() // 0x04 || x || y
	if err != nil {
		return nil, fmt.Errorf("webauthntest: public key: %w", err)
	}
	b, err := ctap2.Marshal(map[int]any{
		1:  2,          // kty: EC2
		3:  coseES256,  // alg
		-1: 1,          // crv: P-256
		-2: raw[1:33],  // x
		-3: raw[33:65], // y
	})
	if err != nil {
		return nil, fmt.Errorf("webauthntest: COSE key: %w", err)
	}
	return b, nil
}

// rpIDOr is the rp id of a ceremony: the one in the options, or the
// origin's host as a browser would take.
func rpIDOr(rpID, origin string) (string, error) {
	if rpID != "" {
		return rpID, nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Hostname() == "" {
		return "", fmt.Errorf("webauthntest: origin %q has no host to take the rp id from", origin)
	}
	return u.Hostname(), nil
}
