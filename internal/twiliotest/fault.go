package twiliotest

import (
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Fault makes the server misbehave for the requests it matches, before
// they are authenticated or handled: answer an error, answer late, or not
// at all.
type Fault struct {
	// Endpoint limits the fault to one endpoint; empty matches all.
	Endpoint Endpoint
	// To limits the fault to requests for this recipient, compared
	// without a "whatsapp:" prefix; empty matches all.
	To string
	// Status is the HTTP status to answer. Zero handles the request
	// normally and holds the answer back for Delay: a slow Twilio that
	// creates the message even when the client gives up waiting.
	Status int
	// Code is Twilio's error code in the body; zero means 20003 for 401
	// and 20000 plus the status otherwise (20429, 20503).
	Code int
	// Message is the body's message; empty means the status text.
	Message string
	// RetryAfter, when set, is sent as the Retry-After header.
	RetryAfter string
	// RawBody, when set, is sent instead of Twilio's JSON, as text/html:
	// what a proxy in front of Twilio might answer.
	RawBody string
	// Delay waits this long before answering; the wait ends early, with
	// no answer, when the client gives up or the server closes.
	Delay time.Duration
	// Hang never answers: the request waits until the client gives up or
	// the server closes. With Status zero, the request still takes effect.
	Hang bool
	// Times is how many requests the fault applies to; zero means every
	// matching request until ClearFaults.
	Times int
}

// Inject adds a fault. Each request takes the first matching fault that
// has not run out, in the order they were added.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// takeFault returns the fault for a request, counting it, or nil.
func (s *Server) takeFault(e Endpoint, form url.Values) *Fault {
	to := strings.TrimPrefix(form.Get("To"), "whatsapp:")
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if (f.Endpoint != "" && f.Endpoint != e) || (f.To != "" && strings.TrimPrefix(f.To, "whatsapp:") != to) {
			continue
		}
		fault := *f
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
		}
		return &fault
	}
	return nil
}

// wait waits out f's Delay, or forever with Hang, and reports whether the
// client is still there to be answered.
func (s *Server) wait(r *http.Request, f *Fault) bool {
	var timeout <-chan time.Time
	switch {
	case f.Hang:
	case f.Delay > 0:
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		timeout = t.C
	default:
		return true
	}
	select {
	case <-timeout:
		return true
	case <-r.Context().Done():
	case <-s.quit:
	}
	return false
}

// writeFault answers with f's error.
func writeFault(w http.ResponseWriter, f *Fault) {
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	if f.RawBody != "" {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(f.Status)
		_, _ = io.WriteString(w, f.RawBody)
		return
	}
	code := f.Code
	if code == 0 {
		code = 20000 + f.Status
		if f.Status == http.StatusUnauthorized {
			code = 20003
		}
	}
	msg := f.Message
	if msg == "" {
		msg = http.StatusText(f.Status)
	}
	writeError(w, f.Status, code, msg)
}
