package flows_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/nyaruka/phonenumbers"
	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/flows"
	"github.com/vigil-auth/vigil/internal/vigiltest"
)

// rewire rebuilds the bundle's service on the same store with other
// dependencies.
func (b *testBundle) rewire(t *testing.T, mod func(*flows.Deps)) {
	t.Helper()
	deps := flows.Deps{
		Store:      b.db.Store,
		Keys:       mustKeys(t),
		Clock:      b.clock,
		Senders:    map[vigil.Channel]vigil.Sender{vigil.ChannelEmail: b.email, vigil.ChannelSMS: b.sms},
		Logger:     slog.New(slog.NewTextHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Identities: b.ids,
	}
	mod(&deps)
	var err error
	b.svc, err = flows.New(b.cfg, deps)
	require.NoError(t, err)
}

// observer records what the service reports for metrics.
type observer struct {
	mu         sync.Mutex
	deliveries []string // channel/provider/country/status
	refused    []string // country/reason
	low        []string // scope/value/throttled
}

func (o *observer) VerificationStarted(vigil.Channel, vigil.Purpose)      {}
func (o *observer) CodeChecked(vigil.Channel, string)                     {}
func (o *observer) MessageAttempted(vigil.Channel, string, time.Duration) {}
func (o *observer) Delivery(ch vigil.Channel, provider, country, status string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.deliveries = append(o.deliveries, fmt.Sprintf("%s/%s/%s/%s", ch, provider, country, status))
}
func (o *observer) SMSRefused(country, reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.refused = append(o.refused, country+"/"+reason)
}
func (o *observer) ConversionLow(scope, value string, _ float64, throttled bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.low = append(o.low, fmt.Sprintf("%s/%s/%v", scope, value, throttled))
}
func (o *observer) get(f func(o *observer) []string) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), f(o)...)
}

// failing is a provider that fails every message with err, recording what
// it was asked to send.
func failing(err error) *vigiltest.Sender {
	s := &vigiltest.Sender{}
	s.Fail = func(vigil.Outbound) error { return err }
	return s
}

// asked records the messages a failing provider was handed.
type asked struct {
	mu   sync.Mutex
	msgs []vigil.Outbound
	err  error
}

func (a *asked) Send(_ context.Context, m vigil.Outbound) (vigil.SendResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.msgs = append(a.msgs, m)
	return vigil.SendResult{}, a.err
}

func (a *asked) Sent() []vigil.Outbound {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]vigil.Outbound(nil), a.msgs...)
}

