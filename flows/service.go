package flows

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/flows/templates"
)

// Service is the verification engine. It is safe for concurrent use and
// keeps no state of its own: every counter lives in the store, so any
// number of replicas can share one database.
type Service struct {
	cfg   Config
	store vigil.Store
	keys  *vigil.Keyring
	// chains are each channel's providers, in the order they are tried.
	chains  map[vigil.Channel][]Provider
	captcha vigil.Captcha
	tmpl    *templates.Set
	clock   vigil.Clock
	rand    io.Reader
	log     *slog.Logger
	obs     Observer
	ids     vigil.Identities
	wa      vigil.WebAuthn
	// sleep waits for d or until ctx ends; tests replace it.
	sleep func(ctx context.Context, d time.Duration)
}

// New returns a Service. Deps.Store, Deps.Keys and Deps.Senders are
// required; the rest default.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Store == nil || deps.Keys == nil {
		return nil, errors.New("flows: Store and Keys are required")
	}
	s := &Service{
		cfg:     cfg,
		store:   deps.Store,
		keys:    deps.Keys,
		chains:  map[vigil.Channel][]Provider{},
		captcha: deps.Captcha,
		tmpl:    deps.Templates,
		clock:   deps.Clock,
		rand:    deps.Rand,
		log:     deps.Logger,
		obs:     deps.Observer,
		ids:     deps.Identities,
		wa:      deps.WebAuthn,
		sleep:   sleepCtx,
	}
	for ch, snd := range deps.Senders {
		if snd != nil {
			s.chains[ch] = []Provider{{Sender: snd}}
		}
	}
	for ch, chain := range deps.Chains {
		for i, p := range chain {
			if (p.Sender == nil) == (p.OTP == nil) {
				return nil, fmt.Errorf("flows: provider %d (%q) of the %s chain must have exactly one of Sender and OTP", i, p.Name, ch)
			}
		}
		s.chains[ch] = chain
	}
	if cfg.CaptchaOnResend && s.captcha == nil {
		return nil, errors.New("flows: CaptchaOnResend needs Deps.Captcha")
	}
	if s.tmpl == nil {
		s.tmpl = templates.Builtin()
	}
	if s.clock == nil {
		s.clock = vigil.SystemClock{}
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.obs == nil {
		s.obs = nopObserver{}
	}
	return s, nil
}

// Validate reports every problem of the rules at once.
func (c Config) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.Require.Valid(), "require: unknown policy %q (any, email, phone, all)", c.Require)
	check(c.CodeLength >= 4 && c.CodeLength <= 10, "code_length: must be between 4 and 10, got %d", c.CodeLength)
	check(c.CodeTTL > 0, "verification_code_expiration: must be positive")
	check(c.Devices.TrustFor > 0, "devices.trust_for: must be positive")
	check(c.Devices.IdleFor > 0, "devices.idle_for: must be positive")
	check(c.Devices.EnrollmentTTL >= time.Minute && c.Devices.EnrollmentTTL <= 7*24*time.Hour,
		"devices.enrollment_ttl: must be between 1m and 168h, got %s", c.Devices.EnrollmentTTL)
	check(c.Devices.CeremonyTTL >= time.Second && c.Devices.CeremonyTTL <= 30*time.Minute,
		"devices.webauthn.timeout: must be between 1s and 30m, got %s", c.Devices.CeremonyTTL)
	check(c.SMSCodeTTL > 0, "sms code expiration cap: must be positive")
	check(c.LinkTTL > 0, "link_lifespan: must be positive")
	check(c.MaxAttempts >= 1, "max_verification_retries: must be at least 1, got %d", c.MaxAttempts)
	check(c.Resend.Cooldown >= 0, "resend.cooldown: must not be negative")
	check(c.Resend.PerDestination >= 1 && c.Resend.PerDestHour >= 1 && c.Resend.PerIdentityHour >= 1 && c.Resend.PerIPHour >= 1,
		"resend: every cap must be at least 1")
	check(c.CheckPerIP >= 1, "check_per_ip_minute: must be at least 1")
	check(c.Lockout.Base > 0 && c.Lockout.Max >= c.Lockout.Base, "lockout: base must be positive and max at least base")
	check(c.Lockout.HardAfter >= 1, "lockout.hard_lock_after: must be at least 1")
	check(c.NoAddress == NoAddressAllow || c.NoAddress == NoAddressBlock, "no_address: must be allow or block, got %q", c.NoAddress)
	check(c.RetryBackoff > 0, "delivery retry backoff: must be positive")
	for _, t := range c.SMS.AllowedTypes {
		check(ValidPhoneType(t), "sms allowed_number_types: unknown type %q", t)
	}
	for _, cc := range c.SMS.AllowedCountries {
		check(len(cc) == 2 && strings.ToUpper(cc) == cc, "sms allowed_countries: %q is not an upper-case ISO 3166-1 alpha-2 code", cc)
	}
	check(c.SMS.PrefixDigits >= 1 && c.SMS.PrefixDigits <= 15, "sms prefix_digits: must be between 1 and 15, got %d", c.SMS.PrefixDigits)
	check(c.SMS.PrefixPerHour >= 0 && c.SMS.GlobalPerHour >= 0, "sms prefix_per_hour and global_per_hour: must not be negative (0 is no cap)")
	cw := c.SMS.Conversion
	check(cw.Threshold >= 0 && cw.Threshold <= 1, "sms conversion threshold: must be between 0 and 1, got %v", cw.Threshold)
	check(cw.Threshold == 0 || (cw.Window >= 6*time.Minute && cw.Window <= 24*time.Hour), "sms conversion window: must be between 6m and 24h")
	check(cw.MinSent >= 1 || cw.Threshold == 0, "sms conversion min_sent: must be at least 1")
	return errors.Join(errs...)
}

