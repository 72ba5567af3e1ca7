package flows_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/adapters/webauthn"
	"github.com/vigil-auth/vigil/flows"
	"github.com/vigil-auth/vigil/internal/vigiltest"
	"github.com/vigil-auth/vigil/internal/webauthntest"
)

const (
	flowA   = "5c2b8a74-7c0e-4d0b-9a57-2f5d0c1b9e11"
	flowB   = "7d3c9b85-8d1f-4e1c-8b68-3a6e1d2c0f22"
	firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
)

// stepUp is a bundle whose gate challenges new devices. The identity's
// email is verified at Kratos; its phone was verified through Vigil, so
// that a new sign-in notice has somewhere to go.
func stepUp(t *testing.T, open vigiltest.Opener) *testBundle {
	t.Helper()
	b := setup(t, open, func(c *flows.Config) { c.Devices.StepUp = true })
	b.verify(t, "+4915123456789", vigil.ChannelSMS)
	return b
}

var kratosIdentity = vigil.Identity{ID: identity, Active: true, Addresses: []vigil.IdentityAddress{
	{Channel: vigil.ChannelEmail, Value: "ann@example.com", Verified: true},
	{Channel: vigil.ChannelSMS, Value: "+4915123456789"},
}}

func (b *testBundle) login(t *testing.T, flow, token string) *flows.Decision {
	t.Helper()
	d, err := b.svc.Gate(t.Context(), flows.LoginRequest{
		Identity: kratosIdentity, FlowID: flow, DeviceToken: token,
		Origin: flows.Origin{ClientIP: "203.0.113.7", UserAgent: firefox},
	})
	require.NoError(t, err)
	return d
}

// trust passes the step-up of flowA and trusts the device; it returns the
// device token.
func (b *testBundle) trust(t *testing.T) *flows.IssuedDevice {
	t.Helper()
	d := b.login(t, flowA, "")
	require.Equal(t, flows.ReasonNewDevice, d.Reason)
	b.deliver(t)
	res, err := b.svc.Check(t.Context(), flows.CheckRequest{
		ID: d.ChallengeID, Code: codeOf(t, b.email.Last(t)), FlowID: flowA,
		Trust:  &flows.TrustRequest{},
		Origin: flows.Origin{ClientIP: "203.0.113.7", UserAgent: firefox},
	})
	require.NoError(t, err)
	require.NotNil(t, res.Device)
	require.Len(t, res.Device.Token, 43)
	return res.Device
}

func (b *testBundle) auditTypes(t *testing.T) []string {
	t.Helper()
	es, err := b.svc.Audit(t.Context(), vigil.AuditFilter{IdentityID: identity, Limit: 1000})
	require.NoError(t, err)
	var out []string
	for _, e := range es {
		out = append(out, e.Type)
	}
	return out
}

func (b *testBundle) device(t *testing.T, id string) flows.DeviceView {
	t.Helper()
	ds, err := b.svc.Devices(t.Context(), identity)
	require.NoError(t, err)
	for _, d := range ds {
		if d.ID == id {
			return d
		}
	}
	t.Fatalf("no device %s", id)
	return flows.DeviceView{}
}

