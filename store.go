package vigil

import (
	"context"
	"time"
)

// Store is Vigil's persistence. PostgreSQL and SQLite implement it and pass
// one conformance suite (internal/storetest).
//
// The Tx methods on the Store itself run outside any transaction, each on
// its own; InTx runs several atomically.
type Store interface {
	Tx
	// InTx runs fn in one transaction. Everything fn writes commits or
	// rolls back together, including the delivery jobs queued with
	// InsertMessage. fn must use only the Tx it is given: calling the
	// Store from inside fn may deadlock (SQLite has one writer).
	InTx(ctx context.Context, fn func(Tx) error) error
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	Close() error
}

// Tx is what the core can do against the database. Methods return
// ErrNotFound (wrapped) for a missing row and ErrConflict for a unique
// violation.
type Tx interface {
	// InsertAddress stores a new address; ErrConflict when the identity
	// already has one with the same channel and index.
	InsertAddress(ctx context.Context, a *Address) error
	GetAddress(ctx context.Context, id string) (*Address, error)
	// FindAddress finds an identity's address by channel and any of the
	// blind indexes (one per key in the ring).
	FindAddress(ctx context.Context, identityID string, ch Channel, indexes [][]byte) (*Address, error)
	// FindAddressesByIndex finds every address, of any identity, with one
	// of the indexes.
	FindAddressesByIndex(ctx context.Context, ch Channel, indexes [][]byte) ([]*Address, error)
	ListAddresses(ctx context.Context, identityID string) ([]*Address, error)
	SetAddressVerified(ctx context.Context, id string, at time.Time) error
	// DeleteAddress removes an address the identity no longer has, with
	// its verifications and messages (the audit trail keeps their story).
	DeleteAddress(ctx context.Context, id string) error

	InsertVerification(ctx context.Context, v *Verification) error
	GetVerification(ctx context.Context, id string) (*Verification, error)
	// GetVerificationForUpdate reads and row-locks a verification until the
	// transaction ends.
	GetVerificationForUpdate(ctx context.Context, id string) (*Verification, error)
	// FindOpenVerification returns the newest verification of the address
	// for the purpose that is not verified, or ErrNotFound.
	FindOpenVerification(ctx context.Context, addressID string, p Purpose) (*Verification, error)
	// FindVerificationBySecret finds a verification by its secret hash
	// (links).
	FindVerificationBySecret(ctx context.Context, hash []byte) (*Verification, error)
	ListVerifications(ctx context.Context, identityID string) ([]*Verification, error)
	// FindPassedForFlow returns the newest verification of the identity
	// for the Kratos flow that was verified at or after since, or
	// ErrNotFound.
	FindPassedForFlow(ctx context.Context, identityID, flowID string, since time.Time) (*Verification, error)
	// UpdateVerification writes every mutable field of v (state, secret,
	// generation, attempts, expiry, send bookkeeping, verified_at,
	// flow id).
	UpdateVerification(ctx context.Context, v *Verification) error
	// CountAttempt atomically increments the attempt counter of a pending,
	// unexpired verification whose counter is below its maximum, and
	// returns the row as it is after the increment. It returns ErrNotFound
	// when no such row exists: the caller then reads the row to learn why.
	CountAttempt(ctx context.Context, id string, now time.Time) (*Verification, error)
	// Consume marks a pending verification verified, only if it is still
	// pending with the given generation. It reports whether it did.
	Consume(ctx context.Context, id string, generation int, now time.Time) (bool, error)
	// BindFlow sets the Kratos login flow of a verification that has none
	// and reports whether it did.
	BindFlow(ctx context.Context, id, flowID string) (bool, error)
	// SetVerificationState moves a verification from one state to another
	// and reports whether it was in the from state.
	SetVerificationState(ctx context.Context, id string, from, to State, now time.Time) (bool, error)

	// InsertMessage stores a message and, in the same transaction, the job
	// that delivers it at m.NextAttemptAt.
	InsertMessage(ctx context.Context, m *Message) error
	GetMessage(ctx context.Context, id string) (*Message, error)
	UpdateMessage(ctx context.Context, m *Message) error
	ListMessages(ctx context.Context, f MessageFilter) ([]*Message, error)
	// FindMessageByProvider finds the message a provider accepted under
	// providerID.
	FindMessageByProvider(ctx context.Context, provider, providerID string) (*Message, error)
	// AdvanceMessage moves a message from status from to status to (with
	// the provider's error code for a failure) only if it is still in
	// from, and reports whether it did.
	AdvanceMessage(ctx context.Context, id string, from, to MessageStatus, errText string, now time.Time) (bool, error)
	InsertMessageAttempt(ctx context.Context, a *MessageAttempt) error
	// RelaxDurability lets the transaction's commit return before it
	// reaches the disk: a crash of the database (not of Vigil) may lose
	// the transaction whole, never part of it, and never one committed
	// after it. Only for writes a retry redoes harmlessly: a delivery's
	// outcome, lost, sends the message again with the same code. Outside
	// InTx it does nothing.
	RelaxDurability(ctx context.Context) error
	ListMessageAttempts(ctx context.Context, messageID string) ([]*MessageAttempt, error)

	// InsertJob stores a job that runs at j.RunAt, in the transaction.
	InsertJob(ctx context.Context, j *Job) error

	// GetHookResult returns the stored answer for a hook trigger id, or
	// ErrNotFound.
	GetHookResult(ctx context.Context, triggerID string) (*HookResult, error)
	// PutHookResult stores the answer for a trigger id; ErrConflict when
	// one is already stored (the caller then answers with that one). Rows
	// older than a day may be deleted by the store.
	PutHookResult(ctx context.Context, r *HookResult) error

	// GetLockout returns the identity's lockout row, or a zero Lockout
	// (never ErrNotFound).
	GetLockout(ctx context.Context, identityID string) (*Lockout, error)
	// AddFailure atomically adds one consecutive failure and returns the
	// row after the change.
	AddFailure(ctx context.Context, identityID string, now time.Time) (*Lockout, error)
	SaveLockout(ctx context.Context, l *Lockout) error

	// Hit atomically adds one to the counter key for the fixed window that
	// starts at window and returns the new count. Counters of any key whose
	// window started before expire are dead and may be deleted by the store
	// at any time.
	Hit(ctx context.Context, key string, window time.Time, expire time.Time) (int, error)
	// SumHits adds up the counts of key over the windows that start at or
	// after since.
	SumHits(ctx context.Context, key string, since time.Time) (int, error)

	// AppendAudit chains e to the trail: under a lock held until the
	// transaction ends it sets e.Seq and e.PrevHash from the current head,
	// sets e.Hash = seal(e.PrevHash, e), and inserts the row.
	AppendAudit(ctx context.Context, e *AuditEvent, seal SealFunc) error
	ListAudit(ctx context.Context, f AuditFilter) ([]*AuditEvent, error)
	// AuditHead returns the sequence number and hash of the last appended
	// row as the chain's head records it (0 and nil when empty), so that
	// a deleted tail is detected.
	AuditHead(ctx context.Context) (seq int64, hash []byte, err error)

	DeviceStore
}
