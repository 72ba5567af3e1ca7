package flows

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-auth/vigil"
)

// UpdateDelivery records a provider's report on a message it accepted (a
// Twilio status callback). A status only moves forward: a report that
// arrives late, or twice, changes nothing. A message the provider names
// but Vigil does not know is ENOTFOUND.
func (s *Service) UpdateDelivery(ctx context.Context, u vigil.StatusUpdate) error {
	switch u.Status {
	case vigil.MessageSent, vigil.MessageDelivered, vigil.MessageUndelivered, vigil.MessageFailed:
	default:
		return vigil.Errorf(vigil.EINVALID, "Unknown delivery status %q.", u.Status)
	}
	m, err := s.findReported(ctx, u)
	if err != nil {
		return err
	}
	errText := ""
	if u.ErrorCode != "" {
		errText = truncate(u.Provider + " error " + u.ErrorCode)
	}
	// A concurrent report may move the message between the read and the
	// write; read again and decide again, a bounded number of times (there
	// are only three steps forward).
	for range 4 {
		if !m.Status.Advances(u.Status) {
			return nil
		}
		var moved bool
		err := s.store.InTx(ctx, func(tx vigil.Tx) error {
			var err error
			moved, err = tx.AdvanceMessage(ctx, m.ID, m.Status, u.Status, errText, s.now())
			if err != nil || !moved || !failure(u.Status) {
				return err
			}
			return s.audit(ctx, tx, vigil.EventMessageFailed, m.IdentityID, m.VerificationID, u.Provider, map[string]string{
				"message_id": m.ID, "channel": string(m.Channel), "status": string(u.Status), "provider": u.Provider, "error_code": u.ErrorCode,
			})
		})
		if err != nil {
			return fmt.Errorf("advance message %s: %w", m.ID, err)
		}
		if moved {
			s.obs.Delivery(m.Channel, m.Provider, m.Country, string(u.Status))
			if failure(u.Status) {
				s.log.WarnContext(ctx, "provider reports a message not delivered", "message_id", m.ID, "channel", m.Channel,
					"provider", u.Provider, "status", u.Status, "error_code", u.ErrorCode, "recipient", m.RecipientMasked)
			}
			return nil
		}
		if m, err = s.store.GetMessage(ctx, m.ID); err != nil {
			return fmt.Errorf("read message: %w", err)
		}
	}
	return fmt.Errorf("advance message %s: status kept changing", m.ID)
}

func failure(s vigil.MessageStatus) bool {
	return s == vigil.MessageUndelivered || s == vigil.MessageFailed
}

// reportWait is how long a report on a message Vigil does not know yet
// waits for it: a provider may report before Vigil has recorded the
// provider's id, which happens just after the provider's answer arrives.
const (
	reportWait  = time.Second
	reportPolls = 4
)

// findReported finds the message a report is about, waiting briefly for
// one whose send is still being recorded.
func (s *Service) findReported(ctx context.Context, u vigil.StatusUpdate) (*vigil.Message, error) {
	for i := 0; ; i++ {
		m, err := s.store.FindMessageByProvider(ctx, u.Provider, u.ProviderID)
		switch {
		case err == nil:
			return m, nil
		case !errors.Is(err, vigil.ErrNotFound):
			return nil, fmt.Errorf("find message: %w", err)
		case i == reportPolls || ctx.Err() != nil:
			return nil, vigil.Errorf(vigil.ENOTFOUND, "No such message.")
		}
		s.sleep(ctx, reportWait/reportPolls)
	}
}
