package vigil

import "time"

// Method is how the secret reaches the person: a code to type or a link to
// open.
type Method string

const (
	MethodCode Method = "code"
	MethodLink Method = "link"
)

// Valid reports whether m is a known method.
func (m Method) Valid() bool { return m == MethodCode || m == MethodLink }

// Purpose binds a verification to what it proves, so a code sent to verify
// an address can never pass a login step-up and the other way round.
type Purpose string

const (
	PurposeVerifyAddress Purpose = "verify_address"
	PurposeLoginStepUp   Purpose = "login_step_up"
)

// State is the state of one verification.
type State string

const (
	StatePending  State = "pending"
	StateVerified State = "verified"
	StateExpired  State = "expired"
	// StateLocked: the current code is dead after too many wrong tries. A
	// resend (once any identity lock has passed) issues a new code and
	// makes the verification pending again.
	StateLocked State = "locked"
)

// Verification is one attempt to prove control of one address. It has at
// most one live secret at a time: a resend replaces the secret, bumps
// Generation and kills the old one.
type Verification struct {
	ID         string
	IdentityID string
	AddressID  string
	Channel    Channel
	Method     Method
	Purpose    Purpose
	State      State
	// FlowID is the Kratos login flow the login gate started or last
	// reused the verification for; a pass counts for that flow only.
	FlowID string

	// SecretHash is HMAC-SHA-256 of the code (keyed) or SHA-256 of the link
	// token. The plaintext is never stored.
	SecretHash  []byte
	Generation  int
	Attempts    int // wrong or right codes compared for the current secret
	MaxAttempts int

	ExpiresAt  time.Time
	LastSentAt *time.Time
	SendCount  int
	VerifiedAt *time.Time
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// AttemptsLeft is how many more codes may be compared for the current
// secret.
func (v *Verification) AttemptsLeft() int {
	if n := v.MaxAttempts - v.Attempts; n > 0 {
		return n
	}
	return 0
}

// Lockout counts failed checks per identity across verifications.
type Lockout struct {
	IdentityID string
	// Failures is the number of consecutive failed checks; a success or an
	// admin unlock resets it.
	Failures int
	// Level is how many temporary locks were imposed since the last reset;
	// each doubles the next one's length.
	Level       int
	LockedUntil *time.Time
	HardLocked  bool
	UpdatedAt   time.Time
}

// Locked reports whether the identity is locked at now, and for how long.
// A hard lock has no end: the duration is zero and locked is true.
func (l *Lockout) Locked(now time.Time) (locked bool, remaining time.Duration) {
	if l == nil {
		return false, 0
	}
	if l.HardLocked {
		return true, 0
	}
	if l.LockedUntil != nil && l.LockedUntil.After(now) {
		return true, l.LockedUntil.Sub(now)
	}
	return false, 0
}
