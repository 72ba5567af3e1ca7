package api

import (
	"net/http"

	"github.com/vigil-auth/vigil"
)

// sessionCredentials collects what a request presents to prove a Kratos
// session; Kratos' whoami decides which of it is valid.
func sessionCredentials(r *http.Request) vigil.SessionCredentials {
	return vigil.SessionCredentials{
		Cookie:        r.Header.Get("Cookie"),
		SessionToken:  r.Header.Get("X-Session-Token"),
		Authorization: r.Header.Get("Authorization"),
	}
}

// IdentityHeader carries the verified identity's id on an allowed
// forward-auth answer.
const IdentityHeader = "X-Vigil-Identity"

// authz: GET /authz, forward-auth for reverse proxies: 200 with the
// identity for a session of a verified identity, 401 without a session,
// 403 when the identity is not verified yet.
func (s *Server) authz(w http.ResponseWriter, r *http.Request) error {
	a, err := s.svc.Authorize(r.Context(), sessionCredentials(r))
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	if !a.Verified {
		s.writeJSON(w, r, http.StatusForbidden, struct {
			Error      errorDetail `json:"error"`
			IdentityID string      `json:"identity_id"`
		}{errorDetail{Code: codeUnverified, Message: "Verify your account to continue."}, a.IdentityID})
		return nil
	}
	w.Header().Set(IdentityHeader, a.IdentityID)
	s.writeJSON(w, r, http.StatusOK, struct {
		IdentityID string `json:"identity_id"`
		Verified   bool   `json:"verified"`
	}{a.IdentityID, true})
	return nil
}

// sessionStatus: GET /self-service/verifications, the logged-in user's own
// verification state.
func (s *Server) sessionStatus(w http.ResponseWriter, r *http.Request) error {
	st, err := s.svc.SessionStatus(r.Context(), sessionCredentials(r))
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	s.writeJSON(w, r, http.StatusOK, st)
	return nil
}
