package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/vigil-auth/vigil"
)

const (
	deliveryKind  = "vigil_delivery"
	deliveryQueue = "vigil_delivery"
	// Jobs have a queue of their own, so that slow ones (an identity
	// provider timing out) cannot hold up the delivery of codes.
	jobKind  = "vigil_job"
	jobQueue = "vigil_job"
	// Errors are internal failures (the database or the identity provider
	// away), not provider refusals, which the core handles with retryAt;
	// River's backoff (attempt^4 s) spreads 25 attempts over weeks, far
	// past any code's life.
	maxAttempts = 25
	// River moves scheduled jobs to available on this period (its leader's
	// scheduler); promptInsert makes jobs due sooner available at once.
	riverSchedulerInterval = 5 * time.Second
)

// deliveryArgs is the job InsertMessage commits with the message row.
type deliveryArgs struct {
	MessageID string `json:"message_id"`
}

func (deliveryArgs) Kind() string { return deliveryKind }

func (deliveryArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: deliveryQueue, MaxAttempts: maxAttempts}
}

// jobArgs is a vigil.Job as River stores it. The payload is kept as JSON,
// not as bytes, so that it reads as such in River's tables; being jsonb
// there, it comes back equal as JSON but not byte for byte.
type jobArgs struct {
	ID      string          `json:"id"`
	JobKind string          `json:"kind"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

func (jobArgs) Kind() string { return jobKind }

func (jobArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobQueue, MaxAttempts: maxAttempts}
}

// promptInsert inserts a job of ours due within the scheduler interval as
// available rather than scheduled. River fetches only available jobs whose
// scheduled_at has passed, so the time is still kept, but the job does not
// wait up to riverSchedulerInterval for the leader to move it; River's own
// short snoozes work the same way.
type promptInsert struct {
	river.MiddlewareDefaults
}

func (promptInsert) InsertMany(ctx context.Context, params []*rivertype.JobInsertParams, doInner func(context.Context) ([]*rivertype.JobInsertResult, error)) ([]*rivertype.JobInsertResult, error) {
	soon := time.Now().Add(riverSchedulerInterval)
	for _, p := range params {
		if (p.Kind == deliveryKind || p.Kind == jobKind) && p.State == rivertype.JobStateScheduled && p.ScheduledAt != nil && p.ScheduledAt.Before(soon) {
			p.State = rivertype.JobStateAvailable
		}
	}
	return doInner(ctx)
}

// QueueOptions tune the workers. Zero values take the defaults.
type QueueOptions struct {
	// Workers is how many deliveries run at once in this process, and
	// apart from them how many other jobs; default 64. A delivery mostly
	// waits for its provider, so many workers share the pool's few
	// connections well (docs/benchmarks.md).
	Workers int
	// JobTimeout cancels one delivery's or job's context; default 30 s.
	JobTimeout time.Duration
	// RescueAfter is how long a job may stay running before it is
	// considered lost (its process died) and retried; default 1 min. It
	// must exceed JobTimeout.
	RescueAfter time.Duration
	// StopTimeout is how long Run waits, after its context ends, for
	// deliveries in flight before cancelling them; default JobTimeout.
	StopTimeout time.Duration
	// PollInterval is the longest a due job waits when no notification
	// announces it (scheduled jobs, retries); default 500 ms.
	PollInterval time.Duration
}

func (o QueueOptions) withDefaults() QueueOptions {
	if o.Workers <= 0 {
		o.Workers = 64
	}
	o.JobTimeout = cmpOr(o.JobTimeout, 30*time.Second)
	o.RescueAfter = cmpOr(o.RescueAfter, time.Minute)
	if o.RescueAfter <= o.JobTimeout {
		o.RescueAfter = o.JobTimeout + time.Minute
	}
	o.StopTimeout = cmpOr(o.StopTimeout, o.JobTimeout)
	o.PollInterval = cmpOr(o.PollInterval, 500*time.Millisecond)
	return o
}

// Queue works the delivery jobs and the other jobs with River.
type Queue struct {
	s    *Store
	opts QueueOptions
}

var _ vigil.Queue = (*Queue)(nil)

// Queue returns the queue that works the jobs InsertMessage and InsertJob
// commit.
func (s *Store) Queue(opts QueueOptions) vigil.Queue {
	return &Queue{s: s, opts: opts.withDefaults()}
}

// Run works jobs until ctx is cancelled, then lets the ones in flight
// finish (up to StopTimeout, after which they are cancelled and River
// retries them later) and returns nil.
//
// A nil function in w leaves its kind of job alone: its River queue is not
// worked, so the jobs wait, untouched, for a Run that has the function.
func (q *Queue) Run(ctx context.Context, w vigil.Workers) error {
	workers := river.NewWorkers()
	queues := map[string]river.QueueConfig{}
	if w.Deliver != nil {
		if err := river.AddWorkerSafely(workers, &deliveryWorker{deliver: w.Deliver}); err != nil {
			return fmt.Errorf("postgres: queue: %w", err)
		}
		queues[deliveryQueue] = river.QueueConfig{MaxWorkers: q.opts.Workers}
	}
	if w.Job != nil {
		if err := river.AddWorkerSafely(workers, &jobWorker{run: w.Job}); err != nil {
			return fmt.Errorf("postgres: queue: %w", err)
		}
		queues[jobQueue] = river.QueueConfig{MaxWorkers: q.opts.Workers}
	}
	if len(queues) == 0 {
		// River refuses to start a client with nothing to work.
		<-ctx.Done()
		return nil
	}
	client, err := river.NewClient(riverpgxv5.New(q.s.pool), &river.Config{
		Schema:               q.s.schema,
		Logger:               q.s.log,
		Queues:               queues,
		Workers:              workers,
		JobTimeout:           q.opts.JobTimeout,
		RescueStuckJobsAfter: q.opts.RescueAfter,
		FetchCooldown:        50 * time.Millisecond,
		FetchPollInterval:    q.opts.PollInterval,
	})
	if err != nil {
		return fmt.Errorf("postgres: queue: %w", err)
	}
	// Start's context is not ctx: its cancellation would start River's own
	// stop, and Run stops explicitly below, bounded.
	if err := client.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("postgres: start queue: %w", err)
	}
	<-ctx.Done()

	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), q.opts.StopTimeout)
	defer cancel()
	if err := client.Stop(stopCtx); err == nil {
		return nil
	}
	// Jobs still running: cancel them. Each either returns soon or is
	// rescued after RescueAfter.
	hardCtx, cancelHard := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancelHard()
	if err := client.StopAndCancel(hardCtx); err != nil {
		return fmt.Errorf("postgres: stop queue: %w", err)
	}
	return nil
}

type deliveryWorker struct {
	river.WorkerDefaults[deliveryArgs]
	deliver vigil.DeliverFunc
}

func (w *deliveryWorker) Work(ctx context.Context, job *river.Job[deliveryArgs]) error {
	retryAt, err := w.deliver(ctx, job.Args.MessageID)
	if err != nil {
		return fmt.Errorf("deliver message %s: %w", job.Args.MessageID, err)
	}
	return snoozeUntil(retryAt)
}

type jobWorker struct {
	river.WorkerDefaults[jobArgs]
	run vigil.JobFunc
}

func (w *jobWorker) Work(ctx context.Context, job *river.Job[jobArgs]) error {
	retryAt, err := w.run(ctx, &vigil.Job{
		ID:      job.Args.ID,
		Kind:    job.Args.JobKind,
		Payload: job.Args.Payload,
		RunAt:   job.ScheduledAt.UTC(),
	})
	if err != nil {
		return fmt.Errorf("run job %s (%s): %w", job.Args.ID, job.Args.JobKind, err)
	}
	return snoozeUntil(retryAt)
}

// snoozeUntil turns a worker's retryAt into River's answer: nil finishes
// the job, a snooze runs it again then without spending an attempt.
func snoozeUntil(retryAt time.Time) error {
	if retryAt.IsZero() {
		return nil
	}
	return river.JobSnooze(max(time.Until(retryAt), 0))
}

// River's API is kept in this file: insertDelivery and insertJob are what
// the Tx methods call.

func (s *Store) insertDelivery(ctx context.Context, tx pgx.Tx, m *vigil.Message) error {
	_, err := s.river.InsertTx(ctx, tx, deliveryArgs{MessageID: m.ID}, &river.InsertOpts{ScheduledAt: m.NextAttemptAt})
	if err != nil {
		return fmt.Errorf("insert delivery job for message %s: %w", m.ID, err)
	}
	return nil
}

func (s *Store) insertJob(ctx context.Context, tx pgx.Tx, j *vigil.Job) error {
	args := jobArgs{ID: j.ID, JobKind: j.Kind, Payload: j.Payload}
	if _, err := s.river.InsertTx(ctx, tx, args, &river.InsertOpts{ScheduledAt: j.RunAt}); err != nil {
		return fmt.Errorf("insert job %s (%s): %w", j.ID, j.Kind, err)
	}
	return nil
}
