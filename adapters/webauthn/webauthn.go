package webauthn

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	vigil "github.com/vigil-auth/vigil"
)

// DefaultTimeout is how long the browser is told to wait for the user
// when Config.Timeout is zero: the five minutes WebAuthn recommends.
const DefaultTimeout = 5 * time.Minute

// maxResponseBytes caps the PublicKeyCredential JSON a Finish call parses.
// A real response is a few KiB; the cap bounds the JSON and CBOR work a
// client can ask for.
const maxResponseBytes = 64 << 10

// Client-safe messages. They name the problem, never the detail.
const (
	msgMalformed    = "The WebAuthn response is malformed."
	msgNotVerified  = "The WebAuthn response could not be verified."
	msgUnknown      = "This credential is not registered."
	msgNotDiscovery = "The authenticator did not store the credential on the device, so it cannot be used to sign in."
)

var _ vigil.WebAuthn = (*RP)(nil)

// Config is the relying party's identity.
type Config struct {
	// RPID is the relying party id: the registrable domain credentials
	// are scoped to ("example.com"), lowercase, no scheme or port.
	RPID string
	// RPName is shown by the browser while it asks the user.
	RPName string
	// Origins are the origins ceremonies may run on
	// ("https://login.example.com"). Each host must be RPID or a
	// subdomain of it; http is allowed for localhost only.
	Origins []string
	// Timeout is how long the browser waits for the user; zero means
	// DefaultTimeout. It is a hint to the browser only: the caller
	// expires ceremonies by its own clock.
	Timeout time.Duration
}

// Validate returns every problem with the config at once.
func (c Config) Validate() error {
	var errs []error
	rpIDValid := false
	switch {
	case c.RPID == "":
		errs = append(errs, errors.New("RPID is required"))
	case strings.ToLower(c.RPID) != c.RPID:
		errs = append(errs, fmt.Errorf("RPID %q must be lowercase", c.RPID))
	default:
		if err := protocol.ValidateRPID(c.RPID); err != nil {
			errs = append(errs, fmt.Errorf("RPID %q is not a domain: %w", c.RPID, err))
		} else {
			rpIDValid = true
		}
	}
	if strings.TrimSpace(c.RPName) == "" {
		errs = append(errs, errors.New("RPName is required"))
	}
	if len(c.Origins) == 0 {
		errs = append(errs, errors.New("at least one origin is required"))
	}
	for _, o := range c.Origins {
		if err := validateOrigin(o, c.RPID, rpIDValid); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %s is negative", c.Timeout))
	}
	return errors.Join(errs...)
}

// validateOrigin checks that o is an origin a browser would report for a
// page that may use rpID. A mismatch would only show up as every ceremony
// failing, so it is refused at startup.
func validateOrigin(o, rpID string, checkRPID bool) error {
	u, err := url.Parse(o)
	if err != nil {
		return fmt.Errorf("origin %q: %w", o, err)
	}
	host := u.Hostname()
	switch {
	case u.Scheme != "https" && (u.Scheme != "http" || host != "localhost"):
		return fmt.Errorf("origin %q: must be https (http only for localhost)", o)
	case host == "" || u.User != nil || u.Opaque != "":
		return fmt.Errorf("origin %q: must be scheme://host[:port]", o)
	case u.Path != "" || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(o, "?") || strings.HasSuffix(o, "#"):
		return fmt.Errorf("origin %q: must have no path, query or fragment", o)
	case host != strings.ToLower(host):
		return fmt.Errorf("origin %q: host must be lowercase", o)
	case checkRPID && host != rpID && !strings.HasSuffix(host, "."+rpID):
		return fmt.Errorf("origin %q: host is neither RPID %q nor a subdomain of it", o, rpID)
	}
	return nil
}

// RP is the relying party's side of WebAuthn ceremonies.
type RP struct {
	wa      *webauthn.WebAuthn
	timeout time.Duration
}

// New builds an RP from a config that passes Validate.
func New(c Config) (*RP, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("webauthn config: %w", err)
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	// Enforce stays false: go-webauthn would check expiry against
	// time.Now, and the caller already expires ceremonies by vigil.Clock.
	t := webauthn.TimeoutConfig{Timeout: timeout, TimeoutUVD: timeout}
	wa, err := webauthn.New(&webauthn.Config{
		RPID:          c.RPID,
		RPDisplayName: c.RPName,
		RPOrigins:     append([]string(nil), c.Origins...),
		// See doc.go for why resident keys are required and user
		// verification only preferred.
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			RequireResidentKey: protocol.ResidentKeyRequired(),
			ResidentKey:        protocol.ResidentKeyRequirementRequired,
			UserVerification:   protocol.VerificationPreferred,
		},
		AttestationPreference: protocol.PreferNoAttestation,
		Timeouts:              webauthn.TimeoutsConfig{Login: t, Registration: t},
		// WebAuthn lets clients add extensions the RP did not ask for,
		// and some do (authelia/authelia#13146); go-webauthn's default
		// fails the whole ceremony then. The outputs are unsigned client
		// claims and Vigil acts on none but credProps, which it asks for.
		ExtensionsUnsolicitedOutputPolicy: protocol.UnsolicitedOutputPolicyIgnore,
	})
	if err != nil {
		return nil, fmt.Errorf("webauthn config: %w", err)
	}
	return &RP{wa: wa, timeout: timeout}, nil
}

