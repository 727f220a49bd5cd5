//go:build !unix

package nodeproc

import "time"

// monotonicNanos is the wall clock where no machine-wide monotonic clock
// is at hand: the histories then merge in wall-clock order.
func monotonicNanos() int64 { return time.Now().UnixNano() }
