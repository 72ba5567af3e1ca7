package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/flows"
	"github.com/vigil-auth/vigil/ui"
)

// DeviceCookie is the cookie that carries a browser's device token. Its
// domain must be one Kratos also sees, so that Kratos forwards the cookie
// to the login hook.
type DeviceCookie struct {
	Name   string // default "vigil_device"
	Domain string // empty: the host that set it only
	// Secure sends the cookie over HTTPS only; turn it off only for
	// development over plain HTTP.
	Secure   bool
	SameSite http.SameSite // default Lax
	// MaxAge is how long a browser keeps the cookie: the trust's longest
	// life.
	MaxAge time.Duration
}

func (c DeviceCookie) name() string {
	if c.Name == "" {
		return "vigil_device"
	}
	return c.Name
}

// deviceAnswer is a device with, for a native app, its new token.
type deviceAnswer struct {
	Device      flows.DeviceView `json:"device"`
	DeviceToken string           `json:"device_token,omitempty"`
}

// issue hands a new device token to the client: a native app (a device
// of kind mobile_app, or a caller that sent its token in the body) gets it
// in the answer, a browser as an HttpOnly cookie it cannot read.
func (s *Server) issue(w http.ResponseWriter, d *flows.IssuedDevice, inBody bool) deviceAnswer {
	if inBody || d.Device.Kind == vigil.DeviceMobileApp {
		return deviceAnswer{Device: d.Device, DeviceToken: d.Token}
	}
	s.setDeviceCookie(w, d.Token)
	return deviceAnswer{Device: d.Device}
}

// issueToPage hands a new device token to one of the WebAuthn pages: a
// browser ran the ceremony, so it gets the cookie whatever the device's
// kind; an app's web view also gets the token in the answer.
func (s *Server) issueToPage(w http.ResponseWriter, d *flows.IssuedDevice) deviceAnswer {
	s.setDeviceCookie(w, d.Token)
	if d.Device.Kind == vigil.DeviceMobileApp {
		return deviceAnswer{Device: d.Device, DeviceToken: d.Token}
	}
	return deviceAnswer{Device: d.Device}
}

func (s *Server) setDeviceCookie(w http.ResponseWriter, token string) {
	c := s.cfg.DeviceCookie
	sameSite := c.SameSite
	if sameSite == 0 {
		sameSite = http.SameSiteLaxMode
	}
	//nolint:gosec // Secure comes from config: off only for development over plain HTTP; HttpOnly and SameSite are always set
	http.SetCookie(w, &http.Cookie{
		Name: c.name(), Value: token, Path: "/", Domain: c.Domain,
		MaxAge: int(c.MaxAge / time.Second), Secure: c.Secure, HttpOnly: true, SameSite: sameSite,
	})
}

func noStore(w http.ResponseWriter) { w.Header().Set("Cache-Control", "no-store") }

// codeAnswer is the answer to a passed code check.
type codeAnswer struct {
	publicVerification
	Device      *flows.DeviceView `json:"device,omitempty"`
	DeviceToken string            `json:"device_token,omitempty"`
}

// checkCode: POST /self-service/verifications/{id}/code.
func (s *Server) checkCode(w http.ResponseWriter, r *http.Request) error {
	id := chi.URLParam(r, "id")
	if !validUUID(id) {
		return errNoVerification()
	}
	req, err := decodeCodeRequest(r)
	if err != nil {
		return err
	}
	check := flows.CheckRequest{
		ID: id, Code: strings.TrimSpace(req.Code), FlowID: req.FlowID,
		Origin: flows.Origin{ClientIP: s.clientIP(r), UserAgent: r.UserAgent()},
	}
	if req.TrustDevice {
		check.Trust = &flows.TrustRequest{Name: req.DeviceName, Kind: req.DeviceKind}
	}
	res, err := s.svc.Check(r.Context(), check)
	if err != nil {
		return err
	}
	out := codeAnswer{publicVerification: newPublicVerification(res.Verification)}
	if res.Device != nil {
		a := s.issue(w, res.Device, false)
		out.Device, out.DeviceToken = &a.Device, a.DeviceToken
		noStore(w)
	}
	s.writeJSON(w, r, http.StatusOK, out)
	return nil
}

