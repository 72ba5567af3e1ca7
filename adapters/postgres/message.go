package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-auth/vigil"
)

const messageCols = `id, verification_id, identity_id, channel, generation,
	recipient_index, recipient_sealed, recipient_masked, secret_sealed, body_sealed,
	status, attempts, last_error, provider, provider_id,
	next_attempt_at, expires_at, sent_at, created_at, updated_at, country, prefix, locale`

const (
	defaultMessageLimit = 50
	maxMessageLimit     = 500
)

func scanMessage(row pgx.Row) (*vigil.Message, error) {
	var m vigil.Message
	err := row.Scan(&m.ID, &m.VerificationID, &m.IdentityID, &m.Channel, &m.Generation,
		&m.RecipientIndex, &m.RecipientSealed, &m.RecipientMasked, &m.SecretSealed, &m.BodySealed,
		&m.Status, &m.Attempts, &m.LastError, &m.Provider, &m.ProviderID,
		&m.NextAttemptAt, &m.ExpiresAt, &m.SentAt, &m.CreatedAt, &m.UpdatedAt, &m.Country, &m.Prefix, &m.Locale)
	if err != nil {
		return nil, err
	}
	m.NextAttemptAt = utc(m.NextAttemptAt)
	m.ExpiresAt = utc(m.ExpiresAt)
	m.SentAt = utcPtr(m.SentAt)
	m.CreatedAt = utc(m.CreatedAt)
	m.UpdatedAt = utc(m.UpdatedAt)
	return &m, nil
}

