package flows

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-auth/vigil"
)

// Reasons the gate gives for a blocked login. They are stable: hooks map
// each to a Kratos message id and UIs key on them.
const (
	ReasonVerificationRequired = "verification_required"
	ReasonNoAddress            = "no_verifiable_address"
	ReasonLocked               = "locked"
	ReasonInactive             = "inactive"
	ReasonRateLimited          = "rate_limited"
)

// LoginRequest is a login that Kratos is about to turn into a session.
type LoginRequest struct {
	Identity vigil.Identity
	FlowID   string
	ClientIP string
}

// Decision is the gate's answer.
type Decision struct {
	Allow bool
	// Soft: allowed although unverified (soft mode).
	Soft        bool
	Reason      string
	ChallengeID string
	Channel     vigil.Channel
	Destination string // masked
	ExpiresAt   time.Time
	RetryAfter  time.Duration
}

// address is one of the identity's addresses as the gate weighs it.
type weighed struct {
	vigil.IdentityAddress
	masked string
	index  [][]byte
}

// Gate decides whether a login may get its session. The allow path reads
// the database at most once and writes nothing: addresses Kratos already
// marks verified are trusted as they come, and Vigil's own verified
// addresses are read in one query. Only a blocked login writes: it starts,
// or reuses while still valid, a challenge so that the person always has a
// code to type.
func (s *Service) Gate(ctx context.Context, r LoginRequest) (*Decision, error) {
	if !r.Identity.Active {
		return &Decision{Reason: ReasonInactive}, nil
	}
	if !s.cfg.RequiredOnLogin {
		return &Decision{Allow: true}, nil
	}
	addrs := s.verifiable(r.Identity)
	if s.cfg.Require.Satisfied(asAddresses(addrs)) {
		return &Decision{Allow: true}, nil
	}
	known, err := s.store.ListAddresses(ctx, r.Identity.ID)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	merge(addrs, known)
	if s.cfg.Require.Satisfied(asAddresses(addrs)) {
		return &Decision{Allow: true}, nil
	}
	target := s.target(addrs)
	if target == nil {
		if s.cfg.NoAddress == NoAddressAllow {
			return &Decision{Allow: true}, nil
		}
		return &Decision{Reason: ReasonNoAddress}, nil
	}
	if s.cfg.Soft {
		return &Decision{Allow: true, Soft: true}, nil
	}
	return s.challenge(ctx, r, target)
}

// verifiable lists the identity's addresses on channels Vigil verifies,
// normalized; addresses that do not normalize (Kratos validated them
// differently) are skipped.
func (s *Service) verifiable(id vigil.Identity) []*weighed {
	out := make([]*weighed, 0, len(id.Addresses))
	for _, a := range id.Addresses {
		if !a.Channel.Valid() {
			continue
		}
		value, masked, err := Normalize(a.Channel, a.Value)
		if err != nil {
			continue
		}
		a.Value = value
		out = append(out, &weighed{IdentityAddress: a, masked: masked, index: s.keys.Indexes(value)})
	}
	return out
}

// merge marks verified what Vigil verified.
func merge(addrs []*weighed, known []*vigil.Address) {
	for _, k := range known {
		if k.VerifiedAt == nil {
			continue
		}
		for _, a := range addrs {
			if same(a, k) {
				a.Verified = true
			}
		}
	}
}

func containsIndex(indexes [][]byte, idx []byte) bool {
	for _, i := range indexes {
		if string(i) == string(idx) {
			return true
		}
	}
	return false
}

func asAddresses(addrs []*weighed) []*vigil.Address {
	out := make([]*vigil.Address, len(addrs))
	now := time.Time{}
	for i, a := range addrs {
		out[i] = &vigil.Address{Channel: a.Channel}
		if a.Verified {
			out[i].VerifiedAt = &now
		}
	}
	return out
}

// target picks the address to verify: one the policy needs, on a channel
// that is enabled, email before phone.
func (s *Service) target(addrs []*weighed) *weighed {
	enabled := func(ch vigil.Channel) bool {
		return (ch == vigil.ChannelEmail && s.cfg.EnableEmail) || (ch == vigil.ChannelSMS && s.cfg.EnableSMS)
	}
	wanted := func(ch vigil.Channel) bool {
		switch s.cfg.Require {
		case RequireEmail:
			return ch == vigil.ChannelEmail
		case RequirePhone:
			return ch == vigil.ChannelSMS
		}
		return true
	}
	for _, ch := range []vigil.Channel{vigil.ChannelEmail, vigil.ChannelSMS} {
		if !enabled(ch) || !wanted(ch) {
			continue
		}
		for _, a := range addrs {
			if a.Channel == ch && !a.Verified {
				return a
			}
		}
	}
	return nil
}

