package vigil

import "time"

// Channel is how a message reaches a person.
type Channel string

const (
	ChannelEmail Channel = "email"
	ChannelSMS   Channel = "sms"
)

// Valid reports whether c is a known channel.
func (c Channel) Valid() bool { return c == ChannelEmail || c == ChannelSMS }

// Address is an email address or phone number of one identity.
//
// The value itself is personal data: it is stored only sealed (encrypted
// with the key ring) and found through Index, a keyed blind index. Masked is
// the form that may be shown and logged (a***@example.com, +49 151 ****789).
type Address struct {
	ID         string
	IdentityID string
	Channel    Channel
	Index      []byte // HMAC of the normalized value, newest key
	Sealed     []byte // AES-GCM of the normalized value
	Masked     string
	VerifiedAt *time.Time
	CreatedAt  time.Time
	UpdatedAt  time.Time

	// Value is the normalized plaintext, filled in by the core after
	// opening Sealed. Stores never read or write it.
	Value string `json:"-"`
}

// AddressState is the verification state of an address as people see it:
// unverified -> pending -> verified, pending -> expired, pending -> locked.
type AddressState string

const (
	AddressUnverified AddressState = "unverified"
	AddressPending    AddressState = "pending"
	AddressVerified   AddressState = "verified"
	AddressExpired    AddressState = "expired"
	AddressLocked     AddressState = "locked"
)