func TestStepUpOnNewDevice(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, open vigiltest.Opener) {
		t.Run("a new device is challenged; the passed flow goes through; a trusted device skips", func(t *testing.T) {
			b := stepUp(t, open)
			smsBefore := len(b.sms.Sent())

			d := b.login(t, flowA, "")
			require.False(t, d.Allow)
			require.Equal(t, flows.ReasonNewDevice, d.Reason)
			require.Equal(t, vigil.ChannelEmail, d.Channel, "the code goes to a verified address, email first")
			again := b.login(t, flowA, "")
			require.Equal(t, d.ChallengeID, again.ChallengeID, "a retry reuses the live challenge")

			v, err := b.svc.GetVerification(t.Context(), d.ChallengeID)
			require.NoError(t, err)
			require.Equal(t, vigil.PurposeLoginStepUp, v.Purpose)

			dev := b.trust(t)
			require.True(t, dev.Device.Trusted)
			require.Equal(t, "Firefox on Linux", dev.Device.Name)
			require.Equal(t, "user", dev.Device.CreatedBy)
			require.True(t, b.login(t, flowA, "").Allow, "the flow whose challenge was passed goes through")
			require.Equal(t, flows.ReasonNewDevice, b.login(t, flowB, "").Reason, "another flow from an unknown device does not")
			require.True(t, b.login(t, flowB, dev.Token).Allow, "the trusted device skips the step-up")

			// The phone hears of the new sign-in.
			b.runQueue(t)
			require.Eventually(t, func() bool { return len(b.sms.Sent()) > smsBefore }, 10*time.Second, 20*time.Millisecond)
			notice := b.sms.Last(t)
			require.Equal(t, "+4915123456789", notice.To)
			require.Contains(t, notice.Text, "Firefox on Linux")
			require.Contains(t, notice.Text, "203.0.113.7")
			require.Eventually(t, func() bool {
				return strings.Contains(strings.Join(b.auditTypes(t), ","), vigil.EventNewDeviceNoticeSent)
			}, 10*time.Second, 20*time.Millisecond)
			require.Contains(t, b.auditTypes(t), vigil.EventDeviceTrusted)
		})

		t.Run("a pass counts for the flow the person names", func(t *testing.T) {
			b := stepUp(t, open)
			d := b.login(t, flowA, "")
			b.deliver(t)
			_, err := b.svc.Check(t.Context(), flows.CheckRequest{ID: d.ChallengeID, Code: codeOf(t, b.email.Last(t)), FlowID: flowB})
			require.NoError(t, err)
			require.True(t, b.login(t, flowB, "").Allow)
			require.False(t, b.login(t, flowA, "").Allow, "the flow the code was first sent for was not the one passed")
		})

		t.Run("the code sent at registration is also the first login's step-up", func(t *testing.T) {
			b := setup(t, open, func(c *flows.Config) { c.Devices.StepUp = true })
			fresh := vigil.Identity{ID: identity, Active: true, Addresses: []vigil.IdentityAddress{
				{Channel: vigil.ChannelEmail, Value: "ann@example.com"},
			}}
			require.NoError(t, b.svc.Registered(t.Context(), fresh, flows.Origin{}))
			d, err := b.svc.Gate(t.Context(), flows.LoginRequest{Identity: fresh, FlowID: flowA})
			require.NoError(t, err)
			require.Equal(t, flows.ReasonVerificationRequired, d.Reason)
			b.deliver(t)
			_, err = b.svc.CheckCode(t.Context(), d.ChallengeID, codeOf(t, b.email.Last(t)), "")
			require.NoError(t, err)
			d, err = b.svc.Gate(t.Context(), flows.LoginRequest{Identity: fresh, FlowID: flowA})
			require.NoError(t, err)
			require.True(t, d.Allow, "one code for the first login: %+v", d)
			d, err = b.svc.Gate(t.Context(), flows.LoginRequest{Identity: fresh, FlowID: flowB})
			require.NoError(t, err)
			require.Equal(t, flows.ReasonNewDevice, d.Reason)
		})

		t.Run("the device is read with the addresses Vigil verified", func(t *testing.T) {
			b := stepUp(t, open)
			dev := b.trust(t)
			// Kratos has not heard that the phone is verified: the gate
			// reads Vigil's addresses, and the device in the same read.
			phoneOnly := vigil.Identity{ID: identity, Active: true, Addresses: []vigil.IdentityAddress{
				{Channel: vigil.ChannelSMS, Value: "+49 151 23456789"},
			}}
			login := func(token string) *flows.Decision {
				d, err := b.svc.Gate(t.Context(), flows.LoginRequest{Identity: phoneOnly, FlowID: flowB, DeviceToken: token})
				require.NoError(t, err)
				return d
			}
			require.True(t, login(dev.Token).Allow)
			require.Equal(t, flows.ReasonNewDevice, login(strings.Repeat("A", 43)).Reason)
			_, err := b.svc.RevokeDevice(t.Context(), "", dev.Device.ID, "admin")
			require.NoError(t, err)
			d := login(dev.Token)
			require.Equal(t, flows.ReasonNewDevice, d.Reason)
			require.Equal(t, vigil.ChannelSMS, d.Channel, "the code goes to the phone Vigil verified")
		})

		t.Run("a trusted device never lets an unverified identity in", func(t *testing.T) {
			b := stepUp(t, open)
			dev := b.trust(t)
			unverified := vigil.Identity{ID: identity, Active: true, Addresses: []vigil.IdentityAddress{
				{Channel: vigil.ChannelEmail, Value: "new@example.com"},
			}}
			d, err := b.svc.Gate(t.Context(), flows.LoginRequest{Identity: unverified, FlowID: flowB, DeviceToken: dev.Token})
			require.NoError(t, err)
			require.False(t, d.Allow)
			require.Equal(t, flows.ReasonVerificationRequired, d.Reason)
		})

		t.Run("another identity's token does not count", func(t *testing.T) {
			b := stepUp(t, open)
			dev := b.trust(t)
			other := kratosIdentity
			other.ID = "1c7a4e2b-9d3f-4a6b-8c1d-2e3f4a5b6c7d"
			d, err := b.svc.Gate(t.Context(), flows.LoginRequest{Identity: other, FlowID: flowB, DeviceToken: dev.Token})
			require.NoError(t, err)
			require.Equal(t, flows.ReasonNewDevice, d.Reason)
			require.True(t, b.device(t, dev.Device.ID).Trusted, "the owner's device stays trusted")
		})

		t.Run("trust needs a name that is text", func(t *testing.T) {
			b := stepUp(t, open)
			d := b.login(t, flowA, "")
			b.deliver(t)
			_, err := b.svc.Check(t.Context(), flows.CheckRequest{ID: d.ChallengeID, Code: codeOf(t, b.email.Last(t)),
				Trust: &flows.TrustRequest{Name: "bad\u202ename"}})
			requireCode(t, err, vigil.EINVALID)
			res, err := b.svc.Check(t.Context(), flows.CheckRequest{ID: d.ChallengeID, Code: codeOf(t, b.email.Last(t)),
				Trust: &flows.TrustRequest{Name: "Ann's phone", Kind: vigil.DeviceMobileApp}})
			require.NoError(t, err, "a refused name costs no attempt and keeps the code")
			require.Equal(t, "Ann's phone", res.Device.Device.Name)
			require.Equal(t, vigil.DeviceMobileApp, res.Device.Device.Kind)
		})
	})
}

