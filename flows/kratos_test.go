package flows_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/flows"
	"github.com/vigil-auth/vigil/internal/vigiltest"
)

// identities is the identity provider as the core sees it. The Kratos
// adapter that implements it for real is tested against Kratos' wire format
// and against a real Kratos; here the core's use of it is under test.
type identities struct {
	mu        sync.Mutex
	marked    []marked
	summaries []marked
	fail      []error // returned, in order, before calls succeed
	sessions  map[string]*vigil.Session
}

type marked struct {
	identityID string
	channel    vigil.Channel
	value      string
	summary    vigil.VerificationSummary
}

func newIdentities() *identities { return &identities{sessions: map[string]*vigil.Session{}} }

func (f *identities) MarkVerified(_ context.Context, identityID string, ch vigil.Channel, value string, s vigil.VerificationSummary) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.fail) > 0 {
		err := f.fail[0]
		f.fail = f.fail[1:]
		return err
	}
	f.marked = append(f.marked, marked{identityID, ch, value, s})
	return nil
}

func (f *identities) SetSummary(_ context.Context, identityID string, s vigil.VerificationSummary) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.summaries = append(f.summaries, marked{identityID: identityID, summary: s})
	return nil
}

func (f *identities) Whoami(_ context.Context, c vigil.SessionCredentials) (*vigil.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.sessions[c.SessionToken]; ok {
		return s, nil
	}
	return nil, &vigil.Error{Code: vigil.EUNAUTHORIZED, Message: "No valid session."}
}

func (f *identities) marks() []marked {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]marked(nil), f.marked...)
}

// runQueue works the store's queue until the test ends.
func (b *testBundle) runQueue(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.db.Queue.Run(ctx, vigil.Workers{Deliver: b.svc.Deliver, Job: b.svc.RunJob}) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
}

func TestVerifiedAddressIsSyncedToKratos(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, open vigiltest.Opener) {
		b := setup(t, open, nil)
		ctx := context.Background()
		// Kratos' admin API fails twice before it answers: the sync waits
		// in the durable queue, it is not lost.
		b.ids.fail = []error{errors.New("connection refused"), errors.New("503 Service Unavailable")}
		st := b.start(t, "+49 151 23456789", vigil.ChannelSMS, vigil.MethodCode)
		b.deliver(t)
		_, err := b.svc.CheckCode(ctx, st.ID, codeOf(t, b.sms.Last(t)), "")
		require.NoError(t, err)
		b.runQueue(t)

		require.Eventually(t, func() bool { return len(b.ids.marks()) == 1 }, 30*time.Second, 50*time.Millisecond)
		m := b.ids.marks()[0]
		require.Equal(t, identity, m.identityID)
		require.Equal(t, vigil.ChannelSMS, m.channel)
		require.Equal(t, "+4915123456789", m.value, "the normalized number")
		require.True(t, m.summary.Verified)
		require.Equal(t, []vigil.Channel{vigil.ChannelSMS}, m.summary.Channels)
		require.Equal(t, b.clock.Now(), *m.summary.VerifiedAt)

		// An admin's forced verification is synced too.
		_, err = b.svc.ForceVerify(ctx, identity, "ada@example.com", vigil.ChannelEmail, "admin")
		require.NoError(t, err)
		require.Eventually(t, func() bool { return len(b.ids.marks()) == 2 }, 30*time.Second, 50*time.Millisecond)
		require.ElementsMatch(t, []vigil.Channel{vigil.ChannelSMS, vigil.ChannelEmail}, b.ids.marks()[1].summary.Channels)
	})
}

