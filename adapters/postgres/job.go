package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/vigil-auth/vigil"
)

// InsertJob commits a River job carrying j, in the caller's transaction
// (or a short one of its own), so that the job exists exactly when what
// the transaction wrote does. A missing ID is filled in, and a zero RunAt
// means now. The payload must be JSON: River stores it as such.
func (c *conn) InsertJob(ctx context.Context, j *vigil.Job) error {
	if j.Kind == "" {
		return errors.New("insert job: no kind")
	}
	if len(j.Payload) > 0 && !json.Valid(j.Payload) {
		return fmt.Errorf("insert job of kind %s: payload is not JSON", j.Kind)
	}
	if j.ID == "" {
		j.ID = uuid.NewString()
	}
	if j.RunAt.IsZero() {
		j.RunAt = vigil.SystemClock{}.Now()
	}
	return c.atomically(ctx, func(c *conn) error {
		return c.s.insertJob(ctx, c.tx, j)
	})
}

const hookResultCols = `trigger_id, hook, status, body, created_at`

func (c *conn) GetHookResult(ctx context.Context, triggerID string) (*vigil.HookResult, error) {
	var r vigil.HookResult
	err := c.db.QueryRow(ctx, `SELECT `+hookResultCols+` FROM hook_results WHERE trigger_id = $1`, triggerID).
		Scan(&r.TriggerID, &r.Hook, &r.Status, &r.Body, &r.CreatedAt)
	if err != nil {
		return nil, dbErr(err, "get hook result %s", triggerID)
	}
	r.CreatedAt = utc(r.CreatedAt)
	return &r, nil
}

// hookResultTTL is how long a hook result must be kept: Kratos retries a
// hook for minutes, not days.
const hookResultTTL = 24 * time.Hour

// PutHookResult inserts with ON CONFLICT DO NOTHING, so that losing a race
// for a trigger id reports ErrConflict without aborting the caller's
// transaction. A second Put of an id waits for the first one's transaction
// and conflicts if it commits. Like Hit, one call in cleanupEvery first
// sweeps up to cleanupBatch rows older than hookResultTTL. A zero
// CreatedAt means now.
func (c *conn) PutHookResult(ctx context.Context, r *vigil.HookResult) error {
	if r.CreatedAt.IsZero() {
		r.CreatedAt = vigil.SystemClock{}.Now()
	}
	if c.s.puts.Add(1)%cleanupEvery == 1 {
		_, err := c.db.Exec(ctx, `
			DELETE FROM hook_results
			WHERE trigger_id IN (
				SELECT trigger_id FROM hook_results
				WHERE created_at < $1
				LIMIT $2
				FOR UPDATE SKIP LOCKED)`,
			r.CreatedAt.Add(-hookResultTTL), cleanupBatch)
		if err != nil {
			return dbErr(err, "delete old hook results")
		}
	}
	tag, err := c.db.Exec(ctx, `
		INSERT INTO hook_results (`+hookResultCols+`)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT DO NOTHING`,
		r.TriggerID, r.Hook, r.Status, r.Body, r.CreatedAt)
	if err != nil {
		return dbErr(err, "put hook result %s", r.TriggerID)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("put hook result %s: %w", r.TriggerID, vigil.ErrConflict)
	}
	return nil
}