func TestDeviceTrustEnds(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, open vigiltest.Opener) {
		t.Run("after 30 days however often it is used", func(t *testing.T) {
			b := stepUp(t, open)
			dev := b.trust(t)
			for range 4 {
				b.clock.Advance(6 * 24 * time.Hour)
				require.True(t, b.login(t, flowB, dev.Token).Allow)
			}
			b.clock.Advance(5*24*time.Hour + time.Minute) // 29 days and a minute
			require.True(t, b.login(t, flowB, dev.Token).Allow)
			b.clock.Advance(24 * time.Hour)
			require.Equal(t, flows.ReasonNewDevice, b.login(t, flowB, dev.Token).Reason)
			require.False(t, b.device(t, dev.Device.ID).Trusted)
		})

		t.Run("after 7 idle days", func(t *testing.T) {
			b := stepUp(t, open)
			dev := b.trust(t)
			b.clock.Advance(7*24*time.Hour - time.Minute)
			require.True(t, b.login(t, flowB, dev.Token).Allow, "seen again just in time")
			b.clock.Advance(7*24*time.Hour + time.Hour)
			require.Equal(t, flows.ReasonNewDevice, b.login(t, flowB, dev.Token).Reason)
		})

		t.Run("at once on revocation", func(t *testing.T) {
			b := stepUp(t, open)
			dev := b.trust(t)
			require.True(t, b.login(t, flowB, dev.Token).Allow)
			v, err := b.svc.RevokeDevice(t.Context(), "", dev.Device.ID, "admin")
			require.NoError(t, err)
			require.NotNil(t, v.RevokedAt)
			require.Equal(t, "admin", v.RevokedReason)
			require.Equal(t, flows.ReasonNewDevice, b.login(t, flowB, dev.Token).Reason)
			require.Contains(t, b.auditTypes(t), vigil.EventDeviceRevoked)
		})

		t.Run("a use is recorded at most hourly", func(t *testing.T) {
			b := stepUp(t, open)
			dev := b.trust(t)
			count := func() int {
				n := 0
				for _, e := range b.auditTypes(t) {
					if e == vigil.EventDeviceUsed {
						n++
					}
				}
				return n
			}
			require.True(t, b.login(t, flowB, dev.Token).Allow)
			require.Equal(t, 0, count(), "seen a moment ago")
			b.clock.Advance(2 * time.Hour)
			require.True(t, b.login(t, flowB, dev.Token).Allow)
			require.True(t, b.login(t, flowB, dev.Token).Allow)
			require.Equal(t, 1, count())
			require.Equal(t, b.clock.Now().UTC().Truncate(time.Microsecond), b.device(t, dev.Device.ID).LastSeenAt.UTC())
		})
	})
}

