package storetest

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil"
)

const (
	testIP        = "203.0.113.7"
	testUserAgent = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"
)

func newDevice(identityID string) *vigil.Device {
	t := now()
	return &vigil.Device{
		ID:           newID(),
		IdentityID:   identityID,
		Name:         "Firefox on Linux",
		Kind:         vigil.DeviceBrowser,
		TokenHash:    randBytes(32),
		UserAgent:    testUserAgent,
		IP:           testIP,
		CreatedBy:    "user",
		CreatedAt:    t,
		LastSeenAt:   t,
		TrustedUntil: t.Add(30 * 24 * time.Hour),
	}
}

func newEnrollment(identityID string) *vigil.DeviceEnrollment {
	t := now()
	return &vigil.DeviceEnrollment{
		ID:         newID(),
		IdentityID: identityID,
		TokenHash:  randBytes(32),
		Name:       "Front desk key",
		Kind:       vigil.DeviceSecurityKey,
		CreatedBy:  "admin:alice",
		CreatedAt:  t,
		ExpiresAt:  t.Add(24 * time.Hour),
	}
}

func newCeremony() *vigil.Ceremony {
	t := now()
	return &vigil.Ceremony{
		ID:        newID(),
		Kind:      vigil.CeremonyAssert,
		Session:   []byte(`{"challenge":"` + newID() + `"}`),
		CreatedAt: t,
		ExpiresAt: t.Add(5 * time.Minute),
	}
}

func newCredential(d *vigil.Device) *vigil.WebAuthnCredential {
	return &vigil.WebAuthnCredential{
		ID:           newID(),
		DeviceID:     d.ID,
		IdentityID:   d.IdentityID,
		CredentialID: randBytes(16),
		SignCount:    1,
		Data:         []byte(`{"publicKey":"` + newID() + `"}`),
		CreatedAt:    now(),
	}
}

