package flows_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/flows"
	"github.com/vigil-auth/vigil/internal/vigiltest"
)

// verify starts and completes verification of an address through Vigil.
func (b *testBundle) verify(t *testing.T, address string, ch vigil.Channel) {
	t.Helper()
	st := b.start(t, address, ch, vigil.MethodCode)
	b.deliver(t)
	sender := b.email
	if ch == vigil.ChannelSMS {
		sender = b.sms
	}
	_, err := b.svc.CheckCode(context.Background(), st.ID, codeOf(t, sender.Last(t)), "")
	require.NoError(t, err)
}

// TestGateWeighsWhatVigilVerified checks the gate's allow path, which
// trusts Kratos' flags as they come and normalizes an address only to match
// it against one Vigil verified.
func TestGateWeighsWhatVigilVerified(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, open vigiltest.Opener) {
		ctx := context.Background()
		login := func(t *testing.T, svc *flows.Service, addrs ...vigil.IdentityAddress) *flows.Decision {
			t.Helper()
			d, err := svc.Gate(ctx, flows.LoginRequest{Identity: vigil.Identity{ID: identity, Active: true, Addresses: addrs}})
			require.NoError(t, err)
			return d
		}
		email := vigil.IdentityAddress{Channel: vigil.ChannelEmail, Value: "ann@example.com"}
		// Kratos keeps a phone as the person typed it; Vigil keeps E.164.
		phone := vigil.IdentityAddress{Channel: vigil.ChannelSMS, Value: "+49 (151) 234-56789"}
		bad := vigil.IdentityAddress{Channel: vigil.ChannelSMS, Value: "12"}

		t.Run("a phone Vigil verified counts in another spelling, after SMS is switched off", func(t *testing.T) {
			b := setup(t, open, nil)
			b.verify(t, "+4915123456789", vigil.ChannelSMS)
			require.True(t, login(t, b.svc, email, phone).Allow)

			cfg := b.cfg
			cfg.EnableSMS = false
			noSMS, err := flows.New(cfg, flows.Deps{Store: b.db.Store, Keys: mustKeys(t), Clock: b.clock,
				Senders: map[vigil.Channel]vigil.Sender{vigil.ChannelEmail: b.email}})
			require.NoError(t, err)
			require.True(t, login(t, noSMS, email, phone).Allow)
			require.Empty(t, b.email.Sent(), "nothing was challenged")
		})

		t.Run("a verified address of another identity does not count", func(t *testing.T) {
			b := setup(t, open, nil)
			b.verify(t, "+4915123456789", vigil.ChannelSMS)
			other := vigil.IdentityAddress{Channel: vigil.ChannelSMS, Value: "+49 151 99999999"}
			d := login(t, b.svc, other)
			require.False(t, d.Allow)
			require.Equal(t, flows.ReasonVerificationRequired, d.Reason)
			require.Equal(t, vigil.ChannelSMS, d.Channel)
		})

		t.Run("Kratos' flag alone allows, reading nothing", func(t *testing.T) {
			b := setup(t, open, nil)
			verified := email
			verified.Verified = true
			require.True(t, login(t, b.svc, verified, phone).Allow)
			addrs, err := b.db.Store.ListAddresses(ctx, identity)
			require.NoError(t, err)
			require.Empty(t, addrs)
		})

		t.Run("require all: an address that does not normalize is not held against the identity", func(t *testing.T) {
			b := setup(t, open, func(c *flows.Config) { c.Require = flows.RequireAll })
			b.verify(t, "ann@example.com", vigil.ChannelEmail)
			require.True(t, login(t, b.svc, email, bad).Allow)

			d := login(t, b.svc, email, bad, phone)
			require.False(t, d.Allow, "the valid phone is not verified")
			require.Equal(t, vigil.ChannelSMS, d.Channel)
			require.Equal(t, "+49 151 ****789", d.Destination)
		})

		t.Run("require all: a verified email does not make an unverified phone count", func(t *testing.T) {
			b := setup(t, open, func(c *flows.Config) { c.Require = flows.RequireAll })
			b.verify(t, "ann@example.com", vigil.ChannelEmail)
			d := login(t, b.svc, email, phone)
			require.False(t, d.Allow)
			require.Equal(t, vigil.ChannelSMS, d.Channel)
		})
	})
}
