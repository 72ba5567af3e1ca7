package vigil

import (
	"context"
	"time"
)

// Job is a durable unit of background work other than a message delivery
// (for example syncing a verified address to Kratos). It commits in the
// transaction that inserted it, like a message's delivery job.
type Job struct {
	ID      string
	Kind    string
	Payload []byte // JSON; never secrets or plaintext addresses
	RunAt   time.Time
}

// JobFunc runs one job. The retryAt/err contract is DeliverFunc's: a zero
// retryAt finishes the job, a non-zero one runs it again then, an error is
// retried with the queue's own backoff.
type JobFunc func(ctx context.Context, job *Job) (retryAt time.Time, err error)

// Workers are the functions a Queue runs.
type Workers struct {
	Deliver DeliverFunc
	Job     JobFunc
}

// HookResult is the answer given to one Kratos web hook execution, kept so
// that Kratos' retries of the same trigger get the same answer and cause
// nothing twice.
type HookResult struct {
	TriggerID string
	Hook      string
	Status    int
	Body      []byte
	CreatedAt time.Time
}
