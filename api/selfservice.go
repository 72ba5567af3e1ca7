package api

import (
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/flows"
	"github.com/vigil-auth/vigil/ui"
)

// publicVerification is what the self-service API shows about a
// verification: enough for an app to say what happened, nothing that ties
// it to an identity (identity and address ids stay on the admin API).
type publicVerification struct {
	ID           string        `json:"id"`
	State        vigil.State   `json:"state"`
	Channel      vigil.Channel `json:"channel"`
	Method       vigil.Method  `json:"method"`
	Destination  string        `json:"destination"`
	AttemptsLeft int           `json:"attempts_left"`
	ExpiresAt    time.Time     `json:"expires_at"`
	VerifiedAt   *time.Time    `json:"verified_at,omitempty"`
}

func newPublicVerification(v *flows.VerificationView) publicVerification {
	return publicVerification{
		ID:           v.ID,
		State:        v.State,
		Channel:      v.Channel,
		Method:       v.Method,
		Destination:  v.Destination,
		AttemptsLeft: v.AttemptsLeft,
		ExpiresAt:    v.ExpiresAt,
		VerifiedAt:   v.VerifiedAt,
	}
}

func errNoVerification() error {
	return vigil.Errorf(vigil.ENOTFOUND, "No such verification.")
}

// malformedInput are the codes that describe the request alone, so a
// resend may answer them without revealing whether an address is known.
var malformedInput = map[string]bool{vigil.EINVALID: true, vigil.EADDRESS: true, vigil.EUNSUPPORTEDADDR: true}

// accepted is the one answer to every well-formed resend: whether anything
// was sent is nobody's business but the address owner's.
var accepted = []byte(`{"state":"accepted"}` + "\n")

// resend: POST /self-service/verifications/resend.
func (s *Server) resend(w http.ResponseWriter, r *http.Request) error {
	req, err := decodeResendRequest(r)
	if err != nil {
		return err
	}
	if req.session() {
		// The logged-in user's own verifications: the session proves who
		// is asking, so the answer may say when there is none.
		if err := s.svc.SessionResend(r.Context(), sessionCredentials(r), req.Channel, s.clientIP(r)); err != nil {
			return err
		}
		writeRaw(w, http.StatusAccepted, mimeJSON, accepted)
		return nil
	}
	err = s.svc.Resend(r.Context(), flows.ResendRequest{
		ID: req.ID, Address: req.Address, ClientIP: s.clientIP(r), AcceptLanguage: acceptLanguage(r),
		Anonymous: true, Captcha: req.CaptchaToken,
	})
	switch p := resolve(err); {
	case err == nil:
	case malformedInput[p.body.Error.Code], p.body.Error.Code == vigil.ECAPTCHA, p.body.Error.Code == vigil.EUNAVAILABLE:
		// Decided before any account was looked at: saying so reveals
		// nothing.
		// A malformed address is a fact about the input, not about any
		// account: saying so reveals nothing.
		return err
	case p.internal:
		// Answering the failure would tell an address that has a
		// verification from one that does not. Log it; answer the same.
		s.log.ErrorContext(r.Context(), "resend failed", "request_id", requestID(r.Context()), "err", err)
	default:
		// The engine promises not to refuse well-formed requests, but if it
		// ever did (rate_limited, not_found), the refusal could enumerate.
		s.log.DebugContext(r.Context(), "resend refused", "request_id", requestID(r.Context()), "code", p.body.Error.Code)
	}
	writeRaw(w, http.StatusAccepted, mimeJSON, accepted)
	return nil
}

// peekLink: GET and HEAD /self-service/verifications/link?token=. Shows the
// confirm page; never consumes, because mail scanners open links.
func (s *Server) peekLink(w http.ResponseWriter, r *http.Request) error {
	token := r.URL.Query().Get("token")
	if token == "" || len(token) > maxTokenLen {
		return vigil.Errorf(vigil.ENOTFOUND, "This link is not valid.")
	}
	info, err := s.svc.PeekLink(r.Context(), token)
	if err != nil {
		return err
	}
	s.renderPage(w, r, http.StatusOK, ui.Page{
		Kind:        ui.Confirm,
		Channel:     string(info.Channel),
		Destination: info.Masked,
		ExpiresAt:   info.ExpiresAt,
		Token:       token,
	})
	return nil
}

// consumeLink: POST /self-service/verifications/link. The confirm page
// posts a form and gets a page back; apps post JSON or ask for JSON.
func (s *Server) consumeLink(w http.ResponseWriter, r *http.Request) error {
	token, err := decodeLinkRequest(r)
	if err != nil {
		return err
	}
	v, err := s.svc.ConsumeLink(r.Context(), token, s.clientIP(r))
	if err != nil {
		return err
	}
	if linkWantsHTML(r) {
		s.renderPage(w, r, http.StatusOK, ui.Page{Kind: ui.Verified, Channel: string(v.Channel), Destination: v.Destination})
		return nil
	}
	s.writeJSON(w, r, http.StatusOK, newPublicVerification(v))
	return nil
}

// linkWantsHTML: JSON when the client asks for it (Accept) or sent JSON
// without asking for HTML; a page otherwise.
func linkWantsHTML(r *http.Request) bool {
	json, html := accepts(r, mimeJSON), accepts(r, "text/html")
	if json {
		return false
	}
	if mediaType(r) == mimeJSON && !html {
		return false
	}
	return true
}

// accepts reports whether the Accept header names the media type
// explicitly with a non-zero quality. Wildcards do not count: a browser
// sends */* and wants a page.
func accepts(r *http.Request, mediaType string) bool {
	for _, v := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil || mt != mediaType {
				continue
			}
			if q := strings.TrimSpace(params["q"]); q == "0" || q == "0.0" || q == "0.00" || q == "0.000" {
				continue
			}
			return true
		}
	}
	return false
}

// acceptLanguage is the request's Accept-Language, capped: the language
// choice needs a few tags, not a kilobyte of them.
func acceptLanguage(r *http.Request) string {
	v := r.Header.Get("Accept-Language")
	if len(v) > 256 {
		v = v[:256]
	}
	return v
}

// statusCallback: POST /callbacks/{provider}/status, a provider's report
// on a message it accepted. Reports on messages Vigil does not know (an
// address deleted meanwhile) are answered 204 too: the provider can do
// nothing about them.
func (s *Server) statusCallback(w http.ResponseWriter, r *http.Request) error {
	cb := s.cfg.Callbacks[chi.URLParam(r, "provider")]
	if cb == nil {
		return vigil.Errorf(vigil.ENOTFOUND, "No such endpoint.")
	}
	u, ok, err := cb(r)
	if err != nil {
		return err
	}
	if ok {
		err := s.svc.UpdateDelivery(r.Context(), u)
		switch vigil.ErrorCode(err) {
		case "":
		case vigil.ENOTFOUND:
			s.log.DebugContext(r.Context(), "status report for an unknown message", "request_id", requestID(r.Context()), "provider", u.Provider)
		default:
			return err
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
