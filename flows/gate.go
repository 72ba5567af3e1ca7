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
	// ReasonUndeliverable: no address of the identity can be sent a code
	// (the SMS protection refuses the number, or every provider failed).
	ReasonUndeliverable = "undeliverable"
)

// LoginRequest is a login that Kratos is about to turn into a session.
type LoginRequest struct {
	Identity vigil.Identity
	FlowID   string
	// DeviceToken is the device token the login presented (a cookie of
	// a browser, transient_payload.vigil_device of a native app).
	DeviceToken string
	Origin
}

// Origin is what Kratos passes on of the request a hook runs for.
type Origin struct {
	ClientIP string
	// AcceptLanguage is the person's browser's Accept-Language; messages
	// use it when the identity names no language of its own.
	AcceptLanguage string
	// UserAgent is the person's User-Agent: shown to people with their
	// devices, never taken as proof.
	UserAgent string
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
	// FallbackFrom and FallbackDestination (masked) name the address
	// that could not be reached when the code went to another channel.
	FallbackFrom        vigil.Channel
	FallbackDestination string
}

// weighed is one of the identity's addresses as Vigil weighs it. It
// arrives as Kratos sent it; normalize fills the canonical value, the mask
// and the blind indexes when they are first needed.
type weighed struct {
	vigil.IdentityAddress
	normalized bool
	bad        bool // does not normalize: Kratos validated it differently
	masked     string
	index      [][]byte
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
	if !s.cfg.RequiredOnLogin && !s.cfg.Devices.StepUp {
		return &Decision{Allow: true}, nil
	}
	// With step-up on, a device token is looked up in the same read as
	// the addresses, when those must be read at all.
	var dev deviceLookup
	if s.cfg.Devices.StepUp && len(r.DeviceToken) == tokenLength {
		dev.hash = tokenHash(r.DeviceToken)
	}
	addrs, ok, err := s.weighLogin(ctx, r.Identity, &dev)
	if err != nil {
		return nil, err
	}
	if ok || !s.cfg.RequiredOnLogin {
		if s.cfg.Devices.StepUp {
			return s.stepUp(ctx, r, addrs, &dev)
		}
		return &Decision{Allow: true}, nil
	}
	targets := s.targets(addrs)
	if len(targets) == 0 {
		if s.cfg.NoAddress == NoAddressAllow {
			return &Decision{Allow: true}, nil
		}
		return &Decision{Reason: ReasonNoAddress}, nil
	}
	if s.cfg.Soft {
		return &Decision{Allow: true, Soft: true}, nil
	}
	return s.reach(ctx, r, targets, vigil.PurposeVerifyAddress)
}

// reach makes sure the person has a live code for the purpose at the first
// of targets that can be reached. One that cannot (its number is refused,
// or the last message to it failed) passes the code to the next, on the
// other channel if need be, and the person is told why.
func (s *Service) reach(ctx context.Context, r LoginRequest, targets []*weighed, p vigil.Purpose) (*Decision, error) {
	var unreached []*weighed
	for _, t := range targets {
		d, err := s.challenge(ctx, r, t, p, false)
		if errors.Is(err, errUnreachable) {
			unreached = append(unreached, t)
			continue
		}
		if err != nil {
			return nil, err
		}
		if len(unreached) > 0 && d.ChallengeID != "" {
			d.FallbackFrom, d.FallbackDestination = unreached[0].Channel, unreached[0].masked
		}
		return d, nil
	}
	// Nothing else to try: send the first address a new code (its last
	// delivery may have failed for a reason that has passed), unless its
	// number is refused outright.
	d, err := s.challenge(ctx, r, unreached[0], p, true)
	if errors.Is(err, errUnreachable) {
		return &Decision{Reason: ReasonUndeliverable, Channel: unreached[0].Channel, Destination: unreached[0].masked}, nil
	}
	return d, err
}

// errUnreachable: the address cannot be sent a code now.
var errUnreachable = errors.New("address unreachable")

// satisfied tells whether the identity meets the policy: on Kratos' own
// flags first, then with what Vigil verified, read in one query. It does
// only the work the answer needs; in particular an address is normalized
// (phone numbers are costly to parse) only to be matched against one Vigil
// verified on its channel. When the answer is no, it returns the
// identity's addresses that normalize, for the caller to pick one to verify.
func (s *Service) satisfied(ctx context.Context, id vigil.Identity) ([]*weighed, bool, error) {
	return s.weighLogin(ctx, id, nil)
}

// deviceLookup is a device token's lookup, done by weighLogin when it reads
// the addresses anyway.
type deviceLookup struct {
	hash []byte        // the token's hash; nil: no token to look up
	done bool          // looked up
	dev  *vigil.Device // what was found, if anything
}

