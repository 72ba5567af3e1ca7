package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/vigil-auth/vigil"
)

// QueueOptions tune a Queue. The zero value is usable.
type QueueOptions struct {
	// Workers is how many messages are delivered at once, and apart from
	// them how many other jobs run at once. Default 16: a delivery mostly
	// waits for its provider, not for the one writer.
	Workers int
	// PollInterval is how often the queue looks for due jobs when nothing
	// woke it: scheduled retries, expired leases, and jobs committed by
	// another process. Default 200ms.
	PollInterval time.Duration
	// Lease is how long a claimed job belongs to this queue. A job's
	// context ends when its lease does, and a queue that died mid-job
	// leaves a lease that expires, so the job runs again. Default 1 minute.
	Lease time.Duration
	// BackoffMin and BackoffMax bound the wait after a worker returned an
	// error: BackoffMin doubled for each consecutive error of that job, at
	// most BackoffMax. Defaults 1s and 5 minutes.
	BackoffMin time.Duration
	BackoffMax time.Duration
	// Logger defaults to the store's.
	Logger *slog.Logger
}

// Queue runs the delivery jobs and the other jobs committed through the
// store. The messages and jobs rows are the jobs: see the package
// documentation.
type Queue struct {
	s    *Store
	opts QueueOptions
	log  *slog.Logger
}

