package flows

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/flows/templates"
)

// Notice jobs. JobAddressNotice tells an address that it was replaced on
// its account; JobDeviceNotice tells the identity's other address of a
// sign-in from a new device.
const (
	JobAddressNotice = "address_notice"
	JobDeviceNotice  = "device_notice"
)

// noticePayload carries the old address sealed: the job outlives the
// address row, and the database never holds it in plaintext.
type noticePayload struct {
	IdentityID string        `json:"identity_id"`
	Channel    vigil.Channel `json:"channel"`
	Sealed     []byte        `json:"sealed"`
	Masked     string        `json:"masked"`
	Locale     string        `json:"locale,omitempty"`
	// Device and At describe the sign-in of a device notice.
	Device string    `json:"device,omitempty"`
	At     time.Time `json:"at,omitzero"`
}

func (s *Service) queueNotice(ctx context.Context, tx vigil.Tx, a *vigil.Address, lang string, now time.Time) error {
	payload, err := json.Marshal(noticePayload{IdentityID: a.IdentityID, Channel: a.Channel, Sealed: a.Sealed, Masked: a.Masked, Locale: lang})
	if err != nil {
		return fmt.Errorf("encode notice job: %w", err)
	}
	if err := tx.InsertJob(ctx, &vigil.Job{ID: newID(), Kind: JobAddressNotice, Payload: payload, RunAt: now}); err != nil {
		return fmt.Errorf("queue notice: %w", err)
	}
	return nil
}

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
		return nil //nolint:nilerr // a retry cannot open it either: the job is dropped, and logged
	}
	kind, event := templates.KindAddressChanged, vigil.EventNoticeSent
	data := templates.Data{Destination: p.Masked, Channel: p.Channel, Product: s.cfg.Product}
	if job.Kind == JobDeviceNotice {
		kind, event = templates.KindNewDevice, vigil.EventNewDeviceNoticeSent
		data.Device, data.Time = p.Device, p.At
	}
	out, err := s.write(kind, p.Channel, job.ID, string(to), p.Locale, data)
	if err != nil {
		s.log.ErrorContext(ctx, "notice cannot be written; dropped", "job_id", job.ID, "error", err)
		return nil
	}
	if _, err := s.sendPlain(ctx, out); err != nil {
		if vigil.IsPermanent(err) {
			s.log.WarnContext(ctx, "notice not delivered", "job_id", job.ID, "recipient", p.Masked, "error", truncate(err.Error()))
			return nil
		}
		return fmt.Errorf("send notice %s: %w", job.ID, err)
	}
	return s.store.InTx(ctx, func(tx vigil.Tx) error {
		return s.audit(ctx, tx, event, p.IdentityID, "", "system", map[string]string{
			"channel": string(p.Channel), "destination": p.Masked,
		})
	})
}

// queueDeviceNotice tells the identity's verified address on another
// channel than v's that a new device signed in with v: someone who took
// over one channel cannot hide the sign-in from the other. An identity
// with no such address gets no notice.
func (s *Service) queueDeviceNotice(ctx context.Context, tx vigil.Tx, v *vigil.Verification, sent *vigil.Message, from Origin, now time.Time) error {
	addrs, err := tx.ListAddresses(ctx, v.IdentityID)
	if err != nil {
		return fmt.Errorf("list addresses: %w", err)
	}
	var to *vigil.Address
	for _, a := range addrs {
		if a.VerifiedAt != nil && a.Channel != v.Channel && s.enabled(a.Channel) {
			to = a
			break
		}
	}
	if to == nil {
		return nil
	}
	device := describeUserAgent(from.UserAgent)
	if ip := hint(from.ClientIP, 64); ip != "" {
		if device == "" {
			device = "IP " + ip
		} else {
			device += ", IP " + ip
		}
	}
	p := noticePayload{IdentityID: v.IdentityID, Channel: to.Channel, Sealed: to.Sealed, Masked: to.Masked, Device: device, At: now}
	if sent != nil {
		p.Locale = sent.Locale
	}
	payload, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode device notice job: %w", err)
	}
	if err := tx.InsertJob(ctx, &vigil.Job{ID: newID(), Kind: JobDeviceNotice, Payload: payload, RunAt: now}); err != nil {
		return fmt.Errorf("queue device notice: %w", err)
	}
	return nil
}
