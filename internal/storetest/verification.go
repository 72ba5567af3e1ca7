package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil"
)

//nolint:thelper // a group of subtests, not a helper: failures point at their own lines
func testVerification(t *testing.T, open Open) {
	// insert stores an address and a verification of it.
	insert := func(t *testing.T, tx vigil.Tx, identityID string) (*vigil.Address, *vigil.Verification) {
		t.Helper()
		a := newAddress(identityID, vigil.ChannelEmail)
		require.NoError(t, tx.InsertAddress(t.Context(), a))
		v := newVerification(a)
		require.NoError(t, tx.InsertVerification(t.Context(), v))
		return a, v
	}

	both(t, "InsertGet", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		a, v := insert(t, tx, newID())
		got, err := tx.GetVerification(ctx, v.ID)
		require.NoError(t, err)
		require.Equal(t, v, got)

		// Optional fields absent.
		bare := newVerification(a)
		bare.Method = vigil.MethodLink
		bare.Purpose = vigil.PurposeLoginStepUp
		bare.LastSentAt = nil
		bare.SendCount = 0
		require.NoError(t, tx.InsertVerification(ctx, bare))
		got, err = tx.GetVerification(ctx, bare.ID)
		require.NoError(t, err)
		require.Equal(t, bare, got)

		// All optional fields present.
		full := newVerification(a)
		full.State = vigil.StateVerified
		full.VerifiedAt = new(now())
		full.Attempts = 2
		full.Generation = 7
		require.NoError(t, tx.InsertVerification(ctx, full))
		got, err = tx.GetVerification(ctx, full.ID)
		require.NoError(t, err)
		require.Equal(t, full, got)
	})

	both(t, "GetMissing", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		_, err := tx.GetVerification(ctx, newID())
		require.ErrorIs(t, err, vigil.ErrNotFound)
		_, err = tx.GetVerificationForUpdate(ctx, newID())
		require.ErrorIs(t, err, vigil.ErrNotFound)
		_, err = tx.FindVerificationBySecret(ctx, randBytes(32))
		require.ErrorIs(t, err, vigil.ErrNotFound)
		_, err = tx.FindOpenVerification(ctx, newID(), vigil.PurposeVerifyAddress)
		require.ErrorIs(t, err, vigil.ErrNotFound)
	})

	both(t, "InsertConflict", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		a, v := insert(t, tx, newID())
		dup := newVerification(a)
		dup.ID = v.ID
		require.ErrorIs(t, tx.InsertVerification(ctx, dup), vigil.ErrConflict)
		got, err := tx.GetVerification(ctx, v.ID)
		require.NoError(t, err)
		require.Equal(t, v, got)
	})

	both(t, "GetForUpdate", open, func(t *testing.T, tx vigil.Tx) {
		_, v := insert(t, tx, newID())
		got, err := tx.GetVerificationForUpdate(t.Context(), v.ID)
		require.NoError(t, err)
		require.Equal(t, v, got)
	})

	t.Run("GetForUpdateSerializes", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		s := open(t)
		_, v := insert(t, s, newID())

		// Read-modify-write under the row lock loses no update.
		const n = 10
		errs := concurrently(n, func(int) error {
			return s.InTx(ctx, func(tx vigil.Tx) error {
				cur, err := tx.GetVerificationForUpdate(ctx, v.ID)
				if err != nil {
					return err
				}
				cur.SendCount++
				return tx.UpdateVerification(ctx, cur)
			})
		})
		for _, err := range errs {
			require.NoError(t, err)
		}
		got, err := s.GetVerification(ctx, v.ID)
		require.NoError(t, err)
		require.Equal(t, v.SendCount+n, got.SendCount)
	})

	both(t, "FindOpenVerification", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		a := newAddress(newID(), vigil.ChannelEmail)
		require.NoError(t, tx.InsertAddress(ctx, a))
		base := now()
		at := func(v *vigil.Verification, d time.Duration) *vigil.Verification {
			v.CreatedAt = base.Add(d)
			v.UpdatedAt = v.CreatedAt
			return v
		}
		older := at(newVerification(a), -3*time.Minute)
		newer := at(newVerification(a), -2*time.Minute)
		newer.State = vigil.StateLocked
		stepUp := at(newVerification(a), -time.Minute)
		stepUp.Purpose = vigil.PurposeLoginStepUp
		done := at(newVerification(a), 0)
		done.State = vigil.StateVerified
		done.VerifiedAt = new(base)
		for _, v := range []*vigil.Verification{older, newer, stepUp, done} {
			require.NoError(t, tx.InsertVerification(ctx, v))
		}

		// The newest that is not verified, of the purpose asked for.
		got, err := tx.FindOpenVerification(ctx, a.ID, vigil.PurposeVerifyAddress)
		require.NoError(t, err)
		require.Equal(t, newer, got)
		got, err = tx.FindOpenVerification(ctx, a.ID, vigil.PurposeLoginStepUp)
		require.NoError(t, err)
		require.Equal(t, stepUp, got)

		b := newAddress(a.IdentityID, vigil.ChannelSMS)
		require.NoError(t, tx.InsertAddress(ctx, b))
		verified := newVerification(b)
		verified.State = vigil.StateVerified
		require.NoError(t, tx.InsertVerification(ctx, verified))
		_, err = tx.FindOpenVerification(ctx, b.ID, vigil.PurposeVerifyAddress)
		require.ErrorIs(t, err, vigil.ErrNotFound)
	})

	both(t, "FindVerificationBySecret", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		a, v := insert(t, tx, newID())
		other := newVerification(a)
		require.NoError(t, tx.InsertVerification(ctx, other))

		got, err := tx.FindVerificationBySecret(ctx, v.SecretHash)
		require.NoError(t, err)
		require.Equal(t, v, got)
	})

	both(t, "ListVerifications", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		identity := newID()
		a, v1 := insert(t, tx, identity)
		v2 := newVerification(a)
		require.NoError(t, tx.InsertVerification(ctx, v2))
		insert(t, tx, newID())

		got, err := tx.ListVerifications(ctx, identity)
		require.NoError(t, err)
		require.ElementsMatch(t, []*vigil.Verification{v1, v2}, got)

		got, err = tx.ListVerifications(ctx, newID())
		require.NoError(t, err)
		require.Empty(t, got)
	})

	both(t, "UpdateVerification", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		_, v := insert(t, tx, newID())
		later := now().Add(time.Minute)
		v.State = vigil.StateVerified
		v.SecretHash = randBytes(32)
		v.Generation = 2
		v.Attempts = 1
		v.ExpiresAt = later.Add(10 * time.Minute)
		v.LastSentAt = new(later)
		v.SendCount = 2
		v.VerifiedAt = new(later)
		v.UpdatedAt = later
		require.NoError(t, tx.UpdateVerification(ctx, v))
		got, err := tx.GetVerification(ctx, v.ID)
		require.NoError(t, err)
		require.Equal(t, v, got)

		// And back to absent.
		v.LastSentAt = nil
		v.VerifiedAt = nil
		v.State = vigil.StatePending
		require.NoError(t, tx.UpdateVerification(ctx, v))
		got, err = tx.GetVerification(ctx, v.ID)
		require.NoError(t, err)
		require.Equal(t, v, got)

		missing := *v
		missing.ID = newID()
		require.ErrorIs(t, tx.UpdateVerification(ctx, &missing), vigil.ErrNotFound)
	})

	both(t, "FlowID", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		a := newAddress(newID(), vigil.ChannelSMS)
		require.NoError(t, tx.InsertAddress(ctx, a))
		v := newVerification(a)
		v.Purpose = vigil.PurposeLoginStepUp
		v.FlowID = newID()
		require.NoError(t, tx.InsertVerification(ctx, v))
		got, err := tx.GetVerification(ctx, v.ID)
		require.NoError(t, err)
		require.Equal(t, v, got)

		// The gate reuses the verification for a new flow.
		v.FlowID = newID()
		v.UpdatedAt = now().Add(time.Second)
		require.NoError(t, tx.UpdateVerification(ctx, v))
		for _, read := range []func() (*vigil.Verification, error){
			func() (*vigil.Verification, error) { return tx.GetVerification(ctx, v.ID) },
			func() (*vigil.Verification, error) { return tx.GetVerificationForUpdate(ctx, v.ID) },
			func() (*vigil.Verification, error) { return tx.FindOpenVerification(ctx, a.ID, v.Purpose) },
			func() (*vigil.Verification, error) { return tx.FindVerificationBySecret(ctx, v.SecretHash) },
			func() (*vigil.Verification, error) {
				l, err := tx.ListVerifications(ctx, v.IdentityID)
				if len(l) != 1 {
					return nil, err
				}
				return l[0], err
			},
		} {
			got, err = read()
			require.NoError(t, err)
			require.Equal(t, v, got)
		}
		got, err = tx.CountAttempt(ctx, v.ID, now())
		require.NoError(t, err)
		require.Equal(t, v.FlowID, got.FlowID)

		// And back to none.
		v.FlowID = ""
		require.NoError(t, tx.UpdateVerification(ctx, v))
		got, err = tx.GetVerification(ctx, v.ID)
		require.NoError(t, err)
		require.Empty(t, got.FlowID)
	})

	both(t, "BindFlow", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		_, v := insert(t, tx, newID())
		flow, other := newID(), newID()
		ok, err := tx.BindFlow(ctx, v.ID, flow)
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = tx.BindFlow(ctx, v.ID, other)
		require.NoError(t, err)
		require.False(t, ok, "a verification bound to a flow stays bound to it")
		got, err := tx.GetVerification(ctx, v.ID)
		require.NoError(t, err)
		require.Equal(t, flow, got.FlowID)
		require.Equal(t, v.Attempts, got.Attempts)
		ok, err = tx.BindFlow(ctx, newID(), flow)
		require.NoError(t, err)
		require.False(t, ok)
	})

	both(t, "FindPassedForFlow", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		identity, flow := newID(), newID()
		a := newAddress(identity, vigil.ChannelSMS)
		require.NoError(t, tx.InsertAddress(ctx, a))
		base := now()
		since := base.Add(-10 * time.Minute)
		// passed is a verification of a for flow, created at created and
		// verified at verified.
		passed := func(a *vigil.Address, flow string, created, verified time.Time) *vigil.Verification {
			v := newVerification(a)
			v.Purpose = vigil.PurposeLoginStepUp
			v.FlowID = flow
			v.State = vigil.StateVerified
			v.CreatedAt, v.UpdatedAt = created, verified
			v.VerifiedAt = new(verified)
			require.NoError(t, tx.InsertVerification(ctx, v))
			return v
		}

		_, err := tx.FindPassedForFlow(ctx, identity, flow, since)
		require.ErrorIs(t, err, vigil.ErrNotFound, "nothing yet")

		// Not verified: no pass, whatever its verified_at says.
		pending := newVerification(a)
		pending.Purpose = vigil.PurposeLoginStepUp
		pending.FlowID = flow
		require.NoError(t, tx.InsertVerification(ctx, pending))
		locked := newVerification(a)
		locked.FlowID, locked.State, locked.VerifiedAt = flow, vigil.StateLocked, new(base)
		require.NoError(t, tx.InsertVerification(ctx, locked))
		// Passed before since, for another flow, by another identity, or
		// outside any flow.
		passed(a, flow, since.Add(-time.Hour), since.Add(-time.Microsecond))
		passed(a, newID(), base, base)
		b := newAddress(newID(), vigil.ChannelSMS)
		require.NoError(t, tx.InsertAddress(ctx, b))
		passed(b, flow, base, base)
		passed(a, "", base, base)
		_, err = tx.FindPassedForFlow(ctx, identity, flow, since)
		require.ErrorIs(t, err, vigil.ErrNotFound)

		// An empty flow id is no flow: it finds nothing, not the
		// verification made outside any flow.
		_, err = tx.FindPassedForFlow(ctx, identity, "", since)
		require.ErrorIs(t, err, vigil.ErrNotFound)

		// At since counts; the newest wins.
		atSince := passed(a, flow, since.Add(-time.Minute), since)
		got, err := tx.FindPassedForFlow(ctx, identity, flow, since)
		require.NoError(t, err)
		require.Equal(t, atSince, got)
		newest := passed(a, flow, base.Add(-2*time.Minute), base.Add(-time.Minute))
		passed(a, flow, base.Add(-5*time.Minute), base.Add(-4*time.Minute))
		got, err = tx.FindPassedForFlow(ctx, identity, flow, since)
		require.NoError(t, err)
		require.Equal(t, newest, got)

		// A later since leaves only what passed after it.
		_, err = tx.FindPassedForFlow(ctx, identity, flow, base)
		require.ErrorIs(t, err, vigil.ErrNotFound)
	})

	both(t, "CountAttempt", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		a, v := insert(t, tx, newID())
		at := now()

		for i := 1; i <= v.MaxAttempts; i++ {
			got, err := tx.CountAttempt(ctx, v.ID, at)
			require.NoError(t, err)
			require.Equal(t, i, got.Attempts)
			require.Equal(t, v.ID, got.ID)
			require.Equal(t, v.SecretHash, got.SecretHash)
			require.Equal(t, vigil.StatePending, got.State)
		}
		// At the maximum: no more.
		_, err := tx.CountAttempt(ctx, v.ID, at)
		require.ErrorIs(t, err, vigil.ErrNotFound)
		got, err := tx.GetVerification(ctx, v.ID)
		require.NoError(t, err)
		require.Equal(t, v.MaxAttempts, got.Attempts)

		// Expired: not counted, at or after ExpiresAt.
		expired := newVerification(a)
		require.NoError(t, tx.InsertVerification(ctx, expired))
		_, err = tx.CountAttempt(ctx, expired.ID, expired.ExpiresAt)
		require.ErrorIs(t, err, vigil.ErrNotFound)
		_, err = tx.CountAttempt(ctx, expired.ID, expired.ExpiresAt.Add(time.Second))
		require.ErrorIs(t, err, vigil.ErrNotFound)
		got, err = tx.CountAttempt(ctx, expired.ID, expired.ExpiresAt.Add(-time.Microsecond))
		require.NoError(t, err)
		require.Equal(t, 1, got.Attempts)

		// Not pending: not counted.
		for _, st := range []vigil.State{vigil.StateVerified, vigil.StateExpired, vigil.StateLocked} {
			other := newVerification(a)
			other.State = st
			require.NoError(t, tx.InsertVerification(ctx, other))
			_, err = tx.CountAttempt(ctx, other.ID, at)
			require.ErrorIs(t, err, vigil.ErrNotFound, "state %s", st)
		}

		_, err = tx.CountAttempt(ctx, newID(), at)
		require.ErrorIs(t, err, vigil.ErrNotFound)
	})

	t.Run("CountAttemptConcurrent", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		s := open(t)
		a := newAddress(newID(), vigil.ChannelEmail)
		require.NoError(t, s.InsertAddress(ctx, a))
		v := newVerification(a)
		v.MaxAttempts = 7
		require.NoError(t, s.InsertVerification(ctx, v))

		const n = 50
		counts := make([]int, n)
		at := now()
		errs := concurrently(n, func(i int) error {
			return inTxOrNot(ctx, s, i, func(tx vigil.Tx) error {
				got, err := tx.CountAttempt(ctx, v.ID, at)
				if err == nil {
					counts[i] = got.Attempts
				}
				return err
			})
		})
		var seen []int
		for i, err := range errs {
			if err != nil {
				require.ErrorIs(t, err, vigil.ErrNotFound)
				continue
			}
			seen = append(seen, counts[i])
		}
		slices.Sort(seen)
		require.Equal(t, []int{1, 2, 3, 4, 5, 6, 7}, seen, "each attempt counted once, never beyond the maximum")
		got, err := s.GetVerification(ctx, v.ID)
		require.NoError(t, err)
		require.Equal(t, 7, got.Attempts)
	})

	both(t, "Consume", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		a, v := insert(t, tx, newID())
		at := now().Add(time.Second)

		ok, err := tx.Consume(ctx, v.ID, v.Generation+1, at)
		require.NoError(t, err)
		require.False(t, ok, "stale generation")

		ok, err = tx.Consume(ctx, v.ID, v.Generation, at)
		require.NoError(t, err)
		require.True(t, ok)
		got, err := tx.GetVerification(ctx, v.ID)
		require.NoError(t, err)
		require.Equal(t, vigil.StateVerified, got.State)
		require.NotNil(t, got.VerifiedAt)
		require.Equal(t, at, *got.VerifiedAt)

		ok, err = tx.Consume(ctx, v.ID, v.Generation, at)
		require.NoError(t, err)
		require.False(t, ok, "second consume")

		locked := newVerification(a)
		locked.State = vigil.StateLocked
		require.NoError(t, tx.InsertVerification(ctx, locked))
		ok, err = tx.Consume(ctx, locked.ID, locked.Generation, at)
		require.NoError(t, err)
		require.False(t, ok, "not pending")

		ok, err = tx.Consume(ctx, newID(), 1, at)
		require.NoError(t, err)
		require.False(t, ok, "missing")
	})

	t.Run("ConsumeConcurrent", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		s := open(t)
		_, v := insert(t, s, newID())

		const n = 50
		won := make([]bool, n)
		errs := concurrently(n, func(i int) error {
			return inTxOrNot(ctx, s, i, func(tx vigil.Tx) error {
				ok, err := tx.Consume(ctx, v.ID, v.Generation, now())
				won[i] = ok
				return err
			})
		})
		wins := 0
		for i, err := range errs {
			require.NoError(t, err)
			if won[i] {
				wins++
			}
		}
		require.Equal(t, 1, wins, "exactly one of %d concurrent consumes succeeds", n)
	})

	both(t, "SetVerificationState", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		_, v := insert(t, tx, newID())
		at := now().Add(time.Second)

		ok, err := tx.SetVerificationState(ctx, v.ID, vigil.StateLocked, vigil.StateExpired, at)
		require.NoError(t, err)
		require.False(t, ok, "wrong from state")

		ok, err = tx.SetVerificationState(ctx, v.ID, vigil.StatePending, vigil.StateExpired, at)
		require.NoError(t, err)
		require.True(t, ok)
		got, err := tx.GetVerification(ctx, v.ID)
		require.NoError(t, err)
		require.Equal(t, vigil.StateExpired, got.State)

		ok, err = tx.SetVerificationState(ctx, v.ID, vigil.StatePending, vigil.StateExpired, at)
		require.NoError(t, err)
		require.False(t, ok, "already moved")

		ok, err = tx.SetVerificationState(ctx, newID(), vigil.StatePending, vigil.StateExpired, at)
		require.NoError(t, err)
		require.False(t, ok, "missing")
	})
}
