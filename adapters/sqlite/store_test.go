package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/internal/storetest"
)

// open returns a migrated store on a fresh file, closed when the test ends.
func open(t *testing.T, opts Options) *Store {
	t.Helper()
	s, err := Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "vigil.db"), opts)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	require.NoError(t, s.Migrate(t.Context()))
	return s
}

func TestStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) vigil.Store {
		t.Helper()
		return open(t, Options{})
	})
}

func TestQueue(t *testing.T) {
	t.Parallel()
	storetest.RunQueue(t, func(t *testing.T) (vigil.Store, vigil.Queue) {
		t.Helper()
		s := open(t, Options{})
		return s, s.Queue(QueueOptions{})
	})
}

func TestParseDSN(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, dsn, want string
		wantErr         bool
	}{
		{name: "relative", dsn: "sqlite://vigil.db", want: "vigil.db"},
		{name: "relative dir", dsn: "sqlite://data/vigil.db", want: "data/vigil.db"},
		{name: "dot relative", dsn: "sqlite://./data/vigil.db", want: "./data/vigil.db"},
		{name: "absolute", dsn: "sqlite:///var/lib/vigil/vigil.db", want: "/var/lib/vigil/vigil.db"},
		{name: "no slashes", dsn: "sqlite:vigil.db", want: "vigil.db"},
		{name: "escaped", dsn: "sqlite:///tmp/my%20vigil.db", want: "/tmp/my vigil.db"},
		{name: "other scheme", dsn: "postgres://localhost/vigil", wantErr: true},
		{name: "bare path", dsn: "vigil.db", wantErr: true},
		{name: "empty path", dsn: "sqlite://", wantErr: true},
		{name: "memory", dsn: "sqlite://:memory:", wantErr: true},
		{name: "uri", dsn: "sqlite://file:vigil.db", wantErr: true},
		{name: "query", dsn: "sqlite://vigil.db?_pragma=foo", wantErr: true},
		{name: "directory", dsn: "sqlite:///var/lib/vigil/", wantErr: true},
		{name: "bad escape", dsn: "sqlite://vigil%zz.db", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseDSN(tc.dsn)
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

// Not parallel: it changes the working directory.
func TestOpenRelativePath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	s, err := Open(t.Context(), "sqlite://sub.db", Options{})
	require.NoError(t, err)
	require.NoError(t, s.Migrate(t.Context()))
	require.NoError(t, s.Close())
	require.FileExists(t, filepath.Join(dir, "sub.db"))

	_, err = Open(t.Context(), "sqlite://missing/dir/x.db", Options{})
	require.Error(t, err, "a missing directory is not created")
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, err := Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "vigil.db"), Options{})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })

	all, err := migrations()
	require.NoError(t, err)
	require.NotEmpty(t, all)
	for i, m := range all {
		require.Equal(t, i+1, m.version, "migrations are numbered 1, 2, ... without gaps")
	}

	pending, err := s.MigrationStatus(ctx)
	require.NoError(t, err)
	require.Len(t, pending, len(all))
	for _, m := range pending {
		require.Nil(t, m.AppliedAt, "migration %d pending on a new file", m.Version)
	}
	require.Equal(t, vigil.Migration{Version: 1, Name: "init"}, pending[0])

	require.NoError(t, s.Migrate(ctx))
	applied, err := s.MigrationStatus(ctx)
	require.NoError(t, err)
	require.Len(t, applied, len(all))
	for _, m := range applied {
		require.NotNil(t, m.AppliedAt, "migration %d applied", m.Version)
	}

	// Twice is a no-op: nothing re-applied (0001 would fail on its
	// CREATE TABLEs), nothing re-recorded.
	require.NoError(t, s.Migrate(ctx))
	again, err := s.MigrationStatus(ctx)
	require.NoError(t, err)
	require.Equal(t, applied, again)

	// A version this binary does not know (a newer Vigil migrated the
	// file) is listed after the known ones.
	_, err = s.w.ExecContext(ctx, `INSERT INTO vigil_migrations (version, name, applied_at) VALUES (9999, 'future', 0)`)
	require.NoError(t, err)
	withFuture, err := s.MigrationStatus(ctx)
	require.NoError(t, err)
	require.Len(t, withFuture, len(all)+1)
	require.Equal(t, 9999, withFuture[len(all)].Version)
}

