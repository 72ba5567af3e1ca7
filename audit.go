package vigil

import "time"

// Audit event types. Names follow Ory's vocabulary where one exists.
const (
	EventVerificationStarted     = "VerificationStarted"
	EventVerificationResent      = "VerificationResent"
	EventVerificationSucceeded   = "VerificationSucceeded"
	EventVerificationFailed      = "VerificationFailed"
	EventVerificationExpired     = "VerificationExpired"
	EventVerificationLocked      = "VerificationLocked"
	EventAddressForceVerified    = "AddressForceVerified"
	EventAddressVerifiedByKratos = "AddressVerifiedByKratos"
	EventIdentitySynced          = "IdentitySynced"
	EventAddressRemoved          = "AddressRemoved"
	EventNoticeSent              = "AddressChangeNoticeSent"
	EventIdentityLocked          = "IdentityLocked"
	EventIdentityHardLocked      = "IdentityHardLocked"
	EventIdentityUnlocked        = "IdentityUnlocked"
	// EventMessageSent is no longer appended: a successful hand-over is
	// the message's own record (GET /admin/messages). Trails written by
	// earlier versions hold it.
	EventMessageSent = "MessageSent"
	// EventMessageFailed: a message that never reached anyone (every
	// provider failed, the provider reported it undelivered, or the code
	// expired first).
	EventMessageFailed = "MessageFailed"

	// EventDeviceTrusted and the device events after it name the device
	// in Data (device_id, kind) and, where it applies, the reason; never
	// a token.
	EventDeviceTrusted        = "DeviceTrusted"
	EventDeviceUsed           = "DeviceUsed" // at most once per device per hour
	EventDeviceTokenRotated   = "DeviceTokenRotated"
	EventDeviceTokenReused    = "DeviceTokenReused"
	EventDeviceRevoked        = "DeviceRevoked"
	EventDeviceEnrollmentMade = "DeviceEnrollmentCreated"
	EventDeviceEnrolled       = "DeviceEnrolled"
	EventDeviceCloneSuspected = "DeviceCloneSuspected"
	EventNewDeviceNoticeSent  = "NewDeviceNoticeSent"
)

// AuditEvent is one row of the append-only audit trail. Each row carries the
// hash of the one before it (keyed with the system secret), so an edited or
// deleted row breaks the chain. Data never holds codes, tokens or full
// addresses.
type AuditEvent struct {
	Seq            int64
	ID             string
	At             time.Time
	Type           string
	IdentityID     string
	VerificationID string
	// Actor is who caused the event: "system", "user", "kratos", or
	// "admin".
	Actor    string
	Data     map[string]string
	PrevHash []byte
	Hash     []byte
}

// AuditFilter selects audit events.
type AuditFilter struct {
	IdentityID string
	AfterSeq   int64
	Limit      int
}

// SealFunc computes an audit row's hash from the previous row's hash and
// the row itself.
type SealFunc func(prev []byte, e *AuditEvent) []byte
