package sim

import (
	"math"
	"time"
)

// Epoch is the wall time at which every simulation starts (simulated
// real time zero).
var Epoch = time.Date(2024, 8, 22, 20, 23, 45, 0, time.UTC)

// Clock is one simulated machine's clock: it reads the simulation's real
// time (nanoseconds since Epoch, shared by every clock of a Sim) at its
// own rate and with its own offset, so clocks drift apart. A paused peer's
// clock keeps running: when the peer resumes, its time has jumped. Clock
// implements core.Clock; it is read only from the simulation's goroutine.
type Clock struct {
	real   *int64        // the simulation's real time in nanoseconds
	offset time.Duration // wall offset from real time at zero
	rate   float64       // local seconds per real second, within 0.99 .. 1.01
}

// NewClock returns a clock reading *real at rate (local seconds per real
// second) with a fixed wall offset.
func NewClock(real *int64, rate float64, offset time.Duration) *Clock {
	return &Clock{real: real, offset: offset, rate: rate}
}

// Now returns the local time at the current real time.
func (c *Clock) Now() time.Time { return c.At(*c.real) }

// At returns the local time at real time t (nanoseconds since Epoch).
func (c *Clock) At(t int64) time.Time {
	return Epoch.Add(c.offset + time.Duration(math.Floor(float64(t)*c.rate)))
}

// Rate is how many local seconds pass per real second.
func (c *Clock) Rate() float64 { return c.rate }

// RealAt returns the earliest real time (nanoseconds since Epoch) at
// which the clock reads local or later.
func (c *Clock) RealAt(local time.Time) int64 {
	d := local.Sub(Epoch) - c.offset
	t := int64(math.Ceil(float64(d) / c.rate))
	for c.At(t).Before(local) {
		t++
	}
	for t > 0 && !c.At(t-1).Before(local) {
		t--
	}
	return t
}
