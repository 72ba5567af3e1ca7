package twiliotest

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Verification is one verification the server started.
type Verification struct {
	SID        string // VE…
	ServiceSID string
	To         string
	Channel    string // of the latest send
	Locale     string
	// Code is the code the server made and "sent"; tests read it here.
	Code string
	// Status is pending, approved, expired or max_attempts_reached.
	Status  string
	Sends   int
	Checks  int
	Created time.Time
}

// locales are the Locale values Verify accepts (its documented list);
// any other answers 404.
var locales = func() map[string]bool {
	m := make(map[string]bool)
	for l := range strings.FieldsSeq(`af ar ca zh zh-CN zh-HK hr cs da nl en en-GB
		et fi fr de el he hi hu id it ja ko lt ms nb pl pt pt-BR ro ru es sv tl th
		tr vi`) {
		m[strings.ToLower(l)] = true
	}
	return m
}()

// Verifications returns every verification started so far, oldest first.
func (s *Server) Verifications() []Verification {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Verification, 0, len(s.verifications))
	for _, v := range s.verifications {
		s.expire(v)
		out = append(out, *v)
	}
	return out
}

// Verification returns the verification with this SID.
func (s *Server) Verification(sid string) (Verification, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.verification[sid]
	if !ok {
		return Verification{}, false
	}
	s.expire(v)
	return *v, true
}

// Code returns the code of the newest pending verification to to.
func (s *Server) Code(to string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v := s.pending(to); v != nil {
		return v.Code, true
	}
	return "", false
}

// Expire makes the verification with this SID expire now, as if its
// lifetime had passed.
func (s *Server) Expire(sid string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.verification[sid]
	if !ok || v.Status != "pending" {
		return false
	}
	v.Status = "expired"
	return true
}

// expire marks v expired once its lifetime passed. s.mu is held.
func (s *Server) expire(v *Verification) {
	if v.Status == "pending" && time.Since(v.Created) > s.ttl {
		v.Status = "expired"
	}
}

// pending returns the newest pending verification to to. s.mu is held.
func (s *Server) pending(to string) *Verification {
	for _, v := range slices.Backward(s.verifications) {
		if v.To != to {
			continue
		}
		s.expire(v)
		if v.Status == "pending" {
			return v
		}
	}
	return nil
}

// verificationJSON is Verify's Verification resource.
type verificationJSON struct {
	SID              string            `json:"sid"`
	ServiceSID       string            `json:"service_sid"`
	AccountSID       string            `json:"account_sid"`
	To               string            `json:"to"`
	Channel          string            `json:"channel"`
	Status           string            `json:"status"`
	Valid            bool              `json:"valid"`
	DateCreated      string            `json:"date_created"`
	DateUpdated      string            `json:"date_updated"`
	Lookup           any               `json:"lookup,omitempty"`
	Amount           *string           `json:"amount"`
	Payee            *string           `json:"payee"`
	SendCodeAttempts []sendAttemptJSON `json:"send_code_attempts,omitempty"`
	URL              string            `json:"url,omitempty"`
}

type sendAttemptJSON struct {
	Time       string `json:"time"`
	Channel    string `json:"channel"`
	AttemptSID string `json:"attempt_sid"`
}

func (s *Server) startVerification(w http.ResponseWriter, form url.Values) {
	to, channel, locale := form.Get("To"), form.Get("Channel"), form.Get("Locale")
	switch {
	case to == "":
		writeError(w, http.StatusBadRequest, 60200, "Invalid parameter `To`: ")
		return
	case channel != "sms" && channel != "call" && channel != "whatsapp" && channel != "email":
		writeError(w, http.StatusBadRequest, 60200, "Invalid parameter: Channel")
		return
	case channel == "email" && !strings.Contains(to, "@"):
		writeError(w, http.StatusBadRequest, 60200, "Invalid parameter `To`: "+to)
		return
	case channel != "email" && !isE164(to):
		writeError(w, http.StatusBadRequest, 60200, "Invalid parameter `To`: "+to)
		return
	case locale != "" && !locales[strings.ToLower(locale)]:
		writeError(w, http.StatusNotFound, 20404, "The requested resource was not found: Locale "+locale)
		return
	}

	s.mu.Lock()
	v := s.pending(to)
	switch {
	case v != nil && v.Sends >= s.maxSends:
		s.mu.Unlock()
		writeError(w, http.StatusTooManyRequests, 60203, "Max send attempts reached")
		return
	case v != nil:
		v.Sends++
		v.Channel, v.Locale = channel, locale
	default:
		v = &Verification{
			SID:        newSID("VE"),
			ServiceSID: s.VerifyServiceSID,
			To:         to,
			Channel:    channel,
			Locale:     locale,
			Code:       newCode(),
			Status:     "pending",
			Sends:      1,
			Created:    time.Now().UTC(),
		}
		s.verifications = append(s.verifications, v)
		s.verification[v.SID] = v
	}
	res := s.verificationResource(v)
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, res)
}

func (s *Server) checkVerification(w http.ResponseWriter, form url.Values) {
	code, sid, to := form.Get("Code"), form.Get("VerificationSid"), form.Get("To")
	switch {
	case code == "":
		writeError(w, http.StatusBadRequest, 60200, "Invalid parameter: Code")
		return
	case sid == "" && to == "":
		writeError(w, http.StatusBadRequest, 60200, "Either a 'To' number or 'VerificationSid' must be specified")
		return
	}
	s.mu.Lock()
	var v *Verification
	if sid != "" {
		v = s.verification[sid]
		if v != nil {
			s.expire(v)
		}
	} else {
		v = s.pending(to)
	}
	switch {
	case v == nil || v.Status == "approved" || v.Status == "expired":
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, 20404,
			fmt.Sprintf("The requested resource /Services/%s/VerificationCheck was not found", s.VerifyServiceSID))
		return
	case v.Checks >= s.maxChecks:
		v.Status = "max_attempts_reached"
		s.mu.Unlock()
		writeError(w, http.StatusTooManyRequests, 60202, "Max check attempts reached")
		return
	}
	v.Checks++
	if code == v.Code {
		v.Status = "approved"
	}
	res := s.verificationResource(v)
	res.Lookup, res.SendCodeAttempts, res.URL = nil, nil, ""
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, res)
}

// verificationResource renders v. s.mu is held.
func (s *Server) verificationResource(v *Verification) verificationJSON {
	date := v.Created.Format(time.RFC3339)
	status := v.Status
	if status == "max_attempts_reached" {
		status = "pending"
	}
	attempts := make([]sendAttemptJSON, v.Sends)
	for i := range attempts {
		attempts[i] = sendAttemptJSON{Time: date, Channel: v.Channel, AttemptSID: newSID("VL")}
	}
	return verificationJSON{
		SID:              v.SID,
		ServiceSID:       v.ServiceSID,
		AccountSID:       s.AccountSID,
		To:               v.To,
		Channel:          v.Channel,
		Status:           status,
		Valid:            v.Status == "approved",
		DateCreated:      date,
		DateUpdated:      time.Now().UTC().Format(time.RFC3339),
		Lookup:           map[string]any{},
		SendCodeAttempts: attempts,
		URL:              s.srv.URL + servicesPath + v.ServiceSID + "/Verifications/" + v.SID,
	}
}

// newCode makes a six-digit code, Verify's default length.
func newCode() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%06d", binary.BigEndian.Uint64(b[:])%1_000_000)
}
