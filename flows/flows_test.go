package flows_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/flows"
	"github.com/vigil-auth/vigil/internal/vigiltest"
)

const testSecret = "0123456789abcdef0123456789abcdef-test-secret"

type testBundle struct {
	db    *vigiltest.DB
	svc   *flows.Service
	clock *vigiltest.Clock
	email *vigiltest.Sender
	sms   *vigiltest.Sender
	logs  *syncBuffer
	cfg   flows.Config
	ids   *identities
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.b.Bytes()...)
}

func setup(t *testing.T, open vigiltest.Opener, mod func(*flows.Config)) *testBundle {
	t.Helper()
	cfg := flows.Defaults()
	cfg.EnableSMS = true
	cfg.ResendFloor = 0
	if mod != nil {
		mod(&cfg)
	}
	keys, err := vigil.NewKeyring(testSecret)
	require.NoError(t, err)
	b := &testBundle{
		db:    open.Open(t),
		clock: vigiltest.NewClock(),
		email: &vigiltest.Sender{},
		sms:   &vigiltest.Sender{},
		logs:  &syncBuffer{},
		cfg:   cfg,
		ids:   newIdentities(),
	}
	b.svc, err = flows.New(cfg, flows.Deps{
		Store:      b.db.Store,
		Keys:       keys,
		Senders:    map[vigil.Channel]vigil.Sender{vigil.ChannelEmail: b.email, vigil.ChannelSMS: b.sms},
		Clock:      b.clock,
		Logger:     slog.New(slog.NewTextHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Identities: b.ids,
	})
	require.NoError(t, err)
	return b
}

// eachStore runs fn against SQLite and PostgreSQL.
func eachStore(t *testing.T, fn func(t *testing.T, open vigiltest.Opener)) {
	t.Helper()
	for _, o := range vigiltest.Stores() {
		t.Run(o.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, o)
		})
	}
}

// deliver runs the delivery job of every unfinished message once.
func (b *testBundle) deliver(t *testing.T) {
	t.Helper()
	ms, err := b.db.Store.ListMessages(context.Background(), vigil.MessageFilter{Limit: 500})
	require.NoError(t, err)
	for _, m := range ms {
		if m.Status.Done() {
			continue
		}
		_, err := b.svc.Deliver(context.Background(), m.ID)
		require.NoError(t, err)
	}
}

var codeRE = regexp.MustCompile(`\b\d{6}\b`)

func codeOf(t *testing.T, m vigil.Outbound) string {
	t.Helper()
	c := codeRE.FindString(m.Text)
	require.NotEmpty(t, c, "no code in %q", m.Text)
	return c
}

var tokenRE = regexp.MustCompile(`token=([A-Za-z0-9_-]{43})`)

func tokenOf(t *testing.T, m vigil.Outbound) string {
	t.Helper()
	mm := tokenRE.FindStringSubmatch(m.Text)
	require.Len(t, mm, 2, "no link in %q", m.Text)
	return mm[1]
}

func wrong(code string) string {
	if code == "000000" {
		return "111111"
	}
	return "000000"
}

func (b *testBundle) start(t *testing.T, address string, ch vigil.Channel, m vigil.Method) *flows.Started {
	t.Helper()
	st, err := b.svc.Start(context.Background(), flows.StartRequest{IdentityID: identity, Address: address, Channel: ch, Method: m, Actor: "admin"})
	require.NoError(t, err)
	return st
}

func requireCode(t *testing.T, err error, code string) *vigil.Error {
	t.Helper()
	require.Error(t, err)
	var e *vigil.Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, code, e.Code, "message: %s", e.Message)
	return e
}

const identity = "0b6f3f34-5f0c-4c3e-9c55-4d1c2e8f0a11"