// weighLogin is satisfied, reading the device of dev.hash (when set) in
// the same read as the addresses, if it reads them.
func (s *Service) weighLogin(ctx context.Context, id vigil.Identity, dev *deviceLookup) ([]*weighed, bool, error) {
	addrs := weigh(id)
	if s.cfg.Require.Satisfied(asAddresses(addrs)) {
		return addrs, true, nil
	}
	var (
		known []*vigil.Address
		err   error
	)
	if dev != nil && dev.hash != nil {
		known, dev.dev, err = s.store.LoginRead(ctx, id.ID, dev.hash)
		dev.done = err == nil
	} else {
		known, err = s.store.ListAddresses(ctx, id.ID)
	}
	if err != nil {
		return nil, false, fmt.Errorf("list addresses: %w", err)
	}
	s.merge(addrs, known)
	if s.cfg.Require.Satisfied(asAddresses(addrs)) {
		return addrs, true, nil
	}
	// An address that does not normalize cannot be verified by Vigil, so
	// it does not hold back a policy that wants every address.
	addrs = s.normalized(addrs)
	return addrs, s.cfg.Require.Satisfied(asAddresses(addrs)), nil
}

// weigh lists the identity's addresses on channels Vigil verifies, as
// Kratos sent them.
func weigh(id vigil.Identity) []*weighed {
	out := make([]*weighed, 0, len(id.Addresses))
	for _, a := range id.Addresses {
		if a.Channel.Valid() {
			out = append(out, &weighed{IdentityAddress: a})
		}
	}
	return out
}

// normalize fills in a's canonical value, mask and blind indexes, once. It
// reports false for an address that does not normalize.
func (s *Service) normalize(a *weighed) bool {
	if !a.normalized {
		a.normalized = true
		value, masked, err := Normalize(a.Channel, a.Value)
		if err != nil {
			a.bad = true
			return false
		}
		a.Value, a.masked, a.index = value, masked, s.keys.Indexes(value)
	}
	return !a.bad
}

// normalized keeps the addresses that normalize.
func (s *Service) normalized(addrs []*weighed) []*weighed {
	out := addrs[:0:0]
	for _, a := range addrs {
		if s.normalize(a) {
			out = append(out, a)
		}
	}
	return out
}

// verifiable lists the identity's addresses on channels Vigil verifies,
// normalized; addresses that do not normalize are skipped.
func (s *Service) verifiable(id vigil.Identity) []*weighed {
	return s.normalized(weigh(id))
}

