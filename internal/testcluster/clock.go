package testcluster

import "time"

// AheadClock is a Locker clock (lockeractor.WithClock) whose wall reading
// runs By ahead of the system clock (behind, if By is negative), for
// tests of a coordinator whose clock is off: its fencing tokens, drawn
// from the wall reading, are larger (or smaller) than its peers'. Its
// readings differ from the system's by the constant By, monotonic part
// included, so the leases it measures last as long as everyone else's.
type AheadClock struct {
	By time.Duration
}

// Now returns the system time plus By.
func (c AheadClock) Now() time.Time { return time.Now().Add(c.By) }
