package flows

import (
	"io"
	"log/slog"
	"time"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/flows/templates"
)

// The gate's answers for an identity with no verifiable address.
const (
	NoAddressAllow = "allow"
	NoAddressBlock = "block"
)

// Require is the policy that says which addresses must be verified before
// an identity counts as verified.
type Require string

const (
	RequireAny   Require = "any"
	RequireEmail Require = "email"
	RequirePhone Require = "phone"
	RequireAll   Require = "all"
)

// Valid reports whether r is a known policy.
func (r Require) Valid() bool {
	switch r {
	case RequireAny, RequireEmail, RequirePhone, RequireAll:
		return true
	}
	return false
}

// Config holds the verification rules. Defaults() gives the documented
// defaults; cmd/vigil maps vigil.yml onto it.
type Config struct {
	EnableEmail bool
	EnableSMS   bool
	Require     Require

	// RequiredOnLogin makes the login gate refuse a session until the
	// identity is verified (verification_required_on_login).
	RequiredOnLogin bool
	// NoAddress is the gate's answer for an identity with no verifiable
	// address: NoAddressAllow or NoAddressBlock.
	NoAddress string
	// Soft lets unverified identities log in; apps read
	// metadata_public.vigil.verified to limit what they may do.
	Soft bool

	CodeLength  int           // digits, 4-10
	CodeTTL     time.Duration // verification_code_expiration
	SMSCodeTTL  time.Duration // cap for SMS codes
	LinkTTL     time.Duration
	MaxAttempts int // max_verification_retries
	PublicURL   string
	// Product is the name messages sign with ("Acme"); empty leaves it
	// out.
	Product      string
	Dev          bool // keep message bodies (sealed) for the admin API
	ShowCodes    bool // console prints codes (dev only)
	ResendFloor  time.Duration
	CheckPerIP   int // code checks per client IP per minute
	Resend       ResendLimits
	Lockout      LockoutRules
	RetryBackoff time.Duration // first delivery retry delay; doubles with jitter
	// SMS guards SMS sends against toll fraud (SMS pumping).
	SMS SMSProtection
	// CaptchaOnResend asks anonymous callers of resend for a CAPTCHA
	// token (Deps.Captcha checks it).
	CaptchaOnResend bool
	// Devices are the trusted-device rules.
	Devices DeviceRules
}

// SMSProtection is what stands between an SMS send and the provider's
// bill. Every check runs before the message is queued, so a refused send
// reaches no provider.
type SMSProtection struct {
	// AllowedCountries are ISO 3166-1 alpha-2 regions numbers may belong
	// to; empty allows every region.
	AllowedCountries []string
	// AllowedTypes are the number types (PhoneType*) that may receive a
	// code; premium-rate, shared-cost, VoIP, toll-free and unknown
	// numbers are refused unless listed.
	AllowedTypes []string
	// PrefixDigits is how many digits after the + make a number's prefix,
	// the unit of the velocity limit and the conversion watch.
	PrefixDigits int
	// PrefixPerHour caps sends to one prefix per hour; 0 is no cap.
	PrefixPerHour int
	// GlobalPerHour caps all SMS sends per hour; 0 is no cap.
	GlobalPerHour int
	Conversion    ConversionWatch
}

// ConversionWatch compares codes verified with codes sent, per country
// and per prefix, over a sliding window. Pumped numbers never verify, so a
// prefix whose ratio falls below Threshold after at least MinSent sends is
// reported, and refused while it stays below when Throttle is set.
type ConversionWatch struct {
	Window    time.Duration // at most 24h
	MinSent   int
	Threshold float64 // 0 turns the watch off
	Throttle  bool
}

// Provider is one delivery provider in a channel's chain. Exactly one of
// Sender (sends what Vigil rendered) and OTP (makes and checks its own
// code) is set.
type Provider struct {
	// Name identifies the provider in the store, the audit trail, metrics
	// and status callbacks ("twilio", "smtp").
	Name   string
	Sender vigil.Sender
	OTP    vigil.OTPSender
}

