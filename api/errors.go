package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/ui"
)

// Codes only the HTTP edge uses. Like the vigil codes they are stable:
// clients key on them.
const (
	codeTooLarge         = "request_too_large"
	codeUnsupportedMedia = "unsupported_media_type"
	codeMalformedJSON    = "malformed_json"
	codeUnknownField     = "unknown_field"
	codeInvalidField     = "invalid_field"
	codeMethodNotAllowed = "method_not_allowed"
	codeAuditBroken      = "audit_chain_broken"
	codeUnverified       = "verification_required"
)

// statusByCode is the one table that maps error codes to HTTP statuses. A
// code missing here is a programming error and is answered as internal.
var statusByCode = map[string]int{
	vigil.EINVALID:         http.StatusBadRequest,
	vigil.EADDRESS:         http.StatusBadRequest,
	vigil.EUNSUPPORTEDADDR: http.StatusBadRequest,
	vigil.EWRONGCODE:       http.StatusBadRequest,
	vigil.EUNAUTHORIZED:    http.StatusUnauthorized,
	vigil.ENOTFOUND:        http.StatusNotFound,
	vigil.ECONFLICT:        http.StatusConflict,
	vigil.EUSED:            http.StatusConflict,
	vigil.EVERIFIED:        http.StatusConflict,
	vigil.EEXPIRED:         http.StatusGone,
	vigil.ELOCKED:          http.StatusLocked,
	vigil.ERATELIMITED:     http.StatusTooManyRequests,
	vigil.EINTERNAL:        http.StatusInternalServerError,
	vigil.ECAPTCHA:         http.StatusBadRequest,
	vigil.EUNAVAILABLE:     http.StatusServiceUnavailable,

	codeMalformedJSON:    http.StatusBadRequest,
	codeUnknownField:     http.StatusBadRequest,
	codeInvalidField:     http.StatusBadRequest,
	codeMethodNotAllowed: http.StatusMethodNotAllowed,
	codeTooLarge:         http.StatusRequestEntityTooLarge,
	codeUnsupportedMedia: http.StatusUnsupportedMediaType,
	codeAuditBroken:      http.StatusConflict,
	codeUnverified:       http.StatusForbidden,
}

const internalMessage = "Internal error."

// errorBody is the JSON shape of every error.
type errorBody struct {
	Error        errorDetail `json:"error"`
	AttemptsLeft *int        `json:"attempts_left,omitempty"`
	RetryAfter   int64       `json:"retry_after,omitempty"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// problem is an error resolved for the client: status, body and, for the
// server, whether the cause must be logged.
type problem struct {
	status     int
	body       errorBody
	retryAfter time.Duration
	internal   bool
}

// resolve turns any error into what the client sees. Only *vigil.Error
// with a code from the table reaches the client as it is; anything else is
// internal.
func resolve(err error) problem {
	if e, ok := errors.AsType[*vigil.Error](err); ok && e.Code != vigil.EINTERNAL {
		if status, ok := statusByCode[e.Code]; ok {
			p := problem{status: status, body: errorBody{Error: errorDetail{Code: e.Code, Message: e.Message}}}
			if e.Code == vigil.EWRONGCODE && e.AttemptsLeft != nil {
				n := *e.AttemptsLeft
				p.body.AttemptsLeft = &n
			}
			if e.RetryAfter > 0 {
				p.retryAfter = e.RetryAfter
				p.body.RetryAfter = seconds(e.RetryAfter)
			}
			return p
		}
	}
	return problem{
		status:   http.StatusInternalServerError,
		body:     errorBody{Error: errorDetail{Code: vigil.EINTERNAL, Message: internalMessage}},
		internal: true,
	}
}

// seconds rounds up, so a client that waits as told is never early.
func seconds(d time.Duration) int64 {
	return max(1, int64((d+time.Second-1)/time.Second))
}

// handlerFunc is the shape of every handler: it writes the success
// response itself and returns an error for everything else.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// format says how errors are answered: as JSON, or as an HTML page.
type format func(r *http.Request) (html bool)

func jsonOnly(*http.Request) bool { return false }
func htmlOnly(*http.Request) bool { return true }

// handle adapts h to http.Handler: the one place where handler errors are
// written and logged.
func (s *Server) handle(h handlerFunc, f format) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.fail(w, r, err, f(r))
		}
	}
}

// fail answers err. Internal causes are logged here, once, with the
// request id; the client sees a generic message.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error, html bool) {
	p := resolve(err)
	if p.internal {
		level := slog.LevelError
		if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
			level = slog.LevelInfo // the client went away; nothing is broken
		}
		s.log.Log(r.Context(), level, "request failed",
			"request_id", requestID(r.Context()),
			"method", r.Method,
			"route", routePattern(r),
			"err", err)
	}
	if sw, ok := w.(*statusWriter); ok && sw.status != 0 {
		return // the handler already started the response; too late to change it
	}
	if p.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(p.body.RetryAfter, 10))
	}
	if html {
		s.renderPage(w, r, p.status, ui.Page{
			Kind:       pageKind(p.body.Error.Code),
			RetryAfter: p.retryAfter,
			RequestID:  failedRef(p, r),
		})
		return
	}
	s.writeJSON(w, r, p.status, p.body)
}

func failedRef(p problem, r *http.Request) string {
	if p.internal {
		return requestID(r.Context())
	}
	return ""
}

// pageKind picks the page that explains an error code to a person.
func pageKind(code string) ui.Kind {
	switch code {
	case vigil.EEXPIRED:
		return ui.Expired
	case vigil.EUSED, vigil.EVERIFIED:
		return ui.Used
	case vigil.ELOCKED, vigil.ERATELIMITED:
		return ui.Locked
	case vigil.EINTERNAL:
		return ui.Failed
	}
	return ui.Invalid
}
