package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil"
)

// written is one of everything the Tx methods write, so the rollback and
// commit tests cover every table.
type written struct {
	identity string
	addr     *vigil.Address
	ver      *vigil.Verification
	msg      *vigil.Message
	job      *vigil.Job
	hook     *vigil.HookResult
	window   time.Time
	key      string
	device   *vigil.Device
	enroll   *vigil.DeviceEnrollment
	ceremony *vigil.Ceremony
	cred     *vigil.WebAuthnCredential
}

func writeAll(ctx context.Context, t *testing.T, tx vigil.Tx) (*written, error) {
	t.Helper()
	w := &written{identity: newID(), window: now().Truncate(time.Minute), key: "k:" + newID()}
	w.addr = newAddress(w.identity, vigil.ChannelEmail)
	w.ver = newVerification(w.addr)
	w.msg = newMessage(w.ver)
	w.job = newJob()
	w.hook = newHookResult()
	w.device = newDevice(w.identity)
	w.enroll = newEnrollment(w.identity)
	w.ceremony = newCeremony()
	w.cred = newCredential(w.device)
	steps := []func() error{
		func() error { return tx.InsertAddress(ctx, w.addr) },
		func() error { return tx.SetAddressVerified(ctx, w.addr.ID, now()) },
		func() error { return tx.InsertVerification(ctx, w.ver) },
		func() error { _, err := tx.CountAttempt(ctx, w.ver.ID, now()); return err },
		func() error { return tx.InsertMessage(ctx, w.msg) },
		func() error {
			return tx.InsertMessageAttempt(ctx, &vigil.MessageAttempt{MessageID: w.msg.ID, Attempt: 1, At: now(), Outcome: outcomeSent})
		},
		func() error { return tx.InsertJob(ctx, w.job) },
		func() error { return tx.PutHookResult(ctx, w.hook) },
		func() error { _, err := tx.AddFailure(ctx, w.identity, now()); return err },
		func() error { _, err := tx.Hit(ctx, w.key, w.window, w.window.Add(-time.Hour)); return err },
		func() error { return tx.InsertDevice(ctx, w.device) },
		func() error {
			_, err := tx.RotateDeviceToken(ctx, w.device.ID, w.device.TokenHash, randBytes(32), testIP, testUserAgent, time.Time{}, now())
			return err
		},
		func() error { return tx.InsertEnrollment(ctx, w.enroll) },
		func() error { _, err := tx.UseEnrollment(ctx, w.enroll.ID, w.device.ID, now()); return err },
		func() error { return tx.InsertCeremony(ctx, w.ceremony) },
		func() error { _, err := tx.TakeCeremony(ctx, w.ceremony.ID, now()); return err },
		func() error { return tx.InsertCredential(ctx, w.cred) },
		func() error { return tx.AppendAudit(ctx, newEvent(w.identity), testSeal) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return w, err
		}
	}
	return w, nil
}

