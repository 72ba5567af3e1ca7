package flows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/google/uuid"

	"github.com/vigil-auth/vigil"
)

// Enrollment is an enrollment link as the admin who made it sees it. URL
// holds the link's token: it exists only in this answer.
type Enrollment struct {
	ID         string           `json:"id"`
	IdentityID string           `json:"identity_id"`
	Name       string           `json:"name"`
	Kind       vigil.DeviceKind `json:"kind"`
	URL        string           `json:"url"`
	ExpiresAt  time.Time        `json:"expires_at"`
}

// EnrollmentInfo is what the enrollment page shows before the ceremony.
type EnrollmentInfo struct {
	Name      string
	Kind      vigil.DeviceKind
	ExpiresAt time.Time
}

// CeremonyStart is the first half of a WebAuthn ceremony: the options for
// navigator.credentials and the id to finish it under.
type CeremonyStart struct {
	ID        string          `json:"ceremony_id"`
	Options   json.RawMessage `json:"options"`
	ExpiresAt time.Time       `json:"expires_at"`
}

// Enrollment ceremonies run only on a configured WebAuthn relying party.
func (s *Service) webauthn() (vigil.WebAuthn, error) {
	if s.wa == nil {
		return nil, vigil.Errorf(vigil.EINVALID, "Device enrollment is not configured: set devices.webauthn.rp_id and origins.")
	}
	return s.wa, nil
}

// CreateEnrollment makes a one-time link with which a device registers a
// WebAuthn credential for the identity and becomes trusted.
func (s *Service) CreateEnrollment(ctx context.Context, identityID, name string, kind vigil.DeviceKind, actor string) (*Enrollment, error) {
	if _, err := s.webauthn(); err != nil {
		return nil, err
	}
	if identityID == "" || len(identityID) > 64 {
		return nil, vigil.Errorf(vigil.EINVALID, "identity_id is required (at most 64 characters).")
	}
	if kind == "" {
		kind = vigil.DeviceBrowser
	}
	if !kind.Valid() {
		return nil, vigil.Errorf(vigil.EINVALID, "kind must be browser, mobile_app or security_key.")
	}
	name, err := deviceName(name, "", kind)
	if err != nil {
		return nil, err
	}
	token, err := s.newToken()
	if err != nil {
		return nil, err
	}
	now := s.now()
	e := &vigil.DeviceEnrollment{
		ID: newID(), IdentityID: identityID, TokenHash: tokenHash(token), Name: name, Kind: kind,
		CreatedBy: actor, CreatedAt: now, ExpiresAt: now.Add(s.cfg.Devices.EnrollmentTTL),
	}
	err = s.store.InTx(ctx, func(tx vigil.Tx) error {
		if err := tx.InsertEnrollment(ctx, e); err != nil {
			return fmt.Errorf("insert enrollment: %w", err)
		}
		return s.audit(ctx, tx, vigil.EventDeviceEnrollmentMade, identityID, "", actor, map[string]string{
			"enrollment_id": e.ID, "kind": string(kind), "expires_at": e.ExpiresAt.Format(time.RFC3339),
		})
	})
	if err != nil {
		return nil, err
	}
	return &Enrollment{
		ID: e.ID, IdentityID: identityID, Name: name, Kind: kind, ExpiresAt: e.ExpiresAt,
		URL: s.cfg.PublicURL + "/devices/enroll?token=" + url.QueryEscape(token),
	}, nil
}

// enrollment finds the usable enrollment for a link token.
func (s *Service) enrollment(ctx context.Context, tx vigil.Tx, token string, now time.Time) (*vigil.DeviceEnrollment, error) {
	if len(token) != tokenLength {
		return nil, vigil.Errorf(vigil.ENOTFOUND, "This enrollment link is not valid.")
	}
	e, err := tx.FindEnrollmentByToken(ctx, tokenHash(token))
	if errors.Is(err, vigil.ErrNotFound) {
		return nil, vigil.Errorf(vigil.ENOTFOUND, "This enrollment link is not valid.")
	}
	if err != nil {
		return nil, fmt.Errorf("find enrollment: %w", err)
	}
	if e.UsedAt != nil {
		return nil, vigil.Errorf(vigil.EUSED, "This enrollment link was already used.")
	}
	if !now.Before(e.ExpiresAt) {
		return nil, vigil.Errorf(vigil.EEXPIRED, "This enrollment link has expired; ask for a new one.")
	}
	return e, nil
}

// PeekEnrollment tells the enrollment page what a link is for. It
// consumes nothing.
func (s *Service) PeekEnrollment(ctx context.Context, token string) (*EnrollmentInfo, error) {
	if _, err := s.webauthn(); err != nil {
		return nil, err
	}
	e, err := s.enrollment(ctx, s.store, token, s.now())
	if err != nil {
		return nil, err
	}
	return &EnrollmentInfo{Name: e.Name, Kind: e.Kind, ExpiresAt: e.ExpiresAt}, nil
}

