package flows

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/vigil-auth/vigil"
)

// Start starts verification of an address, or, when the address already has
// an open verification for the purpose, sends it a new secret (subject to
// the same cooldown and caps as a resend).
func (s *Service) Start(ctx context.Context, r StartRequest) (*Started, error) {
	if r.Purpose == "" {
		r.Purpose = vigil.PurposeVerifyAddress
	}
	if r.Method == "" {
		r.Method = vigil.MethodCode
	}
	if r.Actor == "" {
		r.Actor = "system"
	}
	if err := s.checkStart(r); err != nil {
		return nil, err
	}
	value, masked, err := Normalize(r.Channel, r.Address)
	if err != nil {
		return nil, err
	}
	lang := s.language(r.Locale, r.AcceptLanguage)

	var started *Started
	err = s.store.InTx(ctx, func(tx vigil.Tx) error {
		now := s.now()
		if err := s.checkLock(ctx, tx, r.IdentityID, now); err != nil {
			return err
		}
		addr, err := s.address(ctx, tx, r.IdentityID, r.Channel, value, masked, now)
		if err != nil {
			return err
		}
		if addr.VerifiedAt != nil && r.Purpose == vigil.PurposeVerifyAddress {
			return vigil.Errorf(vigil.EVERIFIED, "This address is already verified.")
		}
		open, err := tx.FindOpenVerification(ctx, addr.ID, r.Purpose)
		switch {
		case err == nil && open.Method == r.Method:
			v, err := tx.GetVerificationForUpdate(ctx, open.ID)
			if err != nil {
				return fmt.Errorf("lock verification: %w", err)
			}
			if r.FlowID != "" {
				v.FlowID = r.FlowID // written by renew, under the row lock
			}
			if err := s.renew(ctx, tx, v, addr, r.ClientIP, r.Actor, lang, now); err != nil {
				return err
			}
			started = &Started{ID: v.ID, ExpiresAt: v.ExpiresAt}
			return nil
		case err == nil:
			// A different method replaces the open verification: its secret
			// dies with it.
			if _, err := tx.SetVerificationState(ctx, open.ID, open.State, vigil.StateExpired, now); err != nil {
				return fmt.Errorf("retire verification %s: %w", open.ID, err)
			}
		case !errors.Is(err, vigil.ErrNotFound):
			return fmt.Errorf("find open verification: %w", err)
		}
		v := &vigil.Verification{
			ID:          newID(),
			IdentityID:  r.IdentityID,
			AddressID:   addr.ID,
			Channel:     r.Channel,
			Method:      r.Method,
			Purpose:     r.Purpose,
			State:       vigil.StatePending,
			FlowID:      r.FlowID,
			MaxAttempts: s.cfg.MaxAttempts,
			CreatedAt:   now,
		}
		rt, err := s.takeSendBudget(ctx, tx, addr, r.IdentityID, r.ClientIP, now)
		if err != nil {
			return err
		}
		secret, err := s.arm(v, now)
		if err != nil {
			return err
		}
		if err := tx.InsertVerification(ctx, v); err != nil {
			return fmt.Errorf("insert verification: %w", err)
		}
		if err := s.enqueue(ctx, tx, v, addr, secret, rt, lang, now); err != nil {
			return err
		}
		started = &Started{ID: v.ID, ExpiresAt: v.ExpiresAt}
		return s.audit(ctx, tx, vigil.EventVerificationStarted, v.IdentityID, v.ID, r.Actor, map[string]string{
			"channel": string(v.Channel), "method": string(v.Method), "purpose": string(v.Purpose), "destination": addr.Masked,
		})
	})
	if err != nil {
		return nil, err
	}
	s.obs.VerificationStarted(r.Channel, r.Purpose)
	return started, nil
}

func (s *Service) checkStart(r StartRequest) error {
	if r.IdentityID == "" || len(r.IdentityID) > 64 {
		return vigil.Errorf(vigil.EINVALID, "identity_id is required (at most 64 characters).")
	}
	if !r.Channel.Valid() {
		return vigil.Errorf(vigil.EINVALID, "channel must be email or sms.")
	}
	if !r.Method.Valid() {
		return vigil.Errorf(vigil.EINVALID, "method must be code or link.")
	}
	if r.Purpose != vigil.PurposeVerifyAddress && r.Purpose != vigil.PurposeLoginStepUp {
		return vigil.Errorf(vigil.EINVALID, "Unknown purpose %q.", r.Purpose)
	}
	if r.Channel == vigil.ChannelEmail && !s.cfg.EnableEmail {
		return vigil.Errorf(vigil.EINVALID, "Email verification is disabled.")
	}
	if r.Channel == vigil.ChannelSMS && !s.cfg.EnableSMS {
		return vigil.Errorf(vigil.EINVALID, "SMS verification is disabled.")
	}
	return nil
}

