package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/vigil-auth/vigil"
)

const lockoutCols = `identity_id, failures, level, locked_until, hard_locked, updated_at`

func scanLockout(row scanner) (*vigil.Lockout, error) {
	var (
		l       vigil.Lockout
		until   sql.NullInt64
		updated int64
	)
	if err := row.Scan(&l.IdentityID, &l.Failures, &l.Level, &until, &l.HardLocked, &updated); err != nil {
		return nil, err
	}
	l.LockedUntil = fromNullTS(until)
	l.UpdatedAt = fromTS(updated)
	return &l, nil
}

func (t *tx) GetLockout(ctx context.Context, identityID string) (*vigil.Lockout, error) {
	l, err := scanLockout(t.q.QueryRowContext(ctx, `SELECT `+lockoutCols+` FROM lockouts WHERE identity_id = ?`, identityID))
	if errors.Is(err, sql.ErrNoRows) {
		return &vigil.Lockout{IdentityID: identityID}, nil
	}
	if err != nil {
		return nil, dbErr(err, "get lockout of identity %s", identityID)
	}
	return l, nil
}

func (t *tx) AddFailure(ctx context.Context, identityID string, now time.Time) (*vigil.Lockout, error) {
	l, err := scanLockout(t.q.QueryRowContext(ctx, `INSERT INTO lockouts (identity_id, failures, updated_at)
		VALUES (?, 1, ?)
		ON CONFLICT (identity_id) DO UPDATE SET failures = failures + 1, updated_at = excluded.updated_at
		RETURNING `+lockoutCols, identityID, ts(now)))
	if err != nil {
		return nil, dbErr(err, "add failure to identity %s", identityID)
	}
	return l, nil
}

func (t *tx) SaveLockout(ctx context.Context, l *vigil.Lockout) error {
	_, err := t.q.ExecContext(ctx, `INSERT INTO lockouts (`+lockoutCols+`) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (identity_id) DO UPDATE SET failures = excluded.failures, level = excluded.level,
			locked_until = excluded.locked_until, hard_locked = excluded.hard_locked, updated_at = excluded.updated_at`,
		l.IdentityID, l.Failures, l.Level, tsPtr(l.LockedUntil), l.HardLocked, ts(l.UpdatedAt))
	if err != nil {
		return dbErr(err, "save lockout of identity %s", l.IdentityID)
	}
	return nil
}

// sweepEvery is how many Hit calls pass between two sweeps of old rate
// counters.
const sweepEvery = 256

// Hit is one upsert. Now and then (the first call, then every sweepEvery-th)
// it first deletes the counters whose window started before expire, the
// caller's cutoff: judging age by the caller's times rather than the
// store's clock means a caller with its own clock never loses a live
// counter.
func (t *tx) Hit(ctx context.Context, key string, window time.Time, expire time.Time) (int, error) {
	if t.s.hits.Add(1)%sweepEvery == 1 {
		if _, err := t.q.ExecContext(ctx, `DELETE FROM rate_counters WHERE window_start < ?`, ts(expire)); err != nil {
			return 0, dbErr(err, "sweep rate counters")
		}
	}
	var n int
	err := t.q.QueryRowContext(ctx, `INSERT INTO rate_counters (key, window_start, count) VALUES (?, ?, 1)
		ON CONFLICT (key, window_start) DO UPDATE SET count = count + 1
		RETURNING count`, key, ts(window)).Scan(&n)
	if err != nil {
		return 0, dbErr(err, "hit rate counter")
	}
	return n, nil
}

func (t *tx) SumHits(ctx context.Context, key string, since time.Time) (int, error) {
	var n int
	err := t.q.QueryRowContext(ctx, `SELECT COALESCE(SUM(count), 0) FROM rate_counters WHERE key = ? AND window_start >= ?`,
		key, ts(since)).Scan(&n)
	if err != nil {
		return 0, dbErr(err, "sum rate counter")
	}
	return n, nil
}
