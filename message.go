package vigil

import (
	"context"
	"errors"
	"time"
)

// MessageStatus is where one outbound message stands.
type MessageStatus string

const (
	MessageQueued   MessageStatus = "queued"
	MessageRetrying MessageStatus = "retrying"
	// MessageSent: a provider accepted the message.
	MessageSent MessageStatus = "sent"
	// MessageDelivered: the provider reports the message reached the
	// handset or mailbox.
	MessageDelivered MessageStatus = "delivered"
	// MessageUndelivered: the provider accepted it, but the carrier could
	// not deliver it.
	MessageUndelivered MessageStatus = "undelivered"
	// MessageFailed: no provider took it, or the provider gave up on it.
	MessageFailed MessageStatus = "failed"
	// MessageExpired: the code expired before it could be delivered, so it
	// was never sent.
	MessageExpired MessageStatus = "expired"
	// MessageSuperseded: a resend replaced the code before delivery.
	MessageSuperseded MessageStatus = "superseded"
)

// Done reports whether no more attempts will be made.
func (s MessageStatus) Done() bool {
	return s.rank() >= 1
}

// rank orders statuses along queued → sent → delivered / undelivered /
// failed; statuses of one rank are alternatives.
func (s MessageStatus) rank() int {
	switch s {
	case MessageSent:
		return 1
	case MessageDelivered, MessageUndelivered, MessageFailed, MessageExpired, MessageSuperseded:
		return 2
	}
	return 0
}

// Advances reports whether a message may move from s to next: a status
// never moves backwards, and a final one never changes.
func (s MessageStatus) Advances(next MessageStatus) bool {
	return next.rank() > s.rank()
}

// Reached reports whether the message reached a provider (sent, and
// whatever the provider reported after).
func (s MessageStatus) Reached() bool {
	return s == MessageSent || s == MessageDelivered || s == MessageUndelivered
}

// Message is one outbound delivery of one secret. It commits in the same
// transaction as the verification it belongs to, together with the job that
// delivers it.
type Message struct {
	ID             string
	VerificationID string
	IdentityID     string
	Channel        Channel
	// Generation is the verification's generation when the message was
	// queued; a message whose generation is behind is not sent.
	Generation int

	RecipientIndex  []byte
	RecipientSealed []byte
	RecipientMasked string
	// Country (ISO 3166-1 alpha-2) and Prefix (the first digits of the
	// E.164 number) of an SMS recipient, for delivery metrics and the SMS
	// fraud watch. Empty for email.
	Country string
	Prefix  string
	// Locale is the language to write the message in (BCP 47); empty
	// means the default.
	Locale string
	// SecretSealed is the code or link token, encrypted with the key ring,
	// so that a retry after a crash sends the same secret.
	SecretSealed []byte
	// BodySealed is the rendered text, kept (encrypted) only in dev mode so
	// the admin API can show it for local testing.
	BodySealed []byte

	Status        MessageStatus
	Attempts      int
	LastError     string
	Provider      string
	ProviderID    string
	NextAttemptAt time.Time
	ExpiresAt     time.Time
	SentAt        *time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// MessageAttempt records one try to hand a message to a provider.
type MessageAttempt struct {
	MessageID string
	Attempt   int
	At        time.Time
	Outcome   string // sent, transient_error, permanent_error, expired, superseded
	Provider  string // the provider tried; empty when none was
	Error     string
	Duration  time.Duration
}

// MessageFilter selects messages for the admin API.
type MessageFilter struct {
	IdentityID       string
	VerificationID   string
	RecipientIndexes [][]byte
	Limit            int
}

// Outbound is a rendered message, ready for a channel.
type Outbound struct {
	// ID is stable across retries: providers that support idempotency keys
	// get it as one.
	ID      string
	Channel Channel
	To      string
	Subject string
	Text    string
	HTML    string
	// Locale is the language the message is written in (BCP 47, "de").
	Locale string
}

// SendResult is what a provider said when it accepted a message.
type SendResult struct {
	Provider   string
	ProviderID string
	// Status is MessageSent, or MessageDelivered when the provider's
	// answer already says so. Zero means MessageSent.
	Status MessageStatus
}

// OTPRequest asks a provider that makes its own codes (Twilio Verify,
// EngageLab OTP) to send one.
type OTPRequest struct {
	// ID is stable across retries of one message: an idempotency key.
	ID      string
	Channel Channel
	To      string // E.164 or email address
	Locale  string // BCP 47; the provider's default when empty
}

// OTPCheck asks the provider whether code is the one it sent.
type OTPCheck struct {
	// ProviderID is the SendResult.ProviderID of the send being checked.
	ProviderID string
	To         string
	Code       string
}

// OTPSender is a provider that makes and checks the codes itself. Vigil
// still counts attempts, limits resends, locks out and audits; the
// provider only generates, delivers and compares.
type OTPSender interface {
	SendOTP(ctx context.Context, r OTPRequest) (SendResult, error)
	// CheckOTP reports whether the code matches. A wrong code is (false,
	// nil); a send the provider no longer knows (expired, already
	// approved, too many checks) is (false, nil) too. An error means the
	// provider could not answer.
	CheckOTP(ctx context.Context, c OTPCheck) (bool, error)
}

// StatusUpdate is a provider's report on a message it accepted (a Twilio
// status callback).
type StatusUpdate struct {
	Provider   string
	ProviderID string
	Status     MessageStatus // sent, delivered, undelivered or failed
	// ErrorCode is the provider's error code for undelivered and failed,
	// as text ("30003").
	ErrorCode string
}

// Sender hands rendered messages to one provider.
type Sender interface {
	Send(ctx context.Context, m Outbound) (SendResult, error)
}

// PermanentError marks a delivery failure that retrying cannot fix (an
// invalid number, a rejected recipient). Anything else is transient.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return "permanent: " + e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as a permanent delivery failure.
func Permanent(err error) error { return &PermanentError{Err: err} }

// IsPermanent reports whether err is a permanent delivery failure.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// DeliverFunc delivers one message. A zero retryAt means the message is
// finished (sent, or given up, which the core recorded); a non-zero one
// asks the queue to run it again then. An error is an internal failure
// (database down): the queue retries with its own backoff.
type DeliverFunc func(ctx context.Context, messageID string) (retryAt time.Time, err error)

// Queue runs the delivery jobs committed through Tx.InsertMessage and the
// jobs committed through Tx.InsertJob.
type Queue interface {
	// Run works jobs until ctx is cancelled, then waits for the jobs in
	// flight to finish and returns.
	Run(ctx context.Context, w Workers) error
}
