package flows

import (
	"context"
	"time"

	"github.com/vigil-auth/vigil"
)

// Service is the verification engine.
type Service struct {
	cfg  Config
	deps Deps
}

// New returns a Service. Deps.Store, Deps.Keys and Deps.Senders are
// required; the rest default.
func New(cfg Config, deps Deps) (*Service, error) { panic("unimplemented") }

// Start starts verification of an address, or restarts the open one.
func (s *Service) Start(ctx context.Context, r StartRequest) (*Started, error) {
	panic("unimplemented")
}

// Resend sends a new secret for a verification named by id or address. It
// never reveals whether anything was sent.
func (s *Service) Resend(ctx context.Context, r ResendRequest) error { panic("unimplemented") }

// CheckCode compares a code for the verification.
func (s *Service) CheckCode(ctx context.Context, id, code, clientIP string) (*VerificationView, error) {
	panic("unimplemented")
}

// PeekLink describes a link token without consuming it.
func (s *Service) PeekLink(ctx context.Context, token string) (*LinkInfo, error) {
	panic("unimplemented")
}

// ConsumeLink consumes a link token once.
func (s *Service) ConsumeLink(ctx context.Context, token, clientIP string) (*VerificationView, error) {
	panic("unimplemented")
}

// GetVerification returns one verification.
func (s *Service) GetVerification(ctx context.Context, id string) (*VerificationView, error) {
	panic("unimplemented")
}

// IdentityStatus returns the per-address state and lock of an identity.
func (s *Service) IdentityStatus(ctx context.Context, identityID string) (*IdentityStatus, error) {
	panic("unimplemented")
}

// Unlock lifts every lock of an identity.
func (s *Service) Unlock(ctx context.Context, identityID, actor string) error { panic("unimplemented") }

// ForceVerify marks an address verified without a code.
func (s *Service) ForceVerify(ctx context.Context, identityID, address string, ch vigil.Channel, actor string) (*AddressStatus, error) {
	panic("unimplemented")
}

// Audit lists audit events.
func (s *Service) Audit(ctx context.Context, f vigil.AuditFilter) ([]*vigil.AuditEvent, error) {
	panic("unimplemented")
}

// VerifyAudit checks the whole audit chain.
func (s *Service) VerifyAudit(ctx context.Context) (*AuditReport, error) { panic("unimplemented") }

// Messages lists outbound messages by recipient (plaintext address) and/or
// identity.
func (s *Service) Messages(ctx context.Context, recipient, identityID string, limit int) ([]MessageView, error) {
	panic("unimplemented")
}

// Deliver is the vigil.DeliverFunc the queue runs.
func (s *Service) Deliver(ctx context.Context, messageID string) (time.Time, error) {
	panic("unimplemented")
}