// address finds the identity's address or creates it.
func (s *Service) address(ctx context.Context, tx vigil.Tx, identityID string, ch vigil.Channel, value, masked string, now time.Time) (*vigil.Address, error) {
	a, err := tx.FindAddress(ctx, identityID, ch, s.keys.Indexes(value))
	if err == nil {
		return a, nil
	}
	if !errors.Is(err, vigil.ErrNotFound) {
		return nil, fmt.Errorf("find address: %w", err)
	}
	a = &vigil.Address{
		ID:         newID(),
		IdentityID: identityID,
		Channel:    ch,
		Index:      s.keys.Index(value),
		Sealed:     s.keys.Seal([]byte(value)),
		Masked:     masked,
		CreatedAt:  now,
		UpdatedAt:  now,
	}
	if err := tx.InsertAddress(ctx, a); err != nil {
		return nil, fmt.Errorf("insert address: %w", err)
	}
	return a, nil
}

// arm gives v a fresh secret: a new generation, hash, expiry and attempt
// budget. It returns the plaintext, which only the delivery job sees
// (sealed).
func (s *Service) arm(v *vigil.Verification, now time.Time) (string, error) {
	v.Generation++
	var secret string
	var err error
	if v.Method == vigil.MethodLink {
		if secret, err = s.newToken(); err != nil {
			return "", err
		}
		v.SecretHash = vigil.TokenHash(secret)
	} else {
		if secret, err = s.newCode(); err != nil {
			return "", err
		}
		v.SecretHash = s.keys.CodeHash(v.ID, v.Generation, secret)
	}
	v.State = vigil.StatePending
	v.Attempts = 0
	v.MaxAttempts = s.cfg.MaxAttempts
	v.ExpiresAt = now.Add(s.ttl(v.Channel, v.Method))
	v.LastSentAt = &now
	v.SendCount++
	v.UpdatedAt = now
	return secret, nil
}

// renew sends a locked, open verification a new secret; the old one dies.
// The message is written in lang, or, when it is empty, in the language of
// the previous one.
func (s *Service) renew(ctx context.Context, tx vigil.Tx, v *vigil.Verification, addr *vigil.Address, clientIP, actor, lang string, now time.Time) error {
	if v.State == vigil.StateVerified {
		return vigil.Errorf(vigil.EVERIFIED, "This address is already verified.")
	}
	if err := s.checkLock(ctx, tx, v.IdentityID, now); err != nil {
		return err
	}
	// A new link (or code) can be had at once when the old one expired;
	// otherwise the cooldown holds.
	if now.Before(v.ExpiresAt) && v.LastSentAt != nil {
		if wait := v.LastSentAt.Add(s.cfg.Resend.Cooldown).Sub(now); wait > 0 {
			return &vigil.Error{Code: vigil.ERATELIMITED, Message: "A message was sent a moment ago; wait before asking for another.", RetryAfter: wait}
		}
	}
	rt, err := s.takeSendBudget(ctx, tx, addr, v.IdentityID, clientIP, now)
	if err != nil {
		return err
	}
	if lang == "" {
		prev, err := lastMessage(ctx, tx, v.ID)
		if err != nil {
			return err
		}
		if prev != nil {
			lang = prev.Locale
		}
	}
	secret, err := s.arm(v, now)
	if err != nil {
		return err
	}
	if err := tx.UpdateVerification(ctx, v); err != nil {
		return fmt.Errorf("update verification: %w", err)
	}
	if err := s.enqueue(ctx, tx, v, addr, secret, rt, lang, now); err != nil {
		return err
	}
	return s.audit(ctx, tx, vigil.EventVerificationResent, v.IdentityID, v.ID, actor, map[string]string{
		"channel": string(v.Channel), "method": string(v.Method), "generation": strconv.Itoa(v.Generation),
	})
}

