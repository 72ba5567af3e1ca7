package flows

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/vigil-auth/vigil"
)

// Satisfied reports whether verified addresses meet the policy: any one
// address; an email; a phone; or every known address (at least one).
func (r Require) Satisfied(addrs []*vigil.Address) bool {
	var verified, email, phone int
	for _, a := range addrs {
		if a.VerifiedAt == nil {
			continue
		}
		verified++
		switch a.Channel {
		case vigil.ChannelEmail:
			email++
		case vigil.ChannelSMS:
			phone++
		}
	}
	switch r {
	case RequireEmail:
		return email > 0
	case RequirePhone:
		return phone > 0
	case RequireAll:
		return len(addrs) > 0 && verified == len(addrs)
	default:
		return verified > 0
	}
}

// IdentityStatus returns the per-address state and lock of an identity. An
// identity Vigil has never seen has no addresses and is not verified.
func (s *Service) IdentityStatus(ctx context.Context, identityID string) (*IdentityStatus, error) {
	if identityID == "" || len(identityID) > 64 {
		return nil, vigil.Errorf(vigil.EINVALID, "identity id is required (at most 64 characters).")
	}
	addrs, err := s.store.ListAddresses(ctx, identityID)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	vs, err := s.store.ListVerifications(ctx, identityID)
	if err != nil {
		return nil, fmt.Errorf("list verifications: %w", err)
	}
	lo, err := s.store.GetLockout(ctx, identityID)
	if err != nil {
		return nil, fmt.Errorf("read lockout: %w", err)
	}
	now := s.now()
	st := &IdentityStatus{
		IdentityID: identityID,
		Require:    s.cfg.Require,
		Verified:   s.cfg.Require.Satisfied(addrs),
		Addresses:  make([]AddressStatus, 0, len(addrs)),
	}
	locked, _ := lo.Locked(now)
	st.Lock = LockStatus{Locked: locked, Hard: lo.HardLocked, Failures: lo.Failures}
	if locked && !lo.HardLocked {
		st.Lock.LockedUntil = lo.LockedUntil
	}
	for _, a := range addrs {
		as := AddressStatus{ID: a.ID, Channel: a.Channel, Destination: a.Masked, State: vigil.AddressUnverified, VerifiedAt: a.VerifiedAt}
		if a.VerifiedAt != nil {
			as.State = vigil.AddressVerified
		}
		if v := newestFor(vs, a.ID); v != nil && a.VerifiedAt == nil {
			as.VerificationID = v.ID
			exp := v.ExpiresAt
			as.ExpiresAt = &exp
			switch {
			case v.State == vigil.StateLocked:
				as.State = vigil.AddressLocked
			case v.State == vigil.StateExpired || !now.Before(v.ExpiresAt):
				as.State = vigil.AddressExpired
			case v.State == vigil.StatePending:
				as.State = vigil.AddressPending
				as.AttemptsLeft = new(v.AttemptsLeft())
			}
		}
		st.Addresses = append(st.Addresses, as)
	}
	return st, nil
}

// newestFor is the newest address verification of the address.
func newestFor(vs []*vigil.Verification, addressID string) *vigil.Verification {
	var out *vigil.Verification
	for _, v := range vs {
		if v.AddressID != addressID || v.Purpose != vigil.PurposeVerifyAddress {
			continue
		}
		if out == nil || v.CreatedAt.After(out.CreatedAt) {
			out = v
		}
	}
	return out
}

// Unlock lifts every lock of an identity and resets its failure count. A
// code that died stays dead: the person asks for a new one.
func (s *Service) Unlock(ctx context.Context, identityID, actor string) error {
	if identityID == "" || len(identityID) > 64 {
		return vigil.Errorf(vigil.EINVALID, "identity id is required (at most 64 characters).")
	}
	return s.store.InTx(ctx, func(tx vigil.Tx) error {
		now := s.now()
		lo, err := tx.GetLockout(ctx, identityID)
		if err != nil {
			return fmt.Errorf("read lockout: %w", err)
		}
		if err := tx.SaveLockout(ctx, &vigil.Lockout{IdentityID: identityID, UpdatedAt: now}); err != nil {
			return fmt.Errorf("reset lockout: %w", err)
		}
		locked, _ := lo.Locked(now)
		return s.audit(ctx, tx, vigil.EventIdentityUnlocked, identityID, "", actor, map[string]string{
			"was_locked": fmt.Sprint(locked), "was_hard_locked": fmt.Sprint(lo.HardLocked),
		})
	})
}

