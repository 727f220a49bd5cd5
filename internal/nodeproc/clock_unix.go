//go:build unix

package nodeproc

import (
	"time"

	"golang.org/x/sys/unix"
)

// monotonicNanos reads CLOCK_MONOTONIC, which on Linux is one clock for
// every process of the machine, so the histories of several node
// processes merge in real-time order even if the wall clock is stepped
// (NTP) during a run.
func monotonicNanos() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return time.Now().UnixNano()
	}
	return ts.Nano()
}
