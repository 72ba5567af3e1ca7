package postgres

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-auth/vigil"
)

const auditCols = `seq, id, at, type, identity_id, verification_id, actor, data, prev_hash, hash`

// AppendAudit locks the one-row head, so appends are serialized until the
// caller's transaction ends and form one unbroken chain.
func (c *conn) AppendAudit(ctx context.Context, e *vigil.AuditEvent, seal vigil.SealFunc) error {
	return c.atomically(ctx, func(c *conn) error {
		var head int64
		var prev []byte
		err := c.db.QueryRow(ctx, `SELECT seq, hash FROM audit_head WHERE id FOR UPDATE`).Scan(&head, &prev)
		if err != nil {
			return dbErr(err, "lock audit head")
		}
		// Seal exactly what a later read returns: PostgreSQL keeps
		// microseconds (and would round, not truncate, the rest).
		e.At = e.At.UTC().Truncate(time.Microsecond)
		e.Seq = head + 1
		e.PrevHash = prev
		e.Hash = seal(prev, e)
		data := e.Data
		if data == nil {
			data = map[string]string{}
		}
		tag, err := c.db.Exec(ctx, `
			WITH ins AS (
				INSERT INTO audit_events (`+auditCols+`)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
				ON CONFLICT DO NOTHING
				RETURNING seq)
			UPDATE audit_head SET seq = $1, hash = $10
			WHERE id AND EXISTS (SELECT 1 FROM ins)`,
			e.Seq, e.ID, e.At, e.Type, e.IdentityID, e.VerificationID, e.Actor, data, e.PrevHash, e.Hash)
		if err != nil {
			return dbErr(err, "append audit event %s", e.ID)
		}
		if tag.RowsAffected() == 0 {
			e.Seq, e.PrevHash, e.Hash = 0, nil, nil
			return fmt.Errorf("append audit event %s: %w", e.ID, vigil.ErrConflict)
		}
		return nil
	})
}

func (c *conn) ListAudit(ctx context.Context, f vigil.AuditFilter) ([]*vigil.AuditEvent, error) {
	args := []any{f.AfterSeq}
	q := `SELECT ` + auditCols + ` FROM audit_events WHERE seq > $1`
	if f.IdentityID != "" {
		args = append(args, f.IdentityID)
		q += ` AND identity_id = $2`
	}
	q += ` ORDER BY seq`
	if f.Limit > 0 {
		args = append(args, f.Limit)
		q += ` LIMIT $` + strconv.Itoa(len(args))
	}
	rows, err := c.db.Query(ctx, q, args...)
	if err != nil {
		return nil, dbErr(err, "list audit events")
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*vigil.AuditEvent, error) {
		var e vigil.AuditEvent
		err := row.Scan(&e.Seq, &e.ID, &e.At, &e.Type, &e.IdentityID, &e.VerificationID, &e.Actor, &e.Data, &e.PrevHash, &e.Hash)
		if err != nil {
			return nil, err
		}
		e.At = utc(e.At)
		if len(e.Data) == 0 {
			e.Data = nil
		}
		return &e, nil
	})
	if err != nil {
		return nil, dbErr(err, "list audit events")
	}
	return out, nil
}

func (c *conn) AuditHead(ctx context.Context) (int64, []byte, error) {
	var seq int64
	var hash []byte
	if err := c.db.QueryRow(ctx, `SELECT seq, hash FROM audit_head WHERE id`).Scan(&seq, &hash); err != nil {
		return 0, nil, dbErr(err, "read audit head")
	}
	return seq, hash, nil
}