// takeSendBudget counts one send against every cap (destination per 10
// minutes and per hour, identity, client IP) and, for an SMS, screens the
// number and applies the SMS protection. It refuses when any says no. The
// counts live in the store, so they hold across replicas; a refusal rolls
// the transaction back, counts included. It returns where an SMS goes.
func (s *Service) takeSendBudget(ctx context.Context, tx vigil.Tx, addr *vigil.Address, identityID, clientIP string, now time.Time) (route, error) {
	var r route
	if addr.Channel == vigil.ChannelSMS {
		number, err := s.keys.Open(addr.Sealed)
		if err != nil {
			return r, fmt.Errorf("open address %s: %w", addr.ID, err)
		}
		r = s.routeOf(string(number))
		if err := s.screen(r); err != nil {
			s.obs.SMSRefused(r.Country, "number")
			return r, err
		}
	}
	dest := hex.EncodeToString(addr.Index)
	limits := []struct {
		key    string
		window time.Duration
		max    int
	}{
		{"send:dest:10m:" + dest, 10 * time.Minute, s.cfg.Resend.PerDestination},
		{"send:dest:1h:" + dest, time.Hour, s.cfg.Resend.PerDestHour},
		{"send:identity:1h:" + identityID, time.Hour, s.cfg.Resend.PerIdentityHour},
	}
	if clientIP != "" {
		limits = append(limits, struct {
			key    string
			window time.Duration
			max    int
		}{"send:ip:1h:" + s.ipKey(clientIP), time.Hour, s.cfg.Resend.PerIPHour})
	}
	for _, l := range limits {
		if err := s.hit(ctx, tx, l.key, l.window, l.max, now); err != nil {
			return r, err
		}
	}
	if addr.Channel == vigil.ChannelSMS {
		return r, s.takeSMSBudget(ctx, tx, r, now)
	}
	return r, nil
}

// counterRetention is how long rate counter rows are kept: longer than the
// longest window, so the store's clean-up never touches a live counter.
const counterRetention = 25 * time.Hour

// hit counts one event in the fixed window containing now.
func (s *Service) hit(ctx context.Context, tx vigil.Tx, key string, window time.Duration, limit int, now time.Time) error {
	start := now.Truncate(window)
	n, err := tx.Hit(ctx, key, start, now.Add(-counterRetention))
	if err != nil {
		return fmt.Errorf("rate counter: %w", err)
	}
	if n > limit {
		return &vigil.Error{Code: vigil.ERATELIMITED, Message: "Too many requests; try again later.", RetryAfter: start.Add(window).Sub(now)}
	}
	return nil
}

// ipKey is a client IP as a counter key: keyed, so counters reveal no IPs.
func (s *Service) ipKey(ip string) string { return hex.EncodeToString(s.keys.Index("ip:" + ip)[:16]) }

func (s *Service) checkLock(ctx context.Context, tx vigil.Tx, identityID string, now time.Time) error {
	lo, err := tx.GetLockout(ctx, identityID)
	if err != nil {
		return fmt.Errorf("read lockout: %w", err)
	}
	if locked, wait := lo.Locked(now); locked {
		if lo.HardLocked {
			return vigil.Errorf(vigil.ELOCKED, "This account is locked after too many failed attempts. Contact support to unlock it.")
		}
		return &vigil.Error{Code: vigil.ELOCKED, Message: "Too many failed attempts; try again later.", RetryAfter: wait}
	}
	return nil
}

// enqueue queues the message that delivers secret, in tx.
func (s *Service) enqueue(ctx context.Context, tx vigil.Tx, v *vigil.Verification, addr *vigil.Address, secret string, rt route, lang string, now time.Time) error {
	m := &vigil.Message{
		ID:              newID(),
		VerificationID:  v.ID,
		IdentityID:      v.IdentityID,
		Channel:         v.Channel,
		Generation:      v.Generation,
		RecipientIndex:  addr.Index,
		RecipientSealed: addr.Sealed,
		RecipientMasked: addr.Masked,
		Country:         rt.Country,
		Prefix:          rt.Prefix,
		Locale:          lang,
		SecretSealed:    s.keys.Seal([]byte(secret)),
		Status:          vigil.MessageQueued,
		NextAttemptAt:   now,
		ExpiresAt:       v.ExpiresAt,
		CreatedAt:       now,
		UpdatedAt:       now,
	}
	if err := tx.InsertMessage(ctx, m); err != nil {
		return fmt.Errorf("queue message: %w", err)
	}
	return nil
}