// merge marks verified what Vigil verified. Only addresses on a channel
// with a Vigil-verified address are normalized to be compared.
func (s *Service) merge(addrs []*weighed, known []*vigil.Address) {
	for _, k := range known {
		if k.VerifiedAt == nil {
			continue
		}
		for _, a := range addrs {
			if !a.Verified && a.Channel == k.Channel && s.normalize(a) && same(a, k) {
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

// targets lists the addresses that may be verified, in the order to try
// them: ones the policy needs, on a channel that is enabled, email before
// phone.
func (s *Service) targets(addrs []*weighed) []*weighed {
	var out []*weighed
	for _, ch := range []vigil.Channel{vigil.ChannelEmail, vigil.ChannelSMS} {
		if !s.enabled(ch) || !s.cfg.Require.wants(ch) {
			continue
		}
		for _, a := range addrs {
			if a.Channel == ch && !a.Verified {
				out = append(out, a)
			}
		}
	}
	return out
}

// target is the first of targets, or nil.
func (s *Service) target(addrs []*weighed) *weighed {
	if t := s.targets(addrs); len(t) > 0 {
		return t[0]
	}
	return nil
}

func (s *Service) enabled(ch vigil.Channel) bool {
	return (ch == vigil.ChannelEmail && s.cfg.EnableEmail) || (ch == vigil.ChannelSMS && s.cfg.EnableSMS)
}

// wants reports whether the policy asks for addresses on ch.
func (r Require) wants(ch vigil.Channel) bool {
	switch r {
	case RequireEmail:
		return ch == vigil.ChannelEmail
	case RequirePhone:
		return ch == vigil.ChannelSMS
	}
	return true
}

// challenge makes sure the person has a live code for the target address:
// the open one while it is still valid, else a new one (subject to the
// cooldown and caps). It returns errUnreachable for an address whose number
// the SMS protection refuses and, unless retry is set, for one whose last
// message failed.
func (s *Service) challenge(ctx context.Context, r LoginRequest, a *weighed, p vigil.Purpose, retry bool) (*Decision, error) {
	d := &Decision{Reason: ReasonVerificationRequired, Channel: a.Channel, Destination: a.masked}
	if p == vigil.PurposeLoginStepUp {
		d.Reason = ReasonNewDevice
	}
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
		open, err := s.store.FindOpenVerification(ctx, known.ID, p)
		if err == nil && open.State == vigil.StatePending && now.Before(open.ExpiresAt) && open.AttemptsLeft() > 0 && open.Method == vigil.MethodCode {
			failed, err := s.deliveryFailed(ctx, open)
			if err != nil {
				return nil, err
			}
			if !failed {
				// A challenge no login flow claimed yet (one sent at
				// registration) is this flow's: passing it lets the flow
				// through. One another flow claimed stays that flow's,
				// unless the person names this flow when passing it.
				if open.FlowID == "" && validID(r.FlowID) {
					if _, err := s.store.BindFlow(ctx, open.ID, r.FlowID); err != nil {
						return nil, fmt.Errorf("bind challenge to flow: %w", err)
					}
				}
				d.ChallengeID, d.ExpiresAt = open.ID, open.ExpiresAt
				return d, nil
			}
			if !retry {
				return nil, errUnreachable
			}
		}
		if err != nil && !errors.Is(err, vigil.ErrNotFound) {
			return nil, fmt.Errorf("find open verification: %w", err)
		}
	case !errors.Is(err, vigil.ErrNotFound):
		return nil, fmt.Errorf("find address: %w", err)
	}
	st, err := s.Start(ctx, StartRequest{
		IdentityID: r.Identity.ID, Address: a.Value, Channel: a.Channel, Method: vigil.MethodCode,
		Purpose: p, ClientIP: r.ClientIP, Actor: "kratos", Locale: r.Identity.Locale,
		AcceptLanguage: r.AcceptLanguage, FlowID: r.FlowID,
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
	case errors.As(err, &ve) && ve.Code == vigil.EUNSUPPORTEDADDR:
		return nil, errUnreachable
	}
	return nil, err
}

// deliveryFailed reports whether the newest message of v failed for good.
func (s *Service) deliveryFailed(ctx context.Context, v *vigil.Verification) (bool, error) {
	last, err := lastMessage(ctx, s.store, v.ID)
	if err != nil || last == nil || last.Generation != v.Generation {
		return false, err
	}
	return failure(last.Status), nil
}

// Registered starts verification of a new identity's addresses as the
// policy asks: under "any" one address (email first), under "email" or
// "phone" that channel's, under "all" every one. Addresses Kratos already
// verified (an OIDC provider vouched for them) are recorded as verified.
func (s *Service) Registered(ctx context.Context, id vigil.Identity, from Origin) error {
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
		if err := s.startFromKratos(ctx, id, a, from); err != nil {
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
func (s *Service) SettingsChanged(ctx context.Context, id vigil.Identity, from Origin) error {
	addrs := s.verifiable(id)
	if err := s.adoptVerified(ctx, id.ID, addrs); err != nil {
		return err
	}
	known, err := s.store.ListAddresses(ctx, id.ID)
	if err != nil {
		return fmt.Errorf("list addresses: %w", err)
	}
	if err := s.dropRemoved(ctx, id.ID, s.language(id.Locale, from.AcceptLanguage), addrs, known); err != nil {
		return err
	}
	for _, a := range addrs {
		if a.Verified || s.knows(known, a) {
			continue
		}
		if (a.Channel == vigil.ChannelEmail && !s.cfg.EnableEmail) || (a.Channel == vigil.ChannelSMS && !s.cfg.EnableSMS) {
			continue
		}
		if err := s.startFromKratos(ctx, id, a, from); err != nil {
			return err
		}
	}
	return nil
}

// dropRemoved forgets the addresses the identity no longer has at Kratos.
// One that was verified is told of the change on its own channel, so the
// owner learns if someone else changed it.
func (s *Service) dropRemoved(ctx context.Context, identityID, lang string, current []*weighed, known []*vigil.Address) error {
	for _, k := range known {
		if has(current, k) {
			continue
		}
		err := s.store.InTx(ctx, func(tx vigil.Tx) error {
			now := s.now()
			notify := k.VerifiedAt != nil
			if notify {
				if err := s.queueNotice(ctx, tx, k, lang, now); err != nil {
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
func (s *Service) startFromKratos(ctx context.Context, id vigil.Identity, a *weighed, from Origin) error {
	identityID := id.ID
	_, err := s.Start(ctx, StartRequest{IdentityID: identityID, Address: a.Value, Channel: a.Channel, Method: vigil.MethodCode,
		ClientIP: from.ClientIP, Actor: "kratos", Locale: id.Locale, AcceptLanguage: from.AcceptLanguage})
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
