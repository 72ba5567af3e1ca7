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
		return time.Time{}, s.finish(ctx, m, vigil.MessageSuperseded, "superseded", "", "", 0, nil)
	case !now.Before(m.ExpiresAt):
		return time.Time{}, s.finish(ctx, m, vigil.MessageExpired, "expired", "", "", 0, nil)
	}

	to, err := s.keys.Open(m.RecipientSealed)
	if err != nil {
		return time.Time{}, s.finish(ctx, m, vigil.MessageFailed, "permanent_error", "", "recipient cannot be decrypted with the current keys", 0, nil)
	}
	secret, err := s.keys.Open(m.SecretSealed)
	if err != nil {
		return time.Time{}, s.finish(ctx, m, vigil.MessageFailed, "permanent_error", "", "secret cannot be decrypted with the current keys", 0, nil)
	}
	out, err := s.render(m, v, string(to), string(secret), now)
	if err != nil {
		return time.Time{}, fmt.Errorf("render message %s: %w", m.ID, err)
	}
	chain := s.chains[m.Channel]
	if len(chain) == 0 {
		return time.Time{}, s.finish(ctx, m, vigil.MessageFailed, "permanent_error", "", "no delivery channel configured for "+string(m.Channel), 0, nil)
	}
	if s.cfg.Dev {
		m.BodySealed = s.keys.Seal([]byte(out.Text))
	}

	// Each provider in turn: a transient failure passes the very same
	// message (same code) to the next; a permanent one ends the delivery,
	// since the next provider would be refused the same way.
	var last tryResult
	tried := 0
	for _, p := range chain {
		if p.OTP != nil && v.Method != vigil.MethodCode {
			continue // a provider that makes its own codes cannot send a link
		}
		if tried > 0 {
			if err := s.recordAttempt(ctx, m, last); err != nil {
				return time.Time{}, err
			}
		}
		tried++
		last = s.try(ctx, p, m, out, now)
		if last.err == nil {
			m.Provider, m.ProviderID = last.provider, last.res.ProviderID
			status := last.res.Status
			if status != vigil.MessageDelivered {
				status = vigil.MessageSent
			}
			return time.Time{}, s.finish(ctx, m, status, "sent", last.provider, "", last.took, nil)
		}
		if vigil.IsPermanent(last.err) {
			return time.Time{}, s.finish(ctx, m, vigil.MessageFailed, "permanent_error", last.provider, truncate(last.err.Error()), last.took, nil)
		}
	}
	if tried == 0 {
		return time.Time{}, s.finish(ctx, m, vigil.MessageFailed, "permanent_error", "", "no provider of the "+string(m.Channel)+" chain can send links", 0, nil)
	}
	msg := truncate(last.err.Error())
	retryAt := s.now().Add(s.backoff(m.Attempts + 1))
	if !retryAt.Before(m.ExpiresAt) {
		return time.Time{}, s.finish(ctx, m, vigil.MessageFailed, "transient_error", last.provider, msg+" (no retry: the code would expire first)", last.took, nil)
	}
	return retryAt, s.finish(ctx, m, vigil.MessageRetrying, "transient_error", last.provider, msg, last.took, &retryAt)
}

// tryResult is one provider's answer to one attempt.
type tryResult struct {
	provider string
	res      vigil.SendResult
	err      error
	took     time.Duration
}

// try hands the message to one provider under a deadline that the code's
// expiry caps: a send must not outlive the code.
func (s *Service) try(ctx context.Context, p Provider, m *vigil.Message, out vigil.Outbound, now time.Time) tryResult {
	deadline := now.Add(sendTimeout)
	if m.ExpiresAt.Before(deadline) {
		deadline = m.ExpiresAt
	}
	sendCtx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	r := tryResult{provider: p.Name}
	began := time.Now()
	if p.OTP != nil {
		r.res, r.err = p.OTP.SendOTP(sendCtx, vigil.OTPRequest{ID: m.ID, Channel: m.Channel, To: out.To, Locale: out.Locale})
	} else {
		r.res, r.err = p.Sender.Send(sendCtx, out)
	}
	r.took = time.Since(began)
	if r.provider == "" {
		r.provider = r.res.Provider
	}
	if r.err == nil && r.res.ProviderID == "" && p.OTP != nil {
		r.err = vigil.Permanent(fmt.Errorf("%s accepted the code but named no verification to check it against", p.Name))
	}
	return r
}