type deviceList struct {
	Devices []flows.DeviceView `json:"devices"`
}

// sessionDevices: GET /self-service/devices, the logged-in user's devices.
func (s *Server) sessionDevices(w http.ResponseWriter, r *http.Request) error {
	ds, err := s.svc.SessionDevices(r.Context(), sessionCredentials(r))
	if err != nil {
		return err
	}
	noStore(w)
	s.writeJSON(w, r, http.StatusOK, deviceList{Devices: ds})
	return nil
}

// sessionRevokeDevice: DELETE /self-service/devices/{id}.
func (s *Server) sessionRevokeDevice(w http.ResponseWriter, r *http.Request) error {
	d, err := s.svc.SessionRevokeDevice(r.Context(), sessionCredentials(r), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, struct {
		Device *flows.DeviceView `json:"device"`
	}{d})
	return nil
}

// refreshRequest is the body of POST /self-service/devices/token: a
// native app's token. A browser sends none: its cookie is read.
type refreshRequest struct {
	DeviceToken string `json:"device_token"`
}

// refreshDevice: POST /self-service/devices/token swaps the device token
// for a new one.
func (s *Server) refreshDevice(w http.ResponseWriter, r *http.Request) error {
	var req refreshRequest
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &req); err != nil {
			return err
		}
	}
	token, inBody := req.DeviceToken, true
	if token == "" {
		inBody = false
		if c, err := r.Cookie(s.cfg.DeviceCookie.name()); err == nil {
			token = c.Value
		}
	}
	if token == "" {
		return invalid(`Send the device token in "device_token", or the device cookie.`)
	}
	d, err := s.svc.RefreshDevice(r.Context(), sessionCredentials(r), token, s.origin(r))
	if err != nil {
		return err
	}
	noStore(w)
	s.writeJSON(w, r, http.StatusOK, s.issue(w, d, inBody))
	return nil
}

func (s *Server) origin(r *http.Request) flows.Origin {
	return flows.Origin{ClientIP: s.clientIP(r), UserAgent: r.UserAgent()}
}

// enrollPage: GET /devices/enroll?token=..., the page an admin's
// enrollment link opens. Showing it uses nothing up.
func (s *Server) enrollPage(w http.ResponseWriter, r *http.Request) error {
	token := r.URL.Query().Get("token")
	var (
		info *flows.EnrollmentInfo
		err  error
	)
	if token == "" || len(token) > maxTokenLen {
		err = vigil.Errorf(vigil.ENOTFOUND, "This enrollment link is not valid.")
	} else {
		info, err = s.svc.PeekEnrollment(r.Context(), token)
	}
	page, status := ui.EnrollPage{Product: s.cfg.Product, Dev: s.cfg.Dev}, http.StatusOK
	if err != nil {
		p := resolve(err)
		if p.internal {
			s.fail(w, r, err, true)
			return nil
		}
		page.Problem, status = pageKind(p.body.Error.Code), p.status
	} else {
		page.Token, page.Name, page.ExpiresAt = token, info.Name, info.ExpiresAt
	}
	s.renderHTML(w, r, status, func(b *bytes.Buffer) error { return ui.RenderEnroll(b, page) })
	return nil
}

// proofPage: GET /devices/webauthn, where an enrolled device proves itself.
func (s *Server) proofPage(w http.ResponseWriter, r *http.Request) error {
	page := ui.ProofPage{Product: s.cfg.Product, Dev: s.cfg.Dev}
	s.renderHTML(w, r, http.StatusOK, func(b *bytes.Buffer) error { return ui.RenderDeviceProof(b, page) })
	return nil
}

// renderHTML writes a page that render fills, with the pages' headers.
func (s *Server) renderHTML(w http.ResponseWriter, r *http.Request, status int, render func(*bytes.Buffer) error) {
	var buf bytes.Buffer
	if err := render(&buf); err != nil {
		s.log.ErrorContext(r.Context(), "render page", "request_id", requestID(r.Context()), "err", err)
		writeRaw(w, http.StatusInternalServerError, "text/plain; charset=utf-8", []byte("Internal error.\n"))
		return
	}
	ui.SetHeaders(w.Header())
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = buf.WriteTo(w)
	}
}

