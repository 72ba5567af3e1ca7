package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/flows"
)

const adminActor = "admin"

// requireAdmin checks the bearer key in constant time. Both sides are
// hashed first so that the comparison does not leak the key's length
// either. An empty configured key refuses everyone.
func (s *Server) requireAdmin(next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(s.cfg.AdminAPIKey))
	configured := s.cfg.AdminAPIKey != ""
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		got := sha256.Sum256([]byte(strings.TrimSpace(token)))
		match := subtle.ConstantTimeCompare(got[:], want[:]) == 1
		if !configured || !strings.EqualFold(scheme, "Bearer") || !match {
			w.Header().Set("WWW-Authenticate", `Bearer realm="vigil-admin"`)
			s.fail(w, r, vigil.Errorf(vigil.EUNAUTHORIZED, "A valid admin API key is required."), false)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// identityID reads the {id} path parameter as an identity id. A malformed
// one cannot exist, so it is a 404 like any unknown id.
func identityID(r *http.Request) (string, error) {
	id := chi.URLParam(r, "id")
	if !validUUID(id) {
		return "", vigil.Errorf(vigil.ENOTFOUND, "No such identity.")
	}
	return id, nil
}

type startResponse struct {
	ID        string    `json:"id"`
	ExpiresAt time.Time `json:"expires_at"`
}

// startVerification: POST /admin/verifications.
func (s *Server) startVerification(w http.ResponseWriter, r *http.Request) error {
	req, err := decodeStartRequest(r)
	if err != nil {
		return err
	}
	st, err := s.svc.Start(r.Context(), flows.StartRequest{
		IdentityID: req.IdentityID,
		Address:    req.Address,
		Channel:    req.Channel,
		Method:     req.Method,
		Purpose:    vigil.PurposeVerifyAddress,
		Actor:      adminActor,
		Locale:     req.Locale,
		// The caller's Accept-Language is the person's only when the
		// caller is the person's browser; an app passes locale.
		AcceptLanguage: acceptLanguage(r),
	})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/admin/verifications/"+url.PathEscape(st.ID))
	s.writeJSON(w, r, http.StatusCreated, startResponse{ID: st.ID, ExpiresAt: st.ExpiresAt})
	return nil
}

// getVerification: GET /admin/verifications/{id}.
func (s *Server) getVerification(w http.ResponseWriter, r *http.Request) error {
	id := chi.URLParam(r, "id")
	if !validUUID(id) {
		return errNoVerification()
	}
	v, err := s.svc.GetVerification(r.Context(), id)
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, v)
	return nil
}

// identityStatus: GET /admin/identities/{id}/verification.
func (s *Server) identityStatus(w http.ResponseWriter, r *http.Request) error {
	id, err := identityID(r)
	if err != nil {
		return err
	}
	st, err := s.svc.IdentityStatus(r.Context(), id)
	if err != nil {
		return err
	}
	if st.Addresses == nil {
		st.Addresses = []flows.AddressStatus{}
	}
	s.writeJSON(w, r, http.StatusOK, st)
	return nil
}

// unlock: POST /admin/identities/{id}/unlock.
func (s *Server) unlock(w http.ResponseWriter, r *http.Request) error {
	id, err := identityID(r)
	if err != nil {
		return err
	}
	if err := s.svc.Unlock(r.Context(), id, adminActor); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// forceVerify: POST /admin/identities/{id}/addresses/verify.
func (s *Server) forceVerify(w http.ResponseWriter, r *http.Request) error {
	id, err := identityID(r)
	if err != nil {
		return err
	}
	req, err := decodeForceVerifyRequest(r)
	if err != nil {
		return err
	}
	st, err := s.svc.ForceVerify(r.Context(), id, req.Address, req.Channel, adminActor)
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, st)
	return nil
}

// Page sizes of the list endpoints.
const (
	defaultLimit = 100
	maxLimit     = 1000
)

