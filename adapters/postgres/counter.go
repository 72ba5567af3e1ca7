package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-auth/vigil"
)

const lockoutCols = `identity_id, failures, level, locked_until, hard_locked, updated_at`

func scanLockout(row pgx.Row) (*vigil.Lockout, error) {
	var l vigil.Lockout
	if err := row.Scan(&l.IdentityID, &l.Failures, &l.Level, &l.LockedUntil, &l.HardLocked, &l.UpdatedAt); err != nil {
		return nil, err
	}
	l.LockedUntil = utcPtr(l.LockedUntil)
	l.UpdatedAt = utc(l.UpdatedAt)
	return &l, nil
}

func (c *conn) GetLockout(ctx context.Context, identityID string) (*vigil.Lockout, error) {
	l, err := scanLockout(c.db.QueryRow(ctx, `SELECT `+lockoutCols+` FROM lockouts WHERE identity_id = $1`, identityID))
	if errors.Is(err, pgx.ErrNoRows) {
		return &vigil.Lockout{IdentityID: identityID}, nil
	}
	if err != nil {
		return nil, dbErr(err, "get lockout of identity %s", identityID)
	}
	return l, nil
}

// AddFailure is one upsert, so concurrent failures all count.
func (c *conn) AddFailure(ctx context.Context, identityID string, now time.Time) (*vigil.Lockout, error) {
	l, err := scanLockout(c.db.QueryRow(ctx, `
		INSERT INTO lockouts (identity_id, failures, level, locked_until, hard_locked, updated_at)
		VALUES ($1, 1, 0, NULL, false, $2)
		ON CONFLICT (identity_id) DO UPDATE
			SET failures = lockouts.failures + 1, updated_at = excluded.updated_at
		RETURNING `+lockoutCols,
		identityID, now))
	if err != nil {
		return nil, dbErr(err, "add failure to identity %s", identityID)
	}
	return l, nil
}

func (c *conn) SaveLockout(ctx context.Context, l *vigil.Lockout) error {
	_, err := c.db.Exec(ctx, `
		INSERT INTO lockouts (`+lockoutCols+`)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (identity_id) DO UPDATE SET
			failures = excluded.failures, level = excluded.level, locked_until = excluded.locked_until,
			hard_locked = excluded.hard_locked, updated_at = excluded.updated_at`,
		l.IdentityID, l.Failures, l.Level, l.LockedUntil, l.HardLocked, l.UpdatedAt)
	if err != nil {
		return dbErr(err, "save lockout of identity %s", l.IdentityID)
	}
	return nil
}

// Rate counter cleanup runs on one Hit in cleanupEvery, deleting at most
// cleanupBatch rows, and skips rows another session holds: cheap enough
// to ride along, and over many calls it keeps up with any traffic.
const (
	cleanupEvery = 64
	cleanupBatch = 500
)

// Hit is one upsert, so concurrent hits each see their own count.
func (c *conn) Hit(ctx context.Context, key string, window, expire time.Time) (int, error) {
	if c.s.hits.Add(1)%cleanupEvery == 1 {
		// Windows before the cutoff, and never the caller's current one.
		_, err := c.db.Exec(ctx, `
			DELETE FROM rate_counters
			WHERE (key, window_start) IN (
				SELECT key, window_start FROM rate_counters
				WHERE window_start < $1 AND window_start < $2
				LIMIT $3
				FOR UPDATE SKIP LOCKED)`,
			expire, window, cleanupBatch)
		if err != nil {
			return 0, dbErr(err, "delete expired rate counters")
		}
	}
	var n int
	err := c.db.QueryRow(ctx, `
		INSERT INTO rate_counters (key, window_start, count) VALUES ($1, $2, 1)
		ON CONFLICT (key, window_start) DO UPDATE SET count = rate_counters.count + 1
		RETURNING count`,
		key, window).Scan(&n)
	if err != nil {
		return 0, dbErr(err, "hit rate counter")
	}
	return n, nil
}

func (c *conn) SumHits(ctx context.Context, key string, since time.Time) (int, error) {
	var n int
	err := c.db.QueryRow(ctx, `SELECT COALESCE(SUM(count), 0) FROM rate_counters WHERE key = $1 AND window_start >= $2`,
		key, since).Scan(&n)
	if err != nil {
		return 0, dbErr(err, "sum rate counter")
	}
	return n, nil
}
