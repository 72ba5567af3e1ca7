package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/vigil-auth/vigil"
)

const deviceCols = `id, identity_id, name, kind, token_hash, prev_token_hash, user_agent, ip,
	created_by, created_at, last_seen_at, trusted_until, rotated_at, revoked_at, revoked_reason`

func scanDevice(row scanner) (*vigil.Device, error) {
	var (
		d                      vigil.Device
		kind                   string
		created, seen, trusted int64
		rotated, revoked       sql.NullInt64
	)
	if err := row.Scan(&d.ID, &d.IdentityID, &d.Name, &kind, &d.TokenHash, &d.PrevTokenHash, &d.UserAgent, &d.IP,
		&d.CreatedBy, &created, &seen, &trusted, &rotated, &revoked, &d.RevokedReason); err != nil {
		return nil, err
	}
	d.Kind = vigil.DeviceKind(kind)
	d.CreatedAt = fromTS(created)
	d.LastSeenAt = fromTS(seen)
	d.TrustedUntil = fromTS(trusted)
	d.RotatedAt = fromNullTS(rotated)
	d.RevokedAt = fromNullTS(revoked)
	return &d, nil
}

// hash is a token hash as stored: an empty one is no token, NULL, so that
// it never matches and a nil or empty from in RotateDeviceToken means the
// same.
func hash(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// InsertDevice fills in a missing ID and timestamps on d.
func (t *tx) InsertDevice(ctx context.Context, d *vigil.Device) error {
	if d.ID == "" {
		d.ID = uuid.NewString()
	}
	if d.CreatedAt.IsZero() {
		d.CreatedAt = t.s.now()
	}
	if d.LastSeenAt.IsZero() {
		d.LastSeenAt = d.CreatedAt
	}
	_, err := t.q.ExecContext(ctx, `INSERT INTO devices (`+deviceCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.ID, d.IdentityID, d.Name, string(d.Kind), hash(d.TokenHash), hash(d.PrevTokenHash), d.UserAgent, d.IP,
		d.CreatedBy, ts(d.CreatedAt), ts(d.LastSeenAt), ts(d.TrustedUntil), tsPtr(d.RotatedAt), tsPtr(d.RevokedAt),
		d.RevokedReason)
	if err != nil {
		return dbErr(err, "insert device %s", d.ID)
	}
	return nil
}

func (t *tx) GetDevice(ctx context.Context, id string) (*vigil.Device, error) {
	d, err := scanDevice(t.q.QueryRowContext(ctx, `SELECT `+deviceCols+` FROM devices WHERE id = ?`, id))
	if err != nil {
		return nil, dbErr(err, "get device %s", id)
	}
	return d, nil
}

// FindDeviceByToken prefers a device whose current token matches, should
// a hash ever be one device's current and another's previous token; they
// are 256-bit random, so it is not.
// LoginRead is two reads: SQLite answers in-process, so a second
// statement costs no round trip.
func (t *tx) LoginRead(ctx context.Context, identityID string, h []byte) ([]*vigil.Address, *vigil.Device, error) {
	addrs, err := t.ListAddresses(ctx, identityID)
	if err != nil || len(h) == 0 {
		return addrs, nil, err
	}
	d, err := scanDevice(t.q.QueryRowContext(ctx, `SELECT `+deviceCols+` FROM devices WHERE token_hash = ? LIMIT 1`, h))
	if errors.Is(err, sql.ErrNoRows) {
		return addrs, nil, nil
	}
	if err != nil {
		return nil, nil, dbErr(err, "find device by token")
	}
	return addrs, d, nil
}

func (t *tx) FindDeviceByToken(ctx context.Context, h []byte) (*vigil.Device, error) {
	if len(h) == 0 {
		return nil, dbErr(sql.ErrNoRows, "find device by token")
	}
	d, err := scanDevice(t.q.QueryRowContext(ctx, `SELECT `+deviceCols+` FROM devices
		WHERE token_hash = ?1 OR prev_token_hash = ?1
		ORDER BY token_hash = ?1 DESC, created_at DESC, rowid DESC LIMIT 1`, h))
	if err != nil {
		return nil, dbErr(err, "find device by token")
	}
	return d, nil
}

func (t *tx) ListDevices(ctx context.Context, identityID string) ([]*vigil.Device, error) {
	rows, err := t.q.QueryContext(ctx, `SELECT `+deviceCols+` FROM devices
		WHERE identity_id = ? ORDER BY created_at DESC, rowid DESC`, identityID)
	if err != nil {
		return nil, dbErr(err, "list devices of identity %s", identityID)
	}
	defer rows.Close()
	out := []*vigil.Device{}
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, dbErr(err, "list devices of identity %s", identityID)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(err, "list devices of identity %s", identityID)
	}
	return out, nil
}