func TestSyncGivesUpOnWhatRetryingCannotFix(t *testing.T) {
	t.Parallel()
	b := setup(t, vigiltest.Stores()[0], nil)
	ctx := context.Background()
	b.ids.fail = []error{vigil.Permanent(errors.New("400 Bad Request")), vigil.ErrNotFound}
	b.runQueue(t)
	for _, a := range []string{"fay@example.com", "gus@example.com"} {
		st := b.start(t, a, vigil.ChannelEmail, vigil.MethodCode)
		require.Eventually(t, func() bool { return len(b.email.Sent()) > 0 && b.email.Last(t).To == a }, 20*time.Second, 20*time.Millisecond)
		_, err := b.svc.CheckCode(ctx, st.ID, codeOf(t, b.email.Last(t)), "")
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		b.ids.mu.Lock()
		defer b.ids.mu.Unlock()
		return len(b.ids.fail) == 0
	}, 20*time.Second, 20*time.Millisecond)
	time.Sleep(2 * time.Second)
	require.Empty(t, b.ids.marks(), "neither was retried")
}

func TestAuthorizeAndSessionCalls(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, open vigiltest.Opener) {
		b := setup(t, open, nil)
		ctx := context.Background()
		session := func(token string, verified bool) vigil.SessionCredentials {
			b.ids.mu.Lock()
			defer b.ids.mu.Unlock()
			b.ids.sessions[token] = &vigil.Session{ID: "s-" + token, IdentityID: identity, Identity: &vigil.Identity{
				ID: identity, Active: true,
				Addresses: []vigil.IdentityAddress{{Channel: vigil.ChannelEmail, Value: "Hal@Example.com", Verified: verified}},
			}}
			return vigil.SessionCredentials{SessionToken: token}
		}

		_, err := b.svc.Authorize(ctx, vigil.SessionCredentials{})
		requireCode(t, err, vigil.EUNAUTHORIZED)
		_, err = b.svc.Authorize(ctx, vigil.SessionCredentials{SessionToken: "nope"})
		requireCode(t, err, vigil.EUNAUTHORIZED)

		a, err := b.svc.Authorize(ctx, session("kratos-verified", true))
		require.NoError(t, err)
		require.True(t, a.Verified, "what Kratos verified counts")

		unverified := session("unverified", false)
		a, err = b.svc.Authorize(ctx, unverified)
		require.NoError(t, err)
		require.Equal(t, identity, a.IdentityID)
		require.False(t, a.Verified)

		st := b.start(t, "hal@example.com", vigil.ChannelEmail, vigil.MethodCode)
		status, err := b.svc.SessionStatus(ctx, unverified)
		require.NoError(t, err)
		require.Equal(t, vigil.AddressPending, status.Addresses[0].State)

		// The user asks for a new code for their own verification.
		b.clock.Advance(time.Minute)
		require.NoError(t, b.svc.SessionResend(ctx, unverified, vigil.ChannelEmail, ""))
		requireCode(t, b.svc.SessionResend(ctx, vigil.SessionCredentials{}, "", ""), vigil.EUNAUTHORIZED)
		b.deliver(t)
		require.Len(t, b.email.Sent(), 1, "the first code was superseded before delivery")
		_, err = b.svc.CheckCode(ctx, st.ID, codeOf(t, b.email.Last(t)), "")
		require.NoError(t, err)

		a, err = b.svc.Authorize(ctx, unverified)
		require.NoError(t, err)
		require.True(t, a.Verified, "Vigil's own record counts before Kratos is synced")
	})
}

func TestGateWithoutIdentityProvider(t *testing.T) {
	t.Parallel()
	b := setup(t, vigiltest.Stores()[0], nil)
	svc, err := flows.New(b.cfg, flows.Deps{Store: b.db.Store, Keys: mustKeys(t), Senders: map[vigil.Channel]vigil.Sender{vigil.ChannelEmail: b.email}})
	require.NoError(t, err)
	_, err = svc.Authorize(context.Background(), vigil.SessionCredentials{SessionToken: "x"})
	requireCode(t, err, vigil.EUNAUTHORIZED)
}

func mustKeys(t *testing.T) *vigil.Keyring {
	t.Helper()
	k, err := vigil.NewKeyring(testSecret)
	require.NoError(t, err)
	return k
}