func TestCodeFlow(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, open vigiltest.Opener) {
		b := setup(t, open, nil)
		ctx := context.Background()
		st := b.start(t, "Alice@Example.com", vigil.ChannelEmail, vigil.MethodCode)
		require.Equal(t, b.clock.Now().Add(15*time.Minute), st.ExpiresAt)

		status, err := b.svc.IdentityStatus(ctx, identity)
		require.NoError(t, err)
		require.False(t, status.Verified)
		require.Equal(t, vigil.AddressPending, status.Addresses[0].State)
		require.Equal(t, "a***@example.com", status.Addresses[0].Destination)

		b.deliver(t)
		msg := b.email.Last(t)
		require.Equal(t, "alice@example.com", msg.To)
		require.NotEmpty(t, msg.HTML)
		code := codeOf(t, msg)

		_, err = b.svc.CheckCode(ctx, st.ID, wrong(code), "192.0.2.1")
		e := requireCode(t, err, vigil.EWRONGCODE)
		require.Equal(t, 2, *e.AttemptsLeft)

		v, err := b.svc.CheckCode(ctx, st.ID, code, "192.0.2.1")
		require.NoError(t, err)
		require.Equal(t, vigil.StateVerified, v.State)

		_, err = b.svc.CheckCode(ctx, st.ID, code, "192.0.2.1")
		requireCode(t, err, vigil.EUSED)

		status, err = b.svc.IdentityStatus(ctx, identity)
		require.NoError(t, err)
		require.True(t, status.Verified)
		require.Equal(t, vigil.AddressVerified, status.Addresses[0].State)

		_, err = b.svc.Start(ctx, flows.StartRequest{IdentityID: identity, Address: "alice@example.com", Channel: vigil.ChannelEmail})
		requireCode(t, err, vigil.EVERIFIED)

		msgs, err := b.svc.Messages(ctx, "ALICE@example.com", "", 0)
		require.NoError(t, err)
		require.Len(t, msgs, 1)
		require.Equal(t, vigil.MessageSent, msgs[0].Status)
		require.Empty(t, msgs[0].Body, "bodies are shown only in dev mode")
		require.Len(t, msgs[0].History, 1)

		rep, err := b.svc.VerifyAudit(ctx)
		require.NoError(t, err)
		require.True(t, rep.OK, rep.Reason)
		events, err := b.svc.Audit(ctx, vigil.AuditFilter{IdentityID: identity})
		require.NoError(t, err)
		types := make([]string, 0, len(events))
		for _, e := range events {
			types = append(types, e.Type)
		}
		require.Equal(t, []string{vigil.EventVerificationStarted, vigil.EventVerificationFailed, vigil.EventVerificationSucceeded}, types)
	})
}

func TestConcurrentCorrectCodeSucceedsOnce(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, open vigiltest.Opener) {
		b := setup(t, open, nil)
		st := b.start(t, "bob@example.com", vigil.ChannelEmail, vigil.MethodCode)
		b.deliver(t)
		code := codeOf(t, b.email.Last(t))

		var wg sync.WaitGroup
		results := make(chan error, 50)
		for range 50 {
			wg.Go(func() {
				_, err := b.svc.CheckCode(context.Background(), st.ID, code, "")
				results <- err
			})
		}
		wg.Wait()
		close(results)
		ok := 0
		for err := range results {
			if err == nil {
				ok++
				continue
			}
			c := vigil.ErrorCode(err)
			require.Contains(t, []string{vigil.EUSED, vigil.ELOCKED}, c, "unexpected error: %v", err)
		}
		require.Equal(t, 1, ok)
	})
}

func TestConcurrentWrongCodesCompareAtMostMax(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, open vigiltest.Opener) {
		b := setup(t, open, nil)
		ctx := context.Background()
		st := b.start(t, "carol@example.com", vigil.ChannelEmail, vigil.MethodCode)
		b.deliver(t)
		code := codeOf(t, b.email.Last(t))

		var wg sync.WaitGroup
		results := make(chan error, 50)
		for range 50 {
			wg.Go(func() {
				_, err := b.svc.CheckCode(ctx, st.ID, wrong(code), "")
				results <- err
			})
		}
		wg.Wait()
		close(results)
		compared := 0
		for err := range results {
			switch vigil.ErrorCode(err) {
			case vigil.EWRONGCODE:
				compared++
			case vigil.ELOCKED:
			default:
				t.Fatalf("unexpected result: %v", err)
			}
		}
		require.Equal(t, b.cfg.MaxAttempts, compared)

		_, err := b.svc.CheckCode(ctx, st.ID, code, "")
		requireCode(t, err, vigil.ELOCKED)
		v, err := b.svc.GetVerification(ctx, st.ID)
		require.NoError(t, err)
		require.Equal(t, vigil.StateLocked, v.State)
		require.Equal(t, 0, v.AttemptsLeft)
	})
}