// Two Stores on one file are two processes sharing it: each has its own
// writer connection, so they contend for SQLite's file lock rather than a
// pool. BEGIN IMMEDIATE waits for that lock under busy_timeout, so none
// of their concurrent transactions fails as busy.
func TestTwoProcessesOneFile(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := "sqlite://" + filepath.Join(t.TempDir(), "vigil.db")
	stores := make([]*Store, 0, 2)
	for range 2 {
		s, err := Open(ctx, dsn, Options{})
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		require.NoError(t, s.Migrate(ctx), "migrating an already migrated file is a no-op")
		stores = append(stores, s)
	}

	window := vigil.SystemClock{}.Now().Truncate(time.Minute)
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			s := stores[i%2]
			errs <- s.InTx(ctx, func(tx vigil.Tx) error {
				// Read, then write: a deferred transaction would fail here
				// with SQLITE_BUSY when the other process wrote in between.
				if _, err := tx.GetLockout(ctx, "identity"); err != nil {
					return err
				}
				if _, err := tx.AddFailure(ctx, "identity", window); err != nil {
					return err
				}
				_, err := tx.Hit(ctx, "key", window, window.Add(-time.Hour))
				return err
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	l, err := stores[0].GetLockout(ctx, "identity")
	require.NoError(t, err)
	require.Equal(t, n, l.Failures)
}

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// insertMessage commits an address, verification and message due now.
func insertMessage(t *testing.T, s *Store, now time.Time) *vigil.Message {
	t.Helper()
	ctx := t.Context()
	a := &vigil.Address{IdentityID: "identity", Channel: vigil.ChannelEmail, Index: []byte("index")}
	v := &vigil.Verification{IdentityID: "identity", Channel: vigil.ChannelEmail, Method: vigil.MethodCode,
		Purpose: vigil.PurposeVerifyAddress, State: vigil.StatePending, MaxAttempts: 3, ExpiresAt: now.Add(time.Hour)}
	m := &vigil.Message{IdentityID: "identity", Channel: vigil.ChannelEmail, NextAttemptAt: now, ExpiresAt: now.Add(time.Hour)}
	require.NoError(t, s.InTx(ctx, func(tx vigil.Tx) error {
		if err := tx.InsertAddress(ctx, a); err != nil {
			return err
		}
		v.AddressID = a.ID
		if err := tx.InsertVerification(ctx, v); err != nil {
			return err
		}
		m.VerificationID = v.ID
		return tx.InsertMessage(ctx, m)
	}))
	return m
}

// A process that dies mid-delivery leaves its lease behind. Once the lease
// has passed, a queue of the next process delivers the message; until then
// it does not.
func TestLeaseExpiresAfterCrash(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := &fakeClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	s := open(t, Options{Clock: clock})
	m := insertMessage(t, s, clock.Now())

	// The first process claims the message and dies before delivering it:
	// claim and never release.
	crashed, ok := s.Queue(QueueOptions{Lease: time.Minute}).(*Queue)
	require.True(t, ok)
	jobs, err := crashed.claim(ctx, messageBox, 10)
	require.NoError(t, err)
	require.Len(t, jobs, 1)
	require.Equal(t, m.ID, jobs[0].id)

	// The next process starts its queue.
	delivered := make(chan string, 10)
	stop := run(t, s.Queue(QueueOptions{PollInterval: 5 * time.Millisecond}),
		func(ctx context.Context, id string) (time.Time, error) {
			got, err := s.GetMessage(ctx, id)
			if err != nil {
				return time.Time{}, err
			}
			got.Status = vigil.MessageSent
			got.Attempts++
			if err := s.UpdateMessage(ctx, got); err != nil {
				return time.Time{}, err
			}
			delivered <- id
			return time.Time{}, nil
		})

	// Within the lease: the message still belongs to the dead process.
	clock.Add(59 * time.Second)
	select {
	case id := <-delivered:
		t.Fatalf("message %s delivered while another queue's lease held it", id)
	case <-time.After(100 * time.Millisecond): // twenty polls
	}

	// The lease has passed: delivered once.
	clock.Add(time.Second)
	select {
	case id := <-delivered:
		require.Equal(t, m.ID, id)
	case <-time.After(10 * time.Second):
		t.Fatal("message not delivered after its lease expired")
	}
	stop()
	require.Empty(t, delivered, "delivered once")

	got, err := s.GetMessage(ctx, m.ID)
	require.NoError(t, err)
	require.Equal(t, vigil.MessageSent, got.Status)
	require.Equal(t, 1, got.Attempts)
	var lease *int64
	require.NoError(t, s.r.QueryRowContext(ctx, `SELECT lease_until FROM messages WHERE id = ?`, m.ID).Scan(&lease))
	require.Nil(t, lease, "lease released")
}

// run runs q in the background until the returned stop is called, or the
// test ends; stop returns once Run has.
func run(t *testing.T, q vigil.Queue, deliver vigil.DeliverFunc) (stop func()) {
	t.Helper()
	return runWorkers(t, q, vigil.Workers{Deliver: deliver})
}

func runWorkers(t *testing.T, q vigil.Queue, w vigil.Workers) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- q.Run(ctx, w) }()
	stop = sync.OnceFunc(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after its context was cancelled")
		}
	})
	t.Cleanup(stop)
	return stop
}

