package sqlite

import (
	"context"
	"time"

	"github.com/vigil-auth/vigil"
)

// The Tx methods on the Store itself. Reads run on the read-only pool, so
// they never wait for the writer (WAL gives each a consistent snapshot of
// what has committed); writes run each in its own transaction on the
// writer, so a write of several statements is atomic here too.

func (s *Store) InsertAddress(ctx context.Context, a *vigil.Address) error {
	return s.write(ctx, func(t *tx) error { return t.InsertAddress(ctx, a) })
}

func (s *Store) GetAddress(ctx context.Context, id string) (*vigil.Address, error) {
	return s.read().GetAddress(ctx, id)
}

func (s *Store) FindAddress(ctx context.Context, identityID string, ch vigil.Channel, indexes [][]byte) (*vigil.Address, error) {
	return s.read().FindAddress(ctx, identityID, ch, indexes)
}

func (s *Store) FindAddressesByIndex(ctx context.Context, ch vigil.Channel, indexes [][]byte) ([]*vigil.Address, error) {
	return s.read().FindAddressesByIndex(ctx, ch, indexes)
}

func (s *Store) ListAddresses(ctx context.Context, identityID string) ([]*vigil.Address, error) {
	return s.read().ListAddresses(ctx, identityID)
}

func (s *Store) DeleteAddress(ctx context.Context, id string) error {
	return s.write(ctx, func(t *tx) error { return t.DeleteAddress(ctx, id) })
}

func (s *Store) SetAddressVerified(ctx context.Context, id string, at time.Time) error {
	return s.write(ctx, func(t *tx) error { return t.SetAddressVerified(ctx, id, at) })
}

func (s *Store) InsertVerification(ctx context.Context, v *vigil.Verification) error {
	return s.write(ctx, func(t *tx) error { return t.InsertVerification(ctx, v) })
}

func (s *Store) GetVerification(ctx context.Context, id string) (*vigil.Verification, error) {
	return s.read().GetVerification(ctx, id)
}

// GetVerificationForUpdate outside a transaction is a plain read: there
// is no transaction for the lock to last until.
func (s *Store) GetVerificationForUpdate(ctx context.Context, id string) (*vigil.Verification, error) {
	return s.read().GetVerificationForUpdate(ctx, id)
}

func (s *Store) FindOpenVerification(ctx context.Context, addressID string, p vigil.Purpose) (*vigil.Verification, error) {
	return s.read().FindOpenVerification(ctx, addressID, p)
}

func (s *Store) FindVerificationBySecret(ctx context.Context, hash []byte) (*vigil.Verification, error) {
	return s.read().FindVerificationBySecret(ctx, hash)
}

func (s *Store) ListVerifications(ctx context.Context, identityID string) ([]*vigil.Verification, error) {
	return s.read().ListVerifications(ctx, identityID)
}

func (s *Store) FindPassedForFlow(ctx context.Context, identityID, flowID string, since time.Time) (*vigil.Verification, error) {
	return s.read().FindPassedForFlow(ctx, identityID, flowID, since)
}

func (s *Store) UpdateVerification(ctx context.Context, v *vigil.Verification) error {
	return s.write(ctx, func(t *tx) error { return t.UpdateVerification(ctx, v) })
}

func (s *Store) CountAttempt(ctx context.Context, id string, now time.Time) (v *vigil.Verification, err error) {
	err = s.write(ctx, func(t *tx) error {
		v, err = t.CountAttempt(ctx, id, now)
		return err
	})
	return v, err
}

func (s *Store) Consume(ctx context.Context, id string, generation int, now time.Time) (ok bool, err error) {
	err = s.write(ctx, func(t *tx) error {
		ok, err = t.Consume(ctx, id, generation, now)
		return err
	})
	return ok, err
}

func (s *Store) BindFlow(ctx context.Context, id, flowID string) (ok bool, err error) {
	err = s.write(ctx, func(t *tx) error {
		ok, err = t.BindFlow(ctx, id, flowID)
		return err
	})
	return ok, err
}

