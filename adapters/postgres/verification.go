package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-auth/vigil"
)

const verificationCols = `id, identity_id, address_id, channel, method, purpose, state, secret_hash,
	generation, attempts, max_attempts, expires_at, last_sent_at, send_count, verified_at,
	created_at, updated_at, flow_id`

func scanVerification(row pgx.Row) (*vigil.Verification, error) {
	var v vigil.Verification
	err := row.Scan(&v.ID, &v.IdentityID, &v.AddressID, &v.Channel, &v.Method, &v.Purpose, &v.State, &v.SecretHash,
		&v.Generation, &v.Attempts, &v.MaxAttempts, &v.ExpiresAt, &v.LastSentAt, &v.SendCount, &v.VerifiedAt,
		&v.CreatedAt, &v.UpdatedAt, &v.FlowID)
	if err != nil {
		return nil, err
	}
	v.ExpiresAt = utc(v.ExpiresAt)
	v.LastSentAt = utcPtr(v.LastSentAt)
	v.VerifiedAt = utcPtr(v.VerifiedAt)
	v.CreatedAt = utc(v.CreatedAt)
	v.UpdatedAt = utc(v.UpdatedAt)
	return &v, nil
}

func (c *conn) InsertVerification(ctx context.Context, v *vigil.Verification) error {
	tag, err := c.db.Exec(ctx, `
		INSERT INTO verifications (`+verificationCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
		ON CONFLICT DO NOTHING`,
		v.ID, v.IdentityID, v.AddressID, v.Channel, v.Method, v.Purpose, v.State, v.SecretHash,
		v.Generation, v.Attempts, v.MaxAttempts, v.ExpiresAt, v.LastSentAt, v.SendCount, v.VerifiedAt,
		v.CreatedAt, v.UpdatedAt, v.FlowID)
	if err != nil {
		return dbErr(err, "insert verification %s", v.ID)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("insert verification %s: %w", v.ID, vigil.ErrConflict)
	}
	return nil
}

func (c *conn) GetVerification(ctx context.Context, id string) (*vigil.Verification, error) {
	v, err := scanVerification(c.db.QueryRow(ctx, `SELECT `+verificationCols+` FROM verifications WHERE id = $1`, id))
	if err != nil {
		return nil, dbErr(err, "get verification %s", id)
	}
	return v, nil
}

func (c *conn) GetVerificationForUpdate(ctx context.Context, id string) (*vigil.Verification, error) {
	v, err := scanVerification(c.db.QueryRow(ctx, `SELECT `+verificationCols+` FROM verifications WHERE id = $1 FOR UPDATE`, id))
	if err != nil {
		return nil, dbErr(err, "get verification %s for update", id)
	}
	return v, nil
}

func (c *conn) FindOpenVerification(ctx context.Context, addressID string, p vigil.Purpose) (*vigil.Verification, error) {
	v, err := scanVerification(c.db.QueryRow(ctx, `
		SELECT `+verificationCols+` FROM verifications
		WHERE address_id = $1 AND purpose = $2 AND state <> $3
		ORDER BY created_at DESC, id DESC
		LIMIT 1`,
		addressID, p, vigil.StateVerified))
	if err != nil {
		return nil, dbErr(err, "find open %s verification of address %s", p, addressID)
	}
	return v, nil
}

func (c *conn) FindVerificationBySecret(ctx context.Context, hash []byte) (*vigil.Verification, error) {
	// Newest first, should two secrets ever collide; they are 256-bit
	// random, so they do not.
	v, err := scanVerification(c.db.QueryRow(ctx, `
		SELECT `+verificationCols+` FROM verifications
		WHERE secret_hash = $1
		ORDER BY created_at DESC, id DESC
		LIMIT 1`,
		hash))
	if err != nil {
		return nil, dbErr(err, "find verification by secret")
	}
	return v, nil
}

func (c *conn) ListVerifications(ctx context.Context, identityID string) ([]*vigil.Verification, error) {
	rows, err := c.db.Query(ctx, `
		SELECT `+verificationCols+` FROM verifications
		WHERE identity_id = $1
		ORDER BY created_at DESC, id DESC`,
		identityID)
	if err != nil {
		return nil, dbErr(err, "list verifications of identity %s", identityID)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*vigil.Verification, error) { return scanVerification(row) })
	if err != nil {
		return nil, dbErr(err, "list verifications of identity %s", identityID)
	}
	return out, nil
}

// FindPassedForFlow never matches an empty flow id: a verification
// started outside a login flow (empty flow_id) is no pass for any flow. The
// query says flow_id is not empty in so many words, so that the partial
// index (of login-flow rows only) applies.
func (c *conn) FindPassedForFlow(ctx context.Context, identityID, flowID string, since time.Time) (*vigil.Verification, error) {
	if flowID == "" {
		return nil, fmt.Errorf("find passed verification of identity %s: no flow: %w", identityID, vigil.ErrNotFound)
	}
	v, err := scanVerification(c.db.QueryRow(ctx, `
		SELECT `+verificationCols+` FROM verifications
		WHERE identity_id = $1 AND flow_id = $2 AND flow_id <> '' AND state = $3 AND verified_at >= $4
		ORDER BY verified_at DESC, created_at DESC, id DESC
		LIMIT 1`,
		identityID, flowID, vigil.StateVerified, since))
	if err != nil {
		return nil, dbErr(err, "find passed verification of identity %s for flow %s", identityID, flowID)
	}
	return v, nil
}

func (c *conn) UpdateVerification(ctx context.Context, v *vigil.Verification) error {
	tag, err := c.db.Exec(ctx, `
		UPDATE verifications SET
			state = $2, secret_hash = $3, generation = $4, attempts = $5, max_attempts = $6,
			expires_at = $7, last_sent_at = $8, send_count = $9, verified_at = $10, updated_at = $11,
			flow_id = $12
		WHERE id = $1`,
		v.ID, v.State, v.SecretHash, v.Generation, v.Attempts, v.MaxAttempts,
		v.ExpiresAt, v.LastSentAt, v.SendCount, v.VerifiedAt, v.UpdatedAt, v.FlowID)
	if err != nil {
		return dbErr(err, "update verification %s", v.ID)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("update verification %s: %w", v.ID, vigil.ErrNotFound)
	}
	return nil
}

// CountAttempt is one conditional UPDATE, so concurrent checks of the same
// code each take their own attempt and none slips past the maximum.
func (c *conn) CountAttempt(ctx context.Context, id string, now time.Time) (*vigil.Verification, error) {
	v, err := scanVerification(c.db.QueryRow(ctx, `
		UPDATE verifications SET attempts = attempts + 1, updated_at = $2
		WHERE id = $1 AND state = $3 AND attempts < max_attempts AND expires_at > $2
		RETURNING `+verificationCols,
		id, now, vigil.StatePending))
	if err != nil {
		return nil, dbErr(err, "count attempt on verification %s", id)
	}
	return v, nil
}

// Consume is a conditional UPDATE: of concurrent consumers exactly one
// sees a row affected.
func (c *conn) Consume(ctx context.Context, id string, generation int, now time.Time) (bool, error) {
	tag, err := c.db.Exec(ctx, `
		UPDATE verifications SET state = $3, verified_at = $4, updated_at = $4
		WHERE id = $1 AND generation = $2 AND state = $5`,
		id, generation, vigil.StateVerified, now, vigil.StatePending)
	if err != nil {
		return false, dbErr(err, "consume verification %s", id)
	}
	return tag.RowsAffected() == 1, nil
}

func (c *conn) BindFlow(ctx context.Context, id, flowID string) (bool, error) {
	tag, err := c.db.Exec(ctx, `UPDATE verifications SET flow_id = $2 WHERE id = $1 AND flow_id = ''`, id, flowID)
	if err != nil {
		return false, dbErr(err, "bind verification %s to its flow", id)
	}
	return tag.RowsAffected() == 1, nil
}

func (c *conn) SetVerificationState(ctx context.Context, id string, from, to vigil.State, now time.Time) (bool, error) {
	tag, err := c.db.Exec(ctx, `
		UPDATE verifications SET state = $3, updated_at = $4
		WHERE id = $1 AND state = $2`,
		id, from, to, now)
	if err != nil {
		return false, dbErr(err, "set verification %s %s -> %s", id, from, to)
	}
	return tag.RowsAffected() == 1, nil
}