type enrollOptionsRequest struct {
	Token string `json:"token"`
}

// enrollOptions: POST /devices/enroll/options starts the registration.
func (s *Server) enrollOptions(w http.ResponseWriter, r *http.Request) error {
	var req enrollOptionsRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.Token == "" || len(req.Token) > maxTokenLen {
		return vigil.Errorf(vigil.ENOTFOUND, "This enrollment link is not valid.")
	}
	c, err := s.svc.BeginEnrollment(r.Context(), req.Token)
	if err != nil {
		return err
	}
	noStore(w)
	s.writeJSON(w, r, http.StatusOK, c)
	return nil
}

type enrollFinishRequest struct {
	CeremonyID string          `json:"ceremony_id"`
	Token      string          `json:"token"`
	Credential json.RawMessage `json:"credential"`
}

// enrollFinish: POST /devices/enroll/finish registers the credential and
// trusts the device.
func (s *Server) enrollFinish(w http.ResponseWriter, r *http.Request) error {
	var req enrollFinishRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	switch {
	case req.Token == "" || len(req.Token) > maxTokenLen:
		return vigil.Errorf(vigil.ENOTFOUND, "This enrollment link is not valid.")
	case len(req.Credential) == 0:
		return invalid(`Field "credential" is required.`)
	}
	d, err := s.svc.FinishEnrollment(r.Context(), req.CeremonyID, req.Token, req.Credential, s.origin(r))
	if err != nil {
		return err
	}
	noStore(w)
	s.writeJSON(w, r, http.StatusCreated, s.issueToPage(w, d))
	return nil
}

// proofOptions: POST /devices/webauthn/options starts an assertion.
func (s *Server) proofOptions(w http.ResponseWriter, r *http.Request) error {
	var req struct{}
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &req); err != nil {
			return err
		}
	}
	c, err := s.svc.BeginDeviceProof(r.Context(), s.clientIP(r))
	if err != nil {
		return err
	}
	noStore(w)
	s.writeJSON(w, r, http.StatusOK, c)
	return nil
}

type proofFinishRequest struct {
	CeremonyID string          `json:"ceremony_id"`
	Credential json.RawMessage `json:"credential"`
}

// proofFinish: POST /devices/webauthn/finish checks the assertion and
// hands the device a new token.
func (s *Server) proofFinish(w http.ResponseWriter, r *http.Request) error {
	var req proofFinishRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if len(req.Credential) == 0 {
		return invalid(`Field "credential" is required.`)
	}
	d, err := s.svc.FinishDeviceProof(r.Context(), req.CeremonyID, req.Credential, s.origin(r))
	if err != nil {
		return err
	}
	noStore(w)
	s.writeJSON(w, r, http.StatusOK, s.issueToPage(w, d))
	return nil
}

// devices: GET /admin/identities/{id}/devices.
func (s *Server) devices(w http.ResponseWriter, r *http.Request) error {
	id, err := identityID(r)
	if err != nil {
		return err
	}
	ds, err := s.svc.Devices(r.Context(), id)
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, deviceList{Devices: ds})
	return nil
}

type enrollmentRequest struct {
	Name string           `json:"name"`
	Kind vigil.DeviceKind `json:"kind"`
}

// createEnrollment: POST /admin/identities/{id}/devices/enrollments.
func (s *Server) createEnrollment(w http.ResponseWriter, r *http.Request) error {
	id, err := identityID(r)
	if err != nil {
		return err
	}
	var req enrollmentRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	e, err := s.svc.CreateEnrollment(r.Context(), id, req.Name, req.Kind, adminActor)
	if err != nil {
		return err
	}
	noStore(w)
	s.writeJSON(w, r, http.StatusCreated, e)
	return nil
}

// revokeDevice: DELETE /admin/devices/{id}.
func (s *Server) revokeDevice(w http.ResponseWriter, r *http.Request) error {
	d, err := s.svc.RevokeDevice(r.Context(), "", chi.URLParam(r, "id"), adminActor)
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, struct {
		Device *flows.DeviceView `json:"device"`
	}{d})
	return nil
}