// webauthnUser is the WebAuthn account of an identity. The user handle is
// the identity's id (16 bytes for Kratos' UUIDs): stable, and no personal
// data.
func webauthnUser(identityID, name string) vigil.WebAuthnUser {
	handle := []byte(identityID)
	if u, err := uuid.Parse(identityID); err == nil {
		handle = u[:]
	}
	return vigil.WebAuthnUser{Handle: handle, Name: name, DisplayName: name}
}

// identityOfHandle is webauthnUser's handle read back.
func identityOfHandle(handle []byte) string {
	if u, err := uuid.FromBytes(handle); err == nil {
		return u.String()
	}
	return string(handle)
}

// BeginEnrollment starts the registration ceremony of an enrollment link.
func (s *Service) BeginEnrollment(ctx context.Context, token string) (*CeremonyStart, error) {
	wa, err := s.webauthn()
	if err != nil {
		return nil, err
	}
	now := s.now()
	e, err := s.enrollment(ctx, s.store, token, now)
	if err != nil {
		return nil, err
	}
	creds, err := s.store.ListCredentials(ctx, e.IdentityID)
	if err != nil {
		return nil, fmt.Errorf("list credentials: %w", err)
	}
	opts, session, err := wa.BeginRegistration(webauthnUser(e.IdentityID, e.Name), creds)
	if err != nil {
		return nil, fmt.Errorf("begin registration: %w", err)
	}
	return s.ceremony(ctx, vigil.CeremonyRegister, e.ID, opts, session, now)
}

func (s *Service) ceremony(ctx context.Context, kind vigil.CeremonyKind, enrollmentID string, opts, session []byte, now time.Time) (*CeremonyStart, error) {
	c := &vigil.Ceremony{
		ID: newID(), Kind: kind, EnrollmentID: enrollmentID, Session: session,
		CreatedAt: now, ExpiresAt: now.Add(s.cfg.Devices.CeremonyTTL),
	}
	if err := s.store.InsertCeremony(ctx, c); err != nil {
		return nil, fmt.Errorf("insert ceremony: %w", err)
	}
	return &CeremonyStart{ID: c.ID, Options: opts, ExpiresAt: c.ExpiresAt}, nil
}

// takeCeremony uses up a ceremony, whatever the outcome of the response
// it is taken for: a challenge answers one response, never a second.
func (s *Service) takeCeremony(ctx context.Context, id string, kind vigil.CeremonyKind, now time.Time) (*vigil.Ceremony, error) {
	if !validID(id) {
		return nil, vigil.Errorf(vigil.ENOTFOUND, "This ceremony is unknown or was already used; start again.")
	}
	c, err := s.store.TakeCeremony(ctx, id, now)
	if errors.Is(err, vigil.ErrNotFound) || (err == nil && c.Kind != kind) {
		return nil, vigil.Errorf(vigil.ENOTFOUND, "This ceremony is unknown or was already used; start again.")
	}
	if err != nil {
		return nil, fmt.Errorf("take ceremony: %w", err)
	}
	if !now.Before(c.ExpiresAt) {
		return nil, vigil.Errorf(vigil.EEXPIRED, "This ceremony took too long; start again.")
	}
	return c, nil
}

// FinishEnrollment checks the device's new credential and, when it holds,
// stores it with a trusted device and uses up the link. The answer holds
// the device's first token.
func (s *Service) FinishEnrollment(ctx context.Context, ceremonyID, token string, response []byte, from Origin) (*IssuedDevice, error) {
	wa, err := s.webauthn()
	if err != nil {
		return nil, err
	}
	now := s.now()
	e, err := s.enrollment(ctx, s.store, token, now)
	if err != nil {
		return nil, err
	}
	c, err := s.takeCeremony(ctx, ceremonyID, vigil.CeremonyRegister, now)
	if err != nil {
		return nil, err
	}
	if c.EnrollmentID != e.ID {
		return nil, vigil.Errorf(vigil.ENOTFOUND, "This ceremony is unknown or was already used; start again.")
	}
	cred, err := wa.FinishRegistration(webauthnUser(e.IdentityID, e.Name), c.Session, response)
	if err != nil {
		return nil, err
	}
	var issued *IssuedDevice
	err = s.store.InTx(ctx, func(tx vigil.Tx) error {
		now := s.now()
		d, devToken, err := s.newDevice(ctx, tx, e.IdentityID, e.Name, e.Kind, "admin:"+e.CreatedBy, from, now)
		if err != nil {
			return err
		}
		used, err := tx.UseEnrollment(ctx, e.ID, d.ID, now)
		if err != nil {
			return fmt.Errorf("use enrollment: %w", err)
		}
		if !used {
			return vigil.Errorf(vigil.EUSED, "This enrollment link was already used.")
		}
		cred.ID, cred.DeviceID, cred.IdentityID, cred.CreatedAt = newID(), d.ID, e.IdentityID, now
		if err := tx.InsertCredential(ctx, cred); errors.Is(err, vigil.ErrConflict) {
			return vigil.Errorf(vigil.ECONFLICT, "This authenticator is already registered.")
		} else if err != nil {
			return fmt.Errorf("insert credential: %w", err)
		}
		issued = &IssuedDevice{Device: s.deviceView(d, now), Token: devToken}
		return s.audit(ctx, tx, vigil.EventDeviceEnrolled, e.IdentityID, "", "user", map[string]string{
			"device_id": d.ID, "kind": string(d.Kind), "enrollment_id": e.ID, "enrolled_by": e.CreatedBy,
		})
	})
	if err != nil {
		return nil, err
	}
	return issued, nil
}