func TestFailover(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, open vigiltest.Opener) {
		transient := []struct {
			name string
			err  error
		}{
			{"timeout", fmt.Errorf("first: POST https://first.example/send: %w", context.DeadlineExceeded)},
			{"503", errors.New("first: answered 503 Service Unavailable")},
		}
		for _, tc := range transient {
			t.Run("transient "+tc.name+" passes the same code to the next", func(t *testing.T) {
				ctx := context.Background()
				b := setup(t, open, nil)
				obs := &observer{}
				first := &asked{err: tc.err}
				second := &vigiltest.Sender{}
				b.rewire(t, func(d *flows.Deps) {
					d.Observer = obs
					d.Chains = map[vigil.Channel][]flows.Provider{vigil.ChannelSMS: {{Name: "first", Sender: first}, {Name: "second", Sender: second}}}
				})
				st := b.start(t, "+4915123456789", vigil.ChannelSMS, vigil.MethodCode)
				b.deliver(t)
				require.Len(t, first.Sent(), 1)
				require.Len(t, second.Sent(), 1)
				require.Equal(t, codeOf(t, first.Sent()[0]), codeOf(t, second.Last(t)), "the same code")
				require.Equal(t, first.Sent()[0].ID, second.Last(t).ID, "the same message, so the same idempotency key")

				ms, err := b.db.Store.ListMessages(ctx, vigil.MessageFilter{VerificationID: st.ID})
				require.NoError(t, err)
				require.Len(t, ms, 1)
				require.Equal(t, vigil.MessageSent, ms[0].Status)
				require.Equal(t, "second", ms[0].Provider)
				require.Equal(t, "DE", ms[0].Country)
				require.Equal(t, "+491512", ms[0].Prefix)
				attempts, err := b.db.Store.ListMessageAttempts(ctx, ms[0].ID)
				require.NoError(t, err)
				require.Len(t, attempts, 2)
				require.Equal(t, []string{"first", "second"}, []string{attempts[0].Provider, attempts[1].Provider})
				require.Equal(t, []string{"transient_error", "sent"}, []string{attempts[0].Outcome, attempts[1].Outcome})
				require.Equal(t, []string{"sms/second/DE/sent"}, obs.get(func(o *observer) []string { return o.deliveries }))

				_, err = b.svc.CheckCode(ctx, st.ID, codeOf(t, second.Last(t)), "")
				require.NoError(t, err)
				require.Equal(t, []string{"sms/second/DE/sent", "sms/second/DE/verified"}, obs.get(func(o *observer) []string { return o.deliveries }))
			})
		}

		t.Run("a permanent failure stops: no failover", func(t *testing.T) {
			ctx := context.Background()
			b := setup(t, open, nil)
			first := &asked{err: vigil.Permanent(errors.New("first: invalid number (21211)"))}
			second := &vigiltest.Sender{}
			b.rewire(t, func(d *flows.Deps) {
				d.Chains = map[vigil.Channel][]flows.Provider{vigil.ChannelSMS: {{Name: "first", Sender: first}, {Name: "second", Sender: second}}}
			})
			st := b.start(t, "+4915123456789", vigil.ChannelSMS, vigil.MethodCode)
			b.deliver(t)
			require.Len(t, first.Sent(), 1)
			require.Empty(t, second.Sent())
			ms, err := b.db.Store.ListMessages(ctx, vigil.MessageFilter{VerificationID: st.ID})
			require.NoError(t, err)
			require.Equal(t, vigil.MessageFailed, ms[0].Status)
			require.Contains(t, ms[0].LastError, "21211")
		})

		t.Run("every provider transient: retried later from the first", func(t *testing.T) {
			ctx := context.Background()
			b := setup(t, open, nil)
			first := &asked{err: errors.New("first: 503")}
			second := &asked{err: errors.New("second: 429")}
			b.rewire(t, func(d *flows.Deps) {
				d.Chains = map[vigil.Channel][]flows.Provider{vigil.ChannelSMS: {{Name: "first", Sender: first}, {Name: "second", Sender: second}}}
			})
			st := b.start(t, "+4915123456789", vigil.ChannelSMS, vigil.MethodCode)
			ms, err := b.db.Store.ListMessages(ctx, vigil.MessageFilter{VerificationID: st.ID})
			require.NoError(t, err)
			retryAt, err := b.svc.Deliver(ctx, ms[0].ID)
			require.NoError(t, err)
			require.False(t, retryAt.IsZero(), "a retry is due")
			m, err := b.db.Store.GetMessage(ctx, ms[0].ID)
			require.NoError(t, err)
			require.Equal(t, vigil.MessageRetrying, m.Status)
			require.Equal(t, 2, m.Attempts)
		})

		t.Run("a provider that makes its own codes is skipped for links", func(t *testing.T) {
			b := setup(t, open, nil)
			otp := newOTP()
			b.rewire(t, func(d *flows.Deps) {
				d.Chains = map[vigil.Channel][]flows.Provider{vigil.ChannelEmail: {{Name: "verify", OTP: otp}, {Name: "smtp", Sender: b.email}}}
			})
			b.start(t, "ann@example.com", vigil.ChannelEmail, vigil.MethodLink)
			b.deliver(t)
			require.Empty(t, otp.sent())
			tokenOf(t, b.email.Last(t))
		})
	})
}

// otpProvider makes and checks its own codes, as Twilio Verify does.
type otpProvider struct {
	mu       sync.Mutex
	codes    map[string]string // provider id -> code
	to       map[string]string // provider id -> recipient
	checks   int
	checkErr error
}

func newOTP() *otpProvider {
	return &otpProvider{codes: map[string]string{}, to: map[string]string{}}
}

func (p *otpProvider) SendOTP(_ context.Context, r vigil.OTPRequest) (vigil.SendResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	id := fmt.Sprintf("VE%d", len(p.codes)+1)
	p.codes[id] = fmt.Sprintf("%06d", 424200+len(p.codes))
	p.to[id] = r.To
	return vigil.SendResult{Provider: "verify", ProviderID: id}, nil
}

func (p *otpProvider) CheckOTP(_ context.Context, c vigil.OTPCheck) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.checks++
	if p.checkErr != nil {
		return false, p.checkErr
	}
	code, ok := p.codes[c.ProviderID]
	return ok && p.to[c.ProviderID] == c.To && code == c.Code, nil
}

