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

const messageCols = `id, verification_id, identity_id, channel, generation, recipient_index, recipient_sealed,
	recipient_masked, secret_sealed, body_sealed, status, attempts, last_error, provider, provider_id,
	next_attempt_at, expires_at, sent_at, created_at, updated_at, country, prefix, locale`

func scanMessage(row scanner) (*vigil.Message, error) {
	var (
		m                               vigil.Message
		channel, status                 string
		next, expires, created, updated int64
		sent                            sql.NullInt64
	)
	if err := row.Scan(&m.ID, &m.VerificationID, &m.IdentityID, &channel, &m.Generation, &m.RecipientIndex,
		&m.RecipientSealed, &m.RecipientMasked, &m.SecretSealed, &m.BodySealed, &status, &m.Attempts,
		&m.LastError, &m.Provider, &m.ProviderID, &next, &expires, &sent, &created, &updated,
		&m.Country, &m.Prefix, &m.Locale); err != nil {
		return nil, err
	}
	m.Channel = vigil.Channel(channel)
	m.Status = vigil.MessageStatus(status)
	m.NextAttemptAt = fromTS(next)
	m.ExpiresAt = fromTS(expires)
	m.SentAt = fromNullTS(sent)
	m.CreatedAt = fromTS(created)
	m.UpdatedAt = fromTS(updated)
	return &m, nil
}

// InsertMessage writes the message row, which is also its delivery job:
// a Queue picks it up once m.NextAttemptAt has come. A message inserted
// already finished (sent, failed, ...) gets no job. Missing ID, status
// (queued), next attempt (now) and timestamps are filled in on m. Queues
// are woken when the transaction commits.
func (t *tx) InsertMessage(ctx context.Context, m *vigil.Message) error {
	now := t.s.now()
	if m.ID == "" {
		m.ID = uuid.NewString()
	}
	if m.Status == "" {
		m.Status = vigil.MessageQueued
	}
	if m.CreatedAt.IsZero() {
		m.CreatedAt = now
	}
	if m.UpdatedAt.IsZero() {
		m.UpdatedAt = m.CreatedAt
	}
	if m.NextAttemptAt.IsZero() {
		m.NextAttemptAt = m.CreatedAt
	}
	var runAt any
	if !m.Status.Done() {
		runAt = ts(m.NextAttemptAt)
	}
	_, err := t.q.ExecContext(ctx, `INSERT INTO messages (`+messageCols+`, job_run_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		m.ID, m.VerificationID, m.IdentityID, string(m.Channel), m.Generation, m.RecipientIndex, m.RecipientSealed,
		m.RecipientMasked, m.SecretSealed, m.BodySealed, string(m.Status), m.Attempts, m.LastError, m.Provider,
		m.ProviderID, ts(m.NextAttemptAt), ts(m.ExpiresAt), tsPtr(m.SentAt), ts(m.CreatedAt), ts(m.UpdatedAt),
		m.Country, m.Prefix, m.Locale, runAt)
	if err != nil {
		return dbErr(err, "insert message %s", m.ID)
	}
	if runAt != nil {
		t.queued = true
	}
	return nil
}

func (t *tx) GetMessage(ctx context.Context, id string) (*vigil.Message, error) {
	m, err := scanMessage(t.q.QueryRowContext(ctx, `SELECT `+messageCols+` FROM messages WHERE id = ?`, id))
	if err != nil {
		return nil, dbErr(err, "get message %s", id)
	}
	return m, nil
}

// UpdateMessage writes what delivery changes. It leaves the job columns
// alone, and the queue leaves these alone, so deliver and the queue never
// overwrite each other.
func (t *tx) UpdateMessage(ctx context.Context, m *vigil.Message) error {
	res, err := t.q.ExecContext(ctx, `UPDATE messages SET
		secret_sealed = ?, body_sealed = ?, status = ?, attempts = ?, last_error = ?, provider = ?,
		provider_id = ?, next_attempt_at = ?, expires_at = ?, sent_at = ?, updated_at = ?
		WHERE id = ?`,
		m.SecretSealed, m.BodySealed, string(m.Status), m.Attempts, m.LastError, m.Provider,
		m.ProviderID, ts(m.NextAttemptAt), ts(m.ExpiresAt), tsPtr(m.SentAt), ts(m.UpdatedAt), m.ID)
	return oneRow(res, err, "update message %s", m.ID)
}

// ListMessages returns the newest messages first, at most f.Limit of
// them (defaultListLimit when it is zero or less).
func (t *tx) ListMessages(ctx context.Context, f vigil.MessageFilter) ([]*vigil.Message, error) {
	var (
		where []string
		args  []any
	)
	if f.IdentityID != "" {
		where = append(where, "identity_id = ?")
		args = append(args, f.IdentityID)
	}
	if f.VerificationID != "" {
		where = append(where, "verification_id = ?")
		args = append(args, f.VerificationID)
	}
	if len(f.RecipientIndexes) > 0 {
		where = append(where, "recipient_index IN ("+placeholders(len(f.RecipientIndexes))+")")
		for _, ix := range f.RecipientIndexes {
			args = append(args, ix)
		}
	}
	q := `SELECT ` + messageCols + ` FROM messages`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY created_at DESC, rowid DESC LIMIT ?"
	args = append(args, listLimit(f.Limit))

	rows, err := t.q.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, dbErr(err, "list messages")
	}
	defer rows.Close()
	out := []*vigil.Message{}
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, dbErr(err, "list messages")
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(err, "list messages")
	}
	return out, nil
}

func (t *tx) FindMessageByProvider(ctx context.Context, provider, providerID string) (*vigil.Message, error) {
	if providerID == "" {
		return nil, fmt.Errorf("find message by provider id: %w", vigil.ErrNotFound)
	}
	m, err := scanMessage(t.q.QueryRowContext(ctx, `SELECT `+messageCols+` FROM messages
		WHERE provider = ? AND provider_id = ? AND provider_id <> ''
		ORDER BY created_at DESC LIMIT 1`, provider, providerID))
	if err != nil {
		return nil, dbErr(err, "find message by provider id")
	}
	return m, nil
}

func (t *tx) AdvanceMessage(ctx context.Context, id string, from, to vigil.MessageStatus, errText string, now time.Time) (bool, error) {
	res, err := t.q.ExecContext(ctx, `UPDATE messages SET status = ?,
		last_error = CASE WHEN ? = '' THEN last_error ELSE ? END, updated_at = ?
		WHERE id = ? AND status = ?`, string(to), errText, errText, ts(now), id, string(from))
	if err != nil {
		return false, dbErr(err, "advance message %s", id)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, dbErr(err, "advance message %s", id)
	}
	return n == 1, nil
}

func (t *tx) InsertMessageAttempt(ctx context.Context, a *vigil.MessageAttempt) error {
	if a.At.IsZero() {
		a.At = t.s.now()
	}
	_, err := t.q.ExecContext(ctx, `INSERT INTO message_attempts (message_id, attempt, at, outcome, error, duration_ns, provider)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, a.MessageID, a.Attempt, ts(a.At), a.Outcome, a.Error, int64(a.Duration), a.Provider)
	if err != nil {
		return dbErr(err, "insert attempt %d of message %s", a.Attempt, a.MessageID)
	}
	return nil
}