func TestExpiryBoundary(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, open vigiltest.Opener) {
		b := setup(t, open, nil)
		ctx := context.Background()

		st := b.start(t, "dave@example.com", vigil.ChannelEmail, vigil.MethodCode)
		b.deliver(t)
		code := codeOf(t, b.email.Last(t))
		b.clock.Advance(15*time.Minute - time.Microsecond)
		_, err := b.svc.CheckCode(ctx, st.ID, code, "")
		require.NoError(t, err, "one microsecond before expiry the code is valid")

		st = b.start(t, "+4915123456789", vigil.ChannelSMS, vigil.MethodCode)
		require.Equal(t, b.clock.Now().Add(10*time.Minute), st.ExpiresAt, "SMS codes are capped at 10 minutes")
		b.deliver(t)
		code = codeOf(t, b.sms.Last(t))
		b.clock.Advance(10 * time.Minute)
		_, err = b.svc.CheckCode(ctx, st.ID, code, "")
		requireCode(t, err, vigil.EEXPIRED)
		v, err := b.svc.GetVerification(ctx, st.ID)
		require.NoError(t, err)
		require.Equal(t, vigil.StateExpired, v.State)

		status, err := b.svc.IdentityStatus(ctx, identity)
		require.NoError(t, err)
		states := map[vigil.Channel]vigil.AddressState{}
		for _, a := range status.Addresses {
			states[a.Channel] = a.State
		}
		require.Equal(t, map[vigil.Channel]vigil.AddressState{vigil.ChannelEmail: vigil.AddressVerified, vigil.ChannelSMS: vigil.AddressExpired}, states)

		// An expired code can be replaced at once, cooldown or not.
		require.NoError(t, b.svc.Resend(ctx, flows.ResendRequest{ID: st.ID}))
		b.deliver(t)
		require.Len(t, b.sms.Sent(), 2)
	})
}

func TestResendKillsOldCode(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, open vigiltest.Opener) {
		b := setup(t, open, nil)
		ctx := context.Background()
		st := b.start(t, "erin@example.com", vigil.ChannelEmail, vigil.MethodCode)
		b.deliver(t)
		old := codeOf(t, b.email.Last(t))

		b.clock.Advance(61 * time.Second)
		require.NoError(t, b.svc.Resend(ctx, flows.ResendRequest{Address: "ERIN@example.com"}))
		b.clock.Advance(61 * time.Second)
		require.NoError(t, b.svc.Resend(ctx, flows.ResendRequest{ID: st.ID}))
		b.deliver(t)
		sent := b.email.Sent()
		require.Len(t, sent, 2, "the first resend's message was superseded by the second before delivery")
		fresh := codeOf(t, sent[1])

		msgs, err := b.svc.Messages(ctx, "", identity, 0)
		require.NoError(t, err)
		statuses := make([]vigil.MessageStatus, 0, len(msgs))
		for _, m := range msgs {
			statuses = append(statuses, m.Status)
		}
		require.ElementsMatch(t, []vigil.MessageStatus{vigil.MessageSent, vigil.MessageSuperseded, vigil.MessageSent}, statuses)

		if old != fresh {
			_, err = b.svc.CheckCode(ctx, st.ID, old, "")
			requireCode(t, err, vigil.EWRONGCODE)
		}
		_, err = b.svc.CheckCode(ctx, st.ID, fresh, "")
		require.NoError(t, err)
	})
}

