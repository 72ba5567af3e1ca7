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
}

type nopObserver struct{}

func (nopObserver) VerificationStarted(vigil.Channel, vigil.Purpose)      {}
func (nopObserver) CodeChecked(vigil.Channel, string)                     {}
func (nopObserver) MessageAttempted(vigil.Channel, string, time.Duration) {}
