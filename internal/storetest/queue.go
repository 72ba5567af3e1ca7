package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil"
)

// OpenQueue returns a fresh store as Open does, and the queue that works
// the jobs its InsertMessage and InsertJob commit.
type OpenQueue = func(t *testing.T) (vigil.Store, vigil.Queue)

// Queue waits. Generous, so that a loaded CI machine does not flake; a
// passing run takes a fraction of them.
const (
	deliverWait = 15 * time.Second
	stopWait    = 15 * time.Second
)

// RunQueue runs the queue conformance suite: deliveries and jobs.
func RunQueue(t *testing.T, open OpenQueue) {
	t.Helper()
	for _, tc := range []struct {
		name string
		run  func(*testing.T, OpenQueue)
	}{
		{"DeliversCommitted", testQueueDelivers},
		{"NeverDeliversRolledBack", testQueueRolledBack},
		{"WaitsForNextAttemptAt", testQueueScheduled},
		{"RetryAtReschedules", testQueueRetryAt},
		{"ErrorRetries", testQueueError},
		{"StopFinishesInFlight", testQueueStop},
		{"JobRunsCommitted", testJobRuns},
		{"JobNeverRunsRolledBack", testJobRolledBack},
		{"JobWaitsForRunAt", testJobScheduled},
		{"JobRetryAtReschedules", testJobRetryAt},
		{"JobErrorRetries", testJobError},
		{"NilWorkerLeavesJobs", testQueueNilWorker},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, open)
		})
	}
}

// call is one invocation of the deliver or job func.
type call struct {
	id  string
	at  time.Time
	job *vigil.Job // nil for a delivery
}

// recorder is a DeliverFunc and a JobFunc that records calls, by message
// or job id, and answers with respond.
type recorder struct {
	mu      sync.Mutex
	calls   []call
	notify  chan call
	respond func(ctx context.Context, id string, n int) (time.Time, error)
}

func newRecorder(respond func(ctx context.Context, id string, n int) (time.Time, error)) *recorder {
	if respond == nil {
		respond = func(context.Context, string, int) (time.Time, error) { return time.Time{}, nil }
	}
	return &recorder{notify: make(chan call, 100), respond: respond}
}

func (r *recorder) deliver(ctx context.Context, id string) (time.Time, error) {
	return r.record(ctx, call{id: id, at: time.Now()})
}

func (r *recorder) job(ctx context.Context, j *vigil.Job) (time.Time, error) {
	return r.record(ctx, call{id: j.ID, at: time.Now(), job: j})
}

// workers are both of r's funcs.
func (r *recorder) workers() vigil.Workers {
	return vigil.Workers{Deliver: r.deliver, Job: r.job}
}

func (r *recorder) record(ctx context.Context, c call) (time.Time, error) {
	id := c.id
	r.mu.Lock()
	r.calls = append(r.calls, c)
	n := 0
	for _, prev := range r.calls {
		if prev.id == id {
			n++
		}
	}
	r.mu.Unlock()
	select {
	case r.notify <- c:
	default: // waitCalls polls as well
	}
	return r.respond(ctx, id, n)
}

// callsFor returns the calls for message or job id so far.
func (r *recorder) callsFor(id string) []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []call
	for _, c := range r.calls {
		if c.id == id {
			out = append(out, c)
		}
	}
	return out
}

// waitCalls waits until message or job id was called n times.
func (r *recorder) waitCalls(t *testing.T, id string, n int) []call {
	t.Helper()
	deadline := time.After(deliverWait)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if got := r.callsFor(id); len(got) >= n {
			return got
		}
		select {
		case <-r.notify:
		case <-tick.C:
		case <-deadline:
			t.Fatalf("message or job %s: %d calls after %s, want %d", id, len(r.callsFor(id)), deliverWait, n)
		}
	}
}

