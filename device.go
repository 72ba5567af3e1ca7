package vigil

import (
	"context"
	"time"
)

// DeviceKind is what a trusted device is.
type DeviceKind string

const (
	DeviceBrowser     DeviceKind = "browser"
	DeviceMobileApp   DeviceKind = "mobile_app"
	DeviceSecurityKey DeviceKind = "security_key"
)

// Valid reports whether k is a known kind.
func (k DeviceKind) Valid() bool {
	return k == DeviceBrowser || k == DeviceMobileApp || k == DeviceSecurityKey
}

// Device is a device an identity trusts: logins from it skip the step-up
// challenge while its trust lasts. It is proven by a device token (256
// random bits, stored only as SHA-256) that rotates: each new token
// replaces the one before, and presenting a replaced token again means
// the token was copied, so the device is revoked.
type Device struct {
	ID         string
	IdentityID string
	Name       string
	Kind       DeviceKind
	// TokenHash is SHA-256 of the current device token; nil for a device
	// enrolled with WebAuthn that has not yet proven itself.
	TokenHash []byte
	// PrevTokenHash is SHA-256 of the token TokenHash replaced.
	PrevTokenHash []byte
	// UserAgent and IP are client hints from the last time the device was
	// seen: shown to people, never taken as proof.
	UserAgent string
	IP        string
	// CreatedBy is "user" or "admin:<name>".
	CreatedBy    string
	CreatedAt    time.Time
	LastSeenAt   time.Time
	TrustedUntil time.Time // trust ends here at the latest
	RotatedAt    *time.Time
	RevokedAt    *time.Time
	// RevokedReason: "user", "admin", "token_reused", "clone_suspected".
	RevokedReason string
}

// Trusted reports whether the device's trust holds at now: not revoked,
// not past TrustedUntil, and seen within idle.
func (d *Device) Trusted(now time.Time, idle time.Duration) bool {
	return d.RevokedAt == nil && now.Before(d.TrustedUntil) && now.Before(d.LastSeenAt.Add(idle))
}

// DeviceEnrollment is a one-time link an admin creates so that a device
// can register a WebAuthn credential for an identity.
type DeviceEnrollment struct {
	ID         string
	IdentityID string
	TokenHash  []byte // SHA-256 of the link's token
	Name       string
	Kind       DeviceKind
	CreatedBy  string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	UsedAt     *time.Time
	DeviceID   string // the device it enrolled, once used
}

// CeremonyKind says which WebAuthn ceremony a challenge belongs to.
type CeremonyKind string

const (
	CeremonyRegister CeremonyKind = "register"
	CeremonyAssert   CeremonyKind = "assert"
)

// CeremonyRetention is how long a store keeps a ceremony past its expiry.
const CeremonyRetention = time.Hour

// Ceremony is the server side of one WebAuthn ceremony: its challenge
// lives here, is used at most once and expires by Vigil's clock.
type Ceremony struct {
	ID   string
	Kind CeremonyKind
	// EnrollmentID is the enrollment a registration ceremony belongs to.
	EnrollmentID string
	// Session is the WebAuthn adapter's state of the ceremony (it holds
	// the challenge).
	Session   []byte
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time
}

// WebAuthnCredential is a credential a device registered. Data is the
// WebAuthn adapter's full record of it; the other fields are what Vigil
// reads itself.
type WebAuthnCredential struct {
	ID           string
	DeviceID     string
	IdentityID   string
	CredentialID []byte
	SignCount    uint32
	Data         []byte
	CreatedAt    time.Time
	LastUsedAt   *time.Time
}

// WebAuthnUser is the account a credential is registered for. Handle is
// the WebAuthn user handle (the identity's id as bytes; never personal
// data).
type WebAuthnUser struct {
	Handle      []byte
	Name        string
	DisplayName string
}

// WebAuthnAssertion is a verified assertion: the credential that made it,
// updated with the new sign counter, and whether the counter went
// backwards (a cloned authenticator).
type WebAuthnAssertion struct {
	Credential   *WebAuthnCredential
	CloneWarning bool
}