// Resend sends a new secret for a verification named by id, or for the
// open verifications of an address. Its answer and timing are the same
// whether or not anything was sent: only malformed input and internal
// failures return an error.
func (s *Service) Resend(ctx context.Context, r ResendRequest) error {
	started := time.Now()
	defer func() { s.sleep(ctx, s.cfg.ResendFloor-time.Since(started)) }()

	if s.cfg.CaptchaOnResend && r.Anonymous {
		if err := s.checkCaptcha(ctx, r.Captcha, r.ClientIP); err != nil {
			return err
		}
	}
	var targets []string
	switch {
	case r.ID != "" && r.Address != "":
		return vigil.Errorf(vigil.EINVALID, "Give either id or address, not both.")
	case r.ID != "":
		if validID(r.ID) {
			targets = []string{r.ID}
		}
	case r.Address != "":
		ch := GuessChannel(r.Address)
		value, _, err := Normalize(ch, r.Address)
		if err != nil {
			return err
		}
		addrs, err := s.store.FindAddressesByIndex(ctx, ch, s.keys.Indexes(value))
		if err != nil {
			return fmt.Errorf("find addresses: %w", err)
		}
		for _, a := range addrs {
			if a.VerifiedAt != nil {
				continue
			}
			v, err := s.store.FindOpenVerification(ctx, a.ID, vigil.PurposeVerifyAddress)
			if errors.Is(err, vigil.ErrNotFound) {
				continue
			}
			if err != nil {
				return fmt.Errorf("find open verification: %w", err)
			}
			targets = append(targets, v.ID)
		}
	default:
		return vigil.Errorf(vigil.EINVALID, "Give id or address.")
	}

	for _, id := range targets {
		err := s.store.InTx(ctx, func(tx vigil.Tx) error {
			v, err := tx.GetVerificationForUpdate(ctx, id)
			if err != nil {
				return err
			}
			addr, err := tx.GetAddress(ctx, v.AddressID)
			if err != nil {
				return fmt.Errorf("read address: %w", err)
			}
			return s.renew(ctx, tx, v, addr, r.ClientIP, "user", s.language("", r.AcceptLanguage), s.now())
		})
		if vigil.ErrorCode(err) == vigil.EINTERNAL {
			return fmt.Errorf("resend %s: %w", id, err)
		}
		if err != nil {
			s.log.DebugContext(ctx, "resend refused", "verification_id", id, "reason", vigil.ErrorCode(err))
		}
	}
	return nil
}

// CheckCode compares a code with the verification's current secret. The
// attempt is counted before the comparison, atomically, so no more than
// max_verification_retries codes are ever compared per secret. A code a
// provider made (Twilio Verify, EngageLab) is compared by that provider,
// after the attempt is counted and outside any transaction.
func (s *Service) CheckCode(ctx context.Context, id, code, clientIP string) (*VerificationView, error) {
	res, err := s.Check(ctx, CheckRequest{ID: id, Code: code, Origin: Origin{ClientIP: clientIP}})
	if res == nil {
		return nil, err
	}
	return res.Verification, err
}

// CheckRequest is a code typed by a person, on the device that asks to be
// trusted when Trust is set.
type CheckRequest struct {
	ID   string
	Code string
	// FlowID, when set, is the Kratos login flow the person is in: a
	// passed step-up lets that flow through (else the flow the challenge
	// was started for).
	FlowID string
	Trust  *TrustRequest
	Origin
}

// CheckResult is a passed check. Device is set when the device was
// trusted.
type CheckResult struct {
	Verification *VerificationView
	Device       *IssuedDevice
}

// Check is CheckCode with the rest of what a person may send along: the
// login flow they are in, and whether to trust their device. A passed
// login step-up also tells the identity's other address of the new
// sign-in.
func (s *Service) Check(ctx context.Context, r CheckRequest) (*CheckResult, error) {
	id, code, clientIP := r.ID, r.Code, r.ClientIP
	if r.FlowID != "" && !validID(r.FlowID) {
		return nil, vigil.Errorf(vigil.EINVALID, "flow_id must be a Kratos flow id (a UUID).")
	}
	if r.Trust != nil {
		// A security key proves itself with WebAuthn, never with a code.
		if r.Trust.Kind != "" && r.Trust.Kind != vigil.DeviceBrowser && r.Trust.Kind != vigil.DeviceMobileApp {
			return nil, vigil.Errorf(vigil.EINVALID, "device_kind must be browser or mobile_app.")
		}
		if _, err := deviceName(r.Trust.Name, r.UserAgent, r.Trust.Kind); err != nil {
			return nil, err
		}
	}
	if !validID(id) {
		return nil, vigil.Errorf(vigil.ENOTFOUND, "No such verification.")
	}
	if !s.codeShape(code) {
		return nil, vigil.Errorf(vigil.EINVALID, "The code must be %d digits.", s.cfg.CodeLength)
	}
	sent, err := lastMessage(ctx, s.store, id)
	if err != nil {
		return nil, err
	}
	if otp := s.otpOf(sent); otp != nil {
		return s.checkProviderCode(ctx, r, sent, otp)
	}
	var (
		outcome error // the answer for the client; the transaction commits anyway
		view    *CheckResult
		ch      vigil.Channel
		result  string
	)
	err = s.store.InTx(ctx, func(tx vigil.Tx) error {
		outcome, view, result = nil, nil, ""
		now := s.now()
		counted, ref, err := s.countCheck(ctx, tx, id, clientIP, now)
		if counted == nil {
			outcome, result = ref.answer, ref.result
			return err
		}
		ch = counted.Channel
		if counted.Generation != sentGeneration(sent) {
			sent = nil // the message read belongs to an older secret
		}
		match := s.keys.CheckCode(counted.ID, counted.Generation, code, counted.SecretHash)
		view, outcome, result, err = s.judge(ctx, tx, counted, match, sent, &r, now)
		return err
	})
	if result != "" {
		s.obs.CodeChecked(ch, result)
	}
	if err != nil {
		return nil, err
	}
	s.creditVerified(result, sent)
	return view, outcome
}

