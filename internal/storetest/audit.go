package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil"
)

// requireChain checks that events are seqs 1..n, each linked to the one
// before, each Hash reproducible from the row as read, and that the head
// names the last.
func requireChain(t *testing.T, tx vigil.Tx, events []*vigil.AuditEvent) {
	t.Helper()
	var prev []byte
	for i, e := range events {
		require.Equal(t, int64(i+1), e.Seq, "seq")
		require.Equal(t, prev, e.PrevHash, "prev hash of seq %d", e.Seq)
		require.Equal(t, testSeal(e.PrevHash, e), e.Hash, "hash of seq %d re-sealed as read", e.Seq)
		prev = e.Hash
	}
	seq, hash, err := tx.AuditHead(t.Context())
	require.NoError(t, err)
	require.Equal(t, int64(len(events)), seq)
	require.Equal(t, prev, hash)
}

//nolint:thelper // a group of subtests, not a helper: failures point at their own lines
func testAudit(t *testing.T, open Open) {
	both(t, "Empty", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		seq, hash, err := tx.AuditHead(ctx)
		require.NoError(t, err)
		require.Zero(t, seq)
		require.Nil(t, hash)
		got, err := tx.ListAudit(ctx, vigil.AuditFilter{})
		require.NoError(t, err)
		require.Empty(t, got)
	})

	both(t, "AppendList", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		identity := newID()
		var sealed []int64
		seal := func(prev []byte, e *vigil.AuditEvent) []byte {
			sealed = append(sealed, e.Seq) // seq is set before sealing
			return testSeal(prev, e)
		}
		e1 := newEvent(identity)
		e2 := newEvent(newID())
		e2.Type = vigil.EventVerificationFailed
		e2.VerificationID = newID()
		e2.Data = nil
		e3 := newEvent(identity)
		e3.Type = vigil.EventIdentityUnlocked
		e3.Actor = "admin"
		e3.Data = map[string]string{"reason": "support ticket 42", "quote": `"x" \ y`}
		for _, e := range []*vigil.AuditEvent{e1, e2, e3} {
			require.NoError(t, tx.AppendAudit(ctx, e, seal))
		}
		require.Equal(t, []int64{1, 2, 3}, sealed)
		require.Equal(t, int64(3), e3.Seq)
		require.Equal(t, e2.Hash, e3.PrevHash)

		all, err := tx.ListAudit(ctx, vigil.AuditFilter{})
		require.NoError(t, err)
		require.Len(t, all, 3)
		requireChain(t, tx, all)
		require.Equal(t, e1, all[0])
		require.Empty(t, all[1].Data, "nil data reads back empty")
		all[1].Data = nil
		require.Equal(t, e2, all[1])
		require.Equal(t, e3, all[2])

		got, err := tx.ListAudit(ctx, vigil.AuditFilter{IdentityID: identity})
		require.NoError(t, err)
		require.Equal(t, []*vigil.AuditEvent{e1, e3}, got)

		got, err = tx.ListAudit(ctx, vigil.AuditFilter{AfterSeq: 1})
		require.NoError(t, err)
		require.Equal(t, []int64{2, 3}, seqs(got))

		got, err = tx.ListAudit(ctx, vigil.AuditFilter{AfterSeq: 1, Limit: 1})
		require.NoError(t, err)
		require.Equal(t, []int64{2}, seqs(got))

		got, err = tx.ListAudit(ctx, vigil.AuditFilter{IdentityID: identity, AfterSeq: 1})
		require.NoError(t, err)
		require.Equal(t, []int64{3}, seqs(got))

		got, err = tx.ListAudit(ctx, vigil.AuditFilter{AfterSeq: 3})
		require.NoError(t, err)
		require.Empty(t, got)
	})

	both(t, "SealsWhatItStores", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		// Nanoseconds the store may not keep: it must seal what it keeps,
		// or the chain breaks on the first verify.
		e := newEvent(newID())
		e.At = time.Date(2031, 3, 4, 5, 6, 7, 123456789, time.FixedZone("CET", 3600))
		require.NoError(t, tx.AppendAudit(ctx, e, testSeal))
		got, err := tx.ListAudit(ctx, vigil.AuditFilter{})
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.Equal(t, time.UTC, got[0].At.Location())
		require.WithinDuration(t, e.At, got[0].At, time.Microsecond)
		requireChain(t, tx, got)
	})

	t.Run("Concurrent", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		s := open(t)
		const n = 20
		errs := concurrently(n, func(i int) error {
			return inTxOrNot(ctx, s, i, func(tx vigil.Tx) error {
				return tx.AppendAudit(ctx, newEvent(newID()), testSeal)
			})
		})
		for _, err := range errs {
			require.NoError(t, err)
		}
		all, err := s.ListAudit(ctx, vigil.AuditFilter{})
		require.NoError(t, err)
		require.Len(t, all, n)
		requireChain(t, s, all)
	})

	t.Run("ConcurrentWithOtherWork", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		s := open(t)
		// Appends that share a transaction with other writes, as the
		// core's do.
		const n = 20
		errs := concurrently(n, func(int) error {
			return s.InTx(ctx, func(tx vigil.Tx) error {
				id := newID()
				if err := tx.AppendAudit(ctx, newEvent(id), testSeal); err != nil {
					return err
				}
				if _, err := tx.AddFailure(ctx, id, now()); err != nil {
					return err
				}
				return tx.AppendAudit(ctx, newEvent(id), testSeal)
			})
		})
		for _, err := range errs {
			require.NoError(t, err)
		}
		all, err := s.ListAudit(ctx, vigil.AuditFilter{})
		require.NoError(t, err)
		require.Len(t, all, 2*n)
		requireChain(t, s, all)
	})

	both(t, "DuplicateID", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		e := newEvent(newID())
		require.NoError(t, tx.AppendAudit(ctx, e, testSeal))
		dup := newEvent(newID())
		dup.ID = e.ID
		require.ErrorIs(t, tx.AppendAudit(ctx, dup, testSeal), vigil.ErrConflict)

		// The chain goes on unbroken.
		require.NoError(t, tx.AppendAudit(ctx, newEvent(newID()), testSeal))
		all, err := tx.ListAudit(ctx, vigil.AuditFilter{})
		require.NoError(t, err)
		requireChain(t, tx, all)
	})
}

func seqs(events []*vigil.AuditEvent) []int64 {
	out := make([]int64, len(events))
	for i, e := range events {
		out[i] = e.Seq
	}
	return out
}