// The queue settles the job in its own columns and never writes the
// message fields deliver owns.
func TestQueueSettlesOnlyTheJob(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := open(t, Options{})
	now := vigil.SystemClock{}.Now()
	m := insertMessage(t, s, now)

	recorded := now.Add(time.Hour)      // what deliver writes on the message
	asked := now.Add(2 * time.Hour)     // what it asks the queue for
	delivered := make(chan struct{}, 1) // the first delivery only
	stop := run(t, s.Queue(QueueOptions{}), func(ctx context.Context, id string) (time.Time, error) {
		got, err := s.GetMessage(ctx, id)
		if err != nil {
			return time.Time{}, err
		}
		got.Status = vigil.MessageRetrying
		got.Attempts = 1
		got.NextAttemptAt = recorded
		if err := s.UpdateMessage(ctx, got); err != nil {
			return time.Time{}, err
		}
		delivered <- struct{}{}
		return asked, nil
	})
	select {
	case <-delivered:
	case <-time.After(10 * time.Second):
		t.Fatal("not delivered")
	}
	stop()

	got, err := s.GetMessage(ctx, m.ID)
	require.NoError(t, err)
	require.Equal(t, vigil.MessageRetrying, got.Status)
	require.Equal(t, recorded, got.NextAttemptAt, "deliver's value, not the queue's")

	var runAt int64
	var lease *int64
	require.NoError(t, s.r.QueryRowContext(ctx, `SELECT job_run_at, lease_until FROM messages WHERE id = ?`, m.ID).Scan(&runAt, &lease))
	require.Equal(t, asked, fromTS(runAt), "job due at the retryAt deliver returned")
	require.Nil(t, lease)
}

// A message inserted already finished has nothing to deliver.
func TestFinishedMessageHasNoJob(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := open(t, Options{})
	m := insertMessage(t, s, vigil.SystemClock{}.Now())
	sent := *m
	sent.ID = ""
	sent.Status = vigil.MessageSent
	require.NoError(t, s.InsertMessage(ctx, &sent))

	var jobs int
	require.NoError(t, s.r.QueryRowContext(ctx, `SELECT count(*) FROM messages WHERE job_run_at IS NOT NULL`).Scan(&jobs))
	require.Equal(t, 1, jobs, "only the queued message has a job")
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	s := open(t, Options{})
	q, ok := s.Queue(QueueOptions{BackoffMin: time.Second, BackoffMax: 10 * time.Second}).(*Queue)
	require.True(t, ok)
	for _, tc := range []struct {
		name   string
		errors int
		want   time.Duration
	}{
		{"first", 1, time.Second},
		{"second", 2, 2 * time.Second},
		{"fourth", 4, 8 * time.Second},
		{"capped", 5, 10 * time.Second},
		{"far beyond, no overflow", 1000, 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, q.backoff(tc.errors))
		})
	}
}