func (s *Store) SetVerificationState(ctx context.Context, id string, from, to vigil.State, now time.Time) (ok bool, err error) {
	err = s.write(ctx, func(t *tx) error {
		ok, err = t.SetVerificationState(ctx, id, from, to, now)
		return err
	})
	return ok, err
}

func (s *Store) InsertMessage(ctx context.Context, m *vigil.Message) error {
	return s.write(ctx, func(t *tx) error { return t.InsertMessage(ctx, m) })
}

func (s *Store) GetMessage(ctx context.Context, id string) (*vigil.Message, error) {
	return s.read().GetMessage(ctx, id)
}

func (s *Store) UpdateMessage(ctx context.Context, m *vigil.Message) error {
	return s.write(ctx, func(t *tx) error { return t.UpdateMessage(ctx, m) })
}

func (s *Store) ListMessages(ctx context.Context, f vigil.MessageFilter) ([]*vigil.Message, error) {
	return s.read().ListMessages(ctx, f)
}

func (s *Store) FindMessageByProvider(ctx context.Context, provider, providerID string) (*vigil.Message, error) {
	return s.read().FindMessageByProvider(ctx, provider, providerID)
}

func (s *Store) AdvanceMessage(ctx context.Context, id string, from, to vigil.MessageStatus, errText string, now time.Time) (ok bool, err error) {
	err = s.write(ctx, func(t *tx) error {
		ok, err = t.AdvanceMessage(ctx, id, from, to, errText, now)
		return err
	})
	return ok, err
}

func (s *Store) RelaxDurability(context.Context) error { return nil }

func (s *Store) InsertMessageAttempt(ctx context.Context, a *vigil.MessageAttempt) error {
	return s.write(ctx, func(t *tx) error { return t.InsertMessageAttempt(ctx, a) })
}

func (s *Store) ListMessageAttempts(ctx context.Context, messageID string) ([]*vigil.MessageAttempt, error) {
	return s.read().ListMessageAttempts(ctx, messageID)
}

func (s *Store) InsertJob(ctx context.Context, j *vigil.Job) error {
	return s.write(ctx, func(t *tx) error { return t.InsertJob(ctx, j) })
}

func (s *Store) GetHookResult(ctx context.Context, triggerID string) (*vigil.HookResult, error) {
	return s.read().GetHookResult(ctx, triggerID)
}

func (s *Store) PutHookResult(ctx context.Context, r *vigil.HookResult) error {
	return s.write(ctx, func(t *tx) error { return t.PutHookResult(ctx, r) })
}

func (s *Store) GetLockout(ctx context.Context, identityID string) (*vigil.Lockout, error) {
	return s.read().GetLockout(ctx, identityID)
}

func (s *Store) AddFailure(ctx context.Context, identityID string, now time.Time) (l *vigil.Lockout, err error) {
	err = s.write(ctx, func(t *tx) error {
		l, err = t.AddFailure(ctx, identityID, now)
		return err
	})
	return l, err
}

func (s *Store) SaveLockout(ctx context.Context, l *vigil.Lockout) error {
	return s.write(ctx, func(t *tx) error { return t.SaveLockout(ctx, l) })
}

func (s *Store) Hit(ctx context.Context, key string, window time.Time, expire time.Time) (n int, err error) {
	err = s.write(ctx, func(t *tx) error {
		n, err = t.Hit(ctx, key, window, expire)
		return err
	})
	return n, err
}

func (s *Store) SumHits(ctx context.Context, key string, since time.Time) (int, error) {
	return s.read().SumHits(ctx, key, since)
}

func (s *Store) AppendAudit(ctx context.Context, e *vigil.AuditEvent, seal vigil.SealFunc) error {
	return s.write(ctx, func(t *tx) error { return t.AppendAudit(ctx, e, seal) })
}

func (s *Store) ListAudit(ctx context.Context, f vigil.AuditFilter) ([]*vigil.AuditEvent, error) {
	return s.read().ListAudit(ctx, f)
}