func TestCooldownAndCaps(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, open vigiltest.Opener) {
		b := setup(t, open, nil)
		ctx := context.Background()
		b.start(t, "frank@example.com", vigil.ChannelEmail, vigil.MethodCode)

		_, err := b.svc.Start(ctx, flows.StartRequest{IdentityID: identity, Address: "frank@example.com", Channel: vigil.ChannelEmail})
		e := requireCode(t, err, vigil.ERATELIMITED)
		require.Equal(t, 60*time.Second, e.RetryAfter)
		require.NoError(t, b.svc.Resend(ctx, flows.ResendRequest{Address: "frank@example.com"}), "resend never tells")

		// 5 sends per destination per 10 minutes: 4 more pass, the 6th not.
		for i := 2; i <= 5; i++ {
			b.clock.Advance(61 * time.Second)
			_, err := b.svc.Start(ctx, flows.StartRequest{IdentityID: identity, Address: "frank@example.com", Channel: vigil.ChannelEmail})
			require.NoError(t, err, "send %d", i)
		}
		b.clock.Advance(61 * time.Second)
		_, err = b.svc.Start(ctx, flows.StartRequest{IdentityID: identity, Address: "frank@example.com", Channel: vigil.ChannelEmail})
		e = requireCode(t, err, vigil.ERATELIMITED)
		require.Positive(t, e.RetryAfter)
		b.deliver(t)
		require.Len(t, b.email.Sent(), 1, "only the newest secret is delivered; the rest were superseded before delivery")

		// Per client IP: many identities from one address.
		b2 := setup(t, open, func(c *flows.Config) { c.Resend.PerIPHour = 2 })
		for i, id := range []string{"1", "2", "3"} {
			_, err := b2.svc.Start(ctx, flows.StartRequest{IdentityID: id, Address: "u" + id + "@example.com", Channel: vigil.ChannelEmail, ClientIP: "198.51.100.7"})
			if i < 2 {
				require.NoError(t, err)
			} else {
				requireCode(t, err, vigil.ERATELIMITED)
			}
		}
		// Per identity.
		b3 := setup(t, open, func(c *flows.Config) { c.Resend.PerIdentityHour = 1 })
		b3.start(t, "g1@example.com", vigil.ChannelEmail, vigil.MethodCode)
		_, err = b3.svc.Start(ctx, flows.StartRequest{IdentityID: identity, Address: "g2@example.com", Channel: vigil.ChannelEmail})
		requireCode(t, err, vigil.ERATELIMITED)
	})
}

func TestLockoutEscalationAndUnlock(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, open vigiltest.Opener) {
		b := setup(t, open, func(c *flows.Config) {
			c.Lockout.HardAfter = 15
			c.Resend.PerDestination, c.Resend.PerDestHour, c.Resend.PerIdentityHour = 100, 100, 100
		})
		ctx := context.Background()
		st := b.start(t, "gina@example.com", vigil.ChannelEmail, vigil.MethodCode)

		for i, want := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute} {
			b.deliver(t)
			code := codeOf(t, b.email.Last(t))
			for j := range 3 {
				_, err := b.svc.CheckCode(ctx, st.ID, wrong(code), "")
				e := requireCode(t, err, vigil.EWRONGCODE)
				if j == 2 {
					require.Equal(t, want, e.RetryAfter, "lock %d", i+1)
				}
			}
			_, err := b.svc.CheckCode(ctx, st.ID, code, "")
			e := requireCode(t, err, vigil.ELOCKED)
			require.Equal(t, want, e.RetryAfter)

			require.NoError(t, b.svc.Resend(ctx, flows.ResendRequest{ID: st.ID}))
			b.deliver(t)
			require.Len(t, b.email.Sent(), i+1, "no new code while locked")

			b.clock.Advance(want)
			require.NoError(t, b.svc.Resend(ctx, flows.ResendRequest{ID: st.ID}))
		}
		// 12 consecutive failures so far; the 15th is a hard lock.
		b.deliver(t)
		code := codeOf(t, b.email.Last(t))
		for range 3 {
			_, err := b.svc.CheckCode(ctx, st.ID, wrong(code), "")
			requireCode(t, err, vigil.EWRONGCODE)
		}
		status, err := b.svc.IdentityStatus(ctx, identity)
		require.NoError(t, err)
		require.True(t, status.Lock.Hard)
		b.clock.Advance(24 * time.Hour)
		require.NoError(t, b.svc.Resend(ctx, flows.ResendRequest{ID: st.ID}))
		_, err = b.svc.CheckCode(ctx, st.ID, code, "")
		requireCode(t, err, vigil.ELOCKED)

		require.NoError(t, b.svc.Unlock(ctx, identity, "admin"))
		status, err = b.svc.IdentityStatus(ctx, identity)
		require.NoError(t, err)
		require.False(t, status.Lock.Locked)
		require.Zero(t, status.Lock.Failures)

		require.NoError(t, b.svc.Resend(ctx, flows.ResendRequest{ID: st.ID}))
		b.deliver(t)
		_, err = b.svc.CheckCode(ctx, st.ID, codeOf(t, b.email.Last(t)), "")
		require.NoError(t, err)

		events, err := b.svc.Audit(ctx, vigil.AuditFilter{IdentityID: identity})
		require.NoError(t, err)
		seen := map[string]int{}
		for _, e := range events {
			seen[e.Type]++
		}
		require.Equal(t, 4, seen[vigil.EventIdentityLocked])
		require.Equal(t, 1, seen[vigil.EventIdentityHardLocked])
		require.Equal(t, 1, seen[vigil.EventIdentityUnlocked])
	})
}

