package sqlite

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/vigil-auth/vigil"
)

// QueueOptions tune a Queue. The zero value is usable.
type QueueOptions struct {
	// Workers is how many messages are delivered at once. Default 4.
	Workers int
	// PollInterval is how often the queue looks for due messages when
	// nothing woke it: scheduled retries, expired leases, and messages
	// committed by another process. Default 200ms.
	PollInterval time.Duration
	// Lease is how long a claimed job belongs to this queue. A delivery's
	// context ends when its lease does, and a queue that died mid-delivery
	// leaves a lease that expires, so the job runs again. Default 1 minute.
	Lease time.Duration
	// BackoffMin and BackoffMax bound the wait after deliver returned an
	// error: BackoffMin doubled for each consecutive error of that
	// message, at most BackoffMax. Defaults 1s and 5 minutes.
	BackoffMin time.Duration
	BackoffMax time.Duration
	// Logger defaults to the store's.
	Logger *slog.Logger
}

// Queue delivers the messages committed through the store. The messages
// row is the job: see the package documentation.
type Queue struct {
	s    *Store
	opts QueueOptions
	log  *slog.Logger
}

// Queue returns a delivery queue over the store's messages. Several may
// run at once, in one process or many: a message is claimed by one at a
// time.
func (s *Store) Queue(opts QueueOptions) vigil.Queue {
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 200 * time.Millisecond
	}
	if opts.Lease <= 0 {
		opts.Lease = time.Minute
	}
	if opts.BackoffMin <= 0 {
		opts.BackoffMin = time.Second
	}
	if opts.BackoffMax < opts.BackoffMin {
		opts.BackoffMax = max(5*time.Minute, opts.BackoffMin)
	}
	if opts.Logger == nil {
		opts.Logger = s.log
	}
	return &Queue{s: s, opts: opts, log: opts.Logger}
}

// job is one claimed message.
type job struct {
	id string
	// lease is the lease_until this queue wrote when it claimed the row;
	// bookkeeping only touches the row while it still holds it.
	lease  int64
	errors int // consecutive internal errors before this delivery
	// deadline is when the lease ends by the wall clock: the delivery's
	// context ends then.
	deadline time.Time
}

// Run claims due jobs and delivers them on the worker pool until ctx is
// cancelled, then waits for the deliveries in flight and returns nil.
//
// Stopping is graceful: a delivery in flight keeps its context (and the
// values in ctx) until it returns or its lease runs out, so a message a
// provider is accepting is not cut off half way. The lease therefore
// bounds how long Run takes to return.
func (q *Queue) Run(ctx context.Context, deliver vigil.DeliverFunc) error {
	wake := q.s.subscribe()
	defer q.s.unsubscribe(wake)
	dctx := context.WithoutCancel(ctx)

	var wg sync.WaitGroup
	defer wg.Wait()
	finished := make(chan struct{}, q.opts.Workers)
	inflight := 0
	claimErrors := 0 // in a row, so a database outage logs once, not every poll

	ticker := time.NewTicker(q.opts.PollInterval)
	defer ticker.Stop()
	for {
		if free := q.opts.Workers - inflight; free > 0 && ctx.Err() == nil {
			jobs, err := q.claim(dctx, free)
			switch {
			case err != nil:
				if claimErrors%100 == 0 {
					q.log.ErrorContext(ctx, "claim messages", "err", err, "failures_in_a_row", claimErrors+1)
				}
				claimErrors++
			case claimErrors > 0:
				q.log.InfoContext(ctx, "claim messages works again", "failures_in_a_row", claimErrors)
				claimErrors = 0
			}
			for _, j := range jobs {
				inflight++
				wg.Go(func() {
					q.work(dctx, deliver, j)
					finished <- struct{}{}
				})
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-finished:
			inflight--
		case <-wake:
		case <-ticker.C:
		}
	}
}

// claim leases up to n due jobs in one statement. A job is due when its
// run time has come and no live lease holds it. It does not look at the
// message's status: deliver decides what a superseded or expired message
// needs (nothing), and finishing the job is what keeps it from being
// scanned on every poll for ever.
//
// ctx should not be one that Run's cancellation ends: the UPDATE commits
// every lease before the first row comes back, so rows left unread would
// hold their messages until the leases expire.
func (q *Queue) claim(ctx context.Context, n int) ([]job, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	now := q.s.now()
	until := ts(now.Add(q.opts.Lease))
	deadline := time.Now().Add(q.opts.Lease)
	rows, err := q.s.w.QueryContext(ctx, `UPDATE messages SET lease_until = ?
		WHERE id IN (
			SELECT id FROM messages
			WHERE job_run_at <= ? AND (lease_until IS NULL OR lease_until <= ?)
			ORDER BY job_run_at, rowid
			LIMIT ?)
		RETURNING id, queue_errors`, until, ts(now), ts(now), n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var jobs []job
	for rows.Next() {
		j := job{lease: until, deadline: deadline}
		if err := rows.Scan(&j.id, &j.errors); err != nil {
			return nil, err
		}
		jobs = append(jobs, j)
	}
	return jobs, rows.Err()
}

// work delivers one claimed message and then settles its job, touching
// only the job columns: deliver has recorded the message's own fields.
// A zero retryAt finishes the job whatever the message's status says.
func (q *Queue) work(ctx context.Context, deliver vigil.DeliverFunc, j job) {
	retryAt, err := q.deliver(ctx, deliver, j)

	// Bounded, so a stuck database cannot hold up shutdown for long; a
	// job whose settling failed is retried when its lease expires.
	bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var (
		query string
		args  []any
	)
	switch {
	case err != nil:
		n := j.errors + 1
		next := q.s.now().Add(q.backoff(n))
		q.log.WarnContext(ctx, "deliver message failed, will retry", "message_id", j.id,
			"consecutive_errors", n, "retry_at", next, "err", err)
		query = `UPDATE messages SET lease_until = NULL, job_run_at = ?, queue_errors = ? WHERE id = ? AND lease_until = ?`
		args = []any{ts(next), n, j.id, j.lease}
	case !retryAt.IsZero():
		query = `UPDATE messages SET lease_until = NULL, job_run_at = ?, queue_errors = 0 WHERE id = ? AND lease_until = ?`
		args = []any{ts(retryAt), j.id, j.lease}
	default:
		query = `UPDATE messages SET lease_until = NULL, job_run_at = NULL, queue_errors = 0 WHERE id = ? AND lease_until = ?`
		args = []any{j.id, j.lease}
	}
	res, err := q.s.w.ExecContext(bctx, query, args...)
	if err != nil {
		q.log.ErrorContext(ctx, "settle delivery job; it runs again when its lease expires", "message_id", j.id, "err", err)
		return
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		q.log.WarnContext(ctx, "delivery job lost its lease (delivery outlasted it, or the message was deleted)",
			"message_id", j.id, "lease", q.opts.Lease)
	}
}

// deliver runs deliver under the lease's deadline and turns a panic into
// an error, so one bad message cannot take the queue down.
func (q *Queue) deliver(ctx context.Context, deliver vigil.DeliverFunc, j job) (retryAt time.Time, err error) {
	ctx, cancel := context.WithDeadline(ctx, j.deadline)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("deliver panicked: %v", p)
		}
	}()
	return deliver(ctx, j.id)
}

// backoff is the wait after the n-th consecutive internal error.
func (q *Queue) backoff(n int) time.Duration {
	d := q.opts.BackoffMin
	for i := 1; i < n && d < q.opts.BackoffMax; i++ {
		d *= 2
	}
	return min(d, q.opts.BackoffMax)
}