func (p *otpProvider) sent() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.codes)
}

func (p *otpProvider) code(t *testing.T, id string) string {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.codes[id]
	require.True(t, ok, "no code sent under %s", id)
	return c
}

func (p *otpProvider) checked() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.checks
}

func TestProviderManagedCodes(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, open vigiltest.Opener) {
		ctx := context.Background()
		b := setup(t, open, nil)
		otp := newOTP()
		b.rewire(t, func(d *flows.Deps) {
			d.Chains = map[vigil.Channel][]flows.Provider{vigil.ChannelSMS: {{Name: "verify", OTP: otp}}}
		})
		st := b.start(t, "+4915123456789", vigil.ChannelSMS, vigil.MethodCode)
		b.deliver(t)
		require.Empty(t, b.sms.Sent(), "Vigil's own code is never sent")
		ms, err := b.db.Store.ListMessages(ctx, vigil.MessageFilter{VerificationID: st.ID})
		require.NoError(t, err)
		require.Equal(t, "verify", ms[0].Provider)
		code := otp.code(t, ms[0].ProviderID)

		_, err = b.svc.CheckCode(ctx, st.ID, wrong(code), "")
		e := requireCode(t, err, vigil.EWRONGCODE)
		require.Equal(t, 2, *e.AttemptsLeft, "Vigil counts the attempts")

		otp.mu.Lock()
		otp.checkErr = errors.New("verify: 503")
		otp.mu.Unlock()
		_, err = b.svc.CheckCode(ctx, st.ID, code, "")
		requireCode(t, err, vigil.EUNAVAILABLE)
		otp.mu.Lock()
		otp.checkErr = nil
		otp.mu.Unlock()

		v, err := b.svc.CheckCode(ctx, st.ID, code, "")
		require.NoError(t, err)
		require.Equal(t, vigil.StateVerified, v.State)
		_, err = b.svc.CheckCode(ctx, st.ID, code, "")
		requireCode(t, err, vigil.EUSED)
		require.Equal(t, 3, otp.checked(), "a used code is refused without asking the provider")

		events, err := b.db.Store.ListAudit(ctx, vigil.AuditFilter{IdentityID: identity})
		require.NoError(t, err)
		var types []string
		for _, e := range events {
			types = append(types, e.Type)
		}
		require.Contains(t, types, vigil.EventVerificationFailed)
		require.Contains(t, types, vigil.EventVerificationSucceeded)
	})

	t.Run("concurrent correct codes verify once and ask the provider at most max times", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		b := setup(t, vigiltest.Stores()[0], nil)
		otp := newOTP()
		b.rewire(t, func(d *flows.Deps) {
			d.Chains = map[vigil.Channel][]flows.Provider{vigil.ChannelSMS: {{Name: "verify", OTP: otp}}}
		})
		st := b.start(t, "+4915123456789", vigil.ChannelSMS, vigil.MethodCode)
		b.deliver(t)
		ms, err := b.db.Store.ListMessages(ctx, vigil.MessageFilter{VerificationID: st.ID})
		require.NoError(t, err)
		code := otp.code(t, ms[0].ProviderID)
		var (
			wg sync.WaitGroup
			mu sync.Mutex
			ok int
		)
		for range 20 {
			wg.Go(func() {
				if _, err := b.svc.CheckCode(ctx, st.ID, code, ""); err == nil {
					mu.Lock()
					ok++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		require.Equal(t, 1, ok)
		require.LessOrEqual(t, otp.checked(), 3)
	})
}

// example returns libphonenumber's example number of a type in a region,
// in E.164.
func example(t *testing.T, region string, typ phonenumbers.PhoneNumberType) string {
	t.Helper()
	n := phonenumbers.GetExampleNumberForType(region, typ)
	require.NotNil(t, n, "no example %v number for %s", typ, region)
	return phonenumbers.Format(n, phonenumbers.E164)
}

// anyExample is an example number of the type from the first region that
// has one.
func anyExample(t *testing.T, typ phonenumbers.PhoneNumberType) string {
	t.Helper()
	for _, region := range []string{"GB", "DE", "FR", "US", "CH", "AT", "BE", "ES", "IT"} {
		if n := phonenumbers.GetExampleNumberForType(region, typ); n != nil {
			return phonenumbers.Format(n, phonenumbers.E164)
		}
	}
	t.Fatalf("no example %v number", typ)
	return ""
}

func TestSMSProtection(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, open vigiltest.Opener) {
		start := func(b *testBundle, number string) error {
			_, err := b.svc.Start(context.Background(), flows.StartRequest{IdentityID: newIdentity(), Address: number, Channel: vigil.ChannelSMS, Actor: "user"})
			return err
		}

		t.Run("number types and countries are refused before any provider", func(t *testing.T) {
			b := setup(t, open, func(c *flows.Config) { c.SMS.AllowedCountries = []string{"DE", "FR"} })
			obs := &observer{}
			b.rewire(t, func(d *flows.Deps) { d.Observer = obs })
			for _, number := range []string{
				anyExample(t, phonenumbers.PREMIUM_RATE),
				anyExample(t, phonenumbers.SHARED_COST),
				anyExample(t, phonenumbers.VOIP),
				anyExample(t, phonenumbers.TOLL_FREE),
				example(t, "DE", phonenumbers.FIXED_LINE),
			} {
				for range 5 { // a burst
					requireCode(t, start(b, number), vigil.EUNSUPPORTEDADDR)
				}
			}
			for range 5 {
				requireCode(t, start(b, example(t, "GB", phonenumbers.MOBILE)), vigil.EUNSUPPORTEDADDR)
			}
			require.NoError(t, start(b, example(t, "FR", phonenumbers.MOBILE)))
			b.deliver(t)
			require.Len(t, b.sms.Sent(), 1, "only the allowed number reached the provider")
			refused := obs.get(func(o *observer) []string { return o.refused })
			require.Len(t, refused, 30)
			require.Contains(t, refused, "GB/number", "a mobile number outside the allowlist")
			ms, err := b.db.Store.ListMessages(context.Background(), vigil.MessageFilter{})
			require.NoError(t, err)
			require.Len(t, ms, 1, "nothing was queued for a refused number")
		})

		t.Run("per-prefix velocity and global budget", func(t *testing.T) {
			b := setup(t, open, func(c *flows.Config) {
				c.SMS.PrefixPerHour = 3
				c.SMS.GlobalPerHour = 5
			})
			for i := range 6 {
				err := start(b, fmt.Sprintf("+49151234567%02d", i))
				if i < 3 {
					require.NoError(t, err)
				} else {
					requireCode(t, err, vigil.ERATELIMITED)
				}
			}
			require.NoError(t, start(b, "+4917612345678"), "another prefix has its own budget")
			require.NoError(t, start(b, "+4916012345678"))
			requireCode(t, start(b, "+4915712345678"), vigil.ERATELIMITED) // global budget of 5 spent
			b.deliver(t)
			require.Len(t, b.sms.Sent(), 5)
			b.clock.Advance(time.Hour)
			require.NoError(t, start(b, "+4915123456799"), "a new hour")
		})

		t.Run("the conversion watch throttles a prefix whose codes are not verified", func(t *testing.T) {
			b := setup(t, open, func(c *flows.Config) {
				c.SMS.Conversion = flows.ConversionWatch{Window: time.Hour, MinSent: 5, Threshold: 0.5, Throttle: true}
			})
			obs := &observer{}
			b.rewire(t, func(d *flows.Deps) { d.Observer = obs })
			// A healthy prefix: every code is verified.
			ctx := context.Background()
			for i := range 6 {
				id := newIdentity()
				st, err := b.svc.Start(ctx, flows.StartRequest{IdentityID: id, Address: fmt.Sprintf("+49170123456%02d", i), Channel: vigil.ChannelSMS})
				require.NoError(t, err)
				b.deliver(t)
				_, err = b.svc.CheckCode(ctx, st.ID, codeOf(t, b.sms.Last(t)), "")
				require.NoError(t, err)
			}
			// A pumped prefix: codes go out and nobody types them.
			for i := range 5 {
				require.NoError(t, start(b, fmt.Sprintf("+49151234567%02d", i)))
			}
			b.deliver(t)
			sent := len(b.sms.Sent())
			err := start(b, "+4915123456799")
			requireCode(t, err, vigil.ERATELIMITED)
			b.deliver(t)
			require.Len(t, b.sms.Sent(), sent, "the throttled prefix reaches no provider")
			require.Contains(t, obs.get(func(o *observer) []string { return o.low }), "prefix/+491512/true")
			require.NoError(t, start(b, "+4917012345699"), "the healthy prefix still sends")

			b.clock.Advance(time.Hour + 20*time.Minute)
			require.NoError(t, start(b, "+4915123456799"), "once the window slides past, the prefix sends again")
		})

		t.Run("watch off", func(t *testing.T) {
			b := setup(t, open, func(c *flows.Config) {
				c.SMS.Conversion.Threshold = 0
				c.SMS.PrefixPerHour = 0
			})
			for i := range 30 {
				require.NoError(t, start(b, fmt.Sprintf("+49151234567%02d", i)))
			}
		})
	})
}