// creditVerified counts a verification for the provider and country of
// the message that carried its code.
func (s *Service) creditVerified(result string, sent *vigil.Message) {
	if result == "verified" && sent != nil {
		s.obs.Delivery(sent.Channel, sent.Provider, sent.Country, "verified")
	}
}

func sentGeneration(m *vigil.Message) int {
	if m == nil {
		return -1
	}
	return m.Generation
}

// otpOf returns the provider that made the code m carried, if a provider
// did.
func (s *Service) otpOf(m *vigil.Message) vigil.OTPSender {
	if m == nil || !m.Status.Reached() || m.Provider == "" {
		return nil
	}
	for _, p := range s.chains[m.Channel] {
		if p.Name == m.Provider && p.OTP != nil {
			return p.OTP
		}
	}
	return nil
}

// refusal is why a check ended before any code was compared: the answer
// for the client and the outcome for metrics.
type refusal struct {
	answer error
	result string
}

// countCheck is the first half of a check: the per-IP cap, the lock, and
// the attempt counted. When it returns no verification, the check ends
// with the refusal (and err for a refusal that rolls back, or an internal
// failure).
func (s *Service) countCheck(ctx context.Context, tx vigil.Tx, id, clientIP string, now time.Time) (*vigil.Verification, refusal, error) {
	if clientIP != "" {
		if err := s.hit(ctx, tx, "check:ip:1m:"+s.ipKey(clientIP), time.Minute, s.cfg.CheckPerIP, now); err != nil {
			return nil, refusal{}, err
		}
	}
	v, err := tx.GetVerification(ctx, id)
	if errors.Is(err, vigil.ErrNotFound) {
		return nil, refusal{}, vigil.Errorf(vigil.ENOTFOUND, "No such verification.")
	}
	if err != nil {
		return nil, refusal{}, fmt.Errorf("read verification: %w", err)
	}
	if v.Method != vigil.MethodCode {
		return nil, refusal{}, vigil.Errorf(vigil.ENOTFOUND, "No such verification.")
	}
	if err := s.checkLock(ctx, tx, v.IdentityID, now); err != nil && v.State != vigil.StateVerified {
		return nil, refusal{result: "locked"}, err
	}
	counted, err := tx.CountAttempt(ctx, id, now)
	if errors.Is(err, vigil.ErrNotFound) {
		why, result, err := s.whyNotCounted(ctx, tx, v, now)
		return nil, refusal{answer: why, result: result}, err
	}
	if err != nil {
		return nil, refusal{}, fmt.Errorf("count attempt: %w", err)
	}
	return counted, refusal{}, nil
}

// judge is the second half of a check: consume on a match, count a
// failure otherwise.
func (s *Service) judge(ctx context.Context, tx vigil.Tx, counted *vigil.Verification, match bool, sent *vigil.Message, r *CheckRequest, now time.Time) (*CheckResult, error, string, error) {
	if match {
		view, err := s.succeed(ctx, tx, counted, "user", sent, now)
		if errors.Is(err, errLostRace) {
			return nil, vigil.Errorf(vigil.EUSED, "This code was already used."), "used", nil
		}
		var res *CheckResult
		if err == nil {
			res, err = s.afterPass(ctx, tx, counted, view, sent, r, now)
		}
		return res, nil, "verified", err
	}
	outcome, err := s.fail(ctx, tx, counted, now)
	return nil, outcome, "wrong_code", err
}