// Timeout is how long the browser is told to wait: a ceremony's server
// side should not expire before it.
func (rp *RP) Timeout() time.Duration { return rp.timeout }

// BeginRegistration starts registering a discoverable credential for u.
func (rp *RP) BeginRegistration(u vigil.WebAuthnUser, exclude []*vigil.WebAuthnCredential) (options, session []byte, err error) {
	descriptors := make([]protocol.CredentialDescriptor, 0, len(exclude))
	for _, c := range exclude {
		var d protocol.CredentialDescriptor
		if d, err = descriptor(c); err != nil {
			return nil, nil, err
		}
		descriptors = append(descriptors, d)
	}
	creation, sd, err := rp.wa.BeginRegistration(user{u: u},
		webauthn.WithExclusions(descriptors),
		// credProps lets FinishRegistration refuse a credential the
		// authenticator says it did not store (rk: false).
		webauthn.WithExtensions(webauthn.WithExtensionCredProps()),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("begin webauthn registration: %w", err)
	}
	return marshalCeremony(creation, sd)
}

// descriptor names c for excludeCredentials, with the transports the
// browser reported at registration so it can skip asking other ones.
func descriptor(c *vigil.WebAuthnCredential) (protocol.CredentialDescriptor, error) {
	d := protocol.CredentialDescriptor{Type: protocol.PublicKeyCredentialType, CredentialID: c.CredentialID}
	if len(c.Data) == 0 {
		return d, nil
	}
	rec, err := decodeRecord(c)
	if err != nil {
		return d, err
	}
	d.Transport = rec.Credential.Transport
	return d, nil
}

// FinishRegistration verifies a registration response against session and
// returns the new credential: CredentialID, SignCount and Data are set;
// the other fields are the caller's.
func (rp *RP) FinishRegistration(u vigil.WebAuthnUser, session, response []byte) (*vigil.WebAuthnCredential, error) {
	sd, err := decodeSession(session)
	if err != nil {
		return nil, err
	}
	if len(response) > maxResponseBytes {
		return nil, refuse(msgMalformed, errors.New("response too large"))
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return nil, refuse(msgMalformed, err)
	}
	cred, err := rp.wa.CreateCredential(user{u: u}, sd, parsed)
	if err != nil {
		return nil, refuse(msgNotVerified, err)
	}
	// Only a client that answered credProps can say the credential is not
	// discoverable; silence is taken as the residentKey "required" asked
	// for, because not every browser reports it.
	if rk := cred.Extensions.RK; rk != nil && !*rk {
		return nil, refuse(msgNotDiscovery, errors.New("credProps.rk is false"))
	}
	data, err := json.Marshal(record{Credential: *cred, UserHandle: u.Handle})
	if err != nil {
		return nil, fmt.Errorf("encode webauthn credential: %w", err)
	}
	return &vigil.WebAuthnCredential{
		CredentialID: cred.ID,
		SignCount:    cred.Authenticator.SignCount,
		Data:         data,
	}, nil
}

// BeginLogin starts a discoverable login: no allowCredentials, so the
// authenticator offers whichever of its credentials are for the RP.
func (rp *RP) BeginLogin() (options, session []byte, err error) {
	assertion, sd, err := rp.wa.BeginDiscoverableLogin()
	if err != nil {
		return nil, nil, fmt.Errorf("begin webauthn login: %w", err)
	}
	return marshalCeremony(assertion, sd)
}

// errLookup stands in for the lookup's own error inside go-webauthn, which
// would wrap it into a client error; FinishLogin reports the real one.
var errLookup = errors.New("credential lookup failed")

// FinishLogin verifies an assertion. The returned credential is the one
// lookup found with SignCount and Data updated; the caller writes it
// back. On a clone warning the counter is not lowered: the stored value
// stays the highest seen.
func (rp *RP) FinishLogin(session, response []byte, lookup func(credentialID, userHandle []byte) (*vigil.WebAuthnCredential, error)) (*vigil.WebAuthnAssertion, error) {
	sd, err := decodeSession(session)
	if err != nil {
		return nil, err
	}
	if len(response) > maxResponseBytes {
		return nil, refuse(msgMalformed, errors.New("response too large"))
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return nil, refuse(msgMalformed, err)
	}

	var (
		stored    *vigil.WebAuthnCredential
		rec       *record
		lookupErr error
	)
	handler := func(rawID, userHandle []byte) (webauthn.User, error) {
		c, r, err := find(lookup, rawID, userHandle)
		if err != nil {
			lookupErr = err
			return nil, errLookup
		}
		stored, rec = c, r
		return loginUser{rec: r}, nil
	}
	_, cred, err := rp.wa.ValidatePasskeyLogin(handler, sd, parsed)
	switch {
	case errors.Is(lookupErr, vigil.ErrNotFound):
		// Not wrapped: the caller must not mistake this for its own
		// not-found.
		return nil, refuse(msgUnknown, nil)
	case lookupErr != nil:
		return nil, lookupErr
	case err != nil:
		return nil, refuse(msgNotVerified, err)
	}

	clone := cred.Authenticator.CloneWarning
	// CloneWarning is about this assertion; stored, go-webauthn would
	// never clear it and every later login would repeat it.
	cred.Authenticator.CloneWarning = false
	data, err := json.Marshal(record{Credential: *cred, UserHandle: rec.UserHandle})
	if err != nil {
		return nil, fmt.Errorf("encode webauthn credential: %w", err)
	}
	updated := *stored
	updated.SignCount = cred.Authenticator.SignCount
	updated.Data = data
	return &vigil.WebAuthnAssertion{Credential: &updated, CloneWarning: clone}, nil
}

