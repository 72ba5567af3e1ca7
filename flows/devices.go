package flows

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/vigil-auth/vigil"
)

// ReasonNewDevice: the login comes from a device without valid trust and
// step_up_on_new_device is on; a step-up code was sent.
const ReasonNewDevice = "new_device"

const (
	// touchEvery is how stale a trusted device's last-seen time may get
	// before a login through it writes the time (and a DeviceUsed audit
	// event) again. Trust idles out in days, so an hour costs it nothing
	// and spares a write on almost every login.
	touchEvery = time.Hour
	// passFor is how long a challenge passed for a Kratos login flow lets
	// that flow through the step-up: Kratos' login flows live an hour by
	// default.
	passFor       = time.Hour
	maxDeviceName = 100
)

// DeviceRules are the trusted-device settings.
type DeviceRules struct {
	// StepUp challenges logins from devices without valid trust
	// (step_up_on_new_device).
	StepUp bool
	// TrustFor is the longest a device stays trusted; IdleFor ends trust
	// early when the device is not seen for that long.
	TrustFor time.Duration
	IdleFor  time.Duration
	// EnrollmentTTL is how long an admin's enrollment link works;
	// CeremonyTTL how long a WebAuthn ceremony may take.
	EnrollmentTTL time.Duration
	CeremonyTTL   time.Duration
}

// TrustRequest asks to trust the device a challenge was passed on.
type TrustRequest struct {
	Name string
	Kind vigil.DeviceKind // default browser
}