func TestRotatedTokenReuseRevokes(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, open vigiltest.Opener) {
		b := stepUp(t, open)
		b.ids.sessions["ann"] = &vigil.Session{ID: "s1", IdentityID: identity}
		creds := vigil.SessionCredentials{SessionToken: "ann"}
		dev := b.trust(t)

		_, err := b.svc.RefreshDevice(t.Context(), vigil.SessionCredentials{}, dev.Token, flows.Origin{})
		requireCode(t, err, vigil.EUNAUTHORIZED)
		b.ids.sessions["bob"] = &vigil.Session{ID: "s2", IdentityID: "1c7a4e2b-9d3f-4a6b-8c1d-2e3f4a5b6c7d"}
		_, err = b.svc.RefreshDevice(t.Context(), vigil.SessionCredentials{SessionToken: "bob"}, dev.Token, flows.Origin{})
		requireCode(t, err, vigil.ENOTFOUND)

		next, err := b.svc.RefreshDevice(t.Context(), creds, dev.Token, flows.Origin{UserAgent: firefox})
		require.NoError(t, err)
		require.NotEqual(t, dev.Token, next.Token)
		require.True(t, b.login(t, flowB, next.Token).Allow)

		// The replaced token comes back: it was copied. The device is
		// revoked, for the copy and the original alike.
		require.Equal(t, flows.ReasonNewDevice, b.login(t, flowB, dev.Token).Reason)
		require.Equal(t, flows.ReasonNewDevice, b.login(t, flowB, next.Token).Reason)
		got := b.device(t, dev.Device.ID)
		require.False(t, got.Trusted)
		require.Equal(t, "token_reused", got.RevokedReason)
		types := b.auditTypes(t)
		require.Contains(t, types, vigil.EventDeviceTokenRotated)
		require.Contains(t, types, vigil.EventDeviceTokenReused)
		_, err = b.svc.RefreshDevice(t.Context(), creds, next.Token, flows.Origin{})
		requireCode(t, err, vigil.EEXPIRED)
	})
}

func TestSelfServiceDevices(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, open vigiltest.Opener) {
		b := stepUp(t, open)
		b.ids.sessions["ann"] = &vigil.Session{ID: "s1", IdentityID: identity}
		b.ids.sessions["bob"] = &vigil.Session{ID: "s2", IdentityID: "1c7a4e2b-9d3f-4a6b-8c1d-2e3f4a5b6c7d"}
		dev := b.trust(t)

		list, err := b.svc.SessionDevices(t.Context(), vigil.SessionCredentials{SessionToken: "ann"})
		require.NoError(t, err)
		require.Len(t, list, 1)
		require.Equal(t, "203.0.113.7", list[0].IP)
		require.Equal(t, firefox, list[0].UserAgent)
		none, err := b.svc.SessionDevices(t.Context(), vigil.SessionCredentials{SessionToken: "bob"})
		require.NoError(t, err)
		require.Empty(t, none)

		_, err = b.svc.SessionRevokeDevice(t.Context(), vigil.SessionCredentials{SessionToken: "bob"}, dev.Device.ID)
		requireCode(t, err, vigil.ENOTFOUND)
		require.True(t, b.login(t, flowB, dev.Token).Allow, "someone else cannot revoke it")
		_, err = b.svc.SessionRevokeDevice(t.Context(), vigil.SessionCredentials{SessionToken: "ann"}, dev.Device.ID)
		require.NoError(t, err)
		require.Equal(t, flows.ReasonNewDevice, b.login(t, flowB, dev.Token).Reason)
		_, err = b.svc.SessionRevokeDevice(t.Context(), vigil.SessionCredentials{SessionToken: "ann"}, "not-an-id")
		requireCode(t, err, vigil.ENOTFOUND)
	})
}