// InsertMessage writes the message row and its delivery job in one
// transaction (the caller's, or a short one of its own), so that neither
// exists without the other.
func (c *conn) InsertMessage(ctx context.Context, m *vigil.Message) error {
	return c.atomically(ctx, func(c *conn) error {
		tag, err := c.db.Exec(ctx, `
			INSERT INTO messages (`+messageCols+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)
			ON CONFLICT DO NOTHING`,
			m.ID, m.VerificationID, m.IdentityID, m.Channel, m.Generation,
			m.RecipientIndex, m.RecipientSealed, m.RecipientMasked, m.SecretSealed, m.BodySealed,
			m.Status, m.Attempts, m.LastError, m.Provider, m.ProviderID,
			m.NextAttemptAt, m.ExpiresAt, m.SentAt, m.CreatedAt, m.UpdatedAt, m.Country, m.Prefix, m.Locale)
		if err != nil {
			return dbErr(err, "insert message %s", m.ID)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("insert message %s: %w", m.ID, vigil.ErrConflict)
		}
		return c.s.insertDelivery(ctx, c.tx, m)
	})
}

func (c *conn) GetMessage(ctx context.Context, id string) (*vigil.Message, error) {
	m, err := scanMessage(c.db.QueryRow(ctx, `SELECT `+messageCols+` FROM messages WHERE id = $1`, id))
	if err != nil {
		return nil, dbErr(err, "get message %s", id)
	}
	return m, nil
}

func (c *conn) UpdateMessage(ctx context.Context, m *vigil.Message) error {
	tag, err := c.db.Exec(ctx, `
		UPDATE messages SET
			status = $2, attempts = $3, last_error = $4, provider = $5, provider_id = $6,
			next_attempt_at = $7, expires_at = $8, sent_at = $9, body_sealed = $10, updated_at = $11
		WHERE id = $1`,
		m.ID, m.Status, m.Attempts, m.LastError, m.Provider, m.ProviderID,
		m.NextAttemptAt, m.ExpiresAt, m.SentAt, m.BodySealed, m.UpdatedAt)
	if err != nil {
		return dbErr(err, "update message %s", m.ID)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("update message %s: %w", m.ID, vigil.ErrNotFound)
	}
	return nil
}

// ListMessages builds its WHERE from the filter, rather than one query
// with optional parameters, so that the planner sees which index applies.
func (c *conn) ListMessages(ctx context.Context, f vigil.MessageFilter) ([]*vigil.Message, error) {
	var where []string
	var args []any
	if f.IdentityID != "" {
		args = append(args, f.IdentityID)
		where = append(where, "identity_id = $"+strconv.Itoa(len(args)))
	}
	if f.VerificationID != "" {
		args = append(args, f.VerificationID)
		where = append(where, "verification_id = $"+strconv.Itoa(len(args)))
	}
	if len(f.RecipientIndexes) > 0 {
		args = append(args, f.RecipientIndexes)
		where = append(where, "recipient_index = ANY($"+strconv.Itoa(len(args))+")")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = defaultMessageLimit
	}
	limit = min(limit, maxMessageLimit)
	args = append(args, limit)

	q := `SELECT ` + messageCols + ` FROM messages`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY created_at DESC, id DESC LIMIT $` + strconv.Itoa(len(args))

	rows, err := c.db.Query(ctx, q, args...)
	if err != nil {
		return nil, dbErr(err, "list messages")
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*vigil.Message, error) { return scanMessage(row) })
	if err != nil {
		return nil, dbErr(err, "list messages")
	}
	return out, nil
}

func (c *conn) FindMessageByProvider(ctx context.Context, provider, providerID string) (*vigil.Message, error) {
	if providerID == "" {
		return nil, fmt.Errorf("find message by provider id: %w", vigil.ErrNotFound)
	}
	m, err := scanMessage(c.db.QueryRow(ctx, `
		SELECT `+messageCols+` FROM messages
		WHERE provider = $1 AND provider_id = $2 AND provider_id <> ''
		ORDER BY created_at DESC LIMIT 1`, provider, providerID))
	if err != nil {
		return nil, dbErr(err, "find message by provider id")
	}
	return m, nil
}

func (c *conn) AdvanceMessage(ctx context.Context, id string, from, to vigil.MessageStatus, errText string, now time.Time) (bool, error) {
	tag, err := c.db.Exec(ctx, `
		UPDATE messages SET status = $3, last_error = CASE WHEN $4 = '' THEN last_error ELSE $4 END, updated_at = $5
		WHERE id = $1 AND status = $2`,
		id, from, to, errText, now)
	if err != nil {
		return false, dbErr(err, "advance message %s", id)
	}
	return tag.RowsAffected() == 1, nil
}

func (c *conn) InsertMessageAttempt(ctx context.Context, a *vigil.MessageAttempt) error {
	_, err := c.db.Exec(ctx, `
		INSERT INTO message_attempts (message_id, attempt, at, outcome, error, duration_ns, provider)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		a.MessageID, a.Attempt, a.At, a.Outcome, a.Error, int64(a.Duration), a.Provider)
	if err != nil {
		return dbErr(err, "insert attempt %d of message %s", a.Attempt, a.MessageID)
	}
	return nil
}

func (c *conn) ListMessageAttempts(ctx context.Context, messageID string) ([]*vigil.MessageAttempt, error) {
	rows, err := c.db.Query(ctx, `
		SELECT message_id, attempt, at, outcome, error, duration_ns, provider
		FROM message_attempts
		WHERE message_id = $1
		ORDER BY attempt, id`,
		messageID)
	if err != nil {
		return nil, dbErr(err, "list attempts of message %s", messageID)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*vigil.MessageAttempt, error) {
		var a vigil.MessageAttempt
		var ns int64
		if err := row.Scan(&a.MessageID, &a.Attempt, &a.At, &a.Outcome, &a.Error, &ns, &a.Provider); err != nil {
			return nil, err
		}
		a.At = utc(a.At)
		a.Duration = time.Duration(ns)
		return &a, nil
	})
	if err != nil {
		return nil, dbErr(err, "list attempts of message %s", messageID)
	}
	return out, nil
}

// RelaxDurability turns synchronous_commit off for the transaction: the
// commit no longer waits for the WAL flush, which also shortens how long
// the audit head stays locked.
func (c *conn) RelaxDurability(ctx context.Context) error {
	if c.tx == nil {
		return nil
	}
	if _, err := c.db.Exec(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
		return dbErr(err, "relax durability")
	}
	return nil
}