//nolint:thelper // a group of subtests, not a helper: failures point at their own lines
func testDevice(t *testing.T, open Open) {
	both(t, "LoginRead", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		identity := newID()
		email, phone := newAddress(identity, vigil.ChannelEmail), newAddress(identity, vigil.ChannelSMS)
		phone.CreatedAt = email.CreatedAt.Add(time.Second)
		phone.UpdatedAt = phone.CreatedAt
		require.NoError(t, tx.InsertAddress(ctx, email))
		require.NoError(t, tx.InsertAddress(ctx, phone))
		require.NoError(t, tx.InsertAddress(ctx, newAddress(newID(), vigil.ChannelEmail)))
		d := newDevice(identity)
		d.PrevTokenHash = randBytes(32)
		require.NoError(t, tx.InsertDevice(ctx, d))
		want, err := tx.GetDevice(ctx, d.ID)
		require.NoError(t, err)

		// What the gate reads of a device.
		gateView := func(d *vigil.Device) *vigil.Device {
			if d == nil {
				return nil
			}
			return &vigil.Device{ID: d.ID, IdentityID: d.IdentityID, Kind: d.Kind, TokenHash: d.TokenHash,
				LastSeenAt: d.LastSeenAt, TrustedUntil: d.TrustedUntil, RevokedAt: d.RevokedAt}
		}
		addrs, got, err := tx.LoginRead(ctx, identity, d.TokenHash)
		require.NoError(t, err)
		require.Equal(t, []*vigil.Address{email, phone}, addrs)
		require.Equal(t, gateView(want), gateView(got))
		_, got, err = tx.LoginRead(ctx, identity, d.PrevTokenHash)
		require.NoError(t, err)
		require.Nil(t, got, "not by the token it replaced: FindDeviceByToken finds that")

		for _, h := range [][]byte{nil, {}, randBytes(32)} {
			addrs, got, err = tx.LoginRead(ctx, identity, h)
			require.NoError(t, err)
			require.Nil(t, got)
			require.Equal(t, []*vigil.Address{email, phone}, addrs)
		}
		// An identity without addresses still gets its device.
		addrs, got, err = tx.LoginRead(ctx, newID(), d.TokenHash)
		require.NoError(t, err)
		require.Empty(t, addrs)
		require.Equal(t, gateView(want), gateView(got))
		// A revoked device comes back revoked.
		ok, err := tx.RevokeDevice(ctx, d.ID, "admin", d.CreatedAt.Add(time.Minute))
		require.NoError(t, err)
		require.True(t, ok)
		_, got, err = tx.LoginRead(ctx, identity, d.TokenHash)
		require.NoError(t, err)
		require.NotNil(t, got.RevokedAt)
		addrs, got, err = tx.LoginRead(ctx, newID(), randBytes(32))
		require.NoError(t, err)
		require.Empty(t, addrs)
		require.Nil(t, got)
	})

	both(t, "InsertGet", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		d := newDevice(newID())
		require.NoError(t, tx.InsertDevice(ctx, d))
		got, err := tx.GetDevice(ctx, d.ID)
		require.NoError(t, err)
		require.Equal(t, d, got)

		// Every optional field set, times in another zone and at the
		// edges of microsecond precision.
		east := time.FixedZone("UTC+5:30", 5*3600+1800)
		at := time.Date(2031, 12, 31, 23, 59, 59, 999999000, east)
		full := newDevice(newID())
		full.Kind = vigil.DeviceMobileApp
		full.TokenHash = allBytes()
		full.PrevTokenHash = randBytes(32)
		full.Name = "Ünïcödé 🙂 'quote' \"dq\" \\ %_"
		full.CreatedBy = "admin:bob"
		full.CreatedAt = at.Add(-time.Hour)
		full.LastSeenAt = at
		full.TrustedUntil = time.Date(2001, 2, 3, 4, 5, 6, 1000, time.UTC)
		full.RotatedAt = new(at)
		full.RevokedAt = new(at.Add(time.Microsecond))
		full.RevokedReason = "clone_suspected"
		require.NoError(t, tx.InsertDevice(ctx, full))
		got, err = tx.GetDevice(ctx, full.ID)
		require.NoError(t, err)
		require.Equal(t, time.UTC, got.LastSeenAt.Location(), "times come back in UTC")
		require.Equal(t, time.UTC, got.RotatedAt.Location())
		want := *full
		want.CreatedAt, want.LastSeenAt = full.CreatedAt.UTC(), full.LastSeenAt.UTC()
		want.RotatedAt, want.RevokedAt = new(full.RotatedAt.UTC()), new(full.RevokedAt.UTC())
		require.Equal(t, &want, got)

		// A device enrolled with WebAuthn, not yet proven: no token, and
		// no client hints. nil stays nil.
		bare := newDevice(newID())
		bare.Kind = vigil.DeviceSecurityKey
		bare.TokenHash = nil
		bare.UserAgent, bare.IP, bare.Name = "", "", ""
		require.NoError(t, tx.InsertDevice(ctx, bare))
		got, err = tx.GetDevice(ctx, bare.ID)
		require.NoError(t, err)
		require.Equal(t, bare, got)
		require.Nil(t, got.TokenHash)
		require.Nil(t, got.PrevTokenHash)
		require.Nil(t, got.RotatedAt)
		require.Nil(t, got.RevokedAt)

		// An empty token hash is no token: it comes back nil.
		empty := newDevice(newID())
		empty.TokenHash, empty.PrevTokenHash = []byte{}, []byte{}
		require.NoError(t, tx.InsertDevice(ctx, empty))
		got, err = tx.GetDevice(ctx, empty.ID)
		require.NoError(t, err)
		require.Nil(t, got.TokenHash)
		require.Nil(t, got.PrevTokenHash)
	})

	both(t, "Missing", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		_, err := tx.GetDevice(ctx, newID())
		require.ErrorIs(t, err, vigil.ErrNotFound)
		_, err = tx.FindDeviceByToken(ctx, randBytes(32))
		require.ErrorIs(t, err, vigil.ErrNotFound)
		at := now()
		ok, err := tx.RotateDeviceToken(ctx, newID(), nil, randBytes(32), testIP, testUserAgent, time.Time{}, at)
		require.NoError(t, err)
		require.False(t, ok)
		ok, err = tx.TouchDevice(ctx, newID(), testIP, testUserAgent, at, at.Add(time.Hour))
		require.NoError(t, err)
		require.False(t, ok)
		ok, err = tx.RevokeDevice(ctx, newID(), "user", at)
		require.NoError(t, err)
		require.False(t, ok)
	})

	// The first row stays; the conflict does not spoil the transaction.
	both(t, "InsertConflict", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		d := newDevice(newID())
		require.NoError(t, tx.InsertDevice(ctx, d))
		dup := newDevice(newID())
		dup.ID = d.ID
		require.ErrorIs(t, tx.InsertDevice(ctx, dup), vigil.ErrConflict)
		got, err := tx.GetDevice(ctx, d.ID)
		require.NoError(t, err)
		require.Equal(t, d, got)
		require.NoError(t, tx.InsertDevice(ctx, newDevice(d.IdentityID)), "the Tx is still usable")
	})

	both(t, "FindDeviceByToken", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		d := newDevice(newID())
		other := newDevice(d.IdentityID)
		proving := newDevice(d.IdentityID)
		proving.TokenHash = nil
		for _, x := range []*vigil.Device{d, other, proving} {
			require.NoError(t, tx.InsertDevice(ctx, x))
		}

		got, err := tx.FindDeviceByToken(ctx, d.TokenHash)
		require.NoError(t, err)
		require.Equal(t, d, got)

		// After a rotation: by the new token and by the replaced one.
		first, second := d.TokenHash, randBytes(32)
		ok, err := tx.RotateDeviceToken(ctx, d.ID, first, second, testIP, testUserAgent, time.Time{}, now())
		require.NoError(t, err)
		require.True(t, ok)
		for _, h := range [][]byte{second, first} {
			got, err = tx.FindDeviceByToken(ctx, h)
			require.NoError(t, err)
			require.Equal(t, d.ID, got.ID)
			require.Equal(t, second, got.TokenHash)
			require.Equal(t, first, got.PrevTokenHash)
		}

		// Two rotations on, the first token is forgotten.
		third := randBytes(32)
		ok, err = tx.RotateDeviceToken(ctx, d.ID, second, third, testIP, testUserAgent, time.Time{}, now())
		require.NoError(t, err)
		require.True(t, ok)
		_, err = tx.FindDeviceByToken(ctx, first)
		require.ErrorIs(t, err, vigil.ErrNotFound)
		got, err = tx.FindDeviceByToken(ctx, second)
		require.NoError(t, err)
		require.Equal(t, d.ID, got.ID)

		// A revoked device is still found: the caller decides.
		ok, err = tx.RevokeDevice(ctx, other.ID, "user", now())
		require.NoError(t, err)
		require.True(t, ok)
		got, err = tx.FindDeviceByToken(ctx, other.TokenHash)
		require.NoError(t, err)
		require.Equal(t, other.ID, got.ID)

		// No hash finds nothing, not the device that has no token.
		for _, h := range [][]byte{nil, {}} {
			_, err = tx.FindDeviceByToken(ctx, h)
			require.ErrorIs(t, err, vigil.ErrNotFound)
		}
	})

	both(t, "RotateDeviceToken", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		d := newDevice(newID())
		require.NoError(t, tx.InsertDevice(ctx, d))
		at := now().Add(time.Minute)
		until := at.Add(60 * 24 * time.Hour)
		to := randBytes(32)

		ok, err := tx.RotateDeviceToken(ctx, d.ID, randBytes(32), to, "198.51.100.1", "curl/8", until, at)
		require.NoError(t, err)
		require.False(t, ok, "wrong from")
		ok, err = tx.RotateDeviceToken(ctx, d.ID, nil, to, "198.51.100.1", "curl/8", until, at)
		require.NoError(t, err)
		require.False(t, ok, "nil from, but the device has a token")
		got, err := tx.GetDevice(ctx, d.ID)
		require.NoError(t, err)
		require.Equal(t, d, got, "unchanged")

		ok, err = tx.RotateDeviceToken(ctx, d.ID, d.TokenHash, to, "198.51.100.1", "curl/8", until, at)
		require.NoError(t, err)
		require.True(t, ok)
		want := *d
		want.PrevTokenHash, want.TokenHash = d.TokenHash, to
		want.IP, want.UserAgent = "198.51.100.1", "curl/8"
		want.LastSeenAt, want.RotatedAt, want.TrustedUntil = at, new(at), until
		got, err = tx.GetDevice(ctx, d.ID)
		require.NoError(t, err)
		require.Equal(t, &want, got)

		// The replaced token rotates nothing.
		ok, err = tx.RotateDeviceToken(ctx, d.ID, d.TokenHash, randBytes(32), testIP, testUserAgent, until, at)
		require.NoError(t, err)
		require.False(t, ok, "replaced token")

		// A zero until keeps TrustedUntil.
		later, next := at.Add(time.Minute), randBytes(32)
		ok, err = tx.RotateDeviceToken(ctx, d.ID, to, next, testIP, testUserAgent, time.Time{}, later)
		require.NoError(t, err)
		require.True(t, ok)
		got, err = tx.GetDevice(ctx, d.ID)
		require.NoError(t, err)
		require.Equal(t, until, got.TrustedUntil)
		require.Equal(t, later, got.LastSeenAt)
		require.Equal(t, later, *got.RotatedAt)
		require.Equal(t, to, got.PrevTokenHash)
		require.Equal(t, next, got.TokenHash)

		// Revoked: never again.
		ok, err = tx.RevokeDevice(ctx, d.ID, "user", later)
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = tx.RotateDeviceToken(ctx, d.ID, next, randBytes(32), testIP, testUserAgent, until, later)
		require.NoError(t, err)
		require.False(t, ok, "revoked")
		got, err = tx.GetDevice(ctx, d.ID)
		require.NoError(t, err)
		require.Equal(t, next, got.TokenHash)

		// A device without a token yet takes its first with a nil (or
		// empty) from, and only then.
		for _, from := range [][]byte{nil, {}} {
			p := newDevice(d.IdentityID)
			p.TokenHash = nil
			require.NoError(t, tx.InsertDevice(ctx, p))
			ok, err = tx.RotateDeviceToken(ctx, p.ID, randBytes(32), to, testIP, testUserAgent, until, at)
			require.NoError(t, err)
			require.False(t, ok, "the device has no token")
			first := randBytes(32)
			ok, err = tx.RotateDeviceToken(ctx, p.ID, from, first, testIP, testUserAgent, until, at)
			require.NoError(t, err)
			require.True(t, ok)
			got, err = tx.GetDevice(ctx, p.ID)
			require.NoError(t, err)
			require.Equal(t, first, got.TokenHash)
			require.Nil(t, got.PrevTokenHash)
			ok, err = tx.RotateDeviceToken(ctx, p.ID, from, randBytes(32), testIP, testUserAgent, until, at)
			require.NoError(t, err)
			require.False(t, ok, "it has a token now")
		}
	})

	// Two requests presenting the same token at once: exactly one rotates
	// it; the other then holds a replaced token.
	t.Run("RotateConcurrent", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		s := open(t)
		d := newDevice(newID())
		require.NoError(t, s.InsertDevice(ctx, d))
		const n = 20
		tos := make([][]byte, n)
		for i := range tos {
			tos[i] = randBytes(32)
		}
		won := make([]bool, n)
		errs := concurrently(n, func(i int) error {
			return inTxOrNot(ctx, s, i, func(tx vigil.Tx) error {
				ok, err := tx.RotateDeviceToken(ctx, d.ID, d.TokenHash, tos[i], testIP, testUserAgent, time.Time{}, now())
				won[i] = ok
				return err
			})
		})
		winner := soleWinner(t, "rotations", n, func(i int) bool {
			require.NoError(t, errs[i])
			return won[i]
		})
		got, err := s.GetDevice(ctx, d.ID)
		require.NoError(t, err)
		require.Equal(t, tos[winner], got.TokenHash)
		require.Equal(t, d.TokenHash, got.PrevTokenHash)
	})

	both(t, "TouchDevice", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		d := newDevice(newID())
		require.NoError(t, tx.InsertDevice(ctx, d))
		at := d.LastSeenAt.Add(30 * time.Minute)

		// Seen at or after staleBefore: fresh enough, untouched.
		for _, stale := range []time.Time{d.LastSeenAt, d.LastSeenAt.Add(-time.Microsecond)} {
			ok, err := tx.TouchDevice(ctx, d.ID, "198.51.100.1", "curl/8", at, stale)
			require.NoError(t, err)
			require.False(t, ok)
		}
		got, err := tx.GetDevice(ctx, d.ID)
		require.NoError(t, err)
		require.Equal(t, d, got)

		ok, err := tx.TouchDevice(ctx, d.ID, "198.51.100.1", "curl/8", at, d.LastSeenAt.Add(time.Microsecond))
		require.NoError(t, err)
		require.True(t, ok)
		want := *d
		want.LastSeenAt, want.IP, want.UserAgent = at, "198.51.100.1", "curl/8"
		got, err = tx.GetDevice(ctx, d.ID)
		require.NoError(t, err)
		require.Equal(t, &want, got, "only last seen and the client hints change")

		// Just touched: not again within the window.
		ok, err = tx.TouchDevice(ctx, d.ID, testIP, testUserAgent, at.Add(time.Minute), at.Add(-time.Hour))
		require.NoError(t, err)
		require.False(t, ok)
	})

	both(t, "RevokeDevice", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		d := newDevice(newID())
		require.NoError(t, tx.InsertDevice(ctx, d))
		at := now().Add(time.Minute)

		ok, err := tx.RevokeDevice(ctx, d.ID, "token_reused", at)
		require.NoError(t, err)
		require.True(t, ok)
		want := *d
		want.RevokedAt, want.RevokedReason = new(at), "token_reused"
		got, err := tx.GetDevice(ctx, d.ID)
		require.NoError(t, err)
		require.Equal(t, &want, got)

		// Once: the first revocation's time and reason stay.
		ok, err = tx.RevokeDevice(ctx, d.ID, "admin", at.Add(time.Minute))
		require.NoError(t, err)
		require.False(t, ok)
		got, err = tx.GetDevice(ctx, d.ID)
		require.NoError(t, err)
		require.Equal(t, &want, got)
	})

	both(t, "ListDevices", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		identity := newID()
		base := now()
		at := func(d *vigil.Device, ago time.Duration) *vigil.Device {
			d.CreatedAt = base.Add(-ago)
			d.LastSeenAt = d.CreatedAt
			return d
		}
		oldest := at(newDevice(identity), 3*time.Hour)
		middle := at(newDevice(identity), 2*time.Hour)
		newest := at(newDevice(identity), time.Hour)
		stranger := at(newDevice(newID()), 0)
		// Inserted out of order, so that order comes from the query.
		for _, d := range []*vigil.Device{middle, stranger, newest, oldest} {
			require.NoError(t, tx.InsertDevice(ctx, d))
		}
		ok, err := tx.RevokeDevice(ctx, middle.ID, "user", base)
		require.NoError(t, err)
		require.True(t, ok)
		middle.RevokedAt, middle.RevokedReason = new(base), "user"

		got, err := tx.ListDevices(ctx, identity)
		require.NoError(t, err)
		require.Equal(t, []*vigil.Device{newest, middle, oldest}, got, "newest first, revoked included")

		got, err = tx.ListDevices(ctx, stranger.IdentityID)
		require.NoError(t, err)
		require.Equal(t, []*vigil.Device{stranger}, got)

		got, err = tx.ListDevices(ctx, newID())
		require.NoError(t, err)
		require.Empty(t, got)
	})
}