// recordAttempt records a failed attempt that the next provider follows up.
func (s *Service) recordAttempt(ctx context.Context, m *vigil.Message, r tryResult) error {
	m.Attempts++
	err := s.store.InsertMessageAttempt(ctx, &vigil.MessageAttempt{
		MessageID: m.ID, Attempt: m.Attempts, At: s.now(), Outcome: "transient_error",
		Error: truncate(r.err.Error()), Duration: r.took, Provider: r.provider,
	})
	if err != nil {
		return fmt.Errorf("record attempt of %s: %w", m.ID, err)
	}
	s.obs.MessageAttempted(m.Channel, "transient_error", r.took)
	s.log.InfoContext(ctx, "provider failed; trying the next", "message_id", m.ID, "channel", m.Channel, "provider", r.provider, "error", truncate(r.err.Error()))
	return nil
}

// finish records one attempt and the message's new status together.
func (s *Service) finish(ctx context.Context, m *vigil.Message, status vigil.MessageStatus, outcome, provider, errText string, took time.Duration, retryAt *time.Time) error {
	now := s.now()
	attempted := outcome == "sent" || outcome == "transient_error" || outcome == "permanent_error"
	if attempted {
		m.Attempts++
	}
	m.Status, m.LastError, m.UpdatedAt = status, errText, now
	if status.Reached() {
		m.SentAt = &now
	}
	if retryAt != nil {
		m.NextAttemptAt = *retryAt
	}
	err := s.store.InTx(ctx, func(tx vigil.Tx) error {
		// Lost in a database crash, this outcome is redone by the retry
		// that follows: the message is sent again, with the same code.
		if err := tx.RelaxDurability(ctx); err != nil {
			return err
		}
		if err := tx.UpdateMessage(ctx, m); err != nil {
			return fmt.Errorf("update message: %w", err)
		}
		if err := tx.InsertMessageAttempt(ctx, &vigil.MessageAttempt{
			MessageID: m.ID, Attempt: m.Attempts, At: now, Outcome: outcome, Error: errText, Duration: took, Provider: provider,
		}); err != nil {
			return fmt.Errorf("record attempt: %w", err)
		}
		// The audit trail already holds the code's issue
		// (VerificationStarted, VerificationResent, with the masked
		// destination); a hand-over that worked is the message's own
		// record. Appending it too would serialize every delivery on the
		// chain's head, which caps a whole deployment's sending rate
		// (docs/benchmarks.md). A message that never reached anyone is
		// audited.
		if status != vigil.MessageFailed && status != vigil.MessageExpired {
			return nil
		}
		data := map[string]string{"message_id": m.ID, "channel": string(m.Channel), "status": string(status), "attempts": strconv.Itoa(m.Attempts)}
		if m.Provider != "" {
			data["provider"] = m.Provider
		}
		return s.audit(ctx, tx, vigil.EventMessageFailed, m.IdentityID, m.VerificationID, "system", data)
	})
	if err != nil {
		return fmt.Errorf("record delivery of %s: %w", m.ID, err)
	}
	s.obs.MessageAttempted(m.Channel, outcome, took)
	if status.Done() && status != vigil.MessageExpired && status != vigil.MessageSuperseded {
		s.obs.Delivery(m.Channel, m.Provider, m.Country, string(status))
	}
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

// truncate caps an error text kept or logged at maxErrorLen bytes.
func truncate(s string) string {
	const n = maxErrorLen
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// sendPlain sends a message Vigil wrote in full (a notice) through the
// channel's chain, with the same failover as a delivery; providers that
// make their own codes cannot carry it. It returns the last failure.
func (s *Service) sendPlain(ctx context.Context, out vigil.Outbound) (vigil.SendResult, error) {
	var err error
	for _, p := range s.chains[out.Channel] {
		if p.Sender == nil {
			continue
		}
		sendCtx, cancel := context.WithTimeout(ctx, sendTimeout)
		var res vigil.SendResult
		res, err = p.Sender.Send(sendCtx, out)
		cancel()
		if err == nil || vigil.IsPermanent(err) {
			return res, err
		}
	}
	if err == nil {
		return vigil.SendResult{}, vigil.Permanent(fmt.Errorf("no provider of the %s chain can send notices", out.Channel))
	}
	return vigil.SendResult{}, err
}