const (
	rpOrigin = "https://login.example.com"
	rpID     = "example.com"
)

// enrolling is a step-up bundle with a WebAuthn relying party.
func enrolling(t *testing.T, open vigiltest.Opener) *testBundle {
	t.Helper()
	b := stepUp(t, open)
	rp, err := webauthn.New(webauthn.Config{RPID: rpID, RPName: "Example", Origins: []string{rpOrigin}})
	require.NoError(t, err)
	b.rewire(t, func(d *flows.Deps) { d.WebAuthn = rp })
	return b
}

// enroll runs an admin's enrollment link on an authenticator.
func (b *testBundle) enroll(t *testing.T, a *webauthntest.Authenticator) *flows.IssuedDevice {
	t.Helper()
	e, err := b.svc.CreateEnrollment(t.Context(), identity, "Front desk", vigil.DeviceBrowser, "admin")
	require.NoError(t, err)
	u, err := url.Parse(e.URL)
	require.NoError(t, err)
	token := u.Query().Get("token")
	info, err := b.svc.PeekEnrollment(t.Context(), token)
	require.NoError(t, err)
	require.Equal(t, "Front desk", info.Name)

	c, err := b.svc.BeginEnrollment(t.Context(), token)
	require.NoError(t, err)
	resp, err := a.Create(c.Options, rpOrigin)
	require.NoError(t, err)
	dev, err := b.svc.FinishEnrollment(t.Context(), c.ID, token, resp, flows.Origin{UserAgent: firefox})
	require.NoError(t, err)

	_, err = b.svc.BeginEnrollment(t.Context(), token)
	requireCode(t, err, vigil.EUSED)
	return dev
}

// prove runs an assertion on a and returns the ceremony's response.
func (b *testBundle) assertion(t *testing.T, a *webauthntest.Authenticator, origin string) (string, []byte) {
	t.Helper()
	c, err := b.svc.BeginDeviceProof(t.Context(), "203.0.113.9")
	require.NoError(t, err)
	resp, err := a.Get(c.Options, origin)
	require.NoError(t, err)
	return c.ID, resp
}

