package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/google/uuid"

	"github.com/vigil-auth/vigil"
)

const verificationCols = `id, identity_id, address_id, channel, method, purpose, state, secret_hash, generation,
	attempts, max_attempts, expires_at, last_sent_at, send_count, verified_at, created_at, updated_at, flow_id`

func scanVerification(row scanner) (*vigil.Verification, error) {
	var (
		v                               vigil.Verification
		channel, method, purpose, state string
		expires, created, updated       int64
		lastSent, verified              sql.NullInt64
	)
	if err := row.Scan(&v.ID, &v.IdentityID, &v.AddressID, &channel, &method, &purpose, &state, &v.SecretHash,
		&v.Generation, &v.Attempts, &v.MaxAttempts, &expires, &lastSent, &v.SendCount, &verified, &created, &updated,
		&v.FlowID); err != nil {
		return nil, err
	}
	v.Channel = vigil.Channel(channel)
	v.Method = vigil.Method(method)
	v.Purpose = vigil.Purpose(purpose)
	v.State = vigil.State(state)
	v.ExpiresAt = fromTS(expires)
	v.LastSentAt = fromNullTS(lastSent)
	v.VerifiedAt = fromNullTS(verified)
	v.CreatedAt = fromTS(created)
	v.UpdatedAt = fromTS(updated)
	return &v, nil
}

// InsertVerification fills in a missing ID and timestamps on v.
func (t *tx) InsertVerification(ctx context.Context, v *vigil.Verification) error {
	if v.ID == "" {
		v.ID = uuid.NewString()
	}
	if v.CreatedAt.IsZero() {
		v.CreatedAt = t.s.now()
	}
	if v.UpdatedAt.IsZero() {
		v.UpdatedAt = v.CreatedAt
	}
	_, err := t.q.ExecContext(ctx, `INSERT INTO verifications (`+verificationCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		v.ID, v.IdentityID, v.AddressID, string(v.Channel), string(v.Method), string(v.Purpose), string(v.State),
		v.SecretHash, v.Generation, v.Attempts, v.MaxAttempts, ts(v.ExpiresAt), tsPtr(v.LastSentAt), v.SendCount,
		tsPtr(v.VerifiedAt), ts(v.CreatedAt), ts(v.UpdatedAt), v.FlowID)
	if err != nil {
		return dbErr(err, "insert verification %s", v.ID)
	}
	return nil
}

func (t *tx) GetVerification(ctx context.Context, id string) (*vigil.Verification, error) {
	v, err := scanVerification(t.q.QueryRowContext(ctx, `SELECT `+verificationCols+` FROM verifications WHERE id = ?`, id))
	if err != nil {
		return nil, dbErr(err, "get verification %s", id)
	}
	return v, nil
}

// GetVerificationForUpdate needs no row lock of its own: inside InTx the
// transaction already holds SQLite's database-wide write lock (BEGIN
// IMMEDIATE), so no other writer can change the row until it ends.
func (t *tx) GetVerificationForUpdate(ctx context.Context, id string) (*vigil.Verification, error) {
	return t.GetVerification(ctx, id)
}

func (t *tx) FindOpenVerification(ctx context.Context, addressID string, p vigil.Purpose) (*vigil.Verification, error) {
	v, err := scanVerification(t.q.QueryRowContext(ctx, `SELECT `+verificationCols+` FROM verifications
		WHERE address_id = ? AND purpose = ? AND state <> 'verified'
		ORDER BY created_at DESC, rowid DESC LIMIT 1`, addressID, string(p)))
	if err != nil {
		return nil, dbErr(err, "find open verification of address %s", addressID)
	}
	return v, nil
}

func (t *tx) FindVerificationBySecret(ctx context.Context, hash []byte) (*vigil.Verification, error) {
	if len(hash) == 0 {
		return nil, dbErr(sql.ErrNoRows, "find verification by secret")
	}
	v, err := scanVerification(t.q.QueryRowContext(ctx, `SELECT `+verificationCols+` FROM verifications
		WHERE secret_hash = ? ORDER BY created_at DESC, rowid DESC LIMIT 1`, hash))
	if err != nil {
		return nil, dbErr(err, "find verification by secret")
	}
	return v, nil
}