func TestLinkFlow(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, open vigiltest.Opener) {
		b := setup(t, open, nil)
		ctx := context.Background()
		st := b.start(t, "hank@example.com", vigil.ChannelEmail, vigil.MethodLink)
		require.Equal(t, b.clock.Now().Add(24*time.Hour), st.ExpiresAt)
		b.deliver(t)
		msg := b.email.Last(t)
		token := tokenOf(t, msg)
		require.Contains(t, msg.HTML, "http://127.0.0.1:4480/self-service/verifications/link?token="+token, "the link also as plain text")

		for range 2 {
			info, err := b.svc.PeekLink(ctx, token)
			require.NoError(t, err)
			require.Equal(t, "h***@example.com", info.Masked)
		}
		_, err := b.svc.CheckCode(ctx, st.ID, "123456", "")
		requireCode(t, err, vigil.ENOTFOUND)

		v, err := b.svc.ConsumeLink(ctx, token, "")
		require.NoError(t, err)
		require.Equal(t, vigil.StateVerified, v.State)
		_, err = b.svc.ConsumeLink(ctx, token, "")
		requireCode(t, err, vigil.EUSED)
		_, err = b.svc.PeekLink(ctx, "x")
		requireCode(t, err, vigil.ENOTFOUND)
		_, err = b.svc.PeekLink(ctx, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
		requireCode(t, err, vigil.ENOTFOUND)

		// Expired, then replaced at once.
		b.start(t, "ivy@example.com", vigil.ChannelEmail, vigil.MethodLink)
		b.deliver(t)
		token = tokenOf(t, b.email.Last(t))
		b.clock.Advance(24 * time.Hour)
		_, err = b.svc.ConsumeLink(ctx, token, "")
		requireCode(t, err, vigil.EEXPIRED)
		_, err = b.svc.Start(ctx, flows.StartRequest{IdentityID: identity, Address: "ivy@example.com", Channel: vigil.ChannelEmail, Method: vigil.MethodLink})
		require.NoError(t, err)
		b.deliver(t)
		fresh := tokenOf(t, b.email.Last(t))
		_, err = b.svc.ConsumeLink(ctx, token, "")
		requireCode(t, err, vigil.ENOTFOUND)
		_, err = b.svc.ConsumeLink(ctx, fresh, "")
		require.NoError(t, err)
	})
}

func TestConcurrentLinkConsumedOnce(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, open vigiltest.Opener) {
		b := setup(t, open, nil)
		b.start(t, "jo@example.com", vigil.ChannelEmail, vigil.MethodLink)
		b.deliver(t)
		token := tokenOf(t, b.email.Last(t))
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		for range 50 {
			wg.Go(func() {
				_, err := b.svc.ConsumeLink(context.Background(), token, "")
				if err == nil {
					mu.Lock()
					ok++
					mu.Unlock()
					return
				}
				if vigil.ErrorCode(err) != vigil.EUSED {
					t.Errorf("unexpected error: %v", err)
				}
			})
		}
		wg.Wait()
		require.Equal(t, 1, ok)
	})
}

