package flows

import (
	"time"

	"github.com/vigil-auth/vigil"
)

// Observer receives counts and timings for metrics. The Prometheus
// implementation lives at the HTTP edge; the core only calls it.
type Observer interface {
	VerificationStarted(ch vigil.Channel, purpose vigil.Purpose)
	// CodeChecked outcome: verified, wrong_code, expired, locked, dead.
	CodeChecked(ch vigil.Channel, outcome string)
	// MessageAttempted outcome: sent, transient_error, permanent_error,
	// expired, superseded.
	MessageAttempted(ch vigil.Channel, outcome string, took time.Duration)
	// Delivery counts a message reaching a status (sent, delivered,
	// undelivered, failed) or its code being verified (verified), by the
	// provider that took it and the recipient's country ("" for email).
	Delivery(ch vigil.Channel, provider, country, status string)
	// SMSRefused counts an SMS the protection refused before any provider
	// was called; reason: number, prefix_velocity, global_budget.
	SMSRefused(country, reason string)
	// ConversionLow reports a country or prefix whose codes are verified
	// less often than the watch's threshold; throttled when sends there
	// are refused for it.
	ConversionLow(scope, value string, ratio float64, throttled bool)
}

type nopObserver struct{}

func (nopObserver) VerificationStarted(vigil.Channel, vigil.Purpose)      {}
func (nopObserver) CodeChecked(vigil.Channel, string)                     {}
func (nopObserver) MessageAttempted(vigil.Channel, string, time.Duration) {}
func (nopObserver) Delivery(vigil.Channel, string, string, string)        {}
func (nopObserver) SMSRefused(string, string)                             {}
func (nopObserver) ConversionLow(string, string, float64, bool)           {}
