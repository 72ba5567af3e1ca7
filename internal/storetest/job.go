package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil"
)

const jobKind = "sync_identity"

func newJob() *vigil.Job {
	return &vigil.Job{
		ID:      newID(),
		Kind:    jobKind,
		Payload: []byte(`{"identity_id":"` + newID() + `","attempt":1}`),
		RunAt:   now(),
	}
}

// requireJob checks that the job a worker got is the one inserted. The
// payload is compared as JSON: a store may keep it as JSON rather than as
// bytes (PostgreSQL's jsonb reorders keys).
func requireJob(t *testing.T, want, got *vigil.Job) {
	t.Helper()
	require.NotNil(t, got)
	require.Equal(t, want.ID, got.ID)
	require.Equal(t, want.Kind, got.Kind)
	if len(want.Payload) == 0 {
		require.Empty(t, got.Payload)
	} else {
		require.JSONEq(t, string(want.Payload), string(got.Payload))
	}
	require.Equal(t, time.UTC, got.RunAt.Location())
}

//nolint:thelper // a group of subtests, not a helper: failures point at their own lines
func testJobRuns(t *testing.T, open OpenQueue) {
	ctx := t.Context()
	s, q := open(t)
	v := queueChain(t, s)

	// Committed before Run starts: inside a transaction, together with a
	// message as the core does, and on its own.
	inTx := newJob()
	withMsg := newMessage(v)
	require.NoError(t, s.InTx(ctx, func(tx vigil.Tx) error {
		if err := tx.InsertMessage(ctx, withMsg); err != nil {
			return err
		}
		return tx.InsertJob(ctx, inTx)
	}))
	// No ID and no RunAt: the store fills the ID in, and runs it now.
	alone := &vigil.Job{Kind: "other_kind", Payload: []byte(`{"b": [1, 2], "a": {"c": null}}`)}
	require.NoError(t, s.InsertJob(ctx, alone))
	require.NotEmpty(t, alone.ID, "ID filled in")
	bare := &vigil.Job{ID: newID(), Kind: jobKind} // no payload
	require.NoError(t, s.InsertJob(ctx, bare))

	r := newRecorder(nil)
	startQueue(t, q, r.workers())
	r.waitCalls(t, withMsg.ID, 1)
	for _, j := range []*vigil.Job{inTx, alone, bare} {
		requireJob(t, j, r.waitCalls(t, j.ID, 1)[0].job)
	}
	require.WithinDuration(t, inTx.RunAt, r.callsFor(inTx.ID)[0].job.RunAt, time.Second)

	// And committed while Run is working.
	later := newJob()
	require.NoError(t, s.InTx(ctx, func(tx vigil.Tx) error { return tx.InsertJob(ctx, later) }))
	requireJob(t, later, r.waitCalls(t, later.ID, 1)[0].job)

	// Finished jobs do not run again.
	time.Sleep(300 * time.Millisecond)
	for _, j := range []*vigil.Job{inTx, alone, bare, later} {
		require.Len(t, r.callsFor(j.ID), 1, "job %s run once", j.ID)
	}
}

//nolint:thelper // a group of subtests, not a helper: failures point at their own lines
func testJobRolledBack(t *testing.T, open OpenQueue) {
	ctx := t.Context()
	s, q := open(t)

	boom := errors.New("boom")
	lost := newJob()
	err := s.InTx(ctx, func(tx vigil.Tx) error {
		if err := tx.InsertJob(ctx, lost); err != nil {
			return err
		}
		return boom
	})
	require.ErrorIs(t, err, boom)

	// Once a job committed after the rolled-back one has run, the other
	// would have too if it had survived.
	kept := newJob()
	require.NoError(t, s.InTx(ctx, func(tx vigil.Tx) error { return tx.InsertJob(ctx, kept) }))

	r := newRecorder(nil)
	startQueue(t, q, r.workers())
	r.waitCalls(t, kept.ID, 1)
	time.Sleep(500 * time.Millisecond)
	require.Empty(t, r.callsFor(lost.ID), "rolled-back job ran")
}

