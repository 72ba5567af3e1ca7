package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/vigil-auth/vigil"
)

const addressCols = `id, identity_id, channel, index_hash, sealed, masked, verified_at, created_at, updated_at`

type scanner interface{ Scan(dest ...any) error }

func scanAddress(row scanner) (*vigil.Address, error) {
	var (
		a                vigil.Address
		verified         sql.NullInt64
		created, updated int64
		channel          string
	)
	if err := row.Scan(&a.ID, &a.IdentityID, &channel, &a.Index, &a.Sealed, &a.Masked, &verified, &created, &updated); err != nil {
		return nil, err
	}
	a.Channel = vigil.Channel(channel)
	a.VerifiedAt = fromNullTS(verified)
	a.CreatedAt = fromTS(created)
	a.UpdatedAt = fromTS(updated)
	return &a, nil
}

func (t *tx) queryAddresses(ctx context.Context, what, query string, args ...any) ([]*vigil.Address, error) {
	rows, err := t.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, dbErr(err, "%s", what)
	}
	defer rows.Close()
	out := []*vigil.Address{}
	for rows.Next() {
		a, err := scanAddress(rows)
		if err != nil {
			return nil, dbErr(err, "%s", what)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(err, "%s", what)
	}
	return out, nil
}

// InsertAddress fills in a missing ID and timestamps on a.
func (t *tx) InsertAddress(ctx context.Context, a *vigil.Address) error {
	if a.ID == "" {
		a.ID = uuid.NewString()
	}
	if a.CreatedAt.IsZero() {
		a.CreatedAt = t.s.now()
	}
	if a.UpdatedAt.IsZero() {
		a.UpdatedAt = a.CreatedAt
	}
	_, err := t.q.ExecContext(ctx, `INSERT INTO addresses (`+addressCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID, a.IdentityID, string(a.Channel), a.Index, a.Sealed, a.Masked, tsPtr(a.VerifiedAt), ts(a.CreatedAt), ts(a.UpdatedAt))
	if err != nil {
		return dbErr(err, "insert address %s", a.ID)
	}
	return nil
}

func (t *tx) GetAddress(ctx context.Context, id string) (*vigil.Address, error) {
	a, err := scanAddress(t.q.QueryRowContext(ctx, `SELECT `+addressCols+` FROM addresses WHERE id = ?`, id))
	if err != nil {
		return nil, dbErr(err, "get address %s", id)
	}
	return a, nil
}

func (t *tx) FindAddress(ctx context.Context, identityID string, ch vigil.Channel, indexes [][]byte) (*vigil.Address, error) {
	if len(indexes) == 0 {
		return nil, fmt.Errorf("find address: no index given: %w", vigil.ErrNotFound)
	}
	args := []any{identityID, string(ch)}
	for _, ix := range indexes {
		args = append(args, ix)
	}
	// Several rows can match only when the identity stored the same value
	// under two keys; the oldest row is the one the core made first.
	a, err := scanAddress(t.q.QueryRowContext(ctx, `SELECT `+addressCols+` FROM addresses
		WHERE identity_id = ? AND channel = ? AND index_hash IN (`+placeholders(len(indexes))+`)
		ORDER BY created_at, rowid LIMIT 1`, args...))
	if err != nil {
		return nil, dbErr(err, "find address of identity %s", identityID)
	}
	return a, nil
}

func (t *tx) FindAddressesByIndex(ctx context.Context, ch vigil.Channel, indexes [][]byte) ([]*vigil.Address, error) {
	if len(indexes) == 0 {
		return []*vigil.Address{}, nil
	}
	args := []any{string(ch)}
	for _, ix := range indexes {
		args = append(args, ix)
	}
	return t.queryAddresses(ctx, "find addresses by index", `SELECT `+addressCols+` FROM addresses
		WHERE channel = ? AND index_hash IN (`+placeholders(len(indexes))+`)
		ORDER BY created_at, rowid`, args...)
}

func (t *tx) ListAddresses(ctx context.Context, identityID string) ([]*vigil.Address, error) {
	return t.queryAddresses(ctx, "list addresses of identity "+identityID,
		`SELECT `+addressCols+` FROM addresses WHERE identity_id = ? ORDER BY created_at, rowid`, identityID)
}

func (t *tx) SetAddressVerified(ctx context.Context, id string, at time.Time) error {
	res, err := t.q.ExecContext(ctx, `UPDATE addresses SET verified_at = ?, updated_at = ? WHERE id = ?`, ts(at), ts(at), id)
	return oneRow(res, err, "set address %s verified", id)
}

func (t *tx) DeleteAddress(ctx context.Context, id string) error {
	res, err := t.q.ExecContext(ctx, `DELETE FROM addresses WHERE id = ?`, id)
	return oneRow(res, err, "delete address %s", id)
}

// oneRow turns an UPDATE that matched no row into ErrNotFound.
func oneRow(res sql.Result, err error, format string, args ...any) error {
	if err != nil {
		return dbErr(err, format, args...)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return dbErr(err, format, args...)
	}
	if n == 0 {
		return dbErr(sql.ErrNoRows, format, args...)
	}
	return nil
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}