//nolint:thelper // a group of subtests, not a helper: failures point at their own lines
func testEnrollment(t *testing.T, open Open) {
	both(t, "InsertGetFind", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		e := newEnrollment(newID())
		require.NoError(t, tx.InsertEnrollment(ctx, e))
		got, err := tx.GetEnrollment(ctx, e.ID)
		require.NoError(t, err)
		require.Equal(t, e, got)
		require.Nil(t, got.UsedAt)
		require.Empty(t, got.DeviceID)
		got, err = tx.FindEnrollmentByToken(ctx, e.TokenHash)
		require.NoError(t, err)
		require.Equal(t, e, got)

		// Inserted used (an import, say), with every byte value.
		used := newEnrollment(e.IdentityID)
		used.TokenHash = allBytes()
		used.UsedAt = new(now())
		used.DeviceID = newID()
		require.NoError(t, tx.InsertEnrollment(ctx, used))
		got, err = tx.FindEnrollmentByToken(ctx, allBytes())
		require.NoError(t, err)
		require.Equal(t, used, got)
	})

	both(t, "Missing", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		_, err := tx.GetEnrollment(ctx, newID())
		require.ErrorIs(t, err, vigil.ErrNotFound)
		_, err = tx.FindEnrollmentByToken(ctx, randBytes(32))
		require.ErrorIs(t, err, vigil.ErrNotFound)
		ok, err := tx.UseEnrollment(ctx, newID(), newID(), now())
		require.NoError(t, err)
		require.False(t, ok)
	})

	both(t, "InsertConflict", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		e := newEnrollment(newID())
		require.NoError(t, tx.InsertEnrollment(ctx, e))

		sameToken := newEnrollment(newID())
		sameToken.TokenHash = e.TokenHash
		require.ErrorIs(t, tx.InsertEnrollment(ctx, sameToken), vigil.ErrConflict)
		sameID := newEnrollment(e.IdentityID)
		sameID.ID = e.ID
		require.ErrorIs(t, tx.InsertEnrollment(ctx, sameID), vigil.ErrConflict)

		got, err := tx.FindEnrollmentByToken(ctx, e.TokenHash)
		require.NoError(t, err)
		require.Equal(t, e, got)
		_, err = tx.GetEnrollment(ctx, sameToken.ID)
		require.ErrorIs(t, err, vigil.ErrNotFound)
		require.NoError(t, tx.InsertEnrollment(ctx, newEnrollment(e.IdentityID)), "the Tx is still usable")
	})

	both(t, "UseEnrollment", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		e := newEnrollment(newID())
		require.NoError(t, tx.InsertEnrollment(ctx, e))
		at, device := now().Add(time.Minute), newID()

		ok, err := tx.UseEnrollment(ctx, e.ID, device, at)
		require.NoError(t, err)
		require.True(t, ok)
		want := *e
		want.UsedAt, want.DeviceID = new(at), device
		got, err := tx.GetEnrollment(ctx, e.ID)
		require.NoError(t, err)
		require.Equal(t, &want, got)

		// Once: the first device stays.
		ok, err = tx.UseEnrollment(ctx, e.ID, newID(), at.Add(time.Minute))
		require.NoError(t, err)
		require.False(t, ok)
		got, err = tx.FindEnrollmentByToken(ctx, e.TokenHash)
		require.NoError(t, err)
		require.Equal(t, &want, got, "found by token, used or not")
	})

	t.Run("UseConcurrent", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		s := open(t)
		e := newEnrollment(newID())
		require.NoError(t, s.InsertEnrollment(ctx, e))
		const n = 20
		devices := make([]string, n)
		for i := range devices {
			devices[i] = newID()
		}
		won := make([]bool, n)
		errs := concurrently(n, func(i int) error {
			return inTxOrNot(ctx, s, i, func(tx vigil.Tx) error {
				ok, err := tx.UseEnrollment(ctx, e.ID, devices[i], now())
				won[i] = ok
				return err
			})
		})
		winner := soleWinner(t, "uses", n, func(i int) bool {
			require.NoError(t, errs[i])
			return won[i]
		})
		got, err := s.GetEnrollment(ctx, e.ID)
		require.NoError(t, err)
		require.Equal(t, devices[winner], got.DeviceID)
	})
}

