package vigil

import "time"

// Clock tells the time. Tests inject one they can move.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns the current time in UTC, truncated to microseconds so that it
// survives a round trip through PostgreSQL and SQLite unchanged.
func (SystemClock) Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }
