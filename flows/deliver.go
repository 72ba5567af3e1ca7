package flows

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/vigil-auth/vigil"
)

const (
	sendTimeout = 20 * time.Second
	maxBackoff  = 5 * time.Minute
	maxErrorLen = 300
)

// Deliver is the vigil.DeliverFunc the queue runs for each message. It
// sends the message unless it is finished, superseded by a resend or past
// its expiry (a code is never delivered after it expired), records the
// attempt, and asks for a retry after a transient failure: exponential
// backoff with jitter, never past the expiry.
func (s *Service) Deliver(ctx context.Context, messageID string) (time.Time, error) {
	m, err := s.store.GetMessage(ctx, messageID)
	if errors.Is(err, vigil.ErrNotFound) {
		s.log.WarnContext(ctx, "delivery job for unknown message", "message_id", messageID)
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read message %s: %w", messageID, err)
	}
	if m.Status.Done() {
		return time.Time{}, nil
	}
	v, err := s.store.GetVerification(ctx, m.VerificationID)
	if err != nil {
		return time.Time{}, fmt.Errorf("read verification %s: %w", m.VerificationID, err)
	}
	now := s.now()
	switch {
	case v.Generation != m.Generation || v.State == vigil.StateVerified:
		return time.Time{}, s.finish(ctx, m, vigil.MessageSuperseded, "superseded", "", 0, nil)
	case !now.Before(m.ExpiresAt):
		return time.Time{}, s.finish(ctx, m, vigil.MessageExpired, "expired", "", 0, nil)
	}

	to, err := s.keys.Open(m.RecipientSealed)
	if err != nil {
		return time.Time{}, s.finish(ctx, m, vigil.MessageFailed, "permanent_error", "recipient cannot be decrypted with the current keys", 0, nil)
	}
	secret, err := s.keys.Open(m.SecretSealed)
	if err != nil {
		return time.Time{}, s.finish(ctx, m, vigil.MessageFailed, "permanent_error", "secret cannot be decrypted with the current keys", 0, nil)
	}
	out, err := s.render(m, v, string(to), string(secret), now)
	if err != nil {
		return time.Time{}, fmt.Errorf("render message %s: %w", m.ID, err)
	}
	sender := s.send[m.Channel]
	if sender == nil {
		return time.Time{}, s.finish(ctx, m, vigil.MessageFailed, "permanent_error", "no delivery channel configured for "+string(m.Channel), 0, nil)
	}

	// The send must not outlive the code.
	deadline := now.Add(sendTimeout)
	if m.ExpiresAt.Before(deadline) {
		deadline = m.ExpiresAt
	}
	sendCtx, cancel := context.WithDeadline(ctx, deadline)
	began := time.Now()
	res, sendErr := sender.Send(sendCtx, out)
	took := time.Since(began)
	cancel()

	if s.cfg.Dev {
		m.BodySealed = s.keys.Seal([]byte(out.Text))
	}
	if sendErr == nil {
		m.Provider, m.ProviderID = res.Provider, res.ProviderID
		return time.Time{}, s.finish(ctx, m, vigil.MessageSent, "sent", "", took, nil)
	}
	msg := truncate(sendErr.Error(), maxErrorLen)
	if vigil.IsPermanent(sendErr) {
		return time.Time{}, s.finish(ctx, m, vigil.MessageFailed, "permanent_error", msg, took, nil)
	}
	retryAt := s.now().Add(s.backoff(m.Attempts + 1))
	if !retryAt.Before(m.ExpiresAt) {
		return time.Time{}, s.finish(ctx, m, vigil.MessageFailed, "transient_error", msg+" (no retry: the code would expire first)", took, nil)
	}
	return retryAt, s.finish(ctx, m, vigil.MessageRetrying, "transient_error", msg, took, &retryAt)
}

// finish records one attempt and the message's new status together.
func (s *Service) finish(ctx context.Context, m *vigil.Message, status vigil.MessageStatus, outcome, errText string, took time.Duration, retryAt *time.Time) error {
	now := s.now()
	attempted := outcome == "sent" || outcome == "transient_error" || outcome == "permanent_error"
	if attempted {
		m.Attempts++
	}
	m.Status, m.LastError, m.UpdatedAt = status, errText, now
	if status == vigil.MessageSent {
		m.SentAt = &now
	}
	if retryAt != nil {
		m.NextAttemptAt = *retryAt
	}
	err := s.store.InTx(ctx, func(tx vigil.Tx) error {
		if err := tx.UpdateMessage(ctx, m); err != nil {
			return fmt.Errorf("update message: %w", err)
		}
		if err := tx.InsertMessageAttempt(ctx, &vigil.MessageAttempt{
			MessageID: m.ID, Attempt: m.Attempts, At: now, Outcome: outcome, Error: errText, Duration: took,
		}); err != nil {
			return fmt.Errorf("record attempt: %w", err)
		}
		if !status.Done() {
			return nil
		}
		typ := vigil.EventMessageSent
		if status != vigil.MessageSent {
			typ = vigil.EventMessageFailed
		}
		data := map[string]string{"message_id": m.ID, "channel": string(m.Channel), "status": string(status), "attempts": strconv.Itoa(m.Attempts)}
		if m.Provider != "" {
			data["provider"] = m.Provider
		}
		return s.audit(ctx, tx, typ, m.IdentityID, m.VerificationID, "system", data)
	})
	if err != nil {
		return fmt.Errorf("record delivery of %s: %w", m.ID, err)
	}
	s.obs.MessageAttempted(m.Channel, outcome, took)
	if status == vigil.MessageFailed {
		s.log.WarnContext(ctx, "message not delivered", "message_id", m.ID, "channel", m.Channel, "recipient", m.RecipientMasked, "error", errText)
	}
	return nil
}

// backoff is the wait before attempt n+1: RetryBackoff × 2^(n-1), capped,
// with jitter over its upper half so retries of many messages spread out.
func (s *Service) backoff(n int) time.Duration {
	d := s.cfg.RetryBackoff
	for i := 1; i < n && d < maxBackoff; i++ {
		d *= 2
	}
	d = min(d, maxBackoff)
	return d/2 + rand.N(d/2+1) //nolint:gosec // jitter spreads retries; it protects nothing
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