//nolint:thelper // a group of subtests, not a helper: failures point at their own lines
func testCeremony(t *testing.T, open Open) {
	t.Run("Sweep", func(t *testing.T) {
		t.Parallel()
		st := open(t)
		ctx := t.Context()
		old := newCeremony()
		old.CreatedAt = old.CreatedAt.Add(-3 * time.Hour)
		old.ExpiresAt = old.CreatedAt.Add(5 * time.Minute)
		require.NoError(t, st.InsertCeremony(ctx, old))
		// Stores sweep on one insert in a few hundred at most.
		var recent *vigil.Ceremony
		for range 600 {
			recent = newCeremony()
			require.NoError(t, st.InsertCeremony(ctx, recent))
		}
		_, err := st.TakeCeremony(ctx, old.ID, recent.CreatedAt)
		require.ErrorIs(t, err, vigil.ErrNotFound, "a ceremony long expired is swept")
		_, err = st.TakeCeremony(ctx, recent.ID, recent.CreatedAt)
		require.NoError(t, err)
	})
	both(t, "InsertTake", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		for _, c := range []*vigil.Ceremony{
			newCeremony(),
			func() *vigil.Ceremony {
				c := newCeremony()
				c.Kind = vigil.CeremonyRegister
				c.EnrollmentID = newID()
				c.Session = allBytes()
				return c
			}(),
			func() *vigil.Ceremony {
				c := newCeremony()
				c.Session = nil // nil stays nil
				return c
			}(),
		} {
			require.NoError(t, tx.InsertCeremony(ctx, c))
			at := c.CreatedAt.Add(time.Second)
			got, err := tx.TakeCeremony(ctx, c.ID, at)
			require.NoError(t, err)
			require.Equal(t, c, got, "as it was before: unused")

			// Once.
			_, err = tx.TakeCeremony(ctx, c.ID, at)
			require.ErrorIs(t, err, vigil.ErrNotFound)
		}

		_, err := tx.TakeCeremony(ctx, newID(), now())
		require.ErrorIs(t, err, vigil.ErrNotFound)
	})

	// Expiry is the caller's: an expired ceremony is still taken.
	both(t, "TakeExpired", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		c := newCeremony()
		require.NoError(t, tx.InsertCeremony(ctx, c))
		got, err := tx.TakeCeremony(ctx, c.ID, c.ExpiresAt.Add(time.Hour))
		require.NoError(t, err)
		require.Equal(t, c, got)
	})

	// Inserted used: there is nothing to take.
	both(t, "InsertedUsed", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		c := newCeremony()
		c.UsedAt = new(c.CreatedAt)
		require.NoError(t, tx.InsertCeremony(ctx, c))
		_, err := tx.TakeCeremony(ctx, c.ID, now())
		require.ErrorIs(t, err, vigil.ErrNotFound)
	})

	both(t, "InsertConflict", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		c := newCeremony()
		require.NoError(t, tx.InsertCeremony(ctx, c))
		dup := newCeremony()
		dup.ID = c.ID
		require.ErrorIs(t, tx.InsertCeremony(ctx, dup), vigil.ErrConflict)
		got, err := tx.TakeCeremony(ctx, c.ID, now())
		require.NoError(t, err)
		require.Equal(t, c, got, "the first row stays")
	})

	// One challenge answered many times at once (a replayed response):
	// exactly one take succeeds.
	t.Run("TakeConcurrent", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		s := open(t)
		c := newCeremony()
		require.NoError(t, s.InsertCeremony(ctx, c))
		const n = 20
		taken := make([]*vigil.Ceremony, n)
		errs := concurrently(n, func(i int) error {
			return inTxOrNot(ctx, s, i, func(tx vigil.Tx) error {
				got, err := tx.TakeCeremony(ctx, c.ID, now())
				taken[i] = got
				return err
			})
		})
		winner := soleWinner(t, "takes", n, func(i int) bool {
			if errs[i] != nil {
				require.ErrorIs(t, errs[i], vigil.ErrNotFound, "take %d", i)
				return false
			}
			return true
		})
		require.Equal(t, c, taken[winner])
	})
}