func TestNoPlaintextSecretsStored(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, open vigiltest.Opener) {
		b := setup(t, open, func(c *flows.Config) { c.Dev = true })
		ctx := context.Background()
		st := b.start(t, "kim@example.com", vigil.ChannelEmail, vigil.MethodCode)
		b.start(t, "lee@example.com", vigil.ChannelEmail, vigil.MethodLink)
		b.start(t, "+4915123456789", vigil.ChannelSMS, vigil.MethodCode)
		b.deliver(t)
		code := codeOf(t, b.email.To(t, "kim@example.com"))
		token := tokenOf(t, b.email.To(t, "lee@example.com"))
		smsCode := codeOf(t, b.sms.Last(t))
		_, err := b.svc.CheckCode(ctx, st.ID, wrong(code), "203.0.113.9")
		requireCode(t, err, vigil.EWRONGCODE)

		msgs, err := b.svc.Messages(ctx, "", identity, 0)
		require.NoError(t, err)
		require.Len(t, msgs, 3)
		for _, m := range msgs {
			require.NotEmpty(t, m.Body, "dev mode shows bodies")
		}

		dump := b.db.Dump(t)
		require.NotEmpty(t, dump)
		logs := b.logs.Bytes()
		for _, secret := range []string{code, token, smsCode, "kim@example.com", "lee@example.com", "+4915123456789", "4915123456789", "203.0.113.9"} {
			require.False(t, bytes.Contains(dump, []byte(secret)), "%q is stored in plaintext", secret)
			require.False(t, bytes.Contains(logs, []byte(secret)), "%q is in the logs", secret)
		}
	})
}

func TestDeliveryIsDurable(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, open vigiltest.Opener) {
		b := setup(t, open, nil)
		ctx := context.Background()
		// The process that started the verification died before any
		// delivery ran; a new one, on the same database, delivers.
		b.start(t, "max@example.com", vigil.ChannelEmail, vigil.MethodCode)
		store, queue := b.db.Reopen(t)
		keys, err := vigil.NewKeyring(testSecret)
		require.NoError(t, err)
		sender := &vigiltest.Sender{}
		svc, err := flows.New(b.cfg, flows.Deps{Store: store, Keys: keys, Clock: b.clock,
			Senders: map[vigil.Channel]vigil.Sender{vigil.ChannelEmail: sender}})
		require.NoError(t, err)

		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- queue.Run(runCtx, vigil.Workers{Deliver: svc.Deliver}) }()
		require.Eventually(t, func() bool { return len(sender.Sent()) == 1 }, 20*time.Second, 20*time.Millisecond)
		cancel()
		require.NoError(t, <-done)
		require.Empty(t, b.email.Sent())

		// A refused start (cooldown) leaves no message behind.
		_, err = b.svc.Start(ctx, flows.StartRequest{IdentityID: identity, Address: "max@example.com", Channel: vigil.ChannelEmail})
		requireCode(t, err, vigil.ERATELIMITED)
		msgs, err := b.svc.Messages(ctx, "max@example.com", "", 0)
		require.NoError(t, err)
		require.Len(t, msgs, 1)
	})
}

func TestDeliveryRetriesAndExpiry(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, open vigiltest.Opener) {
		b := setup(t, open, nil)
		ctx := context.Background()
		fails := 2
		b.email.Fail = func(vigil.Outbound) error {
			if fails > 0 {
				fails--
				return errors.New("connection reset")
			}
			return nil
		}
		b.start(t, "nia@example.com", vigil.ChannelEmail, vigil.MethodCode)
		ms, err := b.db.Store.ListMessages(ctx, vigil.MessageFilter{IdentityID: identity})
		require.NoError(t, err)
		id := ms[0].ID
		var retries []time.Time
		for range 3 {
			at, err := b.svc.Deliver(ctx, id)
			require.NoError(t, err)
			if !at.IsZero() {
				retries = append(retries, at)
				b.clock.Advance(at.Sub(b.clock.Now()))
			}
		}
		require.Len(t, retries, 2)
		require.Len(t, b.email.Sent(), 1)
		msgs, err := b.svc.Messages(ctx, "", identity, 0)
		require.NoError(t, err)
		require.Equal(t, vigil.MessageSent, msgs[0].Status)
		require.Equal(t, 3, msgs[0].Attempts)
		require.Len(t, msgs[0].History, 3)

		// Permanent failure: no retry.
		b.email.Fail = func(vigil.Outbound) error { return vigil.Permanent(errors.New("550 no such user")) }
		b.start(t, "omar@example.com", vigil.ChannelEmail, vigil.MethodCode)
		ms, err = b.db.Store.ListMessages(ctx, vigil.MessageFilter{RecipientIndexes: nil, IdentityID: identity, Limit: 1})
		require.NoError(t, err)
		at, err := b.svc.Deliver(ctx, ms[0].ID)
		require.NoError(t, err)
		require.True(t, at.IsZero())
		m, err := b.db.Store.GetMessage(ctx, ms[0].ID)
		require.NoError(t, err)
		require.Equal(t, vigil.MessageFailed, m.Status)

		// Never after expiry: the job runs late, nothing is sent.
		b.email.Fail = nil
		b.start(t, "pia@example.com", vigil.ChannelEmail, vigil.MethodCode)
		ms, err = b.db.Store.ListMessages(ctx, vigil.MessageFilter{IdentityID: identity, Limit: 1})
		require.NoError(t, err)
		b.clock.Advance(15 * time.Minute)
		sent := len(b.email.Sent())
		at, err = b.svc.Deliver(ctx, ms[0].ID)
		require.NoError(t, err)
		require.True(t, at.IsZero())
		require.Len(t, b.email.Sent(), sent)
		m, err = b.db.Store.GetMessage(ctx, ms[0].ID)
		require.NoError(t, err)
		require.Equal(t, vigil.MessageExpired, m.Status)

		// A retry that would land past the expiry is not scheduled.
		b.email.Fail = func(vigil.Outbound) error { return errors.New("timeout") }
		b.start(t, "quinn@example.com", vigil.ChannelEmail, vigil.MethodCode)
		ms, err = b.db.Store.ListMessages(ctx, vigil.MessageFilter{IdentityID: identity, Limit: 1})
		require.NoError(t, err)
		b.clock.Advance(15*time.Minute - time.Second)
		at, err = b.svc.Deliver(ctx, ms[0].ID)
		require.NoError(t, err)
		require.True(t, at.IsZero())
		m, err = b.db.Store.GetMessage(ctx, ms[0].ID)
		require.NoError(t, err)
		require.Equal(t, vigil.MessageFailed, m.Status)
	})
}

