package authz

import "time"

// SetClock makes the checker read time from now (cache expiry tests).
func (c *Checker) SetClock(now func() time.Time) { c.now = now }
