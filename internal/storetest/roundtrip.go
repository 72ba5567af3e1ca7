package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil"
)

// allBytes is every byte value, NUL first, so no layer treats the data as
// text.
func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

//nolint:thelper // a group of subtests, not a helper: failures point at their own lines
func testRoundTrip(t *testing.T, open Open) {
	east := time.FixedZone("UTC+5:30", 5*3600+1800)
	west := time.FixedZone("UTC-8", -8*3600)
	times := []time.Time{
		time.Date(2001, 2, 3, 4, 5, 6, 1000, time.UTC),
		time.Date(2031, 12, 31, 23, 59, 59, 999999000, east),
		time.Date(2199, 7, 8, 9, 10, 11, 654321000, west),
		now(),
	}

	both(t, "Times", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		for _, at := range times {
			a := newAddress(newID(), vigil.ChannelEmail)
			a.CreatedAt, a.UpdatedAt, a.VerifiedAt = at, at, new(at)
			require.NoError(t, tx.InsertAddress(ctx, a))
			got, err := tx.GetAddress(ctx, a.ID)
			require.NoError(t, err)
			for _, g := range []time.Time{got.CreatedAt, got.UpdatedAt, *got.VerifiedAt} {
				require.Equal(t, time.UTC, g.Location(), "times come back in UTC")
				require.Equal(t, at.UTC(), g, "exact at microseconds")
			}

			v := newVerification(a)
			v.ExpiresAt, v.LastSentAt, v.VerifiedAt, v.CreatedAt, v.UpdatedAt = at, new(at), new(at), at, at
			require.NoError(t, tx.InsertVerification(ctx, v))
			gotV, err := tx.GetVerification(ctx, v.ID)
			require.NoError(t, err)
			for _, g := range []time.Time{gotV.ExpiresAt, *gotV.LastSentAt, *gotV.VerifiedAt, gotV.CreatedAt, gotV.UpdatedAt} {
				require.Equal(t, at.UTC(), g)
			}

			m := newMessage(v)
			m.NextAttemptAt, m.ExpiresAt, m.SentAt, m.CreatedAt, m.UpdatedAt = at, at, new(at), at, at
			require.NoError(t, tx.InsertMessage(ctx, m))
			gotM, err := tx.GetMessage(ctx, m.ID)
			require.NoError(t, err)
			for _, g := range []time.Time{gotM.NextAttemptAt, gotM.ExpiresAt, *gotM.SentAt, gotM.CreatedAt, gotM.UpdatedAt} {
				require.Equal(t, at.UTC(), g)
			}

			require.NoError(t, tx.InsertMessageAttempt(ctx, &vigil.MessageAttempt{MessageID: m.ID, Attempt: 1, At: at, Outcome: outcomeSent}))
			gotA, err := tx.ListMessageAttempts(ctx, m.ID)
			require.NoError(t, err)
			require.Len(t, gotA, 1)
			require.Equal(t, at.UTC(), gotA[0].At)

			l := &vigil.Lockout{IdentityID: a.IdentityID, LockedUntil: new(at), UpdatedAt: at}
			require.NoError(t, tx.SaveLockout(ctx, l))
			gotL, err := tx.GetLockout(ctx, a.IdentityID)
			require.NoError(t, err)
			require.Equal(t, at.UTC(), *gotL.LockedUntil)
			require.Equal(t, at.UTC(), gotL.UpdatedAt)

			e := newEvent(a.IdentityID)
			e.At = at
			require.NoError(t, tx.AppendAudit(ctx, e, testSeal))
			gotE, err := tx.ListAudit(ctx, vigil.AuditFilter{IdentityID: a.IdentityID})
			require.NoError(t, err)
			require.Len(t, gotE, 1)
			require.Equal(t, at.UTC(), gotE[0].At)
		}
	})

	both(t, "Bytes", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		raw := allBytes()

		a := newAddress(newID(), vigil.ChannelEmail)
		a.Index, a.Sealed = raw, raw
		require.NoError(t, tx.InsertAddress(ctx, a))
		got, err := tx.GetAddress(ctx, a.ID)
		require.NoError(t, err)
		require.Equal(t, raw, got.Index)
		require.Equal(t, raw, got.Sealed)
		found, err := tx.FindAddress(ctx, a.IdentityID, a.Channel, [][]byte{raw})
		require.NoError(t, err)
		require.Equal(t, a.ID, found.ID)

		v := newVerification(a)
		v.SecretHash = raw
		require.NoError(t, tx.InsertVerification(ctx, v))
		gotV, err := tx.FindVerificationBySecret(ctx, raw)
		require.NoError(t, err)
		require.Equal(t, raw, gotV.SecretHash)

		m := newMessage(v)
		m.RecipientIndex, m.RecipientSealed, m.SecretSealed, m.BodySealed = raw, raw, raw, raw
		require.NoError(t, tx.InsertMessage(ctx, m))
		gotM, err := tx.GetMessage(ctx, m.ID)
		require.NoError(t, err)
		require.Equal(t, m, gotM)
		listed, err := tx.ListMessages(ctx, vigil.MessageFilter{RecipientIndexes: [][]byte{raw}})
		require.NoError(t, err)
		require.Equal(t, []*vigil.Message{m}, listed)

		// nil stays nil.
		bare := newMessage(v)
		bare.RecipientSealed, bare.SecretSealed, bare.BodySealed = nil, nil, nil
		require.NoError(t, tx.InsertMessage(ctx, bare))
		gotM, err = tx.GetMessage(ctx, bare.ID)
		require.NoError(t, err)
		require.Nil(t, gotM.RecipientSealed)
		require.Nil(t, gotM.SecretSealed)
		require.Nil(t, gotM.BodySealed)
	})

	both(t, "Text", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		a := newAddress(newID(), vigil.ChannelSMS)
		a.Masked = "+49 151 ****789 — ünïcödé 🙂 'quote' \"dq\" \\ %_"
		require.NoError(t, tx.InsertAddress(ctx, a))
		got, err := tx.GetAddress(ctx, a.ID)
		require.NoError(t, err)
		require.Equal(t, a.Masked, got.Masked)
	})
}
