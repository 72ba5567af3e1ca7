//go:build !linux

package bench

import "time"

// pause sleeps d; off Linux the open loop's schedule is only as fine as
// time.Sleep.
func pause(d time.Duration) { time.Sleep(d) }

// selfCPU is unknown off Linux; the CPU columns then read zero.
func selfCPU() time.Duration { return 0 }