// startQueue runs q in the background and returns a stop func that cancels
// Run and waits for it to return; cleanup calls it too.
func startQueue(t *testing.T, q vigil.Queue, w vigil.Workers) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- q.Run(ctx, w) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(stopWait):
				err = errors.New("queue Run did not return after its context was cancelled")
			}
		})
		return err
	}
	t.Cleanup(func() {
		if err := stop(); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("stop queue: %v", err)
		}
	})
	return stop
}

// queueChain inserts an address and a verification for messages to belong
// to.
func queueChain(t *testing.T, s vigil.Store) *vigil.Verification {
	t.Helper()
	ctx := t.Context()
	a := newAddress(newID(), vigil.ChannelEmail)
	require.NoError(t, s.InsertAddress(ctx, a))
	v := newVerification(a)
	require.NoError(t, s.InsertVerification(ctx, v))
	return v
}

//nolint:thelper // a group of subtests, not a helper: failures point at their own lines
func testQueueDelivers(t *testing.T, open OpenQueue) {
	ctx := t.Context()
	s, q := open(t)
	v := queueChain(t, s)

	// Committed before Run starts, inside a transaction and on its own.
	inTx := newMessage(v)
	require.NoError(t, s.InTx(ctx, func(tx vigil.Tx) error { return tx.InsertMessage(ctx, inTx) }))
	alone := newMessage(v)
	require.NoError(t, s.InsertMessage(ctx, alone))

	r := newRecorder(nil)
	startQueue(t, q, vigil.Workers{Deliver: r.deliver})
	r.waitCalls(t, inTx.ID, 1)
	r.waitCalls(t, alone.ID, 1)

	// And committed while Run is working.
	later := newMessage(v)
	require.NoError(t, s.InTx(ctx, func(tx vigil.Tx) error { return tx.InsertMessage(ctx, later) }))
	r.waitCalls(t, later.ID, 1)

	// Finished messages are not delivered again.
	time.Sleep(300 * time.Millisecond)
	for _, m := range []*vigil.Message{inTx, alone, later} {
		require.Len(t, r.callsFor(m.ID), 1, "message %s delivered once", m.ID)
	}
}

//nolint:thelper // a group of subtests, not a helper: failures point at their own lines
func testQueueRolledBack(t *testing.T, open OpenQueue) {
	ctx := t.Context()
	s, q := open(t)
	v := queueChain(t, s)

	boom := errors.New("boom")
	lost := newMessage(v)
	err := s.InTx(ctx, func(tx vigil.Tx) error {
		if err := tx.InsertMessage(ctx, lost); err != nil {
			return err
		}
		return boom
	})
	require.ErrorIs(t, err, boom)
	_, err = s.GetMessage(ctx, lost.ID)
	require.ErrorIs(t, err, vigil.ErrNotFound)

	// A message committed after the rolled-back one: once it is delivered,
	// the other would have been too if its job had survived.
	kept := newMessage(v)
	require.NoError(t, s.InTx(ctx, func(tx vigil.Tx) error { return tx.InsertMessage(ctx, kept) }))

	r := newRecorder(nil)
	startQueue(t, q, vigil.Workers{Deliver: r.deliver})
	r.waitCalls(t, kept.ID, 1)
	time.Sleep(500 * time.Millisecond)
	require.Empty(t, r.callsFor(lost.ID), "rolled-back message delivered")
}

//nolint:thelper // a group of subtests, not a helper: failures point at their own lines
func testQueueScheduled(t *testing.T, open OpenQueue) {
	ctx := t.Context()
	s, q := open(t)
	v := queueChain(t, s)

	const delay = 1500 * time.Millisecond
	m := newMessage(v)
	m.NextAttemptAt = time.Now().Add(delay).UTC().Truncate(time.Microsecond)
	require.NoError(t, s.InsertMessage(ctx, m))

	r := newRecorder(nil)
	startQueue(t, q, vigil.Workers{Deliver: r.deliver})
	calls := r.waitCalls(t, m.ID, 1)
	// Clocks of the store and the test differ by scheduling granularity
	// only; allow a little.
	require.False(t, calls[0].at.Before(m.NextAttemptAt.Add(-100*time.Millisecond)),
		"delivered %s before NextAttemptAt", m.NextAttemptAt.Sub(calls[0].at))
}