func (s *Service) now() time.Time { return s.clock.Now().UTC().Truncate(time.Microsecond) }

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// validID reports whether id is a UUID in canonical form, so malformed ids
// never reach the database.
func validID(id string) bool {
	u, err := uuid.Parse(id)
	return err == nil && u.String() == id
}

// newCode draws a decimal code of the configured length. rand.Int samples
// by rejection, so every code is equally likely (no modulo bias).
func (s *Service) newCode() (string, error) {
	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(s.cfg.CodeLength)), nil)
	n, err := rand.Int(s.rand, limit)
	if err != nil {
		return "", fmt.Errorf("draw code: %w", err)
	}
	return fmt.Sprintf("%0*d", s.cfg.CodeLength, n), nil
}

// newToken draws a link token: 32 random bytes, base64url.
func (s *Service) newToken() (string, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return "", fmt.Errorf("draw token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

const tokenLength = 43 // base64url of 32 bytes, unpadded

// ttl is how long a secret on the channel with the method lives.
func (s *Service) ttl(ch vigil.Channel, m vigil.Method) time.Duration {
	if m == vigil.MethodLink {
		return s.cfg.LinkTTL
	}
	if ch == vigil.ChannelSMS && s.cfg.SMSCodeTTL < s.cfg.CodeTTL {
		return s.cfg.SMSCodeTTL
	}
	return s.cfg.CodeTTL
}

// audit appends one event to the chain inside tx. Call it last in a
// transaction: the chain's head stays locked until commit.
func (s *Service) audit(ctx context.Context, tx vigil.Tx, typ, identityID, verificationID, actor string, data map[string]string) error {
	e := &vigil.AuditEvent{
		ID:             newID(),
		At:             s.now(),
		Type:           typ,
		IdentityID:     identityID,
		VerificationID: verificationID,
		Actor:          actor,
		Data:           data,
	}
	if err := tx.AppendAudit(ctx, e, s.seal); err != nil {
		return fmt.Errorf("append audit %s: %w", typ, err)
	}
	return nil
}

// seal is the audit chain's hash: a MAC over the previous hash and a
// canonical encoding of the row.
func (s *Service) seal(prev []byte, e *vigil.AuditEvent) []byte {
	return s.keys.AuditMAC(auditBytes(prev, e))
}

func auditBytes(prev []byte, e *vigil.AuditEvent) []byte {
	// encoding/json writes struct fields in order and map keys sorted, so
	// the encoding is canonical. Stores read empty data back as nil.
	data := e.Data
	if len(data) == 0 {
		data = nil
	}
	b, err := json.Marshal(struct {
		Prev           []byte            `json:"prev"`
		Seq            int64             `json:"seq"`
		ID             string            `json:"id"`
		At             string            `json:"at"`
		Type           string            `json:"type"`
		IdentityID     string            `json:"identity_id"`
		VerificationID string            `json:"verification_id"`
		Actor          string            `json:"actor"`
		Data           map[string]string `json:"data"`
	}{prev, e.Seq, e.ID, e.At.UTC().Format(time.RFC3339Nano), e.Type, e.IdentityID, e.VerificationID, e.Actor, data})
	if err != nil {
		panic(fmt.Sprintf("flows: encode audit event: %v", err)) // strings and bytes always encode
	}
	return b
}

func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