// WebAuthn is the relying party's side of WebAuthn ceremonies. Options
// are the JSON navigator.credentials.create/get take ({"publicKey":...});
// responses are the JSON of the PublicKeyCredential the browser returns.
// Session is opaque state that the caller stores server-side between the
// two halves of a ceremony. A response that fails verification (wrong
// origin, wrong challenge, bad signature) is an *Error with EINVALID;
// other errors are internal.
type WebAuthn interface {
	// BeginRegistration starts registering a credential for u; exclude
	// lists credentials the authenticator must not register again.
	BeginRegistration(u WebAuthnUser, exclude []*WebAuthnCredential) (options, session []byte, err error)
	FinishRegistration(u WebAuthnUser, session, response []byte) (*WebAuthnCredential, error)
	// BeginLogin starts an assertion with a discoverable credential: the
	// authenticator picks the account.
	BeginLogin() (options, session []byte, err error)
	// FinishLogin verifies an assertion. lookup finds the stored
	// credential by its id and user handle (ErrNotFound when unknown).
	FinishLogin(session, response []byte, lookup func(credentialID, userHandle []byte) (*WebAuthnCredential, error)) (*WebAuthnAssertion, error)
}

// DeviceStore is the part of Tx that keeps devices, enrollments, WebAuthn
// ceremonies and credentials.
type DeviceStore interface {
	InsertDevice(ctx context.Context, d *Device) error
	GetDevice(ctx context.Context, id string) (*Device, error)
	// FindDeviceByToken finds the device whose current or previous token
	// has the hash; the caller compares to learn which.
	FindDeviceByToken(ctx context.Context, hash []byte) (*Device, error)
	// LoginRead is ListAddresses and a lookup of the device whose current
	// token has the hash, in one read: the login gate's, when it needs
	// both. Of the device it fills at least ID, IdentityID, Kind,
	// TokenHash, LastSeenAt, TrustedUntil and RevokedAt. The device is nil
	// when no device's current token has the hash (FindDeviceByToken then
	// tells whether a replaced token came back).
	LoginRead(ctx context.Context, identityID string, hash []byte) ([]*Address, *Device, error)
	// ListDevices lists an identity's devices, revoked ones included,
	// newest first.
	ListDevices(ctx context.Context, identityID string) ([]*Device, error)
	// RotateDeviceToken replaces the device's token from with to (from
	// becomes the previous token) if the device is not revoked and its
	// current token is still from (nil from: it has none), and reports
	// whether it did. It also sets LastSeenAt and RotatedAt to now, the
	// client hints, and TrustedUntil to until unless until is zero.
	RotateDeviceToken(ctx context.Context, id string, from, to []byte, ip, userAgent string, until, now time.Time) (bool, error)
	// TouchDevice sets LastSeenAt and the client hints if LastSeenAt is
	// before staleBefore, and reports whether it did.
	TouchDevice(ctx context.Context, id, ip, userAgent string, now, staleBefore time.Time) (bool, error)
	// RevokeDevice revokes a device that is not revoked yet and reports
	// whether it did.
	RevokeDevice(ctx context.Context, id, reason string, now time.Time) (bool, error)

	InsertEnrollment(ctx context.Context, e *DeviceEnrollment) error
	// FindEnrollmentByToken finds an enrollment by its token hash, used
	// or not.
	FindEnrollmentByToken(ctx context.Context, hash []byte) (*DeviceEnrollment, error)
	GetEnrollment(ctx context.Context, id string) (*DeviceEnrollment, error)
	// UseEnrollment marks an unused enrollment used by deviceID and
	// reports whether it did.
	UseEnrollment(ctx context.Context, id, deviceID string, now time.Time) (bool, error)

	// InsertCeremony stores a ceremony. Ceremonies that expired more than
	// CeremonyRetention before c.CreatedAt may be deleted by the store.
	InsertCeremony(ctx context.Context, c *Ceremony) error
	// TakeCeremony marks an unused ceremony used and returns it as it was
	// before; ErrNotFound when there is none or it was used. Expiry is
	// the caller's to check, by its own clock.
	TakeCeremony(ctx context.Context, id string, now time.Time) (*Ceremony, error)

	// InsertCredential stores a credential; ErrConflict when its
	// CredentialID is already registered.
	InsertCredential(ctx context.Context, c *WebAuthnCredential) error
	FindCredential(ctx context.Context, credentialID []byte) (*WebAuthnCredential, error)
	ListCredentials(ctx context.Context, identityID string) ([]*WebAuthnCredential, error)
	// UpdateCredential writes the credential's sign counter, data and
	// last use.
	UpdateCredential(ctx context.Context, c *WebAuthnCredential) error
}
