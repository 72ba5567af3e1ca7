package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil"
)

//nolint:thelper // a group of subtests, not a helper: failures point at their own lines
func testAddress(t *testing.T, open Open) {
	both(t, "InsertGet", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		a := newAddress(newID(), vigil.ChannelEmail)
		a.Value = "alice@example.com" // stores never write it
		require.NoError(t, tx.InsertAddress(ctx, a))

		want := *a
		want.Value = ""
		got, err := tx.GetAddress(ctx, a.ID)
		require.NoError(t, err)
		require.Equal(t, &want, got)

		verified := newAddress(newID(), vigil.ChannelSMS)
		verified.VerifiedAt = new(now().Add(-time.Hour))
		require.NoError(t, tx.InsertAddress(ctx, verified))
		got, err = tx.GetAddress(ctx, verified.ID)
		require.NoError(t, err)
		require.Equal(t, verified, got)
	})

	both(t, "GetMissing", open, func(t *testing.T, tx vigil.Tx) {
		_, err := tx.GetAddress(t.Context(), newID())
		require.ErrorIs(t, err, vigil.ErrNotFound)
	})

	both(t, "InsertConflict", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		a := newAddress(newID(), vigil.ChannelEmail)
		require.NoError(t, tx.InsertAddress(ctx, a))

		dup := newAddress(a.IdentityID, vigil.ChannelEmail)
		dup.Index = a.Index
		require.ErrorIs(t, tx.InsertAddress(ctx, dup), vigil.ErrConflict)

		sameID := newAddress(newID(), vigil.ChannelEmail)
		sameID.ID = a.ID
		require.ErrorIs(t, tx.InsertAddress(ctx, sameID), vigil.ErrConflict)

		// The same index on another channel or another identity is a
		// different address.
		otherChannel := newAddress(a.IdentityID, vigil.ChannelSMS)
		otherChannel.Index = a.Index
		require.NoError(t, tx.InsertAddress(ctx, otherChannel))
		otherIdentity := newAddress(newID(), vigil.ChannelEmail)
		otherIdentity.Index = a.Index
		require.NoError(t, tx.InsertAddress(ctx, otherIdentity))

		// A conflict leaves the transaction usable: the core reads the
		// winner after losing an insert race.
		got, err := tx.FindAddress(ctx, a.IdentityID, vigil.ChannelEmail, [][]byte{a.Index})
		require.NoError(t, err)
		require.Equal(t, a, got)
	})

	both(t, "FindAddress", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		identity := newID()
		email := newAddress(identity, vigil.ChannelEmail)
		sms := newAddress(identity, vigil.ChannelSMS)
		other := newAddress(newID(), vigil.ChannelEmail)
		other.Index = email.Index
		for _, a := range []*vigil.Address{email, sms, other} {
			require.NoError(t, tx.InsertAddress(ctx, a))
		}

		// Any of the indexes matches: one per key in the ring.
		got, err := tx.FindAddress(ctx, identity, vigil.ChannelEmail, [][]byte{randBytes(32), email.Index})
		require.NoError(t, err)
		require.Equal(t, email, got)

		_, err = tx.FindAddress(ctx, identity, vigil.ChannelSMS, [][]byte{email.Index})
		require.ErrorIs(t, err, vigil.ErrNotFound)
		_, err = tx.FindAddress(ctx, newID(), vigil.ChannelEmail, [][]byte{email.Index})
		require.ErrorIs(t, err, vigil.ErrNotFound)
		_, err = tx.FindAddress(ctx, identity, vigil.ChannelEmail, [][]byte{randBytes(32)})
		require.ErrorIs(t, err, vigil.ErrNotFound)
		_, err = tx.FindAddress(ctx, identity, vigil.ChannelEmail, nil)
		require.ErrorIs(t, err, vigil.ErrNotFound)
	})

	both(t, "FindAddressesByIndex", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		a1 := newAddress(newID(), vigil.ChannelSMS)
		a2 := newAddress(newID(), vigil.ChannelSMS)
		a2.Index = a1.Index
		a3 := newAddress(newID(), vigil.ChannelSMS)
		email := newAddress(newID(), vigil.ChannelEmail)
		email.Index = a1.Index
		for _, a := range []*vigil.Address{a1, a2, a3, email} {
			require.NoError(t, tx.InsertAddress(ctx, a))
		}

		got, err := tx.FindAddressesByIndex(ctx, vigil.ChannelSMS, [][]byte{a1.Index})
		require.NoError(t, err)
		require.ElementsMatch(t, []*vigil.Address{a1, a2}, got)

		got, err = tx.FindAddressesByIndex(ctx, vigil.ChannelSMS, [][]byte{a1.Index, a3.Index})
		require.NoError(t, err)
		require.ElementsMatch(t, []*vigil.Address{a1, a2, a3}, got)

		got, err = tx.FindAddressesByIndex(ctx, vigil.ChannelSMS, [][]byte{randBytes(32)})
		require.NoError(t, err)
		require.Empty(t, got)

		got, err = tx.FindAddressesByIndex(ctx, vigil.ChannelSMS, nil)
		require.NoError(t, err)
		require.Empty(t, got)
	})

	both(t, "ListAddresses", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		identity := newID()
		email := newAddress(identity, vigil.ChannelEmail)
		sms := newAddress(identity, vigil.ChannelSMS)
		other := newAddress(newID(), vigil.ChannelEmail)
		for _, a := range []*vigil.Address{email, sms, other} {
			require.NoError(t, tx.InsertAddress(ctx, a))
		}

		got, err := tx.ListAddresses(ctx, identity)
		require.NoError(t, err)
		require.ElementsMatch(t, []*vigil.Address{email, sms}, got)

		got, err = tx.ListAddresses(ctx, newID())
		require.NoError(t, err)
		require.Empty(t, got)
	})

	both(t, "DeleteAddress", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		a := newAddress(newID(), vigil.ChannelEmail)
		require.NoError(t, tx.InsertAddress(ctx, a))
		v := newVerification(a)
		require.NoError(t, tx.InsertVerification(ctx, v))
		m := newMessage(v)
		require.NoError(t, tx.InsertMessage(ctx, m))

		require.NoError(t, tx.DeleteAddress(ctx, a.ID))
		_, err := tx.GetAddress(ctx, a.ID)
		require.ErrorIs(t, err, vigil.ErrNotFound)
		_, err = tx.GetVerification(ctx, v.ID)
		require.ErrorIs(t, err, vigil.ErrNotFound, "its verifications go with it")
		_, err = tx.GetMessage(ctx, m.ID)
		require.ErrorIs(t, err, vigil.ErrNotFound, "and their messages")
		require.ErrorIs(t, tx.DeleteAddress(ctx, a.ID), vigil.ErrNotFound)
	})

	both(t, "SetAddressVerified", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		a := newAddress(newID(), vigil.ChannelEmail)
		require.NoError(t, tx.InsertAddress(ctx, a))

		at := now().Add(time.Minute)
		require.NoError(t, tx.SetAddressVerified(ctx, a.ID, at))
		got, err := tx.GetAddress(ctx, a.ID)
		require.NoError(t, err)
		require.NotNil(t, got.VerifiedAt)
		require.Equal(t, at, *got.VerifiedAt)

		require.ErrorIs(t, tx.SetAddressVerified(ctx, newID(), at), vigil.ErrNotFound)
	})
}