// challenge makes sure the person has a live code for the target address:
// the open one while it is still valid, else a new one (subject to the
// cooldown and caps).
func (s *Service) challenge(ctx context.Context, r LoginRequest, a *weighed) (*Decision, error) {
	d := &Decision{Reason: ReasonVerificationRequired, Channel: a.Channel, Destination: a.masked}
	lo, err := s.store.GetLockout(ctx, r.Identity.ID)
	if err != nil {
		return nil, fmt.Errorf("read lockout: %w", err)
	}
	now := s.now()
	if locked, wait := lo.Locked(now); locked {
		d.Reason, d.RetryAfter = ReasonLocked, wait
		return d, nil
	}
	known, err := s.store.FindAddress(ctx, r.Identity.ID, a.Channel, a.index)
	switch {
	case err == nil:
		open, err := s.store.FindOpenVerification(ctx, known.ID, vigil.PurposeVerifyAddress)
		if err == nil && open.State == vigil.StatePending && now.Before(open.ExpiresAt) && open.AttemptsLeft() > 0 && open.Method == vigil.MethodCode {
			d.ChallengeID, d.ExpiresAt = open.ID, open.ExpiresAt
			return d, nil
		}
		if err != nil && !errors.Is(err, vigil.ErrNotFound) {
			return nil, fmt.Errorf("find open verification: %w", err)
		}
	case !errors.Is(err, vigil.ErrNotFound):
		return nil, fmt.Errorf("find address: %w", err)
	}
	st, err := s.Start(ctx, StartRequest{
		IdentityID: r.Identity.ID, Address: a.Value, Channel: a.Channel, Method: vigil.MethodCode,
		Purpose: vigil.PurposeVerifyAddress, ClientIP: r.ClientIP, Actor: "kratos",
	})
	var ve *vigil.Error
	switch {
	case err == nil:
		d.ChallengeID, d.ExpiresAt = st.ID, st.ExpiresAt
		return d, nil
	case errors.As(err, &ve) && ve.Code == vigil.ERATELIMITED:
		d.Reason, d.RetryAfter = ReasonRateLimited, ve.RetryAfter
		return d, nil
	case errors.As(err, &ve) && ve.Code == vigil.ELOCKED:
		d.Reason, d.RetryAfter = ReasonLocked, ve.RetryAfter
		return d, nil
	case errors.As(err, &ve) && ve.Code == vigil.EVERIFIED:
		// Verified between the read and the start.
		return &Decision{Allow: true}, nil
	}
	return nil, err
}

// Registered starts verification of a new identity's addresses as the
// policy asks: under "any" one address (email first), under "email" or
// "phone" that channel's, under "all" every one. Addresses Kratos already
// verified (an OIDC provider vouched for them) are recorded as verified.
func (s *Service) Registered(ctx context.Context, id vigil.Identity, clientIP string) error {
	addrs := s.verifiable(id)
	if err := s.adoptVerified(ctx, id.ID, addrs); err != nil {
		return err
	}
	if s.cfg.Require.Satisfied(asAddresses(addrs)) {
		return nil
	}
	if s.cfg.Soft {
		// Soft mode lets the unverified in; apps tell them apart by
		// metadata_public.vigil.verified, so record it from the start.
		if err := s.queueSummary(ctx, id.ID); err != nil {
			return err
		}
	}
	for {
		a := s.target(addrs)
		if a == nil {
			return nil
		}
		if err := s.startFromKratos(ctx, id.ID, a, clientIP); err != nil {
			return err
		}
		if s.cfg.Require != RequireAll {
			return nil
		}
		a.Verified = true // handled; move on to the next address
	}
}