func TestNewFileIsPrivate(t *testing.T) {
	t.Parallel()
	s := open(t, Options{})
	info, err := os.Stat(s.Path())
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
}

// Hook results older than a day are swept by a later Put, now and then.
func TestHookResultSweep(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := open(t, Options{})
	now := vigil.SystemClock{}.Now()
	old := &vigil.HookResult{TriggerID: "old", Hook: "registration_after", Status: 200, CreatedAt: now.Add(-25 * time.Hour)}
	require.NoError(t, s.PutHookResult(ctx, old))
	require.NoError(t, s.InTx(ctx, func(tx vigil.Tx) error {
		for i := range sweepEvery {
			r := &vigil.HookResult{TriggerID: fmt.Sprint("new-", i), Hook: "registration_after", Status: 200, CreatedAt: now}
			if err := tx.PutHookResult(ctx, r); err != nil {
				return err
			}
		}
		return nil
	}))
	_, err := s.GetHookResult(ctx, old.TriggerID)
	require.ErrorIs(t, err, vigil.ErrNotFound)
	var n int
	require.NoError(t, s.r.QueryRowContext(ctx, `SELECT count(*) FROM hook_results`).Scan(&n))
	require.Equal(t, sweepEvery, n, "only the old row swept")
}

// A finished job's row is deleted; one that asks to run again keeps it.
func TestFinishedJobIsDeleted(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := open(t, Options{})
	done := &vigil.Job{Kind: "done"}
	require.NoError(t, s.InsertJob(ctx, done))
	again := &vigil.Job{Kind: "again"}
	require.NoError(t, s.InsertJob(ctx, again))
	later := vigil.SystemClock{}.Now().Add(time.Hour)

	ran := make(chan string, 2)
	stop := runWorkers(t, s.Queue(QueueOptions{}), vigil.Workers{Job: func(_ context.Context, j *vigil.Job) (time.Time, error) {
		ran <- j.ID
		if j.ID == again.ID {
			return later, nil
		}
		return time.Time{}, nil
	}})
	for range 2 {
		select {
		case <-ran:
		case <-time.After(10 * time.Second):
			t.Fatal("jobs not run")
		}
	}
	stop()

	var ids []string
	rows, err := s.r.QueryContext(ctx, `SELECT id, run_at FROM jobs`)
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var id string
		var runAt int64
		require.NoError(t, rows.Scan(&id, &runAt))
		require.Equal(t, later, fromTS(runAt))
		ids = append(ids, id)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{again.ID}, ids)
}

// Deliveries and jobs have workers of their own: jobs stuck in flight do
// not hold up the delivery of codes.
func TestSlowJobsDoNotBlockDeliveries(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := open(t, Options{})
	require.NoError(t, s.InsertJob(ctx, &vigil.Job{Kind: "slow"}))

	release := make(chan struct{})
	started := make(chan struct{}, 1)
	delivered := make(chan string, 1)
	runWorkers(t, s.Queue(QueueOptions{Workers: 1}), vigil.Workers{
		Job: func(context.Context, *vigil.Job) (time.Time, error) {
			started <- struct{}{}
			<-release
			return time.Time{}, nil
		},
		Deliver: func(_ context.Context, id string) (time.Time, error) {
			delivered <- id
			return time.Time{}, nil
		},
	})
	t.Cleanup(func() { close(release) }) // before the queue stops: cleanups run last first
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("job not started")
	}

	m := insertMessage(t, s, vigil.SystemClock{}.Now())
	select {
	case id := <-delivered:
		require.Equal(t, m.ID, id)
	case <-time.After(10 * time.Second):
		t.Fatal("message not delivered while a job was in flight")
	}
}