// queryLimit reads ?limit=, 1 to maxLimit, default defaultLimit.
func queryLimit(q url.Values) (int, error) {
	v := q.Get("limit")
	if v == "" {
		return defaultLimit, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxLimit {
		return 0, invalid(`Parameter "limit" must be a whole number from 1 to %d.`, maxLimit)
	}
	return n, nil
}

// queryIdentity reads an optional identity id parameter.
func queryIdentity(q url.Values) (string, error) {
	id := q.Get("identity_id")
	if id != "" && !validUUID(id) {
		return "", invalid(`Parameter "identity_id" must be a UUID.`)
	}
	return id, nil
}

// auditEvent is an audit row as the API shows it, hashes in hex.
type auditEvent struct {
	Seq            int64             `json:"seq"`
	ID             string            `json:"id"`
	At             time.Time         `json:"at"`
	Type           string            `json:"type"`
	IdentityID     string            `json:"identity_id,omitempty"`
	VerificationID string            `json:"verification_id,omitempty"`
	Actor          string            `json:"actor"`
	Data           map[string]string `json:"data,omitempty"`
	PrevHash       string            `json:"prev_hash"`
	Hash           string            `json:"hash"`
}

type auditResponse struct {
	Events []auditEvent `json:"events"`
	// NextAfter is the after= of the next page; present when the page is
	// full, so more may follow.
	NextAfter *int64 `json:"next_after,omitempty"`
}

// audit: GET /admin/audit?identity_id=&after=&limit=.
func (s *Server) audit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	identity, err := queryIdentity(q)
	if err != nil {
		return err
	}
	limit, err := queryLimit(q)
	if err != nil {
		return err
	}
	var after int64
	if v := q.Get("after"); v != "" {
		if after, err = strconv.ParseInt(v, 10, 64); err != nil || after < 0 {
			return invalid(`Parameter "after" must be a sequence number (0 or more).`)
		}
	}
	events, err := s.svc.Audit(r.Context(), vigil.AuditFilter{IdentityID: identity, AfterSeq: after, Limit: limit})
	if err != nil {
		return err
	}
	resp := auditResponse{Events: make([]auditEvent, 0, len(events))}
	for _, e := range events {
		resp.Events = append(resp.Events, auditEvent{
			Seq:            e.Seq,
			ID:             e.ID,
			At:             e.At,
			Type:           e.Type,
			IdentityID:     e.IdentityID,
			VerificationID: e.VerificationID,
			Actor:          e.Actor,
			Data:           e.Data,
			PrevHash:       hex.EncodeToString(e.PrevHash),
			Hash:           hex.EncodeToString(e.Hash),
		})
	}
	if n := len(resp.Events); n > 0 && n >= limit {
		last := resp.Events[n-1].Seq
		resp.NextAfter = &last
	}
	s.writeJSON(w, r, http.StatusOK, resp)
	return nil
}

// brokenChain is the 409 body of a failed audit check: the error shape
// plus the report.
type brokenChain struct {
	*flows.AuditReport
	Error errorDetail `json:"error"`
}

// verifyAudit: GET /admin/audit/verify.
func (s *Server) verifyAudit(w http.ResponseWriter, r *http.Request) error {
	rep, err := s.svc.VerifyAudit(r.Context())
	if err != nil {
		return err
	}
	if rep.OK {
		s.writeJSON(w, r, http.StatusOK, rep)
		return nil
	}
	s.log.WarnContext(r.Context(), "audit chain broken", "request_id", requestID(r.Context()),
		"broken_at", rep.BrokenAt, "reason", rep.Reason)
	s.writeJSON(w, r, statusByCode[codeAuditBroken], brokenChain{
		AuditReport: rep,
		Error:       errorDetail{Code: codeAuditBroken, Message: "The audit chain is broken: a row was changed or removed."},
	})
	return nil
}

type messagesResponse struct {
	Messages []flows.MessageView `json:"messages"`
}

// messages: GET /admin/messages?recipient=&identity_id=&limit=.
func (s *Server) messages(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	identity, err := queryIdentity(q)
	if err != nil {
		return err
	}
	limit, err := queryLimit(q)
	if err != nil {
		return err
	}
	recipient := q.Get("recipient")
	if len(recipient) > maxAddressLen {
		return invalid(`Parameter "recipient" is longer than %d bytes.`, maxAddressLen)
	}
	msgs, err := s.svc.Messages(r.Context(), recipient, identity, limit)
	if err != nil {
		return err
	}
	if msgs == nil {
		msgs = []flows.MessageView{}
	}
	for i := range msgs {
		if msgs[i].History == nil {
			msgs[i].History = []flows.MessageAttemptView{}
		}
	}
	s.writeJSON(w, r, http.StatusOK, messagesResponse{Messages: msgs})
	return nil
}