var identitySeq struct {
	mu sync.Mutex
	n  int
}

func newIdentity() string {
	identitySeq.mu.Lock()
	defer identitySeq.mu.Unlock()
	identitySeq.n++
	return fmt.Sprintf("identity-%d", identitySeq.n)
}

func TestDeliveryStatusMovesForward(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, open vigiltest.Opener) {
		ctx := context.Background()
		b := setup(t, open, nil)
		obs := &observer{}
		b.rewire(t, func(d *flows.Deps) {
			d.Observer = obs
			d.Chains = map[vigil.Channel][]flows.Provider{vigil.ChannelSMS: {{Name: "twilio", Sender: b.sms}}}
		})
		st := b.start(t, "+4915123456789", vigil.ChannelSMS, vigil.MethodCode)
		b.deliver(t)
		ms, err := b.db.Store.ListMessages(ctx, vigil.MessageFilter{VerificationID: st.ID})
		require.NoError(t, err)
		m := ms[0]
		require.Equal(t, vigil.MessageSent, m.Status)
		update := func(status vigil.MessageStatus, code string) error {
			return b.svc.UpdateDelivery(ctx, vigil.StatusUpdate{Provider: "twilio", ProviderID: m.ProviderID, Status: status, ErrorCode: code})
		}
		status := func() vigil.MessageStatus {
			got, err := b.db.Store.GetMessage(ctx, m.ID)
			require.NoError(t, err)
			return got.Status
		}
		require.NoError(t, update(vigil.MessageSent, ""))
		require.Equal(t, vigil.MessageSent, status())
		require.NoError(t, update(vigil.MessageDelivered, ""))
		require.Equal(t, vigil.MessageDelivered, status())
		require.NoError(t, update(vigil.MessageSent, ""), "a late report is no error")
		require.Equal(t, vigil.MessageDelivered, status(), "and does not move the status back")
		require.NoError(t, update(vigil.MessageUndelivered, "30003"))
		require.Equal(t, vigil.MessageDelivered, status(), "a final status never changes")
		require.Equal(t, []string{"sms/twilio/DE/sent", "sms/twilio/DE/delivered"}, obs.get(func(o *observer) []string { return o.deliveries }))

		requireCode(t, b.svc.UpdateDelivery(ctx, vigil.StatusUpdate{Provider: "twilio", ProviderID: "SMunknown", Status: vigil.MessageDelivered}), vigil.ENOTFOUND)
		requireCode(t, b.svc.UpdateDelivery(ctx, vigil.StatusUpdate{Provider: "other", ProviderID: m.ProviderID, Status: vigil.MessageDelivered}), vigil.ENOTFOUND)
		requireCode(t, update("read", ""), vigil.EINVALID)

		st2 := b.start(t, "+4917612345678", vigil.ChannelSMS, vigil.MethodCode)
		b.deliver(t)
		ms, err = b.db.Store.ListMessages(ctx, vigil.MessageFilter{VerificationID: st2.ID})
		require.NoError(t, err)
		require.NoError(t, b.svc.UpdateDelivery(ctx, vigil.StatusUpdate{Provider: "twilio", ProviderID: ms[0].ProviderID, Status: vigil.MessageUndelivered, ErrorCode: "30003"}))
		got, err := b.db.Store.GetMessage(ctx, ms[0].ID)
		require.NoError(t, err)
		require.Equal(t, vigil.MessageUndelivered, got.Status)
		require.Equal(t, "twilio error 30003", got.LastError)
		events, err := b.db.Store.ListAudit(ctx, vigil.AuditFilter{IdentityID: identity, Limit: 500})
		require.NoError(t, err)
		last := events[len(events)-1]
		require.Equal(t, vigil.EventMessageFailed, last.Type)
		require.Equal(t, st2.ID, last.VerificationID)
		require.Equal(t, "30003", last.Data["error_code"])
	})
}

