package vigil

import (
	"errors"
	"fmt"
	"time"
)

// Stable error codes. Clients and UIs key on them, so they never change
// meaning once released. The HTTP edge maps each to a status in one table.
const (
	ECONFLICT        = "conflict"
	EINTERNAL        = "internal"
	EINVALID         = "invalid_request"
	ENOTFOUND        = "not_found"
	EUNAUTHORIZED    = "unauthorized"
	EWRONGCODE       = "wrong_code"
	EEXPIRED         = "expired"
	ELOCKED          = "locked"
	ERATELIMITED     = "rate_limited"
	EUSED            = "already_used"
	EVERIFIED        = "already_verified"
	EADDRESS         = "invalid_address"
	EUNSUPPORTEDADDR = "unsupported_address"
	// ECAPTCHA: the CAPTCHA token is missing or was not accepted.
	ECAPTCHA = "captcha_failed"
	// EUNAVAILABLE: a service Vigil needs for the answer (a provider that
	// checks its own codes, the CAPTCHA service) did not answer.
	EUNAVAILABLE = "unavailable"
)

// Error is the one error type of the domain. Message is safe to show to a
// client; internal causes are wrapped by callers and logged, never shown.
type Error struct {
	Code    string
	Message string

	// RetryAfter, when positive, tells the client when trying again can help
	// (lockouts, cooldowns, caps).
	RetryAfter time.Duration
	// AttemptsLeft is set with EWRONGCODE: how many more codes may be tried
	// before the current one is dead.
	AttemptsLeft *int
}

func (e *Error) Error() string {
	return fmt.Sprintf("vigil error: code=%s message=%s", e.Code, e.Message)
}

// Errorf builds an *Error with a formatted client-safe message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrNotFound is what stores return when a row does not exist; callers
// compare with errors.Is.
var ErrNotFound = &Error{Code: ENOTFOUND, Message: "Not found."}

// ErrConflict is what stores return on a unique violation.
var ErrConflict = &Error{Code: ECONFLICT, Message: "Conflict."}

// Is lets errors.Is match on the code, so a store's wrapped not-found error
// matches ErrNotFound.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Message == e.Message
}

// ErrorCode returns the code of the first *Error in err's chain, or
// EINTERNAL when there is none.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the client-safe message of err; internal errors get
// a generic text.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Message
	}
	return "Internal error."
}