func (s *Store) AuditHead(ctx context.Context) (int64, []byte, error) {
	return s.read().AuditHead(ctx)
}

func (s *Store) InsertDevice(ctx context.Context, d *vigil.Device) error {
	return s.write(ctx, func(t *tx) error { return t.InsertDevice(ctx, d) })
}

func (s *Store) GetDevice(ctx context.Context, id string) (*vigil.Device, error) {
	return s.read().GetDevice(ctx, id)
}

func (s *Store) LoginRead(ctx context.Context, identityID string, hash []byte) ([]*vigil.Address, *vigil.Device, error) {
	return s.read().LoginRead(ctx, identityID, hash)
}

func (s *Store) FindDeviceByToken(ctx context.Context, hash []byte) (*vigil.Device, error) {
	return s.read().FindDeviceByToken(ctx, hash)
}

func (s *Store) ListDevices(ctx context.Context, identityID string) ([]*vigil.Device, error) {
	return s.read().ListDevices(ctx, identityID)
}

func (s *Store) RotateDeviceToken(ctx context.Context, id string, from, to []byte, ip, userAgent string, until, now time.Time) (ok bool, err error) {
	err = s.write(ctx, func(t *tx) error {
		ok, err = t.RotateDeviceToken(ctx, id, from, to, ip, userAgent, until, now)
		return err
	})
	return ok, err
}

func (s *Store) TouchDevice(ctx context.Context, id, ip, userAgent string, now, staleBefore time.Time) (ok bool, err error) {
	err = s.write(ctx, func(t *tx) error {
		ok, err = t.TouchDevice(ctx, id, ip, userAgent, now, staleBefore)
		return err
	})
	return ok, err
}

func (s *Store) RevokeDevice(ctx context.Context, id, reason string, now time.Time) (ok bool, err error) {
	err = s.write(ctx, func(t *tx) error {
		ok, err = t.RevokeDevice(ctx, id, reason, now)
		return err
	})
	return ok, err
}

func (s *Store) InsertEnrollment(ctx context.Context, e *vigil.DeviceEnrollment) error {
	return s.write(ctx, func(t *tx) error { return t.InsertEnrollment(ctx, e) })
}

func (s *Store) FindEnrollmentByToken(ctx context.Context, hash []byte) (*vigil.DeviceEnrollment, error) {
	return s.read().FindEnrollmentByToken(ctx, hash)
}

func (s *Store) GetEnrollment(ctx context.Context, id string) (*vigil.DeviceEnrollment, error) {
	return s.read().GetEnrollment(ctx, id)
}

func (s *Store) UseEnrollment(ctx context.Context, id, deviceID string, now time.Time) (ok bool, err error) {
	err = s.write(ctx, func(t *tx) error {
		ok, err = t.UseEnrollment(ctx, id, deviceID, now)
		return err
	})
	return ok, err
}

func (s *Store) InsertCeremony(ctx context.Context, c *vigil.Ceremony) error {
	return s.write(ctx, func(t *tx) error { return t.InsertCeremony(ctx, c) })
}

func (s *Store) TakeCeremony(ctx context.Context, id string, now time.Time) (c *vigil.Ceremony, err error) {
	err = s.write(ctx, func(t *tx) error {
		c, err = t.TakeCeremony(ctx, id, now)
		return err
	})
	return c, err
}

func (s *Store) InsertCredential(ctx context.Context, c *vigil.WebAuthnCredential) error {
	return s.write(ctx, func(t *tx) error { return t.InsertCredential(ctx, c) })
}

func (s *Store) FindCredential(ctx context.Context, credentialID []byte) (*vigil.WebAuthnCredential, error) {
	return s.read().FindCredential(ctx, credentialID)
}

func (s *Store) ListCredentials(ctx context.Context, identityID string) ([]*vigil.WebAuthnCredential, error) {
	return s.read().ListCredentials(ctx, identityID)
}

func (s *Store) UpdateCredential(ctx context.Context, c *vigil.WebAuthnCredential) error {
	return s.write(ctx, func(t *tx) error { return t.UpdateCredential(ctx, c) })
}
