// Package webauthntest is a software authenticator for tests: it plays
// the browser and a platform authenticator at once, so the real WebAuthn
// adapter runs without a browser.
//
//	a := webauthntest.New(t)
//	options, session, _ := rp.BeginRegistration(user, nil)
//	resp, err := a.Create(options, "https://example.com")
//	cred, err := rp.FinishRegistration(user, session, resp)
//	options, session, _ = rp.BeginLogin()
//	resp, err = a.Get(options, "https://example.com")
//
// # Wire format
//
// Create takes the JSON navigator.credentials.create takes
// ({"publicKey": {...}}, binary members base64url) and returns the JSON
// of the PublicKeyCredential a browser returns (PublicKeyCredential.toJSON):
// clientDataJSON of type webauthn.create with the options' challenge and
// the origin given; an attestationObject in CTAP2 canonical CBOR with fmt
// "none", an empty attStmt and authData = SHA-256(rp.id) || flags UP|UV|AT
// || signCount 0 || AAGUID zero || a random 32-byte credential id || the
// COSE EC2 ES256 public key; transports ["internal"], and credProps
// {rk: true} when the options ask for it. Every credential has its own
// P-256 key and is resident: it remembers rp.id and user.id.
//
// Get takes {"publicKey": {...}} request options and answers with the
// newest resident credential for rpId (among allowCredentials when there
// are any): clientDataJSON of type webauthn.get, authData =
// SHA-256(rpId) || UP|UV || the credential's counter plus one, an ES256
// signature in ASN.1 DER over authData || SHA-256(clientDataJSON), and the
// userHandle.
//
// A missing rp.id or rpId defaults to the origin's host, as in a browser.
// Unlike a browser, the authenticator does not check that the origin may
// use the rp id: tests need it to answer for a wrong origin so that the
// relying party's refusal can be seen.
//
// # Knobs
//
// SetSignCount sets every credential's counter (to lower it and trigger a
// clone warning); Clone copies the authenticator with its keys, as a
// cloned device would be; GetCredential answers with a chosen credential.
// Create refuses with ErrExcluded when it holds a credential listed in
// excludeCredentials, and Get with ErrNoCredential when it holds none that
// fits.
//
// # Imports
//
// The standard library and github.com/fxamacker/cbor/v2 only; it knows
// nothing of go-webauthn or Vigil, so it cannot share their mistakes.
package webauthntest