func TestGateSendsToTheOtherChannel(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, open vigiltest.Opener) {
		id := vigil.Identity{ID: identity, Active: true, Addresses: []vigil.IdentityAddress{
			{Channel: vigil.ChannelEmail, Value: "ann@example.com"},
			{Channel: vigil.ChannelSMS, Value: "+4915123456789"},
		}}
		gate := func(b *testBundle) *flows.Decision {
			d, err := b.svc.Gate(context.Background(), flows.LoginRequest{Identity: id})
			require.NoError(t, err)
			return d
		}

		t.Run("email delivery failed", func(t *testing.T) {
			b := setup(t, open, nil)
			b.rewire(t, func(d *flows.Deps) {
				d.Senders[vigil.ChannelEmail] = failing(vigil.Permanent(errors.New("smtp: 550 mailbox unavailable")))
			})
			first := gate(b)
			require.Equal(t, vigil.ChannelEmail, first.Channel)
			b.deliver(t)
			second := gate(b)
			require.Equal(t, flows.ReasonVerificationRequired, second.Reason)
			require.Equal(t, vigil.ChannelSMS, second.Channel)
			require.Equal(t, vigil.ChannelEmail, second.FallbackFrom)
			require.Equal(t, "a***@example.com", second.FallbackDestination)
			require.NotEqual(t, first.ChallengeID, second.ChallengeID)
			b.deliver(t)
			_, err := b.svc.CheckCode(context.Background(), second.ChallengeID, codeOf(t, b.sms.Last(t)), "")
			require.NoError(t, err)
			require.True(t, gate(b).Allow)
		})

		t.Run("the number is refused", func(t *testing.T) {
			b := setup(t, open, func(c *flows.Config) { c.Require = flows.RequirePhone; c.SMS.AllowedCountries = []string{"FR"} })
			d := gate(b)
			require.Equal(t, flows.ReasonUndeliverable, d.Reason)
			require.Equal(t, vigil.ChannelSMS, d.Channel)

			b = setup(t, open, func(c *flows.Config) { c.SMS.AllowedCountries = []string{"FR"} })
			id.Addresses[0], id.Addresses[1] = id.Addresses[1], id.Addresses[0]
			b.cfg.EnableEmail = true
			d = gate(b)
			require.Equal(t, vigil.ChannelEmail, d.Channel, "email is tried first anyway")
		})

		t.Run("only channel failed: a new code is sent there", func(t *testing.T) {
			b := setup(t, open, func(c *flows.Config) { c.Require = flows.RequireEmail })
			flaky := &asked{err: vigil.Permanent(errors.New("smtp: 550"))}
			b.rewire(t, func(d *flows.Deps) { d.Senders[vigil.ChannelEmail] = flaky })
			first := gate(b)
			b.deliver(t)
			b.clock.Advance(2 * time.Minute) // past the cooldown
			second := gate(b)
			require.Equal(t, flows.ReasonVerificationRequired, second.Reason)
			require.Equal(t, vigil.ChannelEmail, second.Channel)
			require.Empty(t, second.FallbackFrom)
			require.Equal(t, first.ChallengeID, second.ChallengeID, "the same verification, a new code")
			b.deliver(t)
			require.Len(t, flaky.Sent(), 2)
		})
	})
}