// checkProviderCode checks a code the provider made: the attempt is
// counted and committed first, then the provider compares, then the
// result is recorded. A provider that cannot answer costs the attempt,
// as a wrong guess would, so that an outage cannot be used to guess for
// free.
func (s *Service) checkProviderCode(ctx context.Context, r CheckRequest, sent *vigil.Message, otp vigil.OTPSender) (*CheckResult, error) {
	id, code, clientIP := r.ID, r.Code, r.ClientIP
	var (
		counted *vigil.Verification
		ref     refusal
	)
	err := s.store.InTx(ctx, func(tx vigil.Tx) error {
		var err error
		counted, ref, err = s.countCheck(ctx, tx, id, clientIP, s.now())
		return err
	})
	if counted == nil {
		if ref.result != "" {
			s.obs.CodeChecked(sent.Channel, ref.result)
		}
		if err != nil {
			return nil, err
		}
		return nil, ref.answer
	}
	var result string
	match := false
	if counted.Generation == sent.Generation {
		// Otherwise a resend is on its way and the message read is older:
		// its provider no longer holds the current code.
		to, err := s.keys.Open(sent.RecipientSealed)
		if err != nil {
			return nil, fmt.Errorf("open recipient of %s: %w", sent.ID, err)
		}
		checkCtx, cancel := context.WithTimeout(ctx, sendTimeout)
		match, err = otp.CheckOTP(checkCtx, vigil.OTPCheck{ProviderID: sent.ProviderID, To: string(to), Code: code})
		cancel()
		if err != nil {
			s.log.ErrorContext(ctx, "provider could not check a code", "verification_id", id, "provider", sent.Provider, "error", truncate(err.Error()))
			return nil, vigil.Errorf(vigil.EUNAVAILABLE, "The code could not be checked right now; try again in a moment.")
		}
	}
	var (
		view    *CheckResult
		outcome error
	)
	err = s.store.InTx(ctx, func(tx vigil.Tx) error {
		var err error
		view, outcome, result, err = s.judge(ctx, tx, counted, match, sent, &r, s.now())
		return err
	})
	s.obs.CodeChecked(counted.Channel, result)
	if err != nil {
		return nil, err
	}
	s.creditVerified(result, sent)
	return view, outcome
}

