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
	MessageSent     MessageStatus = "sent"
	MessageFailed   MessageStatus = "failed"
	// MessageExpired: the code expired before it could be delivered, so it
	// was never sent.
	MessageExpired MessageStatus = "expired"
	// MessageSuperseded: a resend replaced the code before delivery.
	MessageSuperseded MessageStatus = "superseded"
)

// Done reports whether no more attempts will be made.
func (s MessageStatus) Done() bool {
	return s == MessageSent || s == MessageFailed || s == MessageExpired || s == MessageSuperseded
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
	Error     string
	Duration  time.Duration
}

// MessageFilter selects messages for the admin API.
type MessageFilter struct {
	IdentityID       string
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
}

// SendResult is what a provider said when it accepted a message.
type SendResult struct {
	Provider   string
	ProviderID string
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