// captcha accepts the tokens it was given.
type captcha struct {
	mu    sync.Mutex
	valid map[string]bool
	calls int
	err   error
}

func (c *captcha) Verify(_ context.Context, token, _ string) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	return c.valid[token], c.err
}

func TestResendCaptcha(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, vigiltest.Stores()[0], nil)
	b.cfg.CaptchaOnResend = true
	cp := &captcha{valid: map[string]bool{"good": true}}
	b.rewire(t, func(d *flows.Deps) { d.Captcha = cp })
	st := b.start(t, "ann@example.com", vigil.ChannelEmail, vigil.MethodCode)
	b.clock.Advance(2 * time.Minute)

	requireCode(t, b.svc.Resend(ctx, flows.ResendRequest{ID: st.ID, Anonymous: true}), vigil.ECAPTCHA)
	requireCode(t, b.svc.Resend(ctx, flows.ResendRequest{ID: st.ID, Anonymous: true, Captcha: "bad"}), vigil.ECAPTCHA)
	cp.mu.Lock()
	cp.err = errors.New("siteverify: 503")
	cp.mu.Unlock()
	requireCode(t, b.svc.Resend(ctx, flows.ResendRequest{ID: st.ID, Anonymous: true, Captcha: "good"}), vigil.EUNAVAILABLE)
	cp.mu.Lock()
	cp.err = nil
	cp.mu.Unlock()
	b.deliver(t)
	require.Len(t, b.email.Sent(), 1, "nothing was resent so far")
	require.NoError(t, b.svc.Resend(ctx, flows.ResendRequest{ID: st.ID, Anonymous: true, Captcha: "good"}))
	b.deliver(t)
	b.clock.Advance(2 * time.Minute)
	require.NoError(t, b.svc.Resend(ctx, flows.ResendRequest{ID: st.ID}), "a caller with a session needs none")
	b.deliver(t)
	require.Len(t, b.email.Sent(), 3)
	require.Equal(t, 3, cp.calls, "the empty token was refused without a call")

	_, err := flows.New(b.cfg, flows.Deps{Store: b.db.Store, Keys: mustKeys(t)})
	require.Error(t, err, "CaptchaOnResend without a Captcha")
}