// find calls lookup and checks what it returns. Errors are lookup's own
// (vigil.ErrNotFound for an unknown credential) or internal ones.
func find(lookup func(credentialID, userHandle []byte) (*vigil.WebAuthnCredential, error), rawID, userHandle []byte) (*vigil.WebAuthnCredential, *record, error) {
	c, err := lookup(rawID, userHandle)
	if err != nil {
		if errors.Is(err, vigil.ErrNotFound) {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("look up webauthn credential: %w", err)
	}
	if c == nil {
		return nil, nil, errors.New("look up webauthn credential: lookup returned no credential and no error")
	}
	if !bytes.Equal(c.CredentialID, rawID) {
		return nil, nil, fmt.Errorf("look up webauthn credential %s: lookup returned another credential", c.ID)
	}
	rec, err := decodeRecord(c)
	if err != nil {
		return nil, nil, err
	}
	// The SignCount column is what the store keeps current; Data's copy
	// is only as new as the last write of Data.
	rec.Credential.Authenticator.SignCount = c.SignCount
	rec.Credential.Authenticator.CloneWarning = false
	return c, rec, nil
}

// record is what WebAuthnCredential.Data holds: go-webauthn's credential
// record and the user handle it was registered for, which go-webauthn's
// record lacks and the assertion's userHandle is checked against.
type record struct {
	Credential webauthn.Credential `json:"credential"`
	UserHandle []byte              `json:"user_handle"`
}

func decodeRecord(c *vigil.WebAuthnCredential) (*record, error) {
	var rec record
	if err := json.Unmarshal(c.Data, &rec); err != nil {
		return nil, fmt.Errorf("decode webauthn credential %s: %w", c.ID, err)
	}
	if len(rec.UserHandle) == 0 || !bytes.Equal(rec.Credential.ID, c.CredentialID) {
		return nil, fmt.Errorf("decode webauthn credential %s: data does not match the credential", c.ID)
	}
	return &rec, nil
}

func marshalCeremony(options any, sd *webauthn.SessionData) ([]byte, []byte, error) {
	o, err := json.Marshal(options)
	if err != nil {
		return nil, nil, fmt.Errorf("encode webauthn options: %w", err)
	}
	s, err := json.Marshal(sd)
	if err != nil {
		return nil, nil, fmt.Errorf("encode webauthn session: %w", err)
	}
	return o, s, nil
}

// decodeSession reads a session this package wrote. The caller keeps it
// server-side, so one that does not decode is an internal error.
func decodeSession(b []byte) (webauthn.SessionData, error) {
	var sd webauthn.SessionData
	if err := json.Unmarshal(b, &sd); err != nil {
		return sd, fmt.Errorf("decode webauthn session: %w", err)
	}
	return sd, nil
}

// refuse is the error for a response that fails verification: an
// EINVALID *vigil.Error first in the chain, then the cause for logs.
// go-webauthn's messages (the Details of protocol.Error) carry no
// challenge, key or signature.
func refuse(message string, cause error) error {
	e := &vigil.Error{Code: vigil.EINVALID, Message: message}
	if cause == nil {
		return e
	}
	return fmt.Errorf("%w: %w", e, cause)
}

// user is a registering vigil.WebAuthnUser as go-webauthn sees it.
type user struct{ u vigil.WebAuthnUser }

func (u user) WebAuthnID() []byte                         { return u.u.Handle }
func (u user) WebAuthnName() string                       { return u.u.Name }
func (u user) WebAuthnDisplayName() string                { return u.u.DisplayName }
func (u user) WebAuthnCredentials() []webauthn.Credential { return nil }

// loginUser is the owner of the credential a discoverable login found:
// go-webauthn checks the assertion's userHandle against its id and looks
// the credential up among its credentials.
type loginUser struct{ rec *record }

func (u loginUser) WebAuthnID() []byte          { return u.rec.UserHandle }
func (u loginUser) WebAuthnName() string        { return "" }
func (u loginUser) WebAuthnDisplayName() string { return "" }
func (u loginUser) WebAuthnCredentials() []webauthn.Credential {
	return []webauthn.Credential{u.rec.Credential}
}