// ResendLimits caps how often a secret is sent.
type ResendLimits struct {
	Cooldown        time.Duration
	PerDestination  int // per 10 minutes
	PerDestHour     int
	PerIdentityHour int
	PerIPHour       int
}

// LockoutRules is the escalation of failed checks per identity.
type LockoutRules struct {
	Base      time.Duration // first temporary lock
	Max       time.Duration // longest temporary lock
	HardAfter int           // consecutive failures before a hard lock
}

// Defaults returns the documented defaults.
func Defaults() Config {
	return Config{
		EnableEmail:     true,
		EnableSMS:       false,
		Require:         RequireAny,
		RequiredOnLogin: true,
		NoAddress:       NoAddressBlock,
		CodeLength:      6,
		CodeTTL:         15 * time.Minute,
		SMSCodeTTL:      10 * time.Minute,
		LinkTTL:         24 * time.Hour,
		MaxAttempts:     3,
		PublicURL:       "http://127.0.0.1:4480",
		ResendFloor:     150 * time.Millisecond,
		CheckPerIP:      30,
		Resend: ResendLimits{
			Cooldown:        60 * time.Second,
			PerDestination:  5,
			PerDestHour:     10,
			PerIdentityHour: 20,
			PerIPHour:       30,
		},
		Lockout: LockoutRules{Base: time.Minute, Max: 15 * time.Minute, HardAfter: 100},
		Devices: DeviceRules{
			TrustFor: 30 * 24 * time.Hour, IdleFor: 7 * 24 * time.Hour,
			EnrollmentTTL: 15 * time.Minute, CeremonyTTL: 5 * time.Minute,
		},
		RetryBackoff: 2 * time.Second,
		SMS: SMSProtection{
			AllowedTypes:  []string{PhoneTypeMobile, PhoneTypeFixedOrMobile},
			PrefixDigits:  6,
			PrefixPerHour: 60,
			Conversion:    ConversionWatch{Window: time.Hour, MinSent: 20, Threshold: 0.2, Throttle: true},
		},
	}
}

// Deps are the outside things the service works with.
type Deps struct {
	Store vigil.Store
	Keys  *vigil.Keyring
	// Senders is one provider per channel. Chains, when it has an entry
	// for a channel, wins over it.
	Senders map[vigil.Channel]vigil.Sender
	// Chains are the providers of each channel in the order they are
	// tried: a transient failure passes the same message to the next.
	Chains map[vigil.Channel][]Provider
	// Captcha checks CAPTCHA tokens when CaptchaOnResend is set.
	Captcha vigil.Captcha
	// Templates write the messages; default templates.Builtin().
	Templates *templates.Set
	Clock     vigil.Clock  // default vigil.SystemClock
	Rand      io.Reader    // default crypto/rand
	Logger    *slog.Logger // default slog.Default()
	Observer  Observer     // optional
	// Identities is the identity provider (Kratos). Without it, verified
	// addresses are not synced back and session-based calls are refused.
	Identities vigil.Identities
	// WebAuthn runs WebAuthn ceremonies for devices admins enroll;
	// without it enrollment is refused.
	WebAuthn vigil.WebAuthn
}

// StartRequest starts (or restarts) verification of one address.
type StartRequest struct {
	IdentityID string
	Address    string
	Channel    vigil.Channel
	Method     vigil.Method
	Purpose    vigil.Purpose // default PurposeVerifyAddress
	ClientIP   string
	Actor      string // "admin", "kratos", "user"
	// Locale is the identity's language (Kratos traits or metadata) and
	// AcceptLanguage the caller's Accept-Language header; the message is
	// written in the first supported language of the two, else the
	// default.
	Locale         string
	AcceptLanguage string
	// FlowID is the Kratos login flow the gate starts the verification
	// for: passing it lets that flow through.
	FlowID string
}

// Started is the answer to a start.
type Started struct {
	ID        string
	ExpiresAt time.Time
}