// RotateDeviceToken is one conditional UPDATE; IS compares NULL to NULL as
// equal, so a nil from matches a device that has no token yet.
// A zero until binds NULL, which keeps trusted_until.
func (t *tx) RotateDeviceToken(ctx context.Context, id string, from, to []byte, ip, userAgent string, until, now time.Time) (bool, error) {
	var trusted any
	if !until.IsZero() {
		trusted = ts(until)
	}
	res, err := t.q.ExecContext(ctx, `UPDATE devices SET
		prev_token_hash = token_hash, token_hash = ?, last_seen_at = ?, ip = ?, user_agent = ?, rotated_at = ?,
		trusted_until = coalesce(?, trusted_until)
		WHERE id = ? AND revoked_at IS NULL AND token_hash IS ?`,
		hash(to), ts(now), ip, userAgent, ts(now), trusted, id, hash(from))
	return affected(res, err, "rotate token of device %s", id)
}

func (t *tx) TouchDevice(ctx context.Context, id, ip, userAgent string, now, staleBefore time.Time) (bool, error) {
	res, err := t.q.ExecContext(ctx, `UPDATE devices SET last_seen_at = ?, ip = ?, user_agent = ?
		WHERE id = ? AND last_seen_at < ?`,
		ts(now), ip, userAgent, id, ts(staleBefore))
	return affected(res, err, "touch device %s", id)
}

func (t *tx) RevokeDevice(ctx context.Context, id, reason string, now time.Time) (bool, error) {
	res, err := t.q.ExecContext(ctx, `UPDATE devices SET revoked_at = ?, revoked_reason = ?
		WHERE id = ? AND revoked_at IS NULL`,
		ts(now), reason, id)
	return affected(res, err, "revoke device %s", id)
}

const enrollmentCols = `id, identity_id, token_hash, name, kind, created_by, created_at, expires_at, used_at, device_id`

func scanEnrollment(row scanner) (*vigil.DeviceEnrollment, error) {
	var (
		e                vigil.DeviceEnrollment
		kind             string
		created, expires int64
		used             sql.NullInt64
	)
	if err := row.Scan(&e.ID, &e.IdentityID, &e.TokenHash, &e.Name, &kind, &e.CreatedBy, &created, &expires,
		&used, &e.DeviceID); err != nil {
		return nil, err
	}
	e.Kind = vigil.DeviceKind(kind)
	e.CreatedAt = fromTS(created)
	e.ExpiresAt = fromTS(expires)
	e.UsedAt = fromNullTS(used)
	return &e, nil
}

// InsertEnrollment fills in a missing ID and CreatedAt on e; a taken id or
// token hash is ErrConflict.
func (t *tx) InsertEnrollment(ctx context.Context, e *vigil.DeviceEnrollment) error {
	if e.ID == "" {
		e.ID = uuid.NewString()
	}
	if e.CreatedAt.IsZero() {
		e.CreatedAt = t.s.now()
	}
	_, err := t.q.ExecContext(ctx, `INSERT INTO device_enrollments (`+enrollmentCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.ID, e.IdentityID, e.TokenHash, e.Name, string(e.Kind), e.CreatedBy, ts(e.CreatedAt), ts(e.ExpiresAt),
		tsPtr(e.UsedAt), e.DeviceID)
	if err != nil {
		return dbErr(err, "insert enrollment %s", e.ID)
	}
	return nil
}

func (t *tx) FindEnrollmentByToken(ctx context.Context, h []byte) (*vigil.DeviceEnrollment, error) {
	e, err := scanEnrollment(t.q.QueryRowContext(ctx, `SELECT `+enrollmentCols+` FROM device_enrollments
		WHERE token_hash = ?`, h))
	if err != nil {
		return nil, dbErr(err, "find enrollment by token")
	}
	return e, nil
}

func (t *tx) GetEnrollment(ctx context.Context, id string) (*vigil.DeviceEnrollment, error) {
	e, err := scanEnrollment(t.q.QueryRowContext(ctx, `SELECT `+enrollmentCols+` FROM device_enrollments WHERE id = ?`, id))
	if err != nil {
		return nil, dbErr(err, "get enrollment %s", id)
	}
	return e, nil
}

func (t *tx) UseEnrollment(ctx context.Context, id, deviceID string, now time.Time) (bool, error) {
	res, err := t.q.ExecContext(ctx, `UPDATE device_enrollments SET used_at = ?, device_id = ?
		WHERE id = ? AND used_at IS NULL`,
		ts(now), deviceID, id)
	return affected(res, err, "use enrollment %s", id)
}

const ceremonyCols = `id, kind, enrollment_id, session, created_at, expires_at, used_at`

func scanCeremony(row scanner) (*vigil.Ceremony, error) {
	var (
		c                vigil.Ceremony
		kind             string
		created, expires int64
		used             sql.NullInt64
	)
	if err := row.Scan(&c.ID, &kind, &c.EnrollmentID, &c.Session, &created, &expires, &used); err != nil {
		return nil, err
	}
	c.Kind = vigil.CeremonyKind(kind)
	c.CreatedAt = fromTS(created)
	c.ExpiresAt = fromTS(expires)
	c.UsedAt = fromNullTS(used)
	return &c, nil
}