// SettingsChanged reacts to a profile change stored by Kratos: an address
// Vigil has not seen is new and gets verified (or recorded as verified when
// Kratos says so).
func (s *Service) SettingsChanged(ctx context.Context, id vigil.Identity, clientIP string) error {
	addrs := s.verifiable(id)
	if err := s.adoptVerified(ctx, id.ID, addrs); err != nil {
		return err
	}
	known, err := s.store.ListAddresses(ctx, id.ID)
	if err != nil {
		return fmt.Errorf("list addresses: %w", err)
	}
	if err := s.dropRemoved(ctx, id.ID, addrs, known); err != nil {
		return err
	}
	for _, a := range addrs {
		if a.Verified || s.knows(known, a) {
			continue
		}
		if (a.Channel == vigil.ChannelEmail && !s.cfg.EnableEmail) || (a.Channel == vigil.ChannelSMS && !s.cfg.EnableSMS) {
			continue
		}
		if err := s.startFromKratos(ctx, id.ID, a, clientIP); err != nil {
			return err
		}
	}
	return nil
}

// dropRemoved forgets the addresses the identity no longer has at Kratos.
// One that was verified is told of the change on its own channel, so the
// owner learns if someone else changed it.
func (s *Service) dropRemoved(ctx context.Context, identityID string, current []*weighed, known []*vigil.Address) error {
	for _, k := range known {
		if has(current, k) {
			continue
		}
		err := s.store.InTx(ctx, func(tx vigil.Tx) error {
			now := s.now()
			notify := k.VerifiedAt != nil
			if notify {
				if err := s.queueNotice(ctx, tx, k, now); err != nil {
					return err
				}
			}
			if err := tx.DeleteAddress(ctx, k.ID); err != nil {
				return fmt.Errorf("delete address: %w", err)
			}
			return s.audit(ctx, tx, vigil.EventAddressRemoved, identityID, "", "kratos", map[string]string{
				"channel": string(k.Channel), "destination": k.Masked, "notified": fmt.Sprint(notify),
			})
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// startFromKratos starts verification of an address Kratos told of. Only an
// internal failure is an error: a refusal (cooldown, caps, lock) is logged,
// since the hook that asked cannot do anything about it.
func (s *Service) startFromKratos(ctx context.Context, identityID string, a *weighed, clientIP string) error {
	_, err := s.Start(ctx, StartRequest{IdentityID: identityID, Address: a.Value, Channel: a.Channel, Method: vigil.MethodCode, ClientIP: clientIP, Actor: "kratos"})
	if vigil.ErrorCode(err) == vigil.EINTERNAL {
		return err
	}
	if err != nil {
		s.log.InfoContext(ctx, "verification not started", "identity_id", identityID, "channel", a.Channel, "reason", vigil.ErrorCode(err))
	}
	return nil
}

func (s *Service) knows(known []*vigil.Address, a *weighed) bool {
	for _, k := range known {
		if same(a, k) {
			return true
		}
	}
	return false
}

// has reports whether the identity's current addresses include k.
func has(current []*weighed, k *vigil.Address) bool {
	for _, a := range current {
		if same(a, k) {
			return true
		}
	}
	return false
}

// same reports whether a Kratos address and a stored one are the same
// address (same channel, blind index under any key of the ring).
func same(a *weighed, k *vigil.Address) bool {
	return a.Channel == k.Channel && containsIndex(a.index, k.Index)
}

// KratosVerified records the addresses Kratos itself verified (its own
// verification flow) as verified in Vigil too.
func (s *Service) KratosVerified(ctx context.Context, id vigil.Identity) error {
	return s.adoptVerified(ctx, id.ID, s.verifiable(id))
}

// adoptVerified records as verified, once, every address Kratos marks
// verified.
func (s *Service) adoptVerified(ctx context.Context, identityID string, addrs []*weighed) error {
	for _, a := range addrs {
		if !a.Verified {
			continue
		}
		err := s.store.InTx(ctx, func(tx vigil.Tx) error {
			now := s.now()
			known, err := s.address(ctx, tx, identityID, a.Channel, a.Value, a.masked, now)
			if err != nil || known.VerifiedAt != nil {
				return err
			}
			if err := tx.SetAddressVerified(ctx, known.ID, now); err != nil {
				return fmt.Errorf("mark address verified: %w", err)
			}
			return s.audit(ctx, tx, vigil.EventAddressVerifiedByKratos, identityID, "", "kratos", map[string]string{
				"channel": string(a.Channel), "destination": a.masked,
			})
		})
		if err != nil {
			return err
		}
	}
	return nil
}
