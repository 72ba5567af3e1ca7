package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil"
)

//nolint:thelper // a group of subtests, not a helper: failures point at their own lines
func testMessage(t *testing.T, open Open) {
	both(t, "InsertGet", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		v, m := chain(t, tx, newID())
		got, err := tx.GetMessage(ctx, m.ID)
		require.NoError(t, err)
		require.Equal(t, m, got)

		full := newMessage(v)
		full.BodySealed = randBytes(200)
		full.Status = vigil.MessageSent
		full.Attempts = 2
		full.LastError = "timeout"
		full.Provider = "smtp"
		full.ProviderID = "<abc@example.com>"
		full.SentAt = new(now())
		full.Country = "DE"
		full.Prefix = "+49151"
		full.Locale = "de-AT"
		require.NoError(t, tx.InsertMessage(ctx, full))
		got, err = tx.GetMessage(ctx, full.ID)
		require.NoError(t, err)
		require.Equal(t, full, got)

		_, err = tx.GetMessage(ctx, newID())
		require.ErrorIs(t, err, vigil.ErrNotFound)
	})

	both(t, "InsertConflict", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		v, m := chain(t, tx, newID())
		dup := newMessage(v)
		dup.ID = m.ID
		require.ErrorIs(t, tx.InsertMessage(ctx, dup), vigil.ErrConflict)
		got, err := tx.GetMessage(ctx, m.ID)
		require.NoError(t, err)
		require.Equal(t, m, got)
	})

	both(t, "UpdateMessage", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		_, m := chain(t, tx, newID())
		later := now().Add(time.Minute)
		m.Status = vigil.MessageRetrying
		m.Attempts = 1
		m.LastError = "connection refused"
		m.NextAttemptAt = later.Add(2 * time.Second)
		m.UpdatedAt = later
		require.NoError(t, tx.UpdateMessage(ctx, m))
		got, err := tx.GetMessage(ctx, m.ID)
		require.NoError(t, err)
		require.Equal(t, m, got)

		m.Status = vigil.MessageSent
		m.Attempts = 2
		m.LastError = ""
		m.Provider = "twilio"
		m.ProviderID = "SM123"
		m.SentAt = new(later.Add(3 * time.Second))
		require.NoError(t, tx.UpdateMessage(ctx, m))
		got, err = tx.GetMessage(ctx, m.ID)
		require.NoError(t, err)
		require.Equal(t, m, got)

		missing := *m
		missing.ID = newID()
		require.ErrorIs(t, tx.UpdateMessage(ctx, &missing), vigil.ErrNotFound)
	})

	both(t, "ListMessages", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		identity := newID()
		v, m0 := chain(t, tx, identity)
		base := m0.CreatedAt
		add := func(v *vigil.Verification, d time.Duration, index []byte) *vigil.Message {
			m := newMessage(v)
			m.CreatedAt = base.Add(d)
			m.UpdatedAt = m.CreatedAt
			if index != nil {
				m.RecipientIndex = index
			}
			require.NoError(t, tx.InsertMessage(ctx, m))
			return m
		}
		m1 := add(v, time.Second, m0.RecipientIndex)
		m2 := add(v, 2*time.Second, nil)
		oa := newAddress(newID(), vigil.ChannelSMS)
		require.NoError(t, tx.InsertAddress(ctx, oa))
		ov := newVerification(oa)
		require.NoError(t, tx.InsertVerification(ctx, ov))
		om := add(ov, -time.Second, nil)
		o1 := add(ov, 3*time.Second, m0.RecipientIndex)

		got, err := tx.ListMessages(ctx, vigil.MessageFilter{IdentityID: identity})
		require.NoError(t, err)
		require.Equal(t, []*vigil.Message{m2, m1, m0}, got, "newest first")

		got, err = tx.ListMessages(ctx, vigil.MessageFilter{RecipientIndexes: [][]byte{m0.RecipientIndex}})
		require.NoError(t, err)
		require.Equal(t, []*vigil.Message{o1, m1, m0}, got)

		got, err = tx.ListMessages(ctx, vigil.MessageFilter{RecipientIndexes: [][]byte{randBytes(32), m2.RecipientIndex, om.RecipientIndex}})
		require.NoError(t, err)
		require.Equal(t, []*vigil.Message{m2, om}, got, "any of the indexes")

		got, err = tx.ListMessages(ctx, vigil.MessageFilter{IdentityID: identity, RecipientIndexes: [][]byte{m0.RecipientIndex}})
		require.NoError(t, err)
		require.Equal(t, []*vigil.Message{m1, m0}, got, "both filters apply")

		got, err = tx.ListMessages(ctx, vigil.MessageFilter{VerificationID: ov.ID})
		require.NoError(t, err)
		require.Equal(t, []*vigil.Message{o1, om}, got, "by verification")

		got, err = tx.ListMessages(ctx, vigil.MessageFilter{IdentityID: identity, Limit: 2})
		require.NoError(t, err)
		require.Equal(t, []*vigil.Message{m2, m1}, got)

		got, err = tx.ListMessages(ctx, vigil.MessageFilter{IdentityID: newID()})
		require.NoError(t, err)
		require.Empty(t, got)

		got, err = tx.ListMessages(ctx, vigil.MessageFilter{})
		require.NoError(t, err)
		require.Equal(t, []*vigil.Message{o1, m2, m1, m0, om}, got, "no filter lists all")
	})

	both(t, "ListMessagesDefaultLimit", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		identity := newID()
		v, _ := chain(t, tx, identity)
		for range 54 {
			require.NoError(t, tx.InsertMessage(ctx, newMessage(v)))
		}
		got, err := tx.ListMessages(ctx, vigil.MessageFilter{IdentityID: identity})
		require.NoError(t, err)
		require.Len(t, got, 50)
		got, err = tx.ListMessages(ctx, vigil.MessageFilter{IdentityID: identity, Limit: 100})
		require.NoError(t, err)
		require.Len(t, got, 55)
	})

	both(t, "Attempts", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		_, m := chain(t, tx, newID())
		base := now()
		want := []*vigil.MessageAttempt{
			{MessageID: m.ID, Attempt: 1, At: base, Outcome: "transient_error", Error: "dial tcp: timeout", Duration: 1234567891 * time.Nanosecond},
			{MessageID: m.ID, Attempt: 2, At: base.Add(2 * time.Second), Outcome: outcomeSent, Duration: 250 * time.Millisecond, Provider: "twilio"},
		}
		// Inserted out of order: listed by attempt.
		require.NoError(t, tx.InsertMessageAttempt(ctx, want[1]))
		require.NoError(t, tx.InsertMessageAttempt(ctx, want[0]))

		got, err := tx.ListMessageAttempts(ctx, m.ID)
		require.NoError(t, err)
		require.Equal(t, want, got)

		got, err = tx.ListMessageAttempts(ctx, newID())
		require.NoError(t, err)
		require.Empty(t, got)
	})

	both(t, "FindByProvider", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		v, m := chain(t, tx, newID())
		_, err := tx.FindMessageByProvider(ctx, "twilio", "")
		require.ErrorIs(t, err, vigil.ErrNotFound, "an unsent message has no provider id")
		m.Status, m.Provider, m.ProviderID = vigil.MessageSent, "twilio", "SM"+newID()
		require.NoError(t, tx.UpdateMessage(ctx, m))
		other := newMessage(v)
		other.Status, other.Provider, other.ProviderID = vigil.MessageSent, "engagelab", m.ProviderID
		require.NoError(t, tx.InsertMessage(ctx, other))

		got, err := tx.FindMessageByProvider(ctx, "twilio", m.ProviderID)
		require.NoError(t, err)
		require.Equal(t, m.ID, got.ID)
		got, err = tx.FindMessageByProvider(ctx, "engagelab", m.ProviderID)
		require.NoError(t, err)
		require.Equal(t, other.ID, got.ID, "the provider is part of the key")
		_, err = tx.FindMessageByProvider(ctx, "twilio", "SM"+newID())
		require.ErrorIs(t, err, vigil.ErrNotFound)
	})

	both(t, "Advance", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		_, m := chain(t, tx, newID())
		m.Status, m.LastError = vigil.MessageSent, "earlier"
		require.NoError(t, tx.UpdateMessage(ctx, m))
		later := now().Add(time.Minute)

		ok, err := tx.AdvanceMessage(ctx, m.ID, vigil.MessageQueued, vigil.MessageDelivered, "", later)
		require.NoError(t, err)
		require.False(t, ok, "not in the from status")
		ok, err = tx.AdvanceMessage(ctx, m.ID, vigil.MessageSent, vigil.MessageDelivered, "", later)
		require.NoError(t, err)
		require.True(t, ok)
		got, err := tx.GetMessage(ctx, m.ID)
		require.NoError(t, err)
		require.Equal(t, vigil.MessageDelivered, got.Status)
		require.Equal(t, "earlier", got.LastError, "an empty error text keeps the old one")
		require.Equal(t, later, got.UpdatedAt)

		ok, err = tx.AdvanceMessage(ctx, m.ID, vigil.MessageDelivered, vigil.MessageUndelivered, "30003", later)
		require.NoError(t, err)
		require.True(t, ok)
		got, err = tx.GetMessage(ctx, m.ID)
		require.NoError(t, err)
		require.Equal(t, "30003", got.LastError)

		ok, err = tx.AdvanceMessage(ctx, newID(), vigil.MessageSent, vigil.MessageDelivered, "", later)
		require.NoError(t, err)
		require.False(t, ok)
	})

	t.Run("RelaxDurability", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		require.NoError(t, s.RelaxDurability(t.Context()), "outside a transaction it does nothing")
		var m *vigil.Message
		require.NoError(t, s.InTx(t.Context(), func(tx vigil.Tx) error {
			require.NoError(t, tx.RelaxDurability(t.Context()))
			_, m = chain(t, tx, newID())
			return nil
		}))
		got, err := s.GetMessage(t.Context(), m.ID)
		require.NoError(t, err)
		require.Equal(t, m, got, "the transaction commits as any other")
	})
}