// BeginDeviceProof starts an assertion with which an enrolled device
// proves itself; the authenticator picks the credential. Anyone may ask,
// so each client IP may start as many a minute as it may check codes.
func (s *Service) BeginDeviceProof(ctx context.Context, clientIP string) (*CeremonyStart, error) {
	wa, err := s.webauthn()
	if err != nil {
		return nil, err
	}
	if clientIP != "" {
		if err := s.hit(ctx, s.store, "ceremony:ip:1m:"+s.ipKey(clientIP), time.Minute, s.cfg.CheckPerIP, s.now()); err != nil {
			return nil, err
		}
	}
	opts, session, err := wa.BeginLogin()
	if err != nil {
		return nil, fmt.Errorf("begin login: %w", err)
	}
	return s.ceremony(ctx, vigil.CeremonyAssert, "", opts, session, s.now())
}

// FinishDeviceProof checks an enrolled device's assertion and gives the
// device a new token, renewing its trust. A sign counter that went
// backwards means the authenticator was cloned: the device is revoked.
func (s *Service) FinishDeviceProof(ctx context.Context, ceremonyID string, response []byte, from Origin) (*IssuedDevice, error) {
	wa, err := s.webauthn()
	if err != nil {
		return nil, err
	}
	now := s.now()
	c, err := s.takeCeremony(ctx, ceremonyID, vigil.CeremonyAssert, now)
	if err != nil {
		return nil, err
	}
	a, err := wa.FinishLogin(c.Session, response, func(credentialID, userHandle []byte) (*vigil.WebAuthnCredential, error) {
		cred, err := s.store.FindCredential(ctx, credentialID)
		if err != nil {
			return nil, err
		}
		if identityOfHandle(userHandle) != cred.IdentityID {
			return nil, vigil.ErrNotFound
		}
		return cred, nil
	})
	if err != nil {
		return nil, err
	}
	cred := a.Credential
	d, err := s.store.GetDevice(ctx, cred.DeviceID)
	if err != nil {
		return nil, fmt.Errorf("read device: %w", err)
	}
	if d.RevokedAt != nil {
		return nil, vigil.Errorf(vigil.EINVALID, "This device's trust was revoked; ask for a new enrollment link.")
	}
	if a.CloneWarning {
		if err := s.cloneSuspected(ctx, d, cred, from, now); err != nil {
			return nil, err
		}
		return nil, vigil.Errorf(vigil.EINVALID, "This security key looks copied; its device is no longer trusted.")
	}
	cred.LastUsedAt = &now
	if err := s.store.UpdateCredential(ctx, cred); err != nil {
		return nil, fmt.Errorf("update credential: %w", err)
	}
	return s.rotate(ctx, d, from, "user", "webauthn", now.Add(s.cfg.Devices.TrustFor), now)
}

// cloneSuspected revokes a device whose authenticator's sign counter went
// backwards.
func (s *Service) cloneSuspected(ctx context.Context, d *vigil.Device, cred *vigil.WebAuthnCredential, from Origin, now time.Time) error {
	s.log.WarnContext(ctx, "WebAuthn sign counter went backwards; device revoked", "device_id", d.ID, "identity_id", d.IdentityID)
	return s.store.InTx(ctx, func(tx vigil.Tx) error {
		revoked, err := tx.RevokeDevice(ctx, d.ID, "clone_suspected", now)
		if err != nil {
			return fmt.Errorf("revoke device: %w", err)
		}
		if err := s.audit(ctx, tx, vigil.EventDeviceCloneSuspected, d.IdentityID, "", "system", map[string]string{
			"device_id": d.ID, "kind": string(d.Kind), "credential_id": cred.ID,
			"sign_count": fmt.Sprint(cred.SignCount), "ip": hint(from.ClientIP, 64),
		}); err != nil || !revoked {
			return err
		}
		return s.audit(ctx, tx, vigil.EventDeviceRevoked, d.IdentityID, "", "system", map[string]string{
			"device_id": d.ID, "kind": string(d.Kind), "reason": "clone_suspected",
		})
	})
}
