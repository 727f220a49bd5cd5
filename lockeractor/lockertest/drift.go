package lockertest

import (
	"fmt"
	"sync"
	"time"

	"github.com/protoactor-locker/locker/lockeractor"
)

// DriftClock is a Clock that runs at 1+rate times the speed of the system
// clock (rate within ±1 %), for tests of clock drift: give each peer its
// own with lockeractor.WithClock. Its readings carry the monotonic clock, so leases
// measured with it drift too. Safe for concurrent use.
type DriftClock struct {
	// mu guards the anchor and rate, changed by SetRate.
	mu     sync.Mutex
	base   time.Time // system reading at the last SetRate
	anchor time.Time // this clock's reading at base
	rate   float64
}

// MaxDrift is the largest |rate| DriftClock accepts: 1 %.
const MaxDrift = 0.01

// NewDriftClock returns a DriftClock reading the system time now and
// running at the system clock's rate until SetRate.
func NewDriftClock() *DriftClock {
	now := time.Now()
	return &DriftClock{base: now, anchor: now}
}

// Now implements lockeractor.Clock.
func (c *DriftClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nowLocked(time.Now())
}

func (c *DriftClock) nowLocked(sys time.Time) time.Time {
	el := sys.Sub(c.base)
	return c.anchor.Add(el + time.Duration(float64(el)*c.rate))
}

// SetRate makes the clock run at 1+rate times the system clock's speed
// from now on (rate 0.01: 1 % fast; -0.01: 1 % slow). A |rate| above
// MaxDrift is an ErrInvalidArgument. The clock never jumps.
func (c *DriftClock) SetRate(rate float64) error {
	if !(rate >= -MaxDrift && rate <= MaxDrift) {
		return fmt.Errorf("%w: clock drift rate %v is outside ±%v", lockeractor.ErrInvalidArgument, rate, MaxDrift)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	sys := time.Now()
	c.anchor = c.nowLocked(sys)
	c.base = sys
	c.rate = rate
	return nil
}

// Rate returns the clock's drift rate.
func (c *DriftClock) Rate() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rate
}
