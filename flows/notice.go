package flows

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/vigil-auth/vigil"
)

// JobAddressNotice tells an address that it was replaced on its account.
const JobAddressNotice = "address_notice"

// noticePayload carries the old address sealed: the job outlives the
// address row, and the database never holds it in plaintext.
type noticePayload struct {
	IdentityID string        `json:"identity_id"`
	Channel    vigil.Channel `json:"channel"`
	Sealed     []byte        `json:"sealed"`
	Masked     string        `json:"masked"`
}

func (s *Service) queueNotice(ctx context.Context, tx vigil.Tx, a *vigil.Address, now time.Time) error {
	payload, err := json.Marshal(noticePayload{IdentityID: a.IdentityID, Channel: a.Channel, Sealed: a.Sealed, Masked: a.Masked})
	if err != nil {
		return fmt.Errorf("encode notice job: %w", err)
	}
	if err := tx.InsertJob(ctx, &vigil.Job{ID: newID(), Kind: JobAddressNotice, Payload: payload, RunAt: now}); err != nil {
		return fmt.Errorf("queue notice: %w", err)
	}
	return nil
}

var noticeWords = map[vigil.Channel]string{vigil.ChannelEmail: "email address", vigil.ChannelSMS: "phone number"}

// notice sends the address-changed notice. A transient failure is returned
// so the queue retries; one that retrying cannot fix is logged and dropped.
func (s *Service) notice(ctx context.Context, job *vigil.Job) error {
	var p noticePayload
	if err := json.Unmarshal(job.Payload, &p); err != nil {
		s.log.ErrorContext(ctx, "malformed notice job; dropped", "job_id", job.ID, "error", err)
		return nil
	}
	to, err := s.keys.Open(p.Sealed)
	if err != nil {
		s.log.ErrorContext(ctx, "notice address cannot be opened with the current keys; dropped", "job_id", job.ID)
		return nil
	}
	sender := s.send[p.Channel]
	if sender == nil {
		s.log.ErrorContext(ctx, "no delivery channel for notice; dropped", "job_id", job.ID, "channel", p.Channel)
		return nil
	}
	text := fmt.Sprintf("The %s on your account was changed, and this one was removed. If you did not make this change, contact support right away.", noticeWords[p.Channel])
	out := vigil.Outbound{ID: job.ID, Channel: p.Channel, To: string(to), Text: text + "\n"}
	if p.Channel == vigil.ChannelEmail {
		out.Subject = "Your email address was changed"
		out.HTML = "<!doctype html>\n<html><body style=\"font-family:sans-serif;line-height:1.5\"><p>" + text + "</p></body></html>\n"
	}
	sendCtx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	if _, err := sender.Send(sendCtx, out); err != nil {
		if vigil.IsPermanent(err) {
			s.log.WarnContext(ctx, "notice not delivered", "job_id", job.ID, "recipient", p.Masked, "error", truncate(err.Error(), maxErrorLen))
			return nil
		}
		return fmt.Errorf("send notice %s: %w", job.ID, err)
	}
	return s.store.InTx(ctx, func(tx vigil.Tx) error {
		return s.audit(ctx, tx, vigil.EventNoticeSent, p.IdentityID, "", "system", map[string]string{
			"channel": string(p.Channel), "destination": p.Masked,
		})
	})
}
