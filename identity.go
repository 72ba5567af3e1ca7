package vigil

import (
	"context"
	"time"
)

// Identity is what Vigil needs to know of an identity the identity provider
// (Ory Kratos) owns.
type Identity struct {
	ID string
	// Active is false for an identity the provider deactivated.
	Active    bool
	Addresses []IdentityAddress
	// Locale is the identity's preferred language from its traits or
	// metadata, if any.
	Locale string
}

// IdentityAddress is one verifiable address as the provider holds it.
type IdentityAddress struct {
	Channel  Channel
	Value    string
	Verified bool
}

// VerificationSummary is what Vigil records on the identity at the provider
// (Kratos: metadata_public.vigil) so apps can read it from the session.
type VerificationSummary struct {
	Verified   bool       `json:"verified"`
	VerifiedAt *time.Time `json:"verified_at,omitempty"`
	Channels   []Channel  `json:"verified_channels"`
}

// Session is a logged-in identity, as the provider resolved it.
type Session struct {
	ID         string
	IdentityID string
	// Identity is the session's identity as the provider sent it along
	// (addresses with their verified flags), when it did.
	Identity *Identity
}

// SessionCredentials carries what a request presented to prove a session.
// The provider decides which of them is valid.
type SessionCredentials struct {
	Cookie        string // the raw Cookie header
	SessionToken  string // X-Session-Token
	Authorization string // the raw Authorization header (Bearer)
}

// Empty reports whether nothing was presented.
func (c SessionCredentials) Empty() bool {
	return c.Cookie == "" && c.SessionToken == "" && c.Authorization == ""
}

// Identities is the identity provider as the core needs it. Every call has
// a deadline from ctx.
type Identities interface {
	// MarkVerified marks the identity's address with the given channel and
	// normalized value verified at the provider and records the summary.
	// It reads the identity first and patches by the address's current
	// position. A missing identity or address is ErrNotFound.
	MarkVerified(ctx context.Context, identityID string, ch Channel, value string, summary VerificationSummary) error
	// SetSummary records the summary alone (soft mode: verified=false).
	SetSummary(ctx context.Context, identityID string, summary VerificationSummary) error
	// Whoami resolves the credentials to a session; EUNAUTHORIZED when
	// they name none.
	Whoami(ctx context.Context, creds SessionCredentials) (*Session, error)
}
