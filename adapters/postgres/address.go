package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-auth/vigil"
)

const addressCols = `id, identity_id, channel, blind_index, sealed, masked, verified_at, created_at, updated_at`

func scanAddress(row pgx.Row) (*vigil.Address, error) {
	var a vigil.Address
	err := row.Scan(&a.ID, &a.IdentityID, &a.Channel, &a.Index, &a.Sealed, &a.Masked, &a.VerifiedAt, &a.CreatedAt, &a.UpdatedAt)
	if err != nil {
		return nil, err
	}
	a.VerifiedAt = utcPtr(a.VerifiedAt)
	a.CreatedAt = utc(a.CreatedAt)
	a.UpdatedAt = utc(a.UpdatedAt)
	return &a, nil
}

func collectAddresses(rows pgx.Rows) ([]*vigil.Address, error) {
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (*vigil.Address, error) { return scanAddress(row) })
}

// InsertAddress stores a new address. A conflict is detected with ON
// CONFLICT DO NOTHING rather than a unique violation, which would abort
// the caller's transaction: the core reads the winner after losing a race.
func (c *conn) InsertAddress(ctx context.Context, a *vigil.Address) error {
	tag, err := c.db.Exec(ctx, `
		INSERT INTO addresses (`+addressCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT DO NOTHING`,
		a.ID, a.IdentityID, a.Channel, a.Index, a.Sealed, a.Masked, a.VerifiedAt, a.CreatedAt, a.UpdatedAt)
	if err != nil {
		return dbErr(err, "insert address %s", a.ID)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("insert address %s: %w", a.ID, vigil.ErrConflict)
	}
	return nil
}

func (c *conn) GetAddress(ctx context.Context, id string) (*vigil.Address, error) {
	a, err := scanAddress(c.db.QueryRow(ctx, `SELECT `+addressCols+` FROM addresses WHERE id = $1`, id))
	if err != nil {
		return nil, dbErr(err, "get address %s", id)
	}
	return a, nil
}

func (c *conn) FindAddress(ctx context.Context, identityID string, ch vigil.Channel, indexes [][]byte) (*vigil.Address, error) {
	a, err := scanAddress(c.db.QueryRow(ctx, `
		SELECT `+addressCols+` FROM addresses
		WHERE identity_id = $1 AND channel = $2 AND blind_index = ANY($3)
		ORDER BY created_at, id
		LIMIT 1`,
		identityID, ch, indexes))
	if err != nil {
		return nil, dbErr(err, "find %s address of identity %s", ch, identityID)
	}
	return a, nil
}

func (c *conn) FindAddressesByIndex(ctx context.Context, ch vigil.Channel, indexes [][]byte) ([]*vigil.Address, error) {
	rows, err := c.db.Query(ctx, `
		SELECT `+addressCols+` FROM addresses
		WHERE channel = $1 AND blind_index = ANY($2)
		ORDER BY created_at, id`,
		ch, indexes)
	if err != nil {
		return nil, dbErr(err, "find %s addresses by index", ch)
	}
	out, err := collectAddresses(rows)
	if err != nil {
		return nil, dbErr(err, "find %s addresses by index", ch)
	}
	return out, nil
}

func (c *conn) ListAddresses(ctx context.Context, identityID string) ([]*vigil.Address, error) {
	rows, err := c.db.Query(ctx, `
		SELECT `+addressCols+` FROM addresses
		WHERE identity_id = $1
		ORDER BY created_at, id`,
		identityID)
	if err != nil {
		return nil, dbErr(err, "list addresses of identity %s", identityID)
	}
	out, err := collectAddresses(rows)
	if err != nil {
		return nil, dbErr(err, "list addresses of identity %s", identityID)
	}
	return out, nil
}

func (c *conn) DeleteAddress(ctx context.Context, id string) error {
	tag, err := c.db.Exec(ctx, `DELETE FROM addresses WHERE id = $1`, id)
	if err != nil {
		return dbErr(err, "delete address %s", id)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete address %s: %w", id, vigil.ErrNotFound)
	}
	return nil
}

func (c *conn) SetAddressVerified(ctx context.Context, id string, at time.Time) error {
	tag, err := c.db.Exec(ctx, `UPDATE addresses SET verified_at = $2, updated_at = $2 WHERE id = $1`, id, at)
	if err != nil {
		return dbErr(err, "set address %s verified", id)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("set address %s verified: %w", id, vigil.ErrNotFound)
	}
	return nil
}