func TestWebAuthnEnrollment(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, open vigiltest.Opener) {
		t.Run("enroll, then prove the device and pass the gate", func(t *testing.T) {
			b := enrolling(t, open)
			a := webauthntest.New(t)
			dev := b.enroll(t, a)
			require.Equal(t, "admin:admin", dev.Device.CreatedBy)
			require.Equal(t, "Front desk", dev.Device.Name)
			require.True(t, b.login(t, flowA, dev.Token).Allow)

			b.clock.Advance(29 * 24 * time.Hour) // used daily meanwhile, say
			id, resp := b.assertion(t, a, rpOrigin)
			proved, err := b.svc.FinishDeviceProof(t.Context(), id, resp, flows.Origin{})
			require.NoError(t, err)
			require.Equal(t, dev.Device.ID, proved.Device.ID)
			require.True(t, proved.Device.Trusted)
			require.True(t, proved.Device.TrustedUntil.After(b.clock.Now().Add(6*24*time.Hour)), "a proof renews trust")
			require.True(t, b.login(t, flowB, proved.Token).Allow)

			_, err = b.svc.FinishDeviceProof(t.Context(), id, resp, flows.Origin{})
			requireCode(t, err, vigil.ENOTFOUND) // the ceremony was used
			id2, _ := b.assertion(t, a, rpOrigin)
			_, err = b.svc.FinishDeviceProof(t.Context(), id2, resp, flows.Origin{})
			requireCode(t, err, vigil.EINVALID) // a replay answers another challenge
			require.True(t, b.login(t, flowB, proved.Token).Allow, "refused proofs leave the device alone")
			types := b.auditTypes(t)
			require.Contains(t, types, vigil.EventDeviceEnrollmentMade)
			require.Contains(t, types, vigil.EventDeviceEnrolled)
		})

		t.Run("wrong origin and expired ceremonies are refused", func(t *testing.T) {
			b := enrolling(t, open)
			a := webauthntest.New(t)
			b.enroll(t, a)
			id, resp := b.assertion(t, a, "https://login.example.com.evil.test")
			_, err := b.svc.FinishDeviceProof(t.Context(), id, resp, flows.Origin{})
			requireCode(t, err, vigil.EINVALID)

			id, resp = b.assertion(t, a, rpOrigin)
			b.clock.Advance(b.cfg.Devices.CeremonyTTL)
			_, err = b.svc.FinishDeviceProof(t.Context(), id, resp, flows.Origin{})
			requireCode(t, err, vigil.EEXPIRED)
		})

		t.Run("a sign counter that goes backwards revokes the device", func(t *testing.T) {
			b := enrolling(t, open)
			a := webauthntest.New(t)
			dev := b.enroll(t, a)
			id, resp := b.assertion(t, a, rpOrigin)
			proved, err := b.svc.FinishDeviceProof(t.Context(), id, resp, flows.Origin{})
			require.NoError(t, err)

			copied := a.Clone()
			copied.SetSignCount(0)
			id, resp = b.assertion(t, copied, rpOrigin)
			_, err = b.svc.FinishDeviceProof(t.Context(), id, resp, flows.Origin{})
			requireCode(t, err, vigil.EINVALID)
			got := b.device(t, dev.Device.ID)
			require.Equal(t, "clone_suspected", got.RevokedReason)
			require.Equal(t, flows.ReasonNewDevice, b.login(t, flowB, proved.Token).Reason)
			require.Contains(t, b.auditTypes(t), vigil.EventDeviceCloneSuspected)

			id, resp = b.assertion(t, a, rpOrigin)
			_, err = b.svc.FinishDeviceProof(t.Context(), id, resp, flows.Origin{})
			requireCode(t, err, vigil.EINVALID) // revoked stays revoked
		})

		t.Run("an expired or unknown link enrolls nothing", func(t *testing.T) {
			b := enrolling(t, open)
			e, err := b.svc.CreateEnrollment(t.Context(), identity, "", "", "admin")
			require.NoError(t, err)
			token := e.URL[strings.Index(e.URL, "token=")+len("token="):]
			b.clock.Advance(b.cfg.Devices.EnrollmentTTL)
			_, err = b.svc.BeginEnrollment(t.Context(), token)
			requireCode(t, err, vigil.EEXPIRED)
			_, err = b.svc.PeekEnrollment(t.Context(), strings.Repeat("A", 43))
			requireCode(t, err, vigil.ENOTFOUND)
			_, err = b.svc.CreateEnrollment(t.Context(), identity, "x", "toaster", "admin")
			requireCode(t, err, vigil.EINVALID)
		})

		t.Run("proofs are started at most as often as codes are checked", func(t *testing.T) {
			b := enrolling(t, open)
			for range b.cfg.CheckPerIP {
				_, err := b.svc.BeginDeviceProof(t.Context(), "198.51.100.1")
				require.NoError(t, err)
			}
			_, err := b.svc.BeginDeviceProof(t.Context(), "198.51.100.1")
			requireCode(t, err, vigil.ERATELIMITED)
			_, err = b.svc.BeginDeviceProof(t.Context(), "198.51.100.2")
			require.NoError(t, err)
		})

		t.Run("without a relying party enrollment is refused", func(t *testing.T) {
			b := stepUp(t, open)
			_, err := b.svc.CreateEnrollment(t.Context(), identity, "x", "", "admin")
			requireCode(t, err, vigil.EINVALID)
		})
	})
}