func TestSettingsChangeNotifiesTheReplacedAddress(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, open vigiltest.Opener) {
		b := setup(t, open, nil)
		ctx := context.Background()
		st := b.start(t, "+4915123456789", vigil.ChannelSMS, vigil.MethodCode)
		b.start(t, "old@example.com", vigil.ChannelEmail, vigil.MethodCode)
		b.deliver(t)
		_, err := b.svc.CheckCode(ctx, st.ID, codeOf(t, b.sms.Last(t)), "")
		require.NoError(t, err)

		// Kratos now has a new number and a new email; the old number was
		// verified, the old email was not.
		b.clock.Advance(time.Minute)
		require.NoError(t, b.svc.SettingsChanged(ctx, vigil.Identity{ID: identity, Active: true, Addresses: []vigil.IdentityAddress{
			{Channel: vigil.ChannelSMS, Value: "+49 151 23456780"},
			{Channel: vigil.ChannelEmail, Value: "new@example.com"},
		}}, flows.Origin{}))
		b.deliver(t)
		b.runQueue(t)

		require.Eventually(t, func() bool { return len(b.sms.Sent()) == 3 }, 20*time.Second, 20*time.Millisecond)
		var notice, code vigil.Outbound
		for _, m := range b.sms.Sent()[1:] {
			if m.To == "+4915123456789" {
				notice = m
			} else {
				code = m
			}
		}
		require.Contains(t, notice.Text, "phone number on your account was changed")
		require.NotRegexp(t, `\d{6}`, notice.Text)
		require.Equal(t, "+4915123456780", code.To)
		require.Equal(t, "new@example.com", b.email.Last(t).To)
		for _, m := range b.email.Sent() {
			require.NotContains(t, m.Text, "was changed", "an unverified address is dropped without a notice")
		}

		status, err := b.svc.IdentityStatus(ctx, identity)
		require.NoError(t, err)
		dests := make([]string, 0, len(status.Addresses))
		for _, a := range status.Addresses {
			dests = append(dests, a.Destination)
		}
		require.ElementsMatch(t, []string{"+49 151 ****780", "n***@example.com"}, dests)
		require.Eventually(t, func() bool {
			events, err := b.svc.Audit(ctx, vigil.AuditFilter{IdentityID: identity})
			require.NoError(t, err)
			for _, e := range events {
				if e.Type == vigil.EventNoticeSent {
					return true
				}
			}
			return false
		}, 10*time.Second, 20*time.Millisecond)
		rep, err := b.svc.VerifyAudit(ctx)
		require.NoError(t, err)
		require.True(t, rep.OK, rep.Reason)
	})
}

func TestSoftModeRecordsUnverifiedAtRegistration(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, open vigiltest.Opener) {
		b := setup(t, open, func(c *flows.Config) { c.Soft = true })
		ctx := context.Background()
		id := vigil.Identity{ID: identity, Active: true, Addresses: []vigil.IdentityAddress{{Channel: vigil.ChannelEmail, Value: "ivy@example.com"}}}
		require.NoError(t, b.svc.Registered(ctx, id, flows.Origin{}))
		d, err := b.svc.Gate(ctx, flows.LoginRequest{Identity: id})
		require.NoError(t, err)
		require.True(t, d.Allow)
		require.True(t, d.Soft, "let through, though unverified")
		b.runQueue(t)
		require.Eventually(t, func() bool {
			b.ids.mu.Lock()
			defer b.ids.mu.Unlock()
			return len(b.ids.summaries) == 1
		}, 20*time.Second, 20*time.Millisecond)
		b.ids.mu.Lock()
		defer b.ids.mu.Unlock()
		require.Equal(t, identity, b.ids.summaries[0].identityID)
		require.False(t, b.ids.summaries[0].summary.Verified)
		require.Empty(t, b.ids.summaries[0].summary.Channels)
	})
}