//nolint:thelper // a group of subtests, not a helper: failures point at their own lines
func testCredential(t *testing.T, open Open) {
	// device inserts a device for an identity, for credentials to belong
	// to.
	device := func(t *testing.T, tx vigil.Tx, identityID string) *vigil.Device {
		t.Helper()
		d := newDevice(identityID)
		d.Kind, d.TokenHash = vigil.DeviceSecurityKey, nil
		require.NoError(t, tx.InsertDevice(t.Context(), d))
		return d
	}

	both(t, "InsertFind", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		d := device(t, tx, newID())
		c := newCredential(d)
		require.NoError(t, tx.InsertCredential(ctx, c))
		got, err := tx.FindCredential(ctx, c.CredentialID)
		require.NoError(t, err)
		require.Equal(t, c, got)
		require.Nil(t, got.LastUsedAt)

		// Every byte value, the largest counter, a last use; and nil
		// data stays nil.
		full := newCredential(d)
		full.CredentialID = allBytes()
		full.SignCount = math.MaxUint32
		full.Data = allBytes()
		full.LastUsedAt = new(now())
		bare := newCredential(d)
		bare.SignCount = 0
		bare.Data = nil
		for _, x := range []*vigil.WebAuthnCredential{full, bare} {
			require.NoError(t, tx.InsertCredential(ctx, x))
			got, err = tx.FindCredential(ctx, x.CredentialID)
			require.NoError(t, err)
			require.Equal(t, x, got)
		}
	})

	both(t, "Missing", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		_, err := tx.FindCredential(ctx, randBytes(16))
		require.ErrorIs(t, err, vigil.ErrNotFound)
		c := newCredential(newDevice(newID()))
		require.ErrorIs(t, tx.UpdateCredential(ctx, c), vigil.ErrNotFound)
	})

	both(t, "InsertConflict", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		d := device(t, tx, newID())
		c := newCredential(d)
		require.NoError(t, tx.InsertCredential(ctx, c))

		// The same authenticator registered again, by any device of any
		// identity.
		again := newCredential(device(t, tx, newID()))
		again.CredentialID = c.CredentialID
		require.ErrorIs(t, tx.InsertCredential(ctx, again), vigil.ErrConflict)
		sameID := newCredential(d)
		sameID.ID = c.ID
		require.ErrorIs(t, tx.InsertCredential(ctx, sameID), vigil.ErrConflict)

		got, err := tx.FindCredential(ctx, c.CredentialID)
		require.NoError(t, err)
		require.Equal(t, c, got, "the first row stays")
		require.NoError(t, tx.InsertCredential(ctx, newCredential(d)), "the Tx is still usable")
	})

	both(t, "ListCredentials", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		identity := newID()
		d1, d2 := device(t, tx, identity), device(t, tx, identity)
		base := now()
		first, second, third := newCredential(d1), newCredential(d2), newCredential(d1)
		first.CreatedAt, second.CreatedAt, third.CreatedAt = base.Add(-3*time.Minute), base.Add(-2*time.Minute), base.Add(-time.Minute)
		stranger := newCredential(device(t, tx, newID()))
		for _, c := range []*vigil.WebAuthnCredential{third, stranger, first, second} {
			require.NoError(t, tx.InsertCredential(ctx, c))
		}

		got, err := tx.ListCredentials(ctx, identity)
		require.NoError(t, err)
		require.Equal(t, []*vigil.WebAuthnCredential{first, second, third}, got, "oldest first, every device of the identity")

		got, err = tx.ListCredentials(ctx, newID())
		require.NoError(t, err)
		require.Empty(t, got)
	})

	both(t, "UpdateCredential", open, func(t *testing.T, tx vigil.Tx) {
		ctx := t.Context()
		d := device(t, tx, newID())
		c := newCredential(d)
		require.NoError(t, tx.InsertCredential(ctx, c))

		// Only the counter, the data and the last use change.
		c.SignCount = 42
		c.Data = []byte(`{"publicKey":"rotated"}`)
		c.LastUsedAt = new(now().Add(time.Minute))
		changed := *c
		changed.DeviceID, changed.IdentityID, changed.CredentialID = newID(), newID(), randBytes(16)
		changed.CreatedAt = c.CreatedAt.Add(time.Hour)
		require.NoError(t, tx.UpdateCredential(ctx, &changed))
		got, err := tx.FindCredential(ctx, c.CredentialID)
		require.NoError(t, err)
		require.Equal(t, c, got)

		c.LastUsedAt = nil
		require.NoError(t, tx.UpdateCredential(ctx, c))
		got, err = tx.FindCredential(ctx, c.CredentialID)
		require.NoError(t, err)
		require.Equal(t, c, got)
	})

	// A credential belongs to a stored device. Against the Store only: in
	// PostgreSQL the violation ends the transaction.
	t.Run("UnknownDevice", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		require.Error(t, s.InsertCredential(t.Context(), newCredential(newDevice(newID()))))
	})
}
