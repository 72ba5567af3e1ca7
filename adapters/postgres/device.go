package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-auth/vigil"
)

const deviceCols = `id, identity_id, name, kind, token_hash, prev_token_hash, user_agent, ip,
	created_by, created_at, last_seen_at, trusted_until, rotated_at, revoked_at, revoked_reason`

func scanDevice(row pgx.Row) (*vigil.Device, error) {
	var d vigil.Device
	err := row.Scan(&d.ID, &d.IdentityID, &d.Name, &d.Kind, &d.TokenHash, &d.PrevTokenHash, &d.UserAgent, &d.IP,
		&d.CreatedBy, &d.CreatedAt, &d.LastSeenAt, &d.TrustedUntil, &d.RotatedAt, &d.RevokedAt, &d.RevokedReason)
	if err != nil {
		return nil, err
	}
	d.CreatedAt = utc(d.CreatedAt)
	d.LastSeenAt = utc(d.LastSeenAt)
	d.TrustedUntil = utc(d.TrustedUntil)
	d.RotatedAt = utcPtr(d.RotatedAt)
	d.RevokedAt = utcPtr(d.RevokedAt)
	return &d, nil
}

// hash is a token hash as stored: an empty one is no token, NULL, so that
// it never matches and a nil or empty from in RotateDeviceToken means the
// same.
func hash(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func (c *conn) InsertDevice(ctx context.Context, d *vigil.Device) error {
	tag, err := c.db.Exec(ctx, `
		INSERT INTO devices (`+deviceCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
		ON CONFLICT DO NOTHING`,
		d.ID, d.IdentityID, d.Name, d.Kind, hash(d.TokenHash), hash(d.PrevTokenHash), d.UserAgent, d.IP,
		d.CreatedBy, d.CreatedAt, d.LastSeenAt, d.TrustedUntil, d.RotatedAt, d.RevokedAt, d.RevokedReason)
	if err != nil {
		return dbErr(err, "insert device %s", d.ID)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("insert device %s: %w", d.ID, vigil.ErrConflict)
	}
	return nil
}

func (c *conn) GetDevice(ctx context.Context, id string) (*vigil.Device, error) {
	d, err := scanDevice(c.db.QueryRow(ctx, `SELECT `+deviceCols+` FROM devices WHERE id = $1`, id))
	if err != nil {
		return nil, dbErr(err, "get device %s", id)
	}
	return d, nil
}

// FindDeviceByToken prefers a device whose current token matches, should
// a hash ever be one device's current and another's previous token; they
// are 256-bit random, so it is not.
// LoginRead is one statement, an index scan of each table appended: the
// device's row comes in the addresses' columns (kind as channel, token
// hash as blind index, revoked_at, last_seen_at and trusted_until as the
// three times), marked by the first column.
func (c *conn) LoginRead(ctx context.Context, identityID string, h []byte) ([]*vigil.Address, *vigil.Device, error) {
	if len(h) == 0 {
		addrs, err := c.ListAddresses(ctx, identityID)
		return addrs, nil, err
	}
	rows, err := c.db.Query(ctx, `
		SELECT true, `+addressCols+` FROM addresses
		WHERE identity_id = $1
		UNION ALL
		(SELECT false, id, identity_id, kind, token_hash, NULL::bytea, NULL::text, revoked_at, last_seen_at, trusted_until
		FROM devices
		WHERE token_hash = $2
		LIMIT 1)`,
		identityID, h)
	if err != nil {
		return nil, nil, dbErr(err, "login read of identity %s", identityID)
	}
	defer rows.Close()
	var (
		addrs []*vigil.Address
		dev   *vigil.Device
	)
	for rows.Next() {
		var (
			isAddress bool
			a         vigil.Address
			masked    *string
			updated   time.Time
		)
		if err := rows.Scan(&isAddress, &a.ID, &a.IdentityID, &a.Channel, &a.Index, &a.Sealed, &masked,
			&a.VerifiedAt, &a.CreatedAt, &updated); err != nil {
			return nil, nil, dbErr(err, "login read of identity %s", identityID)
		}
		if !isAddress {
			dev = &vigil.Device{
				ID: a.ID, IdentityID: a.IdentityID, Kind: vigil.DeviceKind(a.Channel), TokenHash: a.Index,
				RevokedAt: utcPtr(a.VerifiedAt), LastSeenAt: utc(a.CreatedAt), TrustedUntil: utc(updated),
			}
			continue
		}
		if masked != nil {
			a.Masked = *masked
		}
		a.VerifiedAt, a.CreatedAt, a.UpdatedAt = utcPtr(a.VerifiedAt), utc(a.CreatedAt), utc(updated)
		addrs = append(addrs, &a)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, dbErr(err, "login read of identity %s", identityID)
	}
	// In ListAddresses' order; sorted here, where a handful of rows costs
	// less than a sort node in the statement.
	slices.SortFunc(addrs, func(x, y *vigil.Address) int {
		if c := x.CreatedAt.Compare(y.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
	return addrs, dev, nil
}

func (c *conn) FindDeviceByToken(ctx context.Context, h []byte) (*vigil.Device, error) {
	if len(h) == 0 {
		return nil, fmt.Errorf("find device by token: %w", vigil.ErrNotFound)
	}
	d, err := scanDevice(c.db.QueryRow(ctx, `
		SELECT `+deviceCols+` FROM devices
		WHERE token_hash = $1 OR prev_token_hash = $1
		ORDER BY token_hash = $1 DESC, created_at DESC, id DESC
		LIMIT 1`,
		h))
	if err != nil {
		return nil, dbErr(err, "find device by token")
	}
	return d, nil
}

func (c *conn) ListDevices(ctx context.Context, identityID string) ([]*vigil.Device, error) {
	rows, err := c.db.Query(ctx, `
		SELECT `+deviceCols+` FROM devices
		WHERE identity_id = $1
		ORDER BY created_at DESC, id DESC`,
		identityID)
	if err != nil {
		return nil, dbErr(err, "list devices of identity %s", identityID)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*vigil.Device, error) { return scanDevice(row) })
	if err != nil {
		return nil, dbErr(err, "list devices of identity %s", identityID)
	}
	return out, nil
}

// RotateDeviceToken is one conditional UPDATE: of two requests presenting
// the same token at once, exactly one rotates it, and the other then
// presents a previous token.
func (c *conn) RotateDeviceToken(ctx context.Context, id string, from, to []byte, ip, userAgent string, until, now time.Time) (bool, error) {
	var trusted *time.Time // NULL keeps trusted_until
	if !until.IsZero() {
		trusted = &until
	}
	tag, err := c.db.Exec(ctx, `
		UPDATE devices SET
			prev_token_hash = token_hash, token_hash = $3,
			last_seen_at = $6, ip = $4, user_agent = $5, rotated_at = $6,
			trusted_until = coalesce($7, trusted_until)
		WHERE id = $1 AND revoked_at IS NULL AND token_hash IS NOT DISTINCT FROM $2::bytea`,
		id, hash(from), hash(to), ip, userAgent, now, trusted)
	if err != nil {
		return false, dbErr(err, "rotate token of device %s", id)
	}
	return tag.RowsAffected() == 1, nil
}

func (c *conn) TouchDevice(ctx context.Context, id, ip, userAgent string, now, staleBefore time.Time) (bool, error) {
	tag, err := c.db.Exec(ctx, `
		UPDATE devices SET last_seen_at = $4, ip = $2, user_agent = $3
		WHERE id = $1 AND last_seen_at < $5`,
		id, ip, userAgent, now, staleBefore)
	if err != nil {
		return false, dbErr(err, "touch device %s", id)
	}
	return tag.RowsAffected() == 1, nil
}

func (c *conn) RevokeDevice(ctx context.Context, id, reason string, now time.Time) (bool, error) {
	tag, err := c.db.Exec(ctx, `
		UPDATE devices SET revoked_at = $3, revoked_reason = $2
		WHERE id = $1 AND revoked_at IS NULL`,
		id, reason, now)
	if err != nil {
		return false, dbErr(err, "revoke device %s", id)
	}
	return tag.RowsAffected() == 1, nil
}

const enrollmentCols = `id, identity_id, token_hash, name, kind, created_by, created_at, expires_at, used_at, device_id`

func scanEnrollment(row pgx.Row) (*vigil.DeviceEnrollment, error) {
	var e vigil.DeviceEnrollment
	err := row.Scan(&e.ID, &e.IdentityID, &e.TokenHash, &e.Name, &e.Kind, &e.CreatedBy, &e.CreatedAt, &e.ExpiresAt,
		&e.UsedAt, &e.DeviceID)
	if err != nil {
		return nil, err
	}
	e.CreatedAt = utc(e.CreatedAt)
	e.ExpiresAt = utc(e.ExpiresAt)
	e.UsedAt = utcPtr(e.UsedAt)
	return &e, nil
}

// InsertEnrollment reports a taken id or token hash as ErrConflict.
func (c *conn) InsertEnrollment(ctx context.Context, e *vigil.DeviceEnrollment) error {
	tag, err := c.db.Exec(ctx, `
		INSERT INTO device_enrollments (`+enrollmentCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT DO NOTHING`,
		e.ID, e.IdentityID, e.TokenHash, e.Name, e.Kind, e.CreatedBy, e.CreatedAt, e.ExpiresAt, e.UsedAt, e.DeviceID)
	if err != nil {
		return dbErr(err, "insert enrollment %s", e.ID)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("insert enrollment %s: %w", e.ID, vigil.ErrConflict)
	}
	return nil
}

func (c *conn) FindEnrollmentByToken(ctx context.Context, h []byte) (*vigil.DeviceEnrollment, error) {
	e, err := scanEnrollment(c.db.QueryRow(ctx, `SELECT `+enrollmentCols+` FROM device_enrollments WHERE token_hash = $1`, h))
	if err != nil {
		return nil, dbErr(err, "find enrollment by token")
	}
	return e, nil
}

func (c *conn) GetEnrollment(ctx context.Context, id string) (*vigil.DeviceEnrollment, error) {
	e, err := scanEnrollment(c.db.QueryRow(ctx, `SELECT `+enrollmentCols+` FROM device_enrollments WHERE id = $1`, id))
	if err != nil {
		return nil, dbErr(err, "get enrollment %s", id)
	}
	return e, nil
}

func (c *conn) UseEnrollment(ctx context.Context, id, deviceID string, now time.Time) (bool, error) {
	tag, err := c.db.Exec(ctx, `
		UPDATE device_enrollments SET used_at = $3, device_id = $2
		WHERE id = $1 AND used_at IS NULL`,
		id, deviceID, now)
	if err != nil {
		return false, dbErr(err, "use enrollment %s", id)
	}
	return tag.RowsAffected() == 1, nil
}

const ceremonyCols = `id, kind, enrollment_id, session, created_at, expires_at, used_at`

func scanCeremony(row pgx.Row) (*vigil.Ceremony, error) {
	var c vigil.Ceremony
	if err := row.Scan(&c.ID, &c.Kind, &c.EnrollmentID, &c.Session, &c.CreatedAt, &c.ExpiresAt, &c.UsedAt); err != nil {
		return nil, err
	}
	c.CreatedAt = utc(c.CreatedAt)
	c.ExpiresAt = utc(c.ExpiresAt)
	c.UsedAt = utcPtr(c.UsedAt)
	return &c, nil
}

func (c *conn) InsertCeremony(ctx context.Context, cer *vigil.Ceremony) error {
	if c.s.cers.Add(1)%cleanupEvery == 1 {
		_, err := c.db.Exec(ctx, `
			DELETE FROM webauthn_ceremonies
			WHERE id IN (
				SELECT id FROM webauthn_ceremonies
				WHERE expires_at < $1
				LIMIT $2
				FOR UPDATE SKIP LOCKED)`,
			cer.CreatedAt.Add(-vigil.CeremonyRetention), cleanupBatch)
		if err != nil {
			return dbErr(err, "delete old ceremonies")
		}
	}
	tag, err := c.db.Exec(ctx, `
		INSERT INTO webauthn_ceremonies (`+ceremonyCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT DO NOTHING`,
		cer.ID, cer.Kind, cer.EnrollmentID, cer.Session, cer.CreatedAt, cer.ExpiresAt, cer.UsedAt)
	if err != nil {
		return dbErr(err, "insert ceremony %s", cer.ID)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("insert ceremony %s: %w", cer.ID, vigil.ErrConflict)
	}
	return nil
}

// TakeCeremony is one conditional UPDATE ... RETURNING, so that of
// concurrent takers of one challenge exactly one gets it.
func (c *conn) TakeCeremony(ctx context.Context, id string, now time.Time) (*vigil.Ceremony, error) {
	cer, err := scanCeremony(c.db.QueryRow(ctx, `
		UPDATE webauthn_ceremonies SET used_at = $2
		WHERE id = $1 AND used_at IS NULL
		RETURNING `+ceremonyCols,
		id, now))
	if err != nil {
		return nil, dbErr(err, "take ceremony %s", id)
	}
	cer.UsedAt = nil // as it was: the WHERE saw it unused
	return cer, nil
}

//nolint:gosec // column names, not a credential
const credentialCols = `id, device_id, identity_id, credential_id, sign_count, data, created_at, last_used_at`

func scanCredential(row pgx.Row) (*vigil.WebAuthnCredential, error) {
	var (
		cr    vigil.WebAuthnCredential
		count int64
	)
	err := row.Scan(&cr.ID, &cr.DeviceID, &cr.IdentityID, &cr.CredentialID, &count, &cr.Data, &cr.CreatedAt, &cr.LastUsedAt)
	if err != nil {
		return nil, err
	}
	cr.SignCount = uint32(count) //nolint:gosec // written from a uint32
	cr.CreatedAt = utc(cr.CreatedAt)
	cr.LastUsedAt = utcPtr(cr.LastUsedAt)
	return &cr, nil
}

func collectCredentials(rows pgx.Rows) ([]*vigil.WebAuthnCredential, error) {
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (*vigil.WebAuthnCredential, error) { return scanCredential(row) })
}

// InsertCredential reports a taken id or credential id as ErrConflict.
// The device must exist (a foreign key; its deletion takes the credential
// with it).
func (c *conn) InsertCredential(ctx context.Context, cr *vigil.WebAuthnCredential) error {
	tag, err := c.db.Exec(ctx, `
		INSERT INTO webauthn_credentials (`+credentialCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT DO NOTHING`,
		cr.ID, cr.DeviceID, cr.IdentityID, cr.CredentialID, int64(cr.SignCount), cr.Data, cr.CreatedAt, cr.LastUsedAt)
	if err != nil {
		return dbErr(err, "insert credential %s", cr.ID)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("insert credential %s: %w", cr.ID, vigil.ErrConflict)
	}
	return nil
}

func (c *conn) FindCredential(ctx context.Context, credentialID []byte) (*vigil.WebAuthnCredential, error) {
	cr, err := scanCredential(c.db.QueryRow(ctx, `SELECT `+credentialCols+` FROM webauthn_credentials WHERE credential_id = $1`, credentialID))
	if err != nil {
		return nil, dbErr(err, "find credential")
	}
	return cr, nil
}

func (c *conn) ListCredentials(ctx context.Context, identityID string) ([]*vigil.WebAuthnCredential, error) {
	rows, err := c.db.Query(ctx, `
		SELECT `+credentialCols+` FROM webauthn_credentials
		WHERE identity_id = $1
		ORDER BY created_at, id`,
		identityID)
	if err != nil {
		return nil, dbErr(err, "list credentials of identity %s", identityID)
	}
	out, err := collectCredentials(rows)
	if err != nil {
		return nil, dbErr(err, "list credentials of identity %s", identityID)
	}
	return out, nil
}

func (c *conn) UpdateCredential(ctx context.Context, cr *vigil.WebAuthnCredential) error {
	tag, err := c.db.Exec(ctx, `
		UPDATE webauthn_credentials SET sign_count = $2, data = $3, last_used_at = $4
		WHERE id = $1`,
		cr.ID, int64(cr.SignCount), cr.Data, cr.LastUsedAt)
	if err != nil {
		return dbErr(err, "update credential %s", cr.ID)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("update credential %s: %w", cr.ID, vigil.ErrNotFound)
	}
	return nil
}