func TestMessagesInTheirLanguage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, vigiltest.Stores()[0], nil)
	st, err := b.svc.Start(ctx, flows.StartRequest{IdentityID: identity, Address: "ann@example.com", Channel: vigil.ChannelEmail,
		Locale: "de-AT", AcceptLanguage: "fr"})
	require.NoError(t, err)
	b.deliver(t)
	msg := b.email.Last(t)
	require.Equal(t, "de", msg.Locale, "the identity's locale first, by its base language")
	require.Contains(t, msg.Text, codeOf(t, msg))

	b.clock.Advance(2 * time.Minute)
	require.NoError(t, b.svc.Resend(ctx, flows.ResendRequest{ID: st.ID}))
	b.deliver(t)
	require.Equal(t, "de", b.email.Last(t).Locale, "a resend keeps the language")
	b.clock.Advance(2 * time.Minute)
	require.NoError(t, b.svc.Resend(ctx, flows.ResendRequest{ID: st.ID, AcceptLanguage: "es-MX, en;q=0.5"}))
	b.deliver(t)
	require.Equal(t, "es", b.email.Last(t).Locale, "unless the caller asks for another")

	_, err = b.svc.Start(ctx, flows.StartRequest{IdentityID: identity, Address: "+4915123456789", Channel: vigil.ChannelSMS, AcceptLanguage: "fr-CH, fr;q=0.9"})
	require.NoError(t, err)
	_, err = b.svc.Start(ctx, flows.StartRequest{IdentityID: "other", Address: "+4917612345678", Channel: vigil.ChannelSMS, Locale: "ja"})
	require.NoError(t, err)
	b.deliver(t)
	require.Equal(t, "fr", b.sms.To(t, "+4915123456789").Locale)
	require.Equal(t, "en", b.sms.To(t, "+4917612345678").Locale, "an unsupported language gets the default")
	require.NotEqual(t, b.sms.To(t, "+4915123456789").Text, b.sms.To(t, "+4917612345678").Text)
}

func TestDeliveryReportOutrunsTheSend(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, vigiltest.Stores()[0], nil)
	b.rewire(t, func(d *flows.Deps) {
		d.Chains = map[vigil.Channel][]flows.Provider{vigil.ChannelSMS: {{Name: "twilio", Sender: b.sms}}}
	})
	st := b.start(t, "+4915123456789", vigil.ChannelSMS, vigil.MethodCode)
	ms, err := b.db.Store.ListMessages(ctx, vigil.MessageFilter{VerificationID: st.ID})
	require.NoError(t, err)
	// The provider reports on "t1" (the id the test sender gives its
	// first message) 300 ms before Vigil records that id.
	sent := make(chan error, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		_, err := b.svc.Deliver(ctx, ms[0].ID)
		sent <- err
	}()
	require.NoError(t, b.svc.UpdateDelivery(ctx, vigil.StatusUpdate{Provider: "twilio", ProviderID: "t1", Status: vigil.MessageDelivered}))
	require.NoError(t, <-sent)
	ms, err = b.db.Store.ListMessages(ctx, vigil.MessageFilter{VerificationID: st.ID})
	require.NoError(t, err)
	require.Equal(t, vigil.MessageDelivered, ms[0].Status)
}