// DeviceView is a device as people and admins see it.
type DeviceView struct {
	ID         string           `json:"id"`
	IdentityID string           `json:"identity_id"`
	Name       string           `json:"name"`
	Kind       vigil.DeviceKind `json:"kind"`
	// Trusted: logins from it skip the step-up now.
	Trusted   bool      `json:"trusted"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	// LastSeenAt is accurate to an hour.
	LastSeenAt time.Time `json:"last_seen_at"`
	// TrustedUntil is when trust ends unless the device is seen again
	// (idle limit) or revoked: the earlier of the absolute and the idle
	// end.
	TrustedUntil  time.Time  `json:"trusted_until"`
	UserAgent     string     `json:"user_agent,omitempty"`
	IP            string     `json:"ip,omitempty"`
	RevokedAt     *time.Time `json:"revoked_at,omitempty"`
	RevokedReason string     `json:"revoked_reason,omitempty"`
}

// IssuedDevice is a device that was just given a token. Token is the
// plaintext device token: it exists only in this answer.
type IssuedDevice struct {
	Device DeviceView
	Token  string
}

func (s *Service) deviceView(d *vigil.Device, now time.Time) DeviceView {
	until := d.TrustedUntil
	if idle := d.LastSeenAt.Add(s.cfg.Devices.IdleFor); idle.Before(until) {
		until = idle
	}
	return DeviceView{
		ID: d.ID, IdentityID: d.IdentityID, Name: d.Name, Kind: d.Kind,
		Trusted:   d.TokenHash != nil && d.Trusted(now, s.cfg.Devices.IdleFor),
		CreatedBy: d.CreatedBy, CreatedAt: d.CreatedAt, LastSeenAt: d.LastSeenAt, TrustedUntil: until,
		UserAgent: d.UserAgent, IP: d.IP, RevokedAt: d.RevokedAt, RevokedReason: d.RevokedReason,
	}
}

func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// deviceName checks a name people gave a device, or makes one from its
// user agent.
func deviceName(name, userAgent string, kind vigil.DeviceKind) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		if d := describeUserAgent(userAgent); d != "" {
			return d, nil
		}
		switch kind {
		case vigil.DeviceMobileApp:
			return "Mobile app", nil
		case vigil.DeviceSecurityKey:
			return "Security key", nil
		}
		return "Browser", nil
	}
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > maxDeviceName {
		return "", vigil.Errorf(vigil.EINVALID, "The device name must be at most %d characters of text.", maxDeviceName)
	}
	for _, r := range name {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return "", vigil.Errorf(vigil.EINVALID, "The device name must not contain control characters.")
		}
	}
	return name, nil
}

func hint(s string, limit int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return -1
		}
		return r
	}, s)
	if len(s) > limit {
		s = s[:limit]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return s
}

// newDevice stores a trusted device with a fresh token, inside tx.
func (s *Service) newDevice(ctx context.Context, tx vigil.Tx, identityID, name string, kind vigil.DeviceKind, createdBy string, from Origin, now time.Time) (*vigil.Device, string, error) {
	token, err := s.newToken()
	if err != nil {
		return nil, "", err
	}
	d := &vigil.Device{
		ID: newID(), IdentityID: identityID, Name: name, Kind: kind, CreatedBy: createdBy,
		TokenHash: tokenHash(token), UserAgent: hint(from.UserAgent, 512), IP: hint(from.ClientIP, 64),
		CreatedAt: now, LastSeenAt: now, TrustedUntil: now.Add(s.cfg.Devices.TrustFor),
	}
	if err := tx.InsertDevice(ctx, d); err != nil {
		return nil, "", fmt.Errorf("insert device: %w", err)
	}
	return d, token, nil
}

// trustAfterCheck trusts the device a challenge was just passed on.
func (s *Service) trustAfterCheck(ctx context.Context, tx vigil.Tx, v *vigil.Verification, t *TrustRequest, from Origin, now time.Time) (*IssuedDevice, error) {
	kind := t.Kind
	if kind == "" {
		kind = vigil.DeviceBrowser
	}
	name, err := deviceName(t.Name, from.UserAgent, kind)
	if err != nil {
		return nil, err
	}
	d, token, err := s.newDevice(ctx, tx, v.IdentityID, name, kind, "user", from, now)
	if err != nil {
		return nil, err
	}
	if err := s.audit(ctx, tx, vigil.EventDeviceTrusted, v.IdentityID, v.ID, "user", map[string]string{
		"device_id": d.ID, "kind": string(d.Kind), "channel": string(v.Channel),
	}); err != nil {
		return nil, err
	}
	return &IssuedDevice{Device: s.deviceView(d, now), Token: token}, nil
}

// stepUp is the device half of the gate, for an identity whose addresses
// already satisfy the policy: a device with valid trust passes, as does a
// login flow whose challenge was passed; any other login gets a step-up
// code. It never lets through what the address policy refused.
func (s *Service) stepUp(ctx context.Context, r LoginRequest, addrs []*weighed, dev *deviceLookup) (*Decision, error) {
	now := s.now()
	if dev.hash != nil {
		ok, err := s.deviceAllows(ctx, r, dev, now)
		if err != nil {
			return nil, err
		}
		if ok {
			return &Decision{Allow: true}, nil
		}
	}
	if validID(r.FlowID) {
		_, err := s.store.FindPassedForFlow(ctx, r.Identity.ID, r.FlowID, now.Add(-passFor))
		if err == nil {
			return &Decision{Allow: true}, nil
		}
		if !errors.Is(err, vigil.ErrNotFound) {
			return nil, fmt.Errorf("find passed challenge: %w", err)
		}
	}
	// The code goes to an address the identity proved it holds.
	var targets []*weighed
	for _, ch := range []vigil.Channel{vigil.ChannelEmail, vigil.ChannelSMS} {
		if !s.enabled(ch) {
			continue
		}
		for _, a := range addrs {
			if a.Channel == ch && a.Verified && s.normalize(a) {
				targets = append(targets, a)
			}
		}
	}
	if len(targets) == 0 {
		if s.cfg.NoAddress == NoAddressAllow {
			return &Decision{Allow: true}, nil
		}
		return &Decision{Reason: ReasonNoAddress}, nil
	}
	return s.reach(ctx, r, targets, vigil.PurposeLoginStepUp)
}

// deviceAllows reports whether the login's device token holds valid trust
// for the identity. A token that a newer one replaced was copied: the
// device is revoked.
func (s *Service) deviceAllows(ctx context.Context, r LoginRequest, dev *deviceLookup, now time.Time) (bool, error) {
	d := dev.dev
	// The login read looked for the device by its current token only; a
	// miss may still be a replaced token coming back.
	if !dev.done || d == nil {
		var (
			found bool
			err   error
		)
		if d, found, err = s.findDevice(ctx, dev.hash); !found || err != nil {
			return false, err
		}
	}
	if ok, err := s.holds(ctx, d, dev.hash, r.Identity.ID, r.Origin, now); !ok || err != nil {
		return false, err
	}
	if !d.Trusted(now, s.cfg.Devices.IdleFor) {
		return false, nil
	}
	if d.LastSeenAt.After(now.Add(-touchEvery)) {
		return true, nil
	}
	err := s.store.InTx(ctx, func(tx vigil.Tx) error {
		touched, err := tx.TouchDevice(ctx, d.ID, hint(r.ClientIP, 64), hint(r.UserAgent, 512), now, now.Add(-touchEvery))
		if err != nil || !touched {
			return err
		}
		return s.audit(ctx, tx, vigil.EventDeviceUsed, d.IdentityID, "", "kratos", map[string]string{
			"device_id": d.ID, "kind": string(d.Kind),
		})
	})
	return err == nil, err
}

// findDevice finds the device whose current or replaced token has hash h;
// found is false when there is none.
func (s *Service) findDevice(ctx context.Context, h []byte) (d *vigil.Device, found bool, err error) {
	d, err = s.store.FindDeviceByToken(ctx, h)
	if errors.Is(err, vigil.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("find device: %w", err)
	}
	return d, true, nil
}

// holds reports whether d, found by a presented token's hash h, is the
// identity's device with h as its current token. A replaced token that
// comes back was copied: the device is revoked.
func (s *Service) holds(ctx context.Context, d *vigil.Device, h []byte, identityID string, from Origin, now time.Time) (bool, error) {
	if d == nil || d.IdentityID != identityID {
		return false, nil
	}
	if !bytes.Equal(d.TokenHash, h) {
		return false, s.tokenReused(ctx, d, from, now)
	}
	return true, nil
}

// tokenReused revokes a device whose replaced token came back.
func (s *Service) tokenReused(ctx context.Context, d *vigil.Device, from Origin, now time.Time) error {
	return s.store.InTx(ctx, func(tx vigil.Tx) error {
		revoked, err := tx.RevokeDevice(ctx, d.ID, "token_reused", now)
		if err != nil {
			return fmt.Errorf("revoke device: %w", err)
		}
		if !revoked {
			return nil
		}
		s.log.WarnContext(ctx, "a replaced device token was presented; device revoked", "device_id", d.ID, "identity_id", d.IdentityID)
		if err := s.audit(ctx, tx, vigil.EventDeviceTokenReused, d.IdentityID, "", "system", map[string]string{
			"device_id": d.ID, "kind": string(d.Kind), "ip": hint(from.ClientIP, 64),
		}); err != nil {
			return err
		}
		return s.audit(ctx, tx, vigil.EventDeviceRevoked, d.IdentityID, "", "system", map[string]string{
			"device_id": d.ID, "kind": string(d.Kind), "reason": "token_reused",
		})
	})
}

// RefreshDevice replaces a device token with a new one. The caller's
// session must belong to the device's identity. Presenting a token that
// was already replaced revokes the device.
func (s *Service) RefreshDevice(ctx context.Context, creds vigil.SessionCredentials, token string, from Origin) (*IssuedDevice, error) {
	sess, err := s.whoami(ctx, creds)
	if err != nil {
		return nil, err
	}
	if len(token) != tokenLength {
		return nil, vigil.Errorf(vigil.ENOTFOUND, "No trusted device with this token.")
	}
	h := tokenHash(token)
	d, _, err := s.findDevice(ctx, h)
	if err != nil {
		return nil, err
	}
	now := s.now()
	if ok, err := s.holds(ctx, d, h, sess.IdentityID, from, now); !ok || err != nil {
		if err == nil {
			err = vigil.Errorf(vigil.ENOTFOUND, "No trusted device with this token.")
		}
		return nil, err
	}
	if !d.Trusted(now, s.cfg.Devices.IdleFor) {
		return nil, vigil.Errorf(vigil.EEXPIRED, "This device is no longer trusted; pass a challenge on it to trust it again.")
	}
	return s.rotate(ctx, d, from, "user", "refresh", time.Time{}, now)
}

// rotate gives d a new token, replacing its current one (none for a
// device that has not proven itself yet). A non-zero until renews trust.
func (s *Service) rotate(ctx context.Context, d *vigil.Device, from Origin, actor, why string, until time.Time, now time.Time) (*IssuedDevice, error) {
	token, err := s.newToken()
	if err != nil {
		return nil, err
	}
	err = s.store.InTx(ctx, func(tx vigil.Tx) error {
		ok, err := tx.RotateDeviceToken(ctx, d.ID, d.TokenHash, tokenHash(token), hint(from.ClientIP, 64), hint(from.UserAgent, 512), until, now)
		if err != nil {
			return fmt.Errorf("rotate device token: %w", err)
		}
		if !ok {
			return vigil.Errorf(vigil.ECONFLICT, "The device token changed meanwhile; use the newest one.")
		}
		return s.audit(ctx, tx, vigil.EventDeviceTokenRotated, d.IdentityID, "", actor, map[string]string{
			"device_id": d.ID, "kind": string(d.Kind), "reason": why,
		})
	})
	if err != nil {
		return nil, err
	}
	got, err := s.store.GetDevice(ctx, d.ID)
	if err != nil {
		return nil, fmt.Errorf("read device: %w", err)
	}
	return &IssuedDevice{Device: s.deviceView(got, now), Token: token}, nil
}

// Devices lists an identity's devices, newest first.
func (s *Service) Devices(ctx context.Context, identityID string) ([]DeviceView, error) {
	if identityID == "" || len(identityID) > 64 {
		return nil, vigil.Errorf(vigil.EINVALID, "identity_id is required (at most 64 characters).")
	}
	ds, err := s.store.ListDevices(ctx, identityID)
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	now := s.now()
	out := make([]DeviceView, len(ds))
	for i, d := range ds {
		out[i] = s.deviceView(d, now)
	}
	return out, nil
}

// SessionDevices lists the devices of the session's identity.
func (s *Service) SessionDevices(ctx context.Context, creds vigil.SessionCredentials) ([]DeviceView, error) {
	sess, err := s.whoami(ctx, creds)
	if err != nil {
		return nil, err
	}
	return s.Devices(ctx, sess.IdentityID)
}

// SessionRevokeDevice revokes one of the session's identity's devices.
func (s *Service) SessionRevokeDevice(ctx context.Context, creds vigil.SessionCredentials, deviceID string) (*DeviceView, error) {
	sess, err := s.whoami(ctx, creds)
	if err != nil {
		return nil, err
	}
	return s.RevokeDevice(ctx, sess.IdentityID, deviceID, "user")
}

// RevokeDevice ends a device's trust at once. identityID, when set, must
// own the device (a person revoking their own); an admin passes "".
// Revoking a revoked device answers it as it is.
func (s *Service) RevokeDevice(ctx context.Context, identityID, deviceID, actor string) (*DeviceView, error) {
	if !validID(deviceID) {
		return nil, vigil.Errorf(vigil.ENOTFOUND, "No such device.")
	}
	var d *vigil.Device
	err := s.store.InTx(ctx, func(tx vigil.Tx) error {
		var err error
		d, err = tx.GetDevice(ctx, deviceID)
		if errors.Is(err, vigil.ErrNotFound) || (err == nil && identityID != "" && d.IdentityID != identityID) {
			return vigil.Errorf(vigil.ENOTFOUND, "No such device.")
		}
		if err != nil {
			return fmt.Errorf("read device: %w", err)
		}
		now := s.now()
		reason := "user"
		if actor != "user" {
			reason = "admin"
		}
		revoked, err := tx.RevokeDevice(ctx, d.ID, reason, now)
		if err != nil {
			return fmt.Errorf("revoke device: %w", err)
		}
		if !revoked {
			return nil
		}
		d.RevokedAt, d.RevokedReason = &now, reason
		return s.audit(ctx, tx, vigil.EventDeviceRevoked, d.IdentityID, "", actor, map[string]string{
			"device_id": d.ID, "kind": string(d.Kind), "reason": reason,
		})
	})
	if err != nil {
		return nil, err
	}
	v := s.deviceView(d, s.now())
	return &v, nil
}

// describeUserAgent names a browser and its system from a User-Agent
// header ("Firefox on Linux"), or returns "" when it recognizes neither.
// It is a hint for people, never proof of anything.
func describeUserAgent(ua string) string {
	if ua == "" || len(ua) > 1024 {
		return ""
	}
	browser := ""
	for _, b := range []struct{ token, name string }{
		{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"SamsungBrowser/", "Samsung Internet"},
		{"Firefox/", "Firefox"}, {"FxiOS/", "Firefox"}, {"CriOS/", "Chrome"},
		{"Chrome/", "Chrome"}, {"Chromium/", "Chromium"}, {"Safari/", "Safari"},
	} {
		if strings.Contains(ua, b.token) {
			browser = b.name
			break
		}
	}
	system := ""
	for _, o := range []struct{ token, name string }{
		{"iPhone", "iOS"}, {"iPad", "iPadOS"}, {"Android", "Android"}, {"Windows", "Windows"},
		{"Mac OS X", "macOS"}, {"CrOS", "ChromeOS"}, {"Linux", "Linux"},
	} {
		if strings.Contains(ua, o.token) {
			system = o.name
			break
		}
	}
	switch {
	case browser != "" && system != "":
		return browser + " on " + system
	case browser != "":
		return browser
	case system != "":
		return system
	}
	return ""
}

// afterPass finishes a passed check inside its transaction: it binds the
// pass to the person's login flow, trusts their device when asked, and
// after a login step-up queues the new sign-in notice.
func (s *Service) afterPass(ctx context.Context, tx vigil.Tx, v *vigil.Verification, view *VerificationView, sent *vigil.Message, r *CheckRequest, now time.Time) (*CheckResult, error) {
	res := &CheckResult{Verification: view}
	if r.FlowID != "" && r.FlowID != v.FlowID {
		v.FlowID = r.FlowID
		if err := tx.UpdateVerification(ctx, v); err != nil {
			return nil, fmt.Errorf("bind verification to flow: %w", err)
		}
	}
	if v.Purpose == vigil.PurposeLoginStepUp {
		if err := s.queueDeviceNotice(ctx, tx, v, sent, r.Origin, now); err != nil {
			return nil, err
		}
	}
	if r.Trust != nil {
		d, err := s.trustAfterCheck(ctx, tx, v, r.Trust, r.Origin, now)
		if err != nil {
			return nil, err
		}
		res.Device = d
	}
	return res, nil
}