func (t *tx) ListVerifications(ctx context.Context, identityID string) ([]*vigil.Verification, error) {
	rows, err := t.q.QueryContext(ctx, `SELECT `+verificationCols+` FROM verifications
		WHERE identity_id = ? ORDER BY created_at, rowid`, identityID)
	if err != nil {
		return nil, dbErr(err, "list verifications of identity %s", identityID)
	}
	defer rows.Close()
	out := []*vigil.Verification{}
	for rows.Next() {
		v, err := scanVerification(rows)
		if err != nil {
			return nil, dbErr(err, "list verifications of identity %s", identityID)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(err, "list verifications of identity %s", identityID)
	}
	return out, nil
}

// FindPassedForFlow never matches an empty flow id: a verification
// started outside a login flow (empty flow_id) is no pass for any flow. The
// query says flow_id is not empty in so many words, so that the partial
// index (of login-flow rows only) applies.
func (t *tx) FindPassedForFlow(ctx context.Context, identityID, flowID string, since time.Time) (*vigil.Verification, error) {
	if flowID == "" {
		return nil, dbErr(sql.ErrNoRows, "find passed verification of identity %s: no flow", identityID)
	}
	v, err := scanVerification(t.q.QueryRowContext(ctx, `SELECT `+verificationCols+` FROM verifications
		WHERE identity_id = ? AND flow_id = ? AND flow_id <> '' AND state = 'verified' AND verified_at >= ?
		ORDER BY verified_at DESC, created_at DESC, rowid DESC LIMIT 1`, identityID, flowID, ts(since)))
	if err != nil {
		return nil, dbErr(err, "find passed verification of identity %s for flow %s", identityID, flowID)
	}
	return v, nil
}

func (t *tx) UpdateVerification(ctx context.Context, v *vigil.Verification) error {
	res, err := t.q.ExecContext(ctx, `UPDATE verifications SET
		state = ?, secret_hash = ?, generation = ?, attempts = ?, max_attempts = ?, expires_at = ?,
		last_sent_at = ?, send_count = ?, verified_at = ?, updated_at = ?, flow_id = ?
		WHERE id = ?`,
		string(v.State), v.SecretHash, v.Generation, v.Attempts, v.MaxAttempts, ts(v.ExpiresAt),
		tsPtr(v.LastSentAt), v.SendCount, tsPtr(v.VerifiedAt), ts(v.UpdatedAt), v.FlowID, v.ID)
	return oneRow(res, err, "update verification %s", v.ID)
}

// CountAttempt is one conditional UPDATE ... RETURNING: the check and the
// increment cannot be separated by another writer.
func (t *tx) CountAttempt(ctx context.Context, id string, now time.Time) (*vigil.Verification, error) {
	v, err := scanVerification(t.q.QueryRowContext(ctx, `UPDATE verifications
		SET attempts = attempts + 1, updated_at = ?
		WHERE id = ? AND state = 'pending' AND attempts < max_attempts AND expires_at > ?
		RETURNING `+verificationCols, ts(now), id, ts(now)))
	if err != nil {
		return nil, dbErr(err, "count attempt on verification %s", id)
	}
	return v, nil
}

func (t *tx) Consume(ctx context.Context, id string, generation int, now time.Time) (bool, error) {
	res, err := t.q.ExecContext(ctx, `UPDATE verifications
		SET state = 'verified', verified_at = ?, updated_at = ?
		WHERE id = ? AND state = 'pending' AND generation = ?`, ts(now), ts(now), id, generation)
	return affected(res, err, "consume verification %s", id)
}

func (t *tx) BindFlow(ctx context.Context, id, flowID string) (bool, error) {
	res, err := t.q.ExecContext(ctx, `UPDATE verifications SET flow_id = ? WHERE id = ? AND flow_id = ''`, flowID, id)
	return affected(res, err, "bind verification %s to its flow", id)
}

func (t *tx) SetVerificationState(ctx context.Context, id string, from, to vigil.State, now time.Time) (bool, error) {
	res, err := t.q.ExecContext(ctx, `UPDATE verifications SET state = ?, updated_at = ? WHERE id = ? AND state = ?`,
		string(to), ts(now), id, string(from))
	return affected(res, err, "set state of verification %s", id)
}

// affected reports whether a conditional UPDATE changed a row.
func affected(res sql.Result, err error, format string, args ...any) (bool, error) {
	if err != nil {
		return false, dbErr(err, format, args...)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, dbErr(err, format, args...)
	}
	return n > 0, nil
}
