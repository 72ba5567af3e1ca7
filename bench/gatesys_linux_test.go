package bench

import (
	"syscall"
	"time"
)

// pause sleeps d with nanosleep(2), blocking the thread. time.Sleep would
// wake up to a millisecond late (the runtime's poller waits in whole
// milliseconds), and the open loop's latency counts that lateness.
func pause(d time.Duration) {
	if d <= 0 {
		return
	}
	ts := syscall.NsecToTimespec(int64(d))
	_ = syscall.Nanosleep(&ts, nil) // woken early by a signal: the loop sleeps again
}

// selfCPU is this process's user and system time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