func (s *Service) codeShape(code string) bool {
	if len(code) != s.cfg.CodeLength {
		return false
	}
	for _, c := range []byte(code) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

var errLostRace = errors.New("verification consumed concurrently")

// succeed consumes v and marks its address verified.
// sent, when known, is the message that carried the secret: its provider
// and country are credited with the verification.
func (s *Service) succeed(ctx context.Context, tx vigil.Tx, v *vigil.Verification, actor string, sent *vigil.Message, now time.Time) (*VerificationView, error) {
	ok, err := tx.Consume(ctx, v.ID, v.Generation, now)
	if err != nil {
		return nil, fmt.Errorf("consume verification: %w", err)
	}
	if !ok {
		return nil, errLostRace
	}
	if v.Purpose == vigil.PurposeVerifyAddress {
		if err := tx.SetAddressVerified(ctx, v.AddressID, now); err != nil {
			return nil, fmt.Errorf("mark address verified: %w", err)
		}
		if err := s.queueSync(ctx, tx, v.IdentityID, v.AddressID, now); err != nil {
			return nil, err
		}
	}
	lo, err := tx.GetLockout(ctx, v.IdentityID)
	if err != nil {
		return nil, fmt.Errorf("read lockout: %w", err)
	}
	if lo.Failures != 0 || lo.Level != 0 {
		if err := tx.SaveLockout(ctx, &vigil.Lockout{IdentityID: v.IdentityID, UpdatedAt: now}); err != nil {
			return nil, fmt.Errorf("reset lockout: %w", err)
		}
	}
	if sent != nil && sent.Channel == vigil.ChannelSMS {
		if err := s.countConversion(ctx, tx, keyConvVerified, route{Country: sent.Country, Prefix: sent.Prefix}, now); err != nil {
			return nil, err
		}
	}
	v.State, v.VerifiedAt = vigil.StateVerified, &now
	addr, err := tx.GetAddress(ctx, v.AddressID)
	if err != nil {
		return nil, fmt.Errorf("read address: %w", err)
	}
	if err := s.audit(ctx, tx, vigil.EventVerificationSucceeded, v.IdentityID, v.ID, actor, map[string]string{
		"channel": string(v.Channel), "method": string(v.Method), "purpose": string(v.Purpose),
	}); err != nil {
		return nil, err
	}
	return view(v, addr), nil
}

// fail records a wrong code: one more consecutive failure for the identity,
// and, when the code has no attempts left, its death and a temporary lock
// that doubles each time, or a hard lock past the limit.
func (s *Service) fail(ctx context.Context, tx vigil.Tx, v *vigil.Verification, now time.Time) (error, error) {
	lo, err := tx.AddFailure(ctx, v.IdentityID, now)
	if err != nil {
		return nil, fmt.Errorf("count failure: %w", err)
	}
	left := v.AttemptsLeft()
	answer := &vigil.Error{Code: vigil.EWRONGCODE, Message: "The code is not correct.", AttemptsLeft: new(left)}
	// Audit events are appended after every other write: the chain's head
	// stays locked until commit, so nothing may wait on a row lock after it.
	events := []auditEntry{{vigil.EventVerificationFailed, "user", map[string]string{
		"attempts_left": strconv.Itoa(left), "consecutive_failures": strconv.Itoa(lo.Failures),
	}}}
	dead := left == 0
	if dead {
		answer.Message = "The code is not correct, and no attempts are left. Request a new code."
		if _, err := tx.SetVerificationState(ctx, v.ID, vigil.StatePending, vigil.StateLocked, now); err != nil {
			return nil, fmt.Errorf("lock verification: %w", err)
		}
		events = append(events, auditEntry{vigil.EventVerificationLocked, "system", nil})
	}
	switch {
	case lo.Failures >= s.cfg.Lockout.HardAfter && !lo.HardLocked:
		lo.HardLocked = true
		lo.UpdatedAt = now
		if err := tx.SaveLockout(ctx, lo); err != nil {
			return nil, fmt.Errorf("hard lock: %w", err)
		}
		answer.Message = "The code is not correct. This account is now locked; contact support to unlock it."
		events = append(events, auditEntry{vigil.EventIdentityHardLocked, "system", map[string]string{
			"consecutive_failures": strconv.Itoa(lo.Failures),
		}})
	case dead:
		d := s.lockDuration(lo.Level)
		until := now.Add(d)
		lo.Level++
		lo.LockedUntil = &until
		lo.UpdatedAt = now
		if err := tx.SaveLockout(ctx, lo); err != nil {
			return nil, fmt.Errorf("lock identity: %w", err)
		}
		answer.RetryAfter = d
		events = append(events, auditEntry{vigil.EventIdentityLocked, "system", map[string]string{
			"seconds": strconv.Itoa(int(d / time.Second)), "level": strconv.Itoa(lo.Level),
		}})
	}
	for _, e := range events {
		if err := s.audit(ctx, tx, e.typ, v.IdentityID, v.ID, e.actor, e.data); err != nil {
			return nil, err
		}
	}
	return answer, nil
}

type auditEntry struct {
	typ, actor string
	data       map[string]string
}

// lockDuration is base × 2^level, capped at max.
func (s *Service) lockDuration(level int) time.Duration {
	d := s.cfg.Lockout.Base
	for i := 0; i < level && d < s.cfg.Lockout.Max; i++ {
		d *= 2
	}
	return min(d, s.cfg.Lockout.Max)
}

// whyNotCounted explains a refused attempt: already verified, expired, or
// no attempts left.
func (s *Service) whyNotCounted(ctx context.Context, tx vigil.Tx, v *vigil.Verification, now time.Time) (error, string, error) {
	switch {
	case v.State == vigil.StateVerified:
		return vigil.Errorf(vigil.EUSED, "This code was already used."), "used", nil
	case v.State == vigil.StateExpired || !now.Before(v.ExpiresAt):
		if v.State == vigil.StatePending {
			ok, err := tx.SetVerificationState(ctx, v.ID, vigil.StatePending, vigil.StateExpired, now)
			if err != nil {
				return nil, "", fmt.Errorf("expire verification: %w", err)
			}
			if ok {
				if err := s.audit(ctx, tx, vigil.EventVerificationExpired, v.IdentityID, v.ID, "system", nil); err != nil {
					return nil, "", err
				}
			}
		}
		return vigil.Errorf(vigil.EEXPIRED, "The code has expired. Request a new code."), "expired", nil
	default:
		answer := &vigil.Error{Code: vigil.ELOCKED, Message: "No attempts are left for this code. Request a new code."}
		lo, err := tx.GetLockout(ctx, v.IdentityID)
		if err != nil {
			return nil, "", fmt.Errorf("read lockout: %w", err)
		}
		if _, wait := lo.Locked(now); wait > 0 {
			answer.RetryAfter = wait
		}
		return answer, "dead", nil
	}
}

// PeekLink describes a link token without consuming it: mail scanners
// follow links, so only a POST consumes.
func (s *Service) PeekLink(ctx context.Context, token string) (*LinkInfo, error) {
	v, err := s.linkVerification(ctx, s.store, token, s.now())
	if err != nil {
		return nil, err
	}
	addr, err := s.store.GetAddress(ctx, v.AddressID)
	if err != nil {
		return nil, fmt.Errorf("read address: %w", err)
	}
	return &LinkInfo{Channel: v.Channel, Masked: addr.Masked, ExpiresAt: v.ExpiresAt}, nil
}

// ConsumeLink consumes a link token, once.
func (s *Service) ConsumeLink(ctx context.Context, token, clientIP string) (*VerificationView, error) {
	var (
		out  *VerificationView
		sent *vigil.Message
	)
	err := s.store.InTx(ctx, func(tx vigil.Tx) error {
		now := s.now()
		v, err := s.linkVerification(ctx, tx, token, now)
		if err != nil {
			return err
		}
		if sent, err = lastMessage(ctx, tx, v.ID); err != nil {
			return err
		}
		if sent != nil && sent.Generation != v.Generation {
			sent = nil
		}
		out, err = s.succeed(ctx, tx, v, "user", sent, now)
		if errors.Is(err, errLostRace) {
			return vigil.Errorf(vigil.EUSED, "This link was already used.")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	s.obs.CodeChecked(out.Channel, "verified")
	s.creditVerified("verified", sent)
	return out, nil
}

func (s *Service) linkVerification(ctx context.Context, tx vigil.Tx, token string, now time.Time) (*vigil.Verification, error) {
	unknown := vigil.Errorf(vigil.ENOTFOUND, "This link is not valid. Request a new one.")
	if len(token) != tokenLength {
		return nil, unknown
	}
	v, err := tx.FindVerificationBySecret(ctx, vigil.TokenHash(token))
	if errors.Is(err, vigil.ErrNotFound) {
		return nil, unknown
	}
	if err != nil {
		return nil, fmt.Errorf("find link: %w", err)
	}
	switch {
	case v.Method != vigil.MethodLink:
		return nil, unknown
	case v.State == vigil.StateVerified:
		return nil, vigil.Errorf(vigil.EUSED, "This link was already used.")
	case v.State != vigil.StatePending || !now.Before(v.ExpiresAt):
		return nil, vigil.Errorf(vigil.EEXPIRED, "This link has expired. Request a new one.")
	}
	return v, nil
}

// GetVerification returns one verification.
func (s *Service) GetVerification(ctx context.Context, id string) (*VerificationView, error) {
	if !validID(id) {
		return nil, vigil.Errorf(vigil.ENOTFOUND, "No such verification.")
	}
	v, err := s.store.GetVerification(ctx, id)
	if errors.Is(err, vigil.ErrNotFound) {
		return nil, vigil.Errorf(vigil.ENOTFOUND, "No such verification.")
	}
	if err != nil {
		return nil, fmt.Errorf("read verification: %w", err)
	}
	addr, err := s.store.GetAddress(ctx, v.AddressID)
	if err != nil {
		return nil, fmt.Errorf("read address: %w", err)
	}
	return view(v, addr), nil
}

func view(v *vigil.Verification, a *vigil.Address) *VerificationView {
	return &VerificationView{
		ID:           v.ID,
		IdentityID:   v.IdentityID,
		AddressID:    v.AddressID,
		Channel:      v.Channel,
		Method:       v.Method,
		Purpose:      v.Purpose,
		State:        v.State,
		Destination:  a.Masked,
		AttemptsLeft: v.AttemptsLeft(),
		SendCount:    v.SendCount,
		ExpiresAt:    v.ExpiresAt,
		VerifiedAt:   v.VerifiedAt,
		CreatedAt:    v.CreatedAt,
	}
}

// checkCaptcha asks the CAPTCHA service about an anonymous caller's token.
func (s *Service) checkCaptcha(ctx context.Context, token, clientIP string) error {
	if token == "" {
		return vigil.Errorf(vigil.ECAPTCHA, "Complete the CAPTCHA to get a new code.")
	}
	if len(token) > 4096 {
		return vigil.Errorf(vigil.ECAPTCHA, "The CAPTCHA was not accepted; try it again.")
	}
	checkCtx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	ok, err := s.captcha.Verify(checkCtx, token, clientIP)
	if err != nil {
		s.log.ErrorContext(ctx, "captcha service did not answer", "error", truncate(err.Error()))
		return vigil.Errorf(vigil.EUNAVAILABLE, "The CAPTCHA could not be checked right now; try again in a moment.")
	}
	if !ok {
		return vigil.Errorf(vigil.ECAPTCHA, "The CAPTCHA was not accepted; try it again.")
	}
	return nil
}

// lastMessage returns the newest message of a verification, or nil when it
// has none.
func lastMessage(ctx context.Context, tx vigil.Tx, verificationID string) (*vigil.Message, error) {
	ms, err := tx.ListMessages(ctx, vigil.MessageFilter{VerificationID: verificationID, Limit: 1})
	if err != nil {
		return nil, fmt.Errorf("read message: %w", err)
	}
	if len(ms) == 0 {
		return nil, nil //nolint:nilnil // a verification with no message yet is a normal answer, not an error
	}
	return ms[0], nil
}
