package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil"
)

//nolint:thelper // a group of subtests, not a helper: failures point at their own lines
func testLockout(t *testing.T, open Open) {
	both(t, "GetMissing", open, func(t *testing.T, tx vigil.Tx) {
		id := newID()
		got, err := tx.GetLockout(t.Context(), id)
		require.NoError(t, err, "a missing lockout is a zero one, not an error")
		require.Equal(t, &vigil.Lockout{IdentityID: id}, got)
	})

	both(t, "SaveGet", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		at := now()
		l := &vigil.Lockout{IdentityID: newID(), Failures: 5, Level: 2, LockedUntil: new(at.Add(2 * time.Minute)), UpdatedAt: at}
		require.NoError(t, tx.SaveLockout(ctx, l))
		got, err := tx.GetLockout(ctx, l.IdentityID)
		require.NoError(t, err)
		require.Equal(t, l, got)

		// Saving again overwrites every field.
		l2 := &vigil.Lockout{IdentityID: l.IdentityID, HardLocked: true, UpdatedAt: at.Add(time.Second)}
		require.NoError(t, tx.SaveLockout(ctx, l2))
		got, err = tx.GetLockout(ctx, l.IdentityID)
		require.NoError(t, err)
		require.Equal(t, l2, got)
	})

	both(t, "AddFailure", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		id := newID()
		at := now()
		got, err := tx.AddFailure(ctx, id, at)
		require.NoError(t, err)
		require.Equal(t, &vigil.Lockout{IdentityID: id, Failures: 1, UpdatedAt: at}, got)

		got, err = tx.AddFailure(ctx, id, at.Add(time.Second))
		require.NoError(t, err)
		require.Equal(t, &vigil.Lockout{IdentityID: id, Failures: 2, UpdatedAt: at.Add(time.Second)}, got)

		// It keeps the rest of the row.
		l := &vigil.Lockout{IdentityID: id, Failures: 4, Level: 1, LockedUntil: new(at.Add(time.Minute)), UpdatedAt: at}
		require.NoError(t, tx.SaveLockout(ctx, l))
		got, err = tx.AddFailure(ctx, id, at.Add(2*time.Second))
		require.NoError(t, err)
		require.Equal(t, &vigil.Lockout{IdentityID: id, Failures: 5, Level: 1, LockedUntil: l.LockedUntil, UpdatedAt: at.Add(2 * time.Second)}, got)

		stored, err := tx.GetLockout(ctx, id)
		require.NoError(t, err)
		require.Equal(t, got, stored)
	})

	t.Run("AddFailureConcurrent", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		s := open(t)
		id := newID()
		const n = 50
		counts := make([]int, n)
		errs := concurrently(n, func(i int) error {
			return inTxOrNot(ctx, s, i, func(tx vigil.Tx) error {
				l, err := tx.AddFailure(ctx, id, now())
				if err == nil {
					counts[i] = l.Failures
				}
				return err
			})
		})
		for _, err := range errs {
			require.NoError(t, err)
		}
		slices.Sort(counts)
		for i, c := range counts {
			require.Equal(t, i+1, c, "every failure counted once")
		}
	})
}

//nolint:thelper // a group of subtests, not a helper: failures point at their own lines
func testHit(t *testing.T, open Open) {
	both(t, "Counts", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		window := now().Truncate(time.Minute)
		expire := window.Add(-time.Hour)
		key := "dest:" + newID()
		for want := 1; want <= 3; want++ {
			got, err := tx.Hit(ctx, key, window, expire)
			require.NoError(t, err)
			require.Equal(t, want, got)
		}
		got, err := tx.Hit(ctx, key, window.Add(time.Minute), expire)
		require.NoError(t, err)
		require.Equal(t, 1, got, "next window starts over")
		got, err = tx.Hit(ctx, "ip:"+newID(), window, expire)
		require.NoError(t, err)
		require.Equal(t, 1, got, "other key")
	})

	both(t, "Sum", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		base := now().Truncate(10 * time.Minute)
		expire := base.Add(-24 * time.Hour)
		key := "sent:" + newID()
		for i, n := range []int{2, 3, 4} {
			for range n {
				_, err := tx.Hit(ctx, key, base.Add(time.Duration(i-2)*10*time.Minute), expire)
				require.NoError(t, err)
			}
		}
		_, err := tx.Hit(ctx, "other:"+newID(), base, expire)
		require.NoError(t, err)
		for _, tc := range []struct {
			since time.Time
			want  int
		}{
			{base.Add(-time.Hour), 9},
			{base.Add(-20 * time.Minute), 9},
			{base.Add(-10 * time.Minute), 7},
			{base.Add(-time.Minute), 4},
			{base.Add(time.Minute), 0},
		} {
			got, err := tx.SumHits(ctx, key, tc.since)
			require.NoError(t, err)
			require.Equal(t, tc.want, got, "since %v", tc.since.Sub(base))
		}
		got, err := tx.SumHits(ctx, "none:"+newID(), expire)
		require.NoError(t, err)
		require.Zero(t, got)
	})

	both(t, "ExpireIsACutoff", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		window := now().Truncate(time.Minute)
		cutoff := window.Add(-time.Hour)
		hour := "hour:" + newID()
		old := window.Add(-30 * time.Minute)
		got, err := tx.Hit(ctx, hour, old, cutoff)
		require.NoError(t, err)
		require.Equal(t, 1, got)

		// Many hits give the store every chance to clean up; nothing
		// that starts at or after the cutoff may go.
		key := "min:" + newID()
		for want := 1; want <= 100; want++ {
			got, err := tx.Hit(ctx, key, window, cutoff)
			require.NoError(t, err)
			require.Equal(t, want, got)
			got, err = tx.Hit(ctx, "stale:"+newID(), cutoff.Add(-time.Duration(want)*time.Minute), cutoff)
			require.NoError(t, err)
			require.Equal(t, 1, got)
		}
		got, err = tx.Hit(ctx, hour, old, cutoff)
		require.NoError(t, err)
		require.Equal(t, 2, got)
		got, err = tx.Hit(ctx, "edge:"+newID(), cutoff, cutoff)
		require.NoError(t, err)
		require.Equal(t, 1, got)
	})

	t.Run("Concurrent", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		s := open(t)
		window := now().Truncate(time.Minute)
		key := "ip:" + newID()
		const n = 50
		counts := make([]int, n)
		errs := concurrently(n, func(i int) error {
			return inTxOrNot(ctx, s, i, func(tx vigil.Tx) error {
				c, err := tx.Hit(ctx, key, window, window.Add(-time.Hour))
				counts[i] = c
				return err
			})
		})
		for _, err := range errs {
			require.NoError(t, err)
		}
		slices.Sort(counts)
		for i, c := range counts {
			require.Equal(t, i+1, c, "every hit counted once")
		}
	})
}