// ForceVerify marks an address verified without a code; the audit trail
// records who did it.
func (s *Service) ForceVerify(ctx context.Context, identityID, address string, ch vigil.Channel, actor string) (*AddressStatus, error) {
	if identityID == "" || len(identityID) > 64 {
		return nil, vigil.Errorf(vigil.EINVALID, "identity id is required (at most 64 characters).")
	}
	value, masked, err := Normalize(ch, address)
	if err != nil {
		return nil, err
	}
	var out *AddressStatus
	err = s.store.InTx(ctx, func(tx vigil.Tx) error {
		now := s.now()
		a, err := s.address(ctx, tx, identityID, ch, value, masked, now)
		if err != nil {
			return err
		}
		if a.VerifiedAt == nil {
			if err := tx.SetAddressVerified(ctx, a.ID, now); err != nil {
				return fmt.Errorf("mark address verified: %w", err)
			}
			a.VerifiedAt = &now
			if err := s.queueSync(ctx, tx, identityID, a.ID, now); err != nil {
				return err
			}
			if err := s.audit(ctx, tx, vigil.EventAddressForceVerified, identityID, "", actor, map[string]string{
				"channel": string(ch), "destination": masked,
			}); err != nil {
				return err
			}
		}
		out = &AddressStatus{ID: a.ID, Channel: ch, Destination: masked, State: vigil.AddressVerified, VerifiedAt: a.VerifiedAt}
		return nil
	})
	return out, err
}

// Audit lists audit events.
func (s *Service) Audit(ctx context.Context, f vigil.AuditFilter) ([]*vigil.AuditEvent, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 1000
	}
	return s.store.ListAudit(ctx, f)
}

// VerifyAudit walks the whole chain: every row must follow the previous
// one without a gap, carry its hash, and hash correctly under a key of the
// ring; the last row must be the head. An edited row, a deleted row and a
// cut-off tail each break it.
func (s *Service) VerifyAudit(ctx context.Context) (*AuditReport, error) {
	headSeq, headHash, err := s.store.AuditHead(ctx)
	if err != nil {
		return nil, fmt.Errorf("read audit head: %w", err)
	}
	rep := &AuditReport{OK: true}
	var prev []byte
	var seq int64
	broken := func(at int64, reason string) (*AuditReport, error) {
		rep.OK, rep.BrokenAt, rep.Reason = false, at, reason
		return rep, nil
	}
	for {
		page, err := s.store.ListAudit(ctx, vigil.AuditFilter{AfterSeq: seq, Limit: 1000})
		if err != nil {
			return nil, fmt.Errorf("read audit: %w", err)
		}
		for _, e := range page {
			switch {
			case e.Seq != seq+1:
				return broken(seq+1, fmt.Sprintf("row %d is missing", seq+1))
			case !bytes.Equal(e.PrevHash, prev):
				return broken(e.Seq, fmt.Sprintf("row %d does not link to row %d", e.Seq, seq))
			case !s.keys.CheckAuditMAC(auditBytes(prev, e), e.Hash):
				return broken(e.Seq, fmt.Sprintf("row %d was altered", e.Seq))
			}
			prev, seq = e.Hash, e.Seq
			rep.Checked++
		}
		if len(page) < 1000 {
			break
		}
	}
	if seq != headSeq || !bytes.Equal(prev, headHash) {
		return broken(seq+1, fmt.Sprintf("the chain ends at row %d but its head records row %d", seq, headSeq))
	}
	return rep, nil
}

// Messages lists outbound messages by recipient and/or identity, newest
// first. Bodies are shown only in dev mode.
func (s *Service) Messages(ctx context.Context, recipient, identityID string, limit int) ([]MessageView, error) {
	f := vigil.MessageFilter{IdentityID: identityID, Limit: limit}
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 50
	}
	if recipient != "" {
		value, _, err := Normalize(GuessChannel(recipient), recipient)
		if err != nil {
			return nil, err
		}
		f.RecipientIndexes = s.keys.Indexes(value)
	}
	ms, err := s.store.ListMessages(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("list messages: %w", err)
	}
	out := make([]MessageView, 0, len(ms))
	for _, m := range ms {
		atts, err := s.store.ListMessageAttempts(ctx, m.ID)
		if err != nil {
			return nil, fmt.Errorf("list attempts of %s: %w", m.ID, err)
		}
		mv := MessageView{
			ID: m.ID, VerificationID: m.VerificationID, IdentityID: m.IdentityID, Channel: m.Channel,
			Recipient: m.RecipientMasked, Status: m.Status, Attempts: m.Attempts, LastError: m.LastError,
			Provider: m.Provider, Country: m.Country, Locale: m.Locale, CreatedAt: m.CreatedAt, SentAt: m.SentAt,
			History: make([]MessageAttemptView, 0, len(atts)),
		}
		for _, a := range atts {
			mv.History = append(mv.History, MessageAttemptView{
				Attempt: a.Attempt, At: a.At, Outcome: a.Outcome, Provider: a.Provider, Error: a.Error, DurationMS: a.Duration.Milliseconds(),
			})
		}
		if s.cfg.Dev && len(m.BodySealed) > 0 {
			body, err := s.keys.Open(m.BodySealed)
			if err != nil && !errors.Is(err, vigil.ErrUnsealable) {
				return nil, err
			}
			mv.Body = string(body)
		}
		out = append(out, mv)
	}
	return out, nil
}