func TestAuditTamperingIsDetected(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		tamper string
	}{
		{"edited", `UPDATE audit_events SET actor = 'someone-else' WHERE seq = 2`},
		{"deleted", `DELETE FROM audit_events WHERE seq = 2`},
		{"tail deleted", `DELETE FROM audit_events WHERE seq = (SELECT max(seq) FROM audit_events)`},
	}
	eachStore(t, func(t *testing.T, open vigiltest.Opener) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, open, nil)
				ctx := context.Background()
				st := b.start(t, "rae@example.com", vigil.ChannelEmail, vigil.MethodCode)
				b.deliver(t)
				code := codeOf(t, b.email.Last(t))
				_, err := b.svc.CheckCode(ctx, st.ID, wrong(code), "")
				requireCode(t, err, vigil.EWRONGCODE)
				_, err = b.svc.CheckCode(ctx, st.ID, code, "")
				require.NoError(t, err)
				rep, err := b.svc.VerifyAudit(ctx)
				require.NoError(t, err)
				require.True(t, rep.OK, rep.Reason)
				require.EqualValues(t, 3, rep.Checked)

				b.db.Exec(t, tc.tamper)
				rep, err = b.svc.VerifyAudit(ctx)
				require.NoError(t, err)
				require.False(t, rep.OK)
				require.NotEmpty(t, rep.Reason)
			})
		}
	})
}

func TestResendRevealsNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, vigiltest.Stores()[0], func(c *flows.Config) { c.ResendFloor = 80 * time.Millisecond })
	ctx := context.Background()
	b.start(t, "sam@example.com", vigil.ChannelEmail, vigil.MethodCode)
	b.clock.Advance(time.Minute)
	for _, r := range []flows.ResendRequest{
		{Address: "sam@example.com"},
		{Address: "nobody@example.com"},
		{ID: "0b6f3f34-5f0c-4c3e-9c55-4d1c2e8f0a99"},
		{ID: "not-a-uuid"},
	} {
		began := time.Now()
		require.NoError(t, b.svc.Resend(ctx, r))
		require.GreaterOrEqual(t, time.Since(began), 80*time.Millisecond, "every answer takes at least the floor")
	}
	_, err := b.svc.CheckCode(ctx, "0b6f3f34-5f0c-4c3e-9c55-4d1c2e8f0a99", "123456", "")
	requireCode(t, err, vigil.ENOTFOUND)
	requireCode(t, b.svc.Resend(ctx, flows.ResendRequest{}), vigil.EINVALID)
	requireCode(t, b.svc.Resend(ctx, flows.ResendRequest{Address: "not an address"}), vigil.EADDRESS)
}