//nolint:thelper // a group of subtests, not a helper: failures point at their own lines
func testInTx(t *testing.T, open Open) {
	t.Run("Commit", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		s := open(t)
		var w *written
		require.NoError(t, s.InTx(ctx, func(tx vigil.Tx) error {
			var err error
			w, err = writeAll(ctx, t, tx)
			return err
		}))

		a, err := s.GetAddress(ctx, w.addr.ID)
		require.NoError(t, err)
		require.NotNil(t, a.VerifiedAt)
		v, err := s.GetVerification(ctx, w.ver.ID)
		require.NoError(t, err)
		require.Equal(t, 1, v.Attempts)
		_, err = s.GetMessage(ctx, w.msg.ID)
		require.NoError(t, err)
		attempts, err := s.ListMessageAttempts(ctx, w.msg.ID)
		require.NoError(t, err)
		require.Len(t, attempts, 1)
		_, err = s.GetHookResult(ctx, w.hook.TriggerID)
		require.NoError(t, err)
		l, err := s.GetLockout(ctx, w.identity)
		require.NoError(t, err)
		require.Equal(t, 1, l.Failures)
		n, err := s.Hit(ctx, w.key, w.window, w.window.Add(-time.Hour))
		require.NoError(t, err)
		require.Equal(t, 2, n)
		seq, _, err := s.AuditHead(ctx)
		require.NoError(t, err)
		require.Equal(t, int64(1), seq)
		d, err := s.GetDevice(ctx, w.device.ID)
		require.NoError(t, err)
		require.Equal(t, w.device.TokenHash, d.PrevTokenHash)
		e, err := s.GetEnrollment(ctx, w.enroll.ID)
		require.NoError(t, err)
		require.Equal(t, w.device.ID, e.DeviceID)
		_, err = s.TakeCeremony(ctx, w.ceremony.ID, now())
		require.ErrorIs(t, err, vigil.ErrNotFound, "taken in the transaction")
		_, err = s.FindCredential(ctx, w.cred.CredentialID)
		require.NoError(t, err)
	})

	t.Run("ErrorRollsBack", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		s := open(t)
		boom := errors.New("boom")
		var w *written
		err := s.InTx(ctx, func(tx vigil.Tx) error {
			var err error
			w, err = writeAll(ctx, t, tx)
			require.NoError(t, err)
			return boom
		})
		require.ErrorIs(t, err, boom, "InTx returns fn's error")
		requireNothing(t, s, w)
	})

	t.Run("VigilErrorPassesThrough", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		want := vigil.Errorf(vigil.EWRONGCODE, "Wrong code.")
		err := s.InTx(t.Context(), func(vigil.Tx) error { return want })
		require.Equal(t, vigil.EWRONGCODE, vigil.ErrorCode(err))
	})

	t.Run("PanicRollsBack", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		s := open(t)
		var w *written
		require.PanicsWithValue(t, "boom", func() {
			_ = s.InTx(ctx, func(tx vigil.Tx) error {
				var err error
				w, err = writeAll(ctx, t, tx)
				require.NoError(t, err)
				panic("boom")
			})
		})
		requireNothing(t, s, w)

		// The store is still usable: no transaction was left open.
		require.NoError(t, s.InTx(ctx, func(tx vigil.Tx) error {
			_, err := writeAll(ctx, t, tx)
			return err
		}))
	})

	t.Run("ReadsOwnWrites", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		s := open(t)
		a := newAddress(newID(), vigil.ChannelEmail)
		require.NoError(t, s.InTx(ctx, func(tx vigil.Tx) error {
			if err := tx.InsertAddress(ctx, a); err != nil {
				return err
			}
			got, err := tx.GetAddress(ctx, a.ID)
			if err != nil {
				return err
			}
			require.Equal(t, a, got)
			return nil
		}))
	})

	t.Run("Ping", func(t *testing.T) {
		t.Parallel()
		require.NoError(t, open(t).Ping(t.Context()))
	})
}

// requireNothing checks that nothing of w was committed.
func requireNothing(t *testing.T, s vigil.Store, w *written) {
	t.Helper()
	ctx := t.Context()
	require.NotNil(t, w)
	_, err := s.GetAddress(ctx, w.addr.ID)
	require.ErrorIs(t, err, vigil.ErrNotFound)
	_, err = s.GetVerification(ctx, w.ver.ID)
	require.ErrorIs(t, err, vigil.ErrNotFound)
	_, err = s.GetMessage(ctx, w.msg.ID)
	require.ErrorIs(t, err, vigil.ErrNotFound)
	msgs, err := s.ListMessages(ctx, vigil.MessageFilter{})
	require.NoError(t, err)
	require.Empty(t, msgs)
	attempts, err := s.ListMessageAttempts(ctx, w.msg.ID)
	require.NoError(t, err)
	require.Empty(t, attempts)
	_, err = s.GetHookResult(ctx, w.hook.TriggerID)
	require.ErrorIs(t, err, vigil.ErrNotFound)
	l, err := s.GetLockout(ctx, w.identity)
	require.NoError(t, err)
	require.Equal(t, &vigil.Lockout{IdentityID: w.identity}, l)
	n, err := s.Hit(ctx, w.key, w.window, w.window.Add(-time.Hour))
	require.NoError(t, err)
	require.Equal(t, 1, n)
	seq, hash, err := s.AuditHead(ctx)
	require.NoError(t, err)
	require.Zero(t, seq)
	require.Nil(t, hash)
	events, err := s.ListAudit(ctx, vigil.AuditFilter{})
	require.NoError(t, err)
	require.Empty(t, events)
	_, err = s.GetDevice(ctx, w.device.ID)
	require.ErrorIs(t, err, vigil.ErrNotFound)
	_, err = s.GetEnrollment(ctx, w.enroll.ID)
	require.ErrorIs(t, err, vigil.ErrNotFound)
	_, err = s.TakeCeremony(ctx, w.ceremony.ID, now())
	require.ErrorIs(t, err, vigil.ErrNotFound)
	_, err = s.FindCredential(ctx, w.cred.CredentialID)
	require.ErrorIs(t, err, vigil.ErrNotFound)

	// The chain starts at 1 after a rolled-back append: no gap.
	e := newEvent(newID())
	require.NoError(t, s.AppendAudit(ctx, e, testSeal))
	require.Equal(t, int64(1), e.Seq)
	require.Nil(t, e.PrevHash)
}
