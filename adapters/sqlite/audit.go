package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/vigil-auth/vigil"
)

const auditCols = `seq, id, at, type, identity_id, verification_id, actor, data, prev_hash, hash`

// AppendAudit reads the head inside the write transaction (which already
// holds the database's write lock), chains e to it and moves the head. e.At
// is normalized to UTC microseconds before sealing, so the hash is over
// exactly what is stored and a verifier recomputes the same one.
func (t *tx) AppendAudit(ctx context.Context, e *vigil.AuditEvent, seal vigil.SealFunc) error {
	if e.ID == "" {
		e.ID = uuid.NewString()
	}
	if e.At.IsZero() {
		e.At = t.s.now()
	}
	e.At = e.At.UTC().Truncate(time.Microsecond)
	data, err := json.Marshal(e.Data)
	if err != nil {
		return fmt.Errorf("append audit %s: encode data: %w", e.Type, err)
	}

	var (
		seq  int64
		prev []byte
	)
	if err := t.q.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE one = 1`).Scan(&seq, &prev); err != nil {
		return dbErr(err, "append audit %s: read head", e.Type)
	}
	e.Seq = seq + 1
	e.PrevHash = prev
	e.Hash = seal(e.PrevHash, e)

	if _, err := t.q.ExecContext(ctx, `INSERT INTO audit_events (`+auditCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.Seq, e.ID, ts(e.At), e.Type, e.IdentityID, e.VerificationID, e.Actor, string(data), e.PrevHash, e.Hash); err != nil {
		return dbErr(err, "append audit %s", e.Type)
	}
	if _, err := t.q.ExecContext(ctx, `UPDATE audit_head SET seq = ?, hash = ? WHERE one = 1`, e.Seq, e.Hash); err != nil {
		return dbErr(err, "append audit %s: move head", e.Type)
	}
	return nil
}

// ListAudit returns events in chain order, at most f.Limit of them
// (defaultListLimit when it is zero or less).
func (t *tx) ListAudit(ctx context.Context, f vigil.AuditFilter) ([]*vigil.AuditEvent, error) {
	where := []string{"seq > ?"}
	args := []any{f.AfterSeq}
	if f.IdentityID != "" {
		where = append(where, "identity_id = ?")
		args = append(args, f.IdentityID)
	}
	args = append(args, listLimit(f.Limit))
	rows, err := t.q.QueryContext(ctx, `SELECT `+auditCols+` FROM audit_events WHERE `+strings.Join(where, " AND ")+
		` ORDER BY seq LIMIT ?`, args...)
	if err != nil {
		return nil, dbErr(err, "list audit")
	}
	defer rows.Close()
	out := []*vigil.AuditEvent{}
	for rows.Next() {
		var (
			e    vigil.AuditEvent
			at   int64
			data string
		)
		if err := rows.Scan(&e.Seq, &e.ID, &at, &e.Type, &e.IdentityID, &e.VerificationID, &e.Actor, &data,
			&e.PrevHash, &e.Hash); err != nil {
			return nil, dbErr(err, "list audit")
		}
		e.At = fromTS(at)
		if err := json.Unmarshal([]byte(data), &e.Data); err != nil {
			return nil, fmt.Errorf("list audit: decode data of event %d: %w", e.Seq, err)
		}
		out = append(out, &e)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(err, "list audit")
	}
	return out, nil
}

func (t *tx) AuditHead(ctx context.Context) (int64, []byte, error) {
	var (
		seq  int64
		hash []byte
	)
	if err := t.q.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE one = 1`).Scan(&seq, &hash); err != nil {
		return 0, nil, dbErr(err, "read audit head")
	}
	return seq, hash, nil
}