// Queue returns a queue over the store's messages and jobs. Several may
// run at once, in one process or many: a job is claimed by one at a
// time.
func (s *Store) Queue(opts QueueOptions) vigil.Queue {
	if opts.Workers <= 0 {
		opts.Workers = 16
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

// outbox is a table whose rows are their own jobs: messages (each row
// the job that delivers it) or jobs.
type outbox struct {
	table string
	runAt string // the column that says when the row's job is due
	// returning is what a claim reads after id and queue_errors, and scan
	// reads it into the job.
	returning string
	scan      func(rows *sql.Rows, j *job) error
	// finish settles a job that finished; its arguments are id and lease.
	finish string
}

var (
	// A finished delivery keeps its message row, which is the record of
	// the message, and only loses its job.
	messageBox = &outbox{
		table: "messages",
		runAt: "job_run_at",
		scan:  func(rows *sql.Rows, j *job) error { return rows.Scan(&j.id, &j.errors) },
		finish: `UPDATE messages SET lease_until = NULL, job_run_at = NULL, queue_errors = 0
			WHERE id = ? AND lease_until = ?`,
	}
	// A finished job is gone: the row was nothing but the job.
	jobBox = &outbox{
		table:     "jobs",
		runAt:     "run_at",
		returning: ", kind, payload, run_at",
		scan: func(rows *sql.Rows, j *job) error {
			j.job = &vigil.Job{}
			var runAt int64
			if err := rows.Scan(&j.id, &j.errors, &j.job.Kind, &j.job.Payload, &runAt); err != nil {
				return err
			}
			j.job.ID = j.id
			j.job.RunAt = fromTS(runAt)
			return nil
		},
		finish: `DELETE FROM jobs WHERE id = ? AND lease_until = ?`,
	}
)

// job is one claimed row of an outbox.
type job struct {
	id string
	// job is the row of a jobs outbox; nil for a message.
	job *vigil.Job
	// lease is the lease_until this queue wrote when it claimed the row;
	// bookkeeping only touches the row while it still holds it.
	lease  int64
	errors int // consecutive internal errors before this run
	// deadline is when the lease ends by the wall clock: the run's
	// context ends then.
	deadline time.Time
}

// attrs name the job in logs.
func (j job) attrs() []any {
	if j.job == nil {
		return []any{"message_id", j.id}
	}
	return []any{"job_id", j.id, "job_kind", j.job.Kind}
}

// lane is one outbox being worked, with its own pool of Workers, so that
// slow jobs cannot hold up deliveries or the other way round.
type lane struct {
	box         *outbox
	run         func(ctx context.Context, j job) (retryAt time.Time, err error)
	inflight    int
	claimErrors int // in a row, so a database outage logs once, not every poll
}

// Run claims due jobs and runs them on the worker pools until ctx is
// cancelled, then waits for the ones in flight and returns nil. A nil
// function in w leaves its outbox alone: those jobs wait for a Run that
// has it.
//
// Stopping is graceful: a job in flight keeps its context (and the values
// in ctx) until it returns or its lease runs out, so a message a provider
// is accepting is not cut off half way. The lease therefore bounds how
// long Run takes to return.
func (q *Queue) Run(ctx context.Context, w vigil.Workers) error {
	var lanes []*lane
	if w.Deliver != nil {
		lanes = append(lanes, &lane{box: messageBox, run: func(ctx context.Context, j job) (time.Time, error) {
			return w.Deliver(ctx, j.id)
		}})
	}
	if w.Job != nil {
		lanes = append(lanes, &lane{box: jobBox, run: func(ctx context.Context, j job) (time.Time, error) {
			return w.Job(ctx, j.job)
		}})
	}

	wake := q.s.subscribe()
	defer q.s.unsubscribe(wake)
	dctx := context.WithoutCancel(ctx)

	var wg sync.WaitGroup
	defer wg.Wait()
	// No lane has more than Workers in flight, so sends never block.
	finished := make(chan *lane, len(lanes)*q.opts.Workers)

	ticker := time.NewTicker(q.opts.PollInterval)
	defer ticker.Stop()
	for {
		for _, l := range lanes {
			free := q.opts.Workers - l.inflight
			if free <= 0 || ctx.Err() != nil {
				continue
			}
			jobs, err := q.claim(dctx, l.box, free)
			switch {
			case err != nil:
				if l.claimErrors%100 == 0 {
					q.log.ErrorContext(ctx, "claim jobs", "table", l.box.table, "err", err, "failures_in_a_row", l.claimErrors+1)
				}
				l.claimErrors++
			case l.claimErrors > 0:
				q.log.InfoContext(ctx, "claim jobs works again", "table", l.box.table, "failures_in_a_row", l.claimErrors)
				l.claimErrors = 0
			}
			for _, j := range jobs {
				l.inflight++
				wg.Go(func() {
					q.work(dctx, l, j)
					finished <- l
				})
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case l := <-finished:
			l.inflight--
		case <-wake:
		case <-ticker.C:
		}
	}
}

// claim leases up to n due jobs of an outbox in one statement. A job is
// due when its run time has come and no live lease holds it. For messages
// it does not look at the status: deliver decides what a superseded or
// expired message needs (nothing), and finishing the job is what keeps it
// from being scanned on every poll for ever.
//
// ctx should not be one that Run's cancellation ends: the UPDATE commits
// every lease before the first row comes back, so rows left unread would
// hold their jobs until the leases expire.
func (q *Queue) claim(ctx context.Context, box *outbox, n int) ([]job, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	now := q.s.now()
	until := ts(now.Add(q.opts.Lease))
	deadline := time.Now().Add(q.opts.Lease)
	//nolint:gosec // table and column names from messageBox or jobBox, never input
	query := `UPDATE ` + box.table + ` SET lease_until = ?
		WHERE id IN (
			SELECT id FROM ` + box.table + `
			WHERE ` + box.runAt + ` <= ? AND (lease_until IS NULL OR lease_until <= ?)
			ORDER BY ` + box.runAt + `, rowid
			LIMIT ?)
		RETURNING id, queue_errors` + box.returning
	rows, err := q.s.w.QueryContext(ctx, query, until, ts(now), ts(now), n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var jobs []job
	for rows.Next() {
		j := job{lease: until, deadline: deadline}
		if err := box.scan(rows, &j); err != nil {
			return nil, err
		}
		jobs = append(jobs, j)
	}
	return jobs, rows.Err()
}

// work runs one claimed job and then settles it, touching only the job
// columns: a delivery has recorded the message's own fields. A zero
// retryAt finishes the job whatever the message's status says.
func (q *Queue) work(ctx context.Context, l *lane, j job) {
	retryAt, err := q.call(ctx, l, j)

	// Bounded, so a stuck database cannot hold up shutdown for long; a
	// job whose settling failed runs again when its lease expires.
	bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var (
		query string
		args  []any
	)
	reschedule := `UPDATE ` + l.box.table + ` SET lease_until = NULL, ` + l.box.runAt + ` = ?, queue_errors = ?
		WHERE id = ? AND lease_until = ?`
	switch {
	case err != nil:
		n := j.errors + 1
		next := q.s.now().Add(q.backoff(n))
		q.log.WarnContext(ctx, "job failed, will retry", append(j.attrs(),
			"consecutive_errors", n, "retry_at", next, "err", err)...)
		query = reschedule
		args = []any{ts(next), n, j.id, j.lease}
	case !retryAt.IsZero():
		query = reschedule
		args = []any{ts(retryAt), 0, j.id, j.lease}
	default:
		query = l.box.finish
		args = []any{j.id, j.lease}
	}
	res, err := q.s.w.ExecContext(bctx, query, args...)
	if err != nil {
		q.log.ErrorContext(ctx, "settle job; it runs again when its lease expires", append(j.attrs(), "err", err)...)
		return
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		q.log.WarnContext(ctx, "job lost its lease (it outlasted the lease, or its row was deleted)",
			append(j.attrs(), "lease", q.opts.Lease)...)
	}
}

// call runs the lane's function under the lease's deadline and turns a
// panic into an error, so one bad job cannot take the queue down.
func (q *Queue) call(ctx context.Context, l *lane, j job) (retryAt time.Time, err error) {
	ctx, cancel := context.WithDeadline(ctx, j.deadline)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("job panicked: %v", p)
		}
	}()
	return l.run(ctx, j)
}

// backoff is the wait after the n-th consecutive internal error.
func (q *Queue) backoff(n int) time.Duration {
	d := q.opts.BackoffMin
	for i := 1; i < n && d < q.opts.BackoffMax; i++ {
		d *= 2
	}
	return min(d, q.opts.BackoffMax)
}
