package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/vigil-auth/vigil"
)

// InsertJob writes the jobs row, which is the job: a Queue picks it up once
// j.RunAt has come and deletes it when it finished. A missing ID is filled
// in, and a zero RunAt means now. The payload must be JSON, as the
// PostgreSQL store requires; it is kept byte for byte. Queues are woken
// when the transaction commits.
func (t *tx) InsertJob(ctx context.Context, j *vigil.Job) error {
	if j.Kind == "" {
		return errors.New("insert job: no kind")
	}
	if len(j.Payload) > 0 && !json.Valid(j.Payload) {
		return fmt.Errorf("insert job of kind %s: payload is not JSON", j.Kind)
	}
	now := t.s.now()
	if j.ID == "" {
		j.ID = uuid.NewString()
	}
	if j.RunAt.IsZero() {
		j.RunAt = now
	}
	_, err := t.q.ExecContext(ctx, `INSERT INTO jobs (id, kind, payload, run_at, created_at) VALUES (?, ?, ?, ?, ?)`,
		j.ID, j.Kind, j.Payload, ts(j.RunAt), ts(now))
	if err != nil {
		return dbErr(err, "insert job %s (%s)", j.ID, j.Kind)
	}
	t.queued = true
	return nil
}

const hookResultCols = `trigger_id, hook, status, body, created_at`

func (t *tx) GetHookResult(ctx context.Context, triggerID string) (*vigil.HookResult, error) {
	var (
		r       vigil.HookResult
		created int64
	)
	err := t.q.QueryRowContext(ctx, `SELECT `+hookResultCols+` FROM hook_results WHERE trigger_id = ?`, triggerID).
		Scan(&r.TriggerID, &r.Hook, &r.Status, &r.Body, &created)
	if err != nil {
		return nil, dbErr(err, "get hook result %s", triggerID)
	}
	r.CreatedAt = fromTS(created)
	return &r, nil
}

// hookResultTTL is how long a hook result must be kept: Kratos retries a
// hook for minutes, not days.
const hookResultTTL = 24 * time.Hour

// PutHookResult inserts with ON CONFLICT DO NOTHING and reports
// ErrConflict when nothing was inserted. Like Hit, one call in sweepEvery
// first deletes the rows older than hookResultTTL, judged by the caller's
// CreatedAt. A zero CreatedAt means now.
func (t *tx) PutHookResult(ctx context.Context, r *vigil.HookResult) error {
	if r.CreatedAt.IsZero() {
		r.CreatedAt = t.s.now()
	}
	if t.s.puts.Add(1)%sweepEvery == 1 {
		if _, err := t.q.ExecContext(ctx, `DELETE FROM hook_results WHERE created_at < ?`,
			ts(r.CreatedAt.Add(-hookResultTTL))); err != nil {
			return dbErr(err, "sweep hook results")
		}
	}
	res, err := t.q.ExecContext(ctx, `INSERT INTO hook_results (`+hookResultCols+`) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (trigger_id) DO NOTHING`,
		r.TriggerID, r.Hook, r.Status, r.Body, ts(r.CreatedAt))
	if err != nil {
		return dbErr(err, "put hook result %s", r.TriggerID)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return dbErr(err, "put hook result %s", r.TriggerID)
	}
	if n == 0 {
		return fmt.Errorf("put hook result %s: %w", r.TriggerID, vigil.ErrConflict)
	}
	return nil
}