func (t *tx) ListMessageAttempts(ctx context.Context, messageID string) ([]*vigil.MessageAttempt, error) {
	rows, err := t.q.QueryContext(ctx, `SELECT message_id, attempt, at, outcome, error, duration_ns, provider
		FROM message_attempts WHERE message_id = ? ORDER BY attempt`, messageID)
	if err != nil {
		return nil, dbErr(err, "list attempts of message %s", messageID)
	}
	defer rows.Close()
	out := []*vigil.MessageAttempt{}
	for rows.Next() {
		var (
			a      vigil.MessageAttempt
			at, ns int64
		)
		if err := rows.Scan(&a.MessageID, &a.Attempt, &at, &a.Outcome, &a.Error, &ns, &a.Provider); err != nil {
			return nil, dbErr(err, "list attempts of message %s", messageID)
		}
		a.At = fromTS(at)
		a.Duration = time.Duration(ns)
		out = append(out, &a)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(err, "list attempts of message %s", messageID)
	}
	return out, nil
}

// defaultListLimit is how many rows a list returns when the filter sets
// no limit, as the conformance suite pins down.
const defaultListLimit = 50

func listLimit(n int) int {
	if n <= 0 {
		return defaultListLimit
	}
	return n
}

// RelaxDurability does nothing: the one writer's synchronous setting is the
// connection's, and a commit on SQLite costs one fsync of the WAL at most.
func (t *tx) RelaxDurability(context.Context) error { return nil }