// ResendRequest names the verification by id or by address.
type ResendRequest struct {
	ID       string
	Address  string
	ClientIP string
	// AcceptLanguage, when the caller sends one, writes the new message in
	// its language; otherwise the previous message's language is kept.
	AcceptLanguage string
	// Captcha is the CAPTCHA token of an anonymous caller.
	Captcha string
	// Anonymous: no session vouches for the caller.
	Anonymous bool
}

// LinkInfo is what the confirm page shows before a link is consumed.
type LinkInfo struct {
	Channel   vigil.Channel
	Masked    string
	ExpiresAt time.Time
}

// VerificationView is a verification as the API shows it.
type VerificationView struct {
	ID           string        `json:"id"`
	IdentityID   string        `json:"identity_id"`
	AddressID    string        `json:"address_id"`
	Channel      vigil.Channel `json:"channel"`
	Method       vigil.Method  `json:"method"`
	Purpose      vigil.Purpose `json:"purpose"`
	State        vigil.State   `json:"state"`
	Destination  string        `json:"destination"` // masked
	AttemptsLeft int           `json:"attempts_left"`
	SendCount    int           `json:"send_count"`
	ExpiresAt    time.Time     `json:"expires_at"`
	VerifiedAt   *time.Time    `json:"verified_at,omitempty"`
	CreatedAt    time.Time     `json:"created_at"`
}

// IdentityStatus is the verification state of one identity.
type IdentityStatus struct {
	IdentityID string          `json:"identity_id"`
	Verified   bool            `json:"verified"` // under the require policy
	Require    Require         `json:"require"`
	Addresses  []AddressStatus `json:"addresses"`
	Lock       LockStatus      `json:"lock"`
}

// AddressStatus is one address of an identity.
type AddressStatus struct {
	ID             string             `json:"id"`
	Channel        vigil.Channel      `json:"channel"`
	Destination    string             `json:"destination"` // masked
	State          vigil.AddressState `json:"state"`
	VerifiedAt     *time.Time         `json:"verified_at,omitempty"`
	VerificationID string             `json:"verification_id,omitempty"`
	ExpiresAt      *time.Time         `json:"expires_at,omitempty"`
	AttemptsLeft   *int               `json:"attempts_left,omitempty"`
}

// LockStatus is an identity's lockout as the API shows it.
type LockStatus struct {
	Locked      bool       `json:"locked"`
	Hard        bool       `json:"hard"`
	LockedUntil *time.Time `json:"locked_until,omitempty"`
	Failures    int        `json:"consecutive_failures"`
}

// MessageView is an outbound message as the admin API shows it. Body is set
// only in dev mode.
type MessageView struct {
	ID             string               `json:"id"`
	VerificationID string               `json:"verification_id"`
	IdentityID     string               `json:"identity_id"`
	Channel        vigil.Channel        `json:"channel"`
	Recipient      string               `json:"recipient"` // masked
	Status         vigil.MessageStatus  `json:"status"`
	Attempts       int                  `json:"attempts"`
	LastError      string               `json:"last_error,omitempty"`
	Provider       string               `json:"provider,omitempty"`
	Country        string               `json:"country,omitempty"`
	Locale         string               `json:"locale,omitempty"`
	CreatedAt      time.Time            `json:"created_at"`
	SentAt         *time.Time           `json:"sent_at,omitempty"`
	Body           string               `json:"body,omitempty"`
	History        []MessageAttemptView `json:"attempt_history"`
}

// MessageAttemptView is one delivery attempt.
type MessageAttemptView struct {
	Attempt    int       `json:"attempt"`
	At         time.Time `json:"at"`
	Outcome    string    `json:"outcome"`
	Provider   string    `json:"provider,omitempty"`
	Error      string    `json:"error,omitempty"`
	DurationMS int64     `json:"duration_ms"`
}

// AuditReport is the result of checking the audit chain.
type AuditReport struct {
	OK       bool   `json:"ok"`
	Checked  int64  `json:"checked"`
	BrokenAt int64  `json:"broken_at,omitempty"`
	Reason   string `json:"reason,omitempty"`
}