// InsertCeremony fills in a missing ID and CreatedAt on c.
func (t *tx) InsertCeremony(ctx context.Context, c *vigil.Ceremony) error {
	if c.ID == "" {
		c.ID = uuid.NewString()
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = t.s.now()
	}
	if t.s.cers.Add(1)%sweepEvery == 1 {
		if _, err := t.q.ExecContext(ctx, `DELETE FROM webauthn_ceremonies WHERE expires_at < ?`,
			ts(c.CreatedAt.Add(-vigil.CeremonyRetention))); err != nil {
			return dbErr(err, "sweep ceremonies")
		}
	}
	_, err := t.q.ExecContext(ctx, `INSERT INTO webauthn_ceremonies (`+ceremonyCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		c.ID, string(c.Kind), c.EnrollmentID, c.Session, ts(c.CreatedAt), ts(c.ExpiresAt), tsPtr(c.UsedAt))
	if err != nil {
		return dbErr(err, "insert ceremony %s", c.ID)
	}
	return nil
}

// TakeCeremony is one conditional UPDATE ... RETURNING: the check and the
// mark cannot be separated by another writer.
func (t *tx) TakeCeremony(ctx context.Context, id string, now time.Time) (*vigil.Ceremony, error) {
	c, err := scanCeremony(t.q.QueryRowContext(ctx, `UPDATE webauthn_ceremonies SET used_at = ?
		WHERE id = ? AND used_at IS NULL
		RETURNING `+ceremonyCols, ts(now), id))
	if err != nil {
		return nil, dbErr(err, "take ceremony %s", id)
	}
	c.UsedAt = nil // as it was: the WHERE saw it unused
	return c, nil
}

//nolint:gosec // column names, not a credential
const credentialCols = `id, device_id, identity_id, credential_id, sign_count, data, created_at, last_used_at`

func scanCredential(row scanner) (*vigil.WebAuthnCredential, error) {
	var (
		c       vigil.WebAuthnCredential
		created int64
		used    sql.NullInt64
	)
	if err := row.Scan(&c.ID, &c.DeviceID, &c.IdentityID, &c.CredentialID, &c.SignCount, &c.Data, &created, &used); err != nil {
		return nil, err
	}
	c.CreatedAt = fromTS(created)
	c.LastUsedAt = fromNullTS(used)
	return &c, nil
}

// InsertCredential fills in a missing ID and CreatedAt on c; a taken id
// or credential id is ErrConflict. The device must exist (a foreign key;
// its deletion takes the credential with it).
func (t *tx) InsertCredential(ctx context.Context, c *vigil.WebAuthnCredential) error {
	if c.ID == "" {
		c.ID = uuid.NewString()
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = t.s.now()
	}
	_, err := t.q.ExecContext(ctx, `INSERT INTO webauthn_credentials (`+credentialCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.DeviceID, c.IdentityID, c.CredentialID, int64(c.SignCount), c.Data, ts(c.CreatedAt), tsPtr(c.LastUsedAt))
	if err != nil {
		return dbErr(err, "insert credential %s", c.ID)
	}
	return nil
}

func (t *tx) FindCredential(ctx context.Context, credentialID []byte) (*vigil.WebAuthnCredential, error) {
	c, err := scanCredential(t.q.QueryRowContext(ctx, `SELECT `+credentialCols+` FROM webauthn_credentials
		WHERE credential_id = ?`, credentialID))
	if err != nil {
		return nil, dbErr(err, "find credential")
	}
	return c, nil
}

func (t *tx) ListCredentials(ctx context.Context, identityID string) ([]*vigil.WebAuthnCredential, error) {
	rows, err := t.q.QueryContext(ctx, `SELECT `+credentialCols+` FROM webauthn_credentials
		WHERE identity_id = ? ORDER BY created_at, rowid`, identityID)
	if err != nil {
		return nil, dbErr(err, "list credentials of identity %s", identityID)
	}
	defer rows.Close()
	out := []*vigil.WebAuthnCredential{}
	for rows.Next() {
		c, err := scanCredential(rows)
		if err != nil {
			return nil, dbErr(err, "list credentials of identity %s", identityID)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(err, "list credentials of identity %s", identityID)
	}
	return out, nil
}

func (t *tx) UpdateCredential(ctx context.Context, c *vigil.WebAuthnCredential) error {
	res, err := t.q.ExecContext(ctx, `UPDATE webauthn_credentials SET sign_count = ?, data = ?, last_used_at = ?
		WHERE id = ?`,
		int64(c.SignCount), c.Data, tsPtr(c.LastUsedAt), c.ID)
	return oneRow(res, err, "update credential %s", c.ID)
}