//nolint:thelper // a group of subtests, not a helper: failures point at their own lines
func testJobScheduled(t *testing.T, open OpenQueue) {
	ctx := t.Context()
	s, q := open(t)

	const delay = 1500 * time.Millisecond
	j := newJob()
	j.RunAt = time.Now().Add(delay).UTC().Truncate(time.Microsecond)
	require.NoError(t, s.InsertJob(ctx, j))

	r := newRecorder(nil)
	startQueue(t, q, r.workers())
	calls := r.waitCalls(t, j.ID, 1)
	require.False(t, calls[0].at.Before(j.RunAt.Add(-100*time.Millisecond)),
		"ran %s before RunAt", j.RunAt.Sub(calls[0].at))
}

//nolint:thelper // a group of subtests, not a helper: failures point at their own lines
func testJobRetryAt(t *testing.T, open OpenQueue) {
	ctx := t.Context()
	s, q := open(t)
	j := newJob()
	require.NoError(t, s.InsertJob(ctx, j))

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
	startQueue(t, q, r.workers())
	calls := r.waitCalls(t, j.ID, 2)
	retryAt := <-asked
	require.False(t, calls[1].at.Before(retryAt.Add(-100*time.Millisecond)),
		"second run %s before retryAt", retryAt.Sub(calls[1].at))
	requireJob(t, j, calls[1].job)

	// A zero retryAt finishes the job.
	time.Sleep(500 * time.Millisecond)
	require.Len(t, r.callsFor(j.ID), 2)
}

//nolint:thelper // a group of subtests, not a helper: failures point at their own lines
func testJobError(t *testing.T, open OpenQueue) {
	ctx := t.Context()
	s, q := open(t)
	j := newJob()
	require.NoError(t, s.InsertJob(ctx, j))

	r := newRecorder(func(_ context.Context, _ string, n int) (time.Time, error) {
		if n == 1 {
			return time.Time{}, errors.New("identity provider is down")
		}
		return time.Time{}, nil
	})
	startQueue(t, q, r.workers())
	calls := r.waitCalls(t, j.ID, 2)
	requireJob(t, j, calls[1].job)
	time.Sleep(300 * time.Millisecond)
	require.Len(t, r.callsFor(j.ID), 2)
}

// A Run given only one of the functions leaves the other kind of job for
// a Run that has it.
//
//nolint:thelper // a group of subtests, not a helper: failures point at their own lines
func testQueueNilWorker(t *testing.T, open OpenQueue) {
	ctx := t.Context()
	s, q := open(t)
	v := queueChain(t, s)
	j := newJob()
	require.NoError(t, s.InsertJob(ctx, j))
	m := newMessage(v)
	require.NoError(t, s.InsertMessage(ctx, m))

	stopped := func(err error) {
		t.Helper()
		if err != nil {
			require.ErrorIs(t, err, context.Canceled)
		}
	}

	// Deliveries only: the message is delivered, the job waits.
	r1 := newRecorder(nil)
	stop := startQueue(t, q, vigil.Workers{Deliver: r1.deliver})
	r1.waitCalls(t, m.ID, 1)
	time.Sleep(300 * time.Millisecond)
	stopped(stop())

	// Jobs only: the job runs, a new message waits.
	m2 := newMessage(v)
	require.NoError(t, s.InsertMessage(ctx, m2))
	r2 := newRecorder(nil)
	stop = startQueue(t, q, vigil.Workers{Job: r2.job})
	requireJob(t, j, r2.waitCalls(t, j.ID, 1)[0].job)
	time.Sleep(300 * time.Millisecond)
	stopped(stop())

	// Both: the message that waited is delivered; nothing finished runs
	// again.
	r3 := newRecorder(nil)
	startQueue(t, q, r3.workers())
	r3.waitCalls(t, m2.ID, 1)
	time.Sleep(300 * time.Millisecond)
	require.Empty(t, r3.callsFor(m.ID))
	require.Empty(t, r3.callsFor(j.ID))
}

//nolint:thelper // a group of subtests, not a helper: failures point at their own lines
func testInsertJob(t *testing.T, open Open) {
	// What a worker could not run is refused at once, in both stores
	// alike, rather than failing on every try later.
	both(t, "RefusesBadJobs", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		for _, tc := range []struct {
			name string
			job  *vigil.Job
		}{
			{"no kind", &vigil.Job{ID: newID(), Payload: []byte(`{}`)}},
			{"payload not JSON", &vigil.Job{ID: newID(), Kind: jobKind, Payload: []byte(`{"a":`)}},
		} {
			require.Error(t, tx.InsertJob(ctx, tc.job), tc.name)
		}
		// The Tx is still usable.
		require.NoError(t, tx.InsertJob(ctx, newJob()))
	})
}
