package testcluster

import (
	"sync"
	"time"
)

// ManualClock is a lockeractor.Clock that moves only when told to, for
// tests whose outcome must not depend on how fast the machine runs: a
// peer's timers are armed in real time from its readings, but a deadline
// passes only when the test advances the clock past it. Safe for
// concurrent use.
type ManualClock struct {
	mu sync.Mutex // guards the fields below
	t  time.Time  // the reading while it stands still
	// running: Run was called; the reading is then the system clock's
	// plus offset.
	running bool
	offset  time.Duration
}

// NewManualClock returns a ManualClock reading start.
func NewManualClock(start time.Time) *ManualClock { return &ManualClock{t: start} }

// Now returns the clock's reading.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return time.Now().Add(c.offset)
	}
	return c.t
}

// Advance moves the clock forward by d.
func (c *ManualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.offset += d
	c.mu.Unlock()
}

// Run makes the clock run on from its reading at the system clock's
// rate, for a test that needs it to stand still only up to some point
// (a peer whose later writes wait on timers it arms). Advance still
// moves it forward. Run on a running clock does nothing.
func (c *ManualClock) Run() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running {
		c.offset = c.t.Sub(time.Now())
		c.running = true
	}
}

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
