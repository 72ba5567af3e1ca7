// Package webauthn is Vigil's WebAuthn relying party: *RP implements
// vigil.WebAuthn on top of github.com/go-webauthn/webauthn v0.18.2.
//
// # Ceremonies
//
// Options are the JSON navigator.credentials.create and .get take,
// {"publicKey": {...}}, with binary members base64url, exactly as
// go-webauthn's protocol.CredentialCreation and CredentialAssertion
// marshal. Responses are the JSON of the PublicKeyCredential the browser
// returns (PublicKeyCredential.toJSON()); at most 64 KiB is parsed.
//
// Registration asks for:
//
//   - residentKey "required" (and requireResidentKey true for older
//     browsers): logins are discoverable, so the credential must live on
//     the authenticator. The credProps extension is requested, and a
//     client that answers rk: false is refused at registration rather
//     than leaving a credential that can never sign in. A client that
//     does not answer is believed, since not every browser reports it.
//   - userVerification "preferred": a trusted device stands for
//     possession of the device, next to the Kratos session that already
//     proved the person. A PIN or biometric is used where the
//     authenticator has one (and recorded in the credential's flags), but
//     requiring it would turn away security keys without one and gain
//     nothing Vigil relies on.
//   - attestation "none": Vigil does not choose authenticator models, so
//     it has no use for attestation, which would need FIDO metadata to
//     mean anything and makes browsers ask the user for consent.
//   - excludeCredentials: the identity's existing credentials, with the
//     transports recorded for them, so one authenticator is not enrolled
//     twice.
//
// Login is discoverable: BeginLogin sends no allowCredentials, so nothing
// about an identity's credentials is revealed before the authenticator
// answers, and the authenticator picks the account. FinishLogin asks the
// caller's lookup for the credential by the response's credential id and
// user handle, then verifies client data (type, challenge, origin),
// authenticator data (RP id hash, user presence) and the signature with
// go-webauthn's ValidatePasskeyLogin.
//
// Extension outputs the client adds unasked are ignored rather than
// failing the ceremony (go-webauthn's default): WebAuthn allows clients
// to add extensions, and the outputs are unsigned claims Vigil does not
// act on.
//
// # Sessions
//
// Session is go-webauthn's SessionData as JSON; it holds the challenge.
// The caller stores it server-side and enforces single use and expiry by
// its own clock: go-webauthn's own expiry (Timeouts.Enforce) is off
// because it reads time.Now. Config.Timeout is only the hint the browser
// gets; RP.Timeout reports it, and a ceremony's server-side lifetime
// should not be shorter.
//
// # Credentials
//
// WebAuthnCredential.Data is this package's record: JSON
// {"credential": <go-webauthn's webauthn.Credential>, "user_handle":
// <base64>}. go-webauthn's record has no user handle, and the assertion's
// userHandle is not signed, so the handle registered with is kept to check
// it against. CredentialID and SignCount are copied out for Vigil; the
// SignCount field, not Data's copy, is what the next login compares with.
//
// go-webauthn reports a counter that did not go up (a cloned
// authenticator) through Credential.Authenticator.CloneWarning with a nil
// error. FinishLogin returns it as WebAuthnAssertion.CloneWarning, also
// with a nil error, and leaves the policy (revoking the device) to the
// caller. The stored counter is then not lowered, so it stays the highest
// seen, and the warning is not written into Data: go-webauthn never clears
// it, so a stored warning would repeat on every later login. Counters
// that stay at zero (synced passkeys) never warn.
//
// # Errors
//
// A response that fails verification is an *vigil.Error with EINVALID and
// a short message that names no secret: malformed JSON or CBOR, wrong
// ceremony type, challenge, origin or RP id hash, a bad signature, a user
// handle that does not match, a credential the lookup does not know
// (vigil.ErrNotFound, which is not passed on, so it cannot be mistaken for
// the caller's own not-found), a registration for another user. It wraps
// go-webauthn's error for logs (only its Details, which carry no
// challenge, key or signature). A session that does not decode, a lookup
// that fails otherwise, a stored credential whose Data does not decode
// and encoding failures are ordinary wrapped errors: internal.
//
// # Imports
//
// The module root, go-webauthn and the standard library. It must not
// import flows, api, hooks or other adapters; internal/webauthntest, a
// software authenticator speaking the real wire format, is for its tests
// only.
package webauthn