//nolint:thelper // a group of subtests, not a helper: failures point at their own lines
func testQueueRetryAt(t *testing.T, open OpenQueue) {
	ctx := t.Context()
	s, q := open(t)
	v := queueChain(t, s)
	m := newMessage(v)
	require.NoError(t, s.InsertMessage(ctx, m))

	const delay = 700 * time.Millisecond
	asked := make(chan time.Time, 1)
	r := newRecorder(func(_ context.Context, _ string, n int) (time.Time, error) {
		if n == 1 {
			at := time.Now().Add(delay)
			asked <- at
			return at, nil
		}
		return time.Time{}, nil
	})
	startQueue(t, q, vigil.Workers{Deliver: r.deliver})
	calls := r.waitCalls(t, m.ID, 2)
	retryAt := <-asked
	require.False(t, calls[1].at.Before(retryAt.Add(-100*time.Millisecond)),
		"second delivery %s before retryAt", retryAt.Sub(calls[1].at))

	// A zero retryAt finishes the message.
	time.Sleep(500 * time.Millisecond)
	require.Len(t, r.callsFor(m.ID), 2)
}

//nolint:thelper // a group of subtests, not a helper: failures point at their own lines
func testQueueError(t *testing.T, open OpenQueue) {
	ctx := t.Context()
	s, q := open(t)
	v := queueChain(t, s)
	m := newMessage(v)
	require.NoError(t, s.InsertMessage(ctx, m))

	r := newRecorder(func(_ context.Context, _ string, n int) (time.Time, error) {
		if n == 1 {
			return time.Time{}, errors.New("database is down")
		}
		return time.Time{}, nil
	})
	startQueue(t, q, vigil.Workers{Deliver: r.deliver})
	r.waitCalls(t, m.ID, 2)
	time.Sleep(300 * time.Millisecond)
	require.Len(t, r.callsFor(m.ID), 2)
}

//nolint:thelper // a group of subtests, not a helper: failures point at their own lines
func testQueueStop(t *testing.T, open OpenQueue) {
	ctx := t.Context()
	s, q := open(t)
	v := queueChain(t, s)
	m := newMessage(v)
	require.NoError(t, s.InsertMessage(ctx, m))

	release := make(chan struct{})
	ctxErr := make(chan error, 1)
	r := newRecorder(func(ctx context.Context, _ string, _ int) (time.Time, error) {
		<-release
		ctxErr <- ctx.Err()
		return time.Time{}, nil
	})
	stop := startQueue(t, q, vigil.Workers{Deliver: r.deliver})
	r.waitCalls(t, m.ID, 1)

	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	select {
	case err := <-stopped:
		t.Fatalf("Run returned (%v) while a delivery was in flight", err)
	case <-time.After(500 * time.Millisecond):
	}
	close(release)
	require.NoError(t, <-ctxErr, "in-flight delivery cancelled on a graceful stop")
	select {
	case err := <-stopped:
		if err != nil {
			require.ErrorIs(t, err, context.Canceled)
		}
	case <-time.After(stopWait):
		t.Fatal("Run did not return after the in-flight delivery finished")
	}

	// The finished delivery was recorded as such: a new Run does not
	// repeat it.
	r2 := newRecorder(nil)
	other := newMessage(v)
	require.NoError(t, s.InsertMessage(ctx, other))
	startQueue(t, q, vigil.Workers{Deliver: r2.deliver})
	r2.waitCalls(t, other.ID, 1)
	time.Sleep(300 * time.Millisecond)
	require.Empty(t, r2.callsFor(m.ID), "finished message delivered again")
}
