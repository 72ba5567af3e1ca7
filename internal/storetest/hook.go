package storetest

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil"
)

func newHookResult() *vigil.HookResult {
	return &vigil.HookResult{
		TriggerID: newID(),
		Hook:      "registration_after",
		Status:    200,
		Body:      []byte(`{"identity":{"metadata_public":{"vigil":{"verified":false}}}}`),
		CreatedAt: now(),
	}
}

//nolint:thelper // a group of subtests, not a helper: failures point at their own lines
func testHookResult(t *testing.T, open Open) {
	both(t, "PutGet", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		r := newHookResult()
		require.NoError(t, tx.PutHookResult(ctx, r))
		got, err := tx.GetHookResult(ctx, r.TriggerID)
		require.NoError(t, err)
		require.Equal(t, r, got)

		// No body: nil stays nil.
		empty := newHookResult()
		empty.Status = 204
		empty.Body = nil
		require.NoError(t, tx.PutHookResult(ctx, empty))
		got, err = tx.GetHookResult(ctx, empty.TriggerID)
		require.NoError(t, err)
		require.Equal(t, empty, got)
	})

	both(t, "NotFound", open, func(t *testing.T, tx vigil.Tx) {
		_, err := tx.GetHookResult(t.Context(), newID())
		require.ErrorIs(t, err, vigil.ErrNotFound)
	})

	// The first answer stays; the conflict does not spoil the transaction
	// (both commits it).
	both(t, "Conflict", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		r := newHookResult()
		require.NoError(t, tx.PutHookResult(ctx, r))
		other := newHookResult()
		other.TriggerID = r.TriggerID
		other.Status = 400
		other.Body = []byte(`{"messages":[]}`)
		require.ErrorIs(t, tx.PutHookResult(ctx, other), vigil.ErrConflict)
		got, err := tx.GetHookResult(ctx, r.TriggerID)
		require.NoError(t, err)
		require.Equal(t, r, got)
		require.NoError(t, tx.PutHookResult(ctx, newHookResult()), "the Tx is still usable")
	})

	t.Run("RolledBack", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		s := open(t)
		r := newHookResult()
		boom := errors.New("boom")
		require.ErrorIs(t, s.InTx(ctx, func(tx vigil.Tx) error {
			require.NoError(t, tx.PutHookResult(ctx, r))
			return boom
		}), boom)
		_, err := s.GetHookResult(ctx, r.TriggerID)
		require.ErrorIs(t, err, vigil.ErrNotFound)
		require.NoError(t, s.PutHookResult(ctx, r), "the trigger id is free again")
	})

	// Kratos retries one execution at once from several replicas: exactly
	// one Put wins, and every other gets ErrConflict and reads the winner.
	t.Run("ConcurrentPut", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		s := open(t)
		id := newID()
		const n = 8
		puts := make([]*vigil.HookResult, n)
		for i := range puts {
			puts[i] = newHookResult()
			puts[i].TriggerID = id
			puts[i].Body = []byte(`{"put":` + strconv.Itoa(i) + `}`)
		}
		errs := concurrently(n, func(i int) error {
			return inTxOrNot(ctx, s, i, func(tx vigil.Tx) error { return tx.PutHookResult(ctx, puts[i]) })
		})
		winner := soleWinner(t, "puts", n, func(i int) bool {
			if errs[i] != nil {
				require.ErrorIs(t, errs[i], vigil.ErrConflict, "put %d", i)
				return false
			}
			return true
		})
		got, err := s.GetHookResult(ctx, id)
		require.NoError(t, err)
		require.Equal(t, puts[winner], got)
	})

	// Rows may be deleted once older than a day, never sooner: a store
	// that sweeps now and then must have swept by the last of these puts.
	t.Run("KeptForADay", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		s := open(t)
		young := newHookResult()
		young.CreatedAt = now().Add(-23 * time.Hour)
		require.NoError(t, s.PutHookResult(ctx, young))
		require.NoError(t, s.InTx(ctx, func(tx vigil.Tx) error {
			for range 300 {
				if err := tx.PutHookResult(ctx, newHookResult()); err != nil {
					return err
				}
			}
			return nil
		}))
		got, err := s.GetHookResult(ctx, young.TriggerID)
		require.NoError(t, err)
		require.Equal(t, young, got)
	})
}
