package lockeractor

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"
)

// AnyAddress is the wildcard address of Faults rules: Drop(AnyAddress,
// a, 1) drops everything sent to a, Pause(AnyAddress) pauses every peer.
const AnyAddress = "*"

// Faults injects network and process faults into the Locker peers
// started with WithFaults(f), for tests (ours and users' own): it drops,
// delays, reorders and duplicates the messages peers send each other,
// partitions peers into groups, and pauses a peer as a long GC pause
// would. Peers are named by their addresses ("host:port"); AnyAddress
// ("*") stands for every peer in Drop, Delay, Duplicate and Pause.
//
// One Faults can be shared by every peer of a process (each message is
// then judged once by its sender and, for partitions, again by its
// receiver), or each side can have its own: the sender applies Drop,
// Delay and Duplicate and partitions, the receiver applies partitions
// and pauses. A message a peer sends itself is never dropped, delayed
// or duplicated. Randomness comes from the seed given to NewFaults;
// with concurrent peers the order in which they draw from it, and so a
// run, is not reproducible exactly, only its distribution.
//
// Faults is safe for concurrent use. Rules take effect for messages sent
// after the call; messages already delayed keep their delay.
type Faults struct {
	// mu guards every field below; the peers read them for every message
	// they send or receive.
	mu        sync.Mutex
	rng       *rand.Rand
	group     map[string]int // address -> partition group (absent: talks to everyone)
	drop      map[pair]float64
	duplicate map[pair]float64
	delay     map[pair][2]time.Duration
	paused    map[string]bool // addresses (or AnyAddress) paused
	wake      map[string]map[uint64]func()
	nextWake  uint64

	stats struct {
		sent, dropped, partitioned, delayed, duplicated, stashed atomic.Uint64
	}
}

// FaultStats counts what a Faults did.
type FaultStats struct {
	Sent        uint64 // messages between peers judged by the sender (self-sends not counted)
	Dropped     uint64 // messages dropped by Drop
	Partitioned uint64 // messages dropped by a partition, by the sender or the receiver
	Delayed     uint64 // sends (originals and duplicates) delayed by Delay
	Duplicated  uint64 // messages sent twice by Duplicate
	Stashed     uint64 // messages a paused peer held until Resume
}

// Total is the number of faults injected: every message dropped,
// partitioned, delayed, duplicated or stashed.
func (s FaultStats) Total() uint64 {
	return s.Dropped + s.Partitioned + s.Delayed + s.Duplicated + s.Stashed
}

type pair struct{ from, to string }

// NewFaults returns a Faults that injects nothing until told to, drawing
// its random choices from seed.
func NewFaults(seed uint64) *Faults {
	return &Faults{
		rng:       rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		group:     map[string]int{},
		drop:      map[pair]float64{},
		duplicate: map[pair]float64{},
		delay:     map[pair][2]time.Duration{},
		paused:    map[string]bool{},
		wake:      map[string]map[uint64]func(){},
	}
}

// WithFaults makes the peer inject the faults f is told to (see Faults).
// Without it the peer pays for nothing but a nil check.
func WithFaults(f *Faults) Option { return func(c *Config) { c.Faults = f } }

// Partition splits the peers into groups (of addresses): messages
// between peers of different groups are dropped, both ways. Addresses in
// no group talk to everyone. It replaces the previous partition;
// Partition() with no groups, like Heal, ends it.
func (f *Faults) Partition(groups ...[]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.group = map[string]int{}
	for i, g := range groups {
		for _, a := range g {
			f.group[a] = i
		}
	}
}

// Heal ends the partition. Drop, Delay, Duplicate and Pause rules stay.
func (f *Faults) Heal() { f.Partition() }

// Drop drops each message from from to to with probability p (0 removes
// the rule, 1 drops all). Either address may be AnyAddress; for a
// message, the most specific rule applies: (from, to), then (from, *),
// then (*, to), then (*, *). The same holds for Delay and Duplicate.
func (f *Faults) Drop(from, to string, p float64) { f.setProb(f.drop, from, to, p) }

// Duplicate sends each message from from to to twice with probability p
// (0 removes the rule). The copy gets its own delay when a Delay rule
// applies, so it may arrive first.
func (f *Faults) Duplicate(from, to string, p float64) { f.setProb(f.duplicate, from, to, p) }

// Delay delays each message from from to to by a random duration in
// [lo, hi] (uniform): with lo < hi, messages overtake each other.
// Delay(from, to, 0, 0) removes the rule. A hi below lo counts as lo.
func (f *Faults) Delay(from, to string, lo, hi time.Duration) {
	hi = max(hi, lo)
	f.mu.Lock()
	defer f.mu.Unlock()
	k := pair{from, to}
	if hi <= 0 {
		delete(f.delay, k)
		return
	}
	f.delay[k] = [2]time.Duration{max(lo, 0), hi}
}

func (f *Faults) setProb(m map[pair]float64, from, to string, p float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := pair{from, to}
	if p <= 0 {
		delete(m, k)
		return
	}
	m[k] = min(p, 1)
}

// Pause stops the peer at addr (AnyAddress: every peer) from processing
// anything, as a long GC pause would: the messages it receives (from
// peers, from its own Locker's calls, its timer ticks) are held, in
// order, until Resume. Its clock keeps running, so leases it counts run
// out meanwhile. The peer finishes the message it is processing first.
func (f *Faults) Pause(addr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.paused[addr] = true
}

// Resume ends Pause(addr): the peer processes what it held, in the order
// it arrived, then carries on. Resume(AnyAddress) ends every pause;
// Resume of one address ends only a Pause of that address.
func (f *Faults) Resume(addr string) {
	f.mu.Lock()
	var wake []func()
	if addr == AnyAddress {
		f.paused = map[string]bool{}
		for _, ws := range f.wake {
			for _, w := range ws {
				wake = append(wake, w)
			}
		}
	} else {
		delete(f.paused, addr)
		for _, w := range f.wake[addr] {
			wake = append(wake, w)
		}
	}
	f.mu.Unlock()
	for _, w := range wake {
		w()
	}
}

// Reset removes every rule and partition and resumes every peer.
func (f *Faults) Reset() {
	f.mu.Lock()
	f.group = map[string]int{}
	f.drop = map[pair]float64{}
	f.duplicate = map[pair]float64{}
	f.delay = map[pair][2]time.Duration{}
	f.mu.Unlock()
	f.Resume(AnyAddress)
}

// Stats returns the counts of what f did so far.
func (f *Faults) Stats() FaultStats {
	return FaultStats{
		Sent:        f.stats.sent.Load(),
		Dropped:     f.stats.dropped.Load(),
		Partitioned: f.stats.partitioned.Load(),
		Delayed:     f.stats.delayed.Load(),
		Duplicated:  f.stats.duplicated.Load(),
		Stashed:     f.stats.stashed.Load(),
	}
}

// lookup returns the most specific rule of m for (from, to).
func lookup[V any](m map[pair]V, from, to string) (V, bool) {
	for _, k := range [...]pair{{from, to}, {from, AnyAddress}, {AnyAddress, to}, {AnyAddress, AnyAddress}} {
		if v, ok := m[k]; ok {
			return v, true
		}
	}
	var zero V
	return zero, false
}

// partitionedLocked reports whether a partition separates from and to.
func (f *Faults) partitionedLocked(from, to string) bool {
	gf, ok1 := f.group[from]
	gt, ok2 := f.group[to]
	return ok1 && ok2 && gf != gt
}

// route decides the fate of one message from from to to: dropped, or
// sent once or twice (dup), each after its delay (0: at once).
func (f *Faults) route(from, to string) (drop bool, delays [2]time.Duration, dup bool) {
	f.stats.sent.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.partitionedLocked(from, to) {
		f.stats.partitioned.Add(1)
		return true, delays, false
	}
	if p, ok := lookup(f.drop, from, to); ok && f.rng.Float64() < p {
		f.stats.dropped.Add(1)
		return true, delays, false
	}
	if p, ok := lookup(f.duplicate, from, to); ok && f.rng.Float64() < p {
		f.stats.duplicated.Add(1)
		dup = true
	}
	if d, ok := lookup(f.delay, from, to); ok {
		for i := range 1 + btoi(dup) {
			delays[i] = d[0]
			if d[1] > d[0] {
				delays[i] += time.Duration(f.rng.Int64N(int64(d[1]-d[0]) + 1))
			}
			if delays[i] > 0 {
				f.stats.delayed.Add(1)
			}
		}
	}
	return false, delays, dup
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// blockedInbound reports whether a partition drops a message from from
// arriving at to, and counts it.
func (f *Faults) blockedInbound(from, to string) bool {
	f.mu.Lock()
	blocked := f.partitionedLocked(from, to)
	f.mu.Unlock()
	if blocked {
		f.stats.partitioned.Add(1)
	}
	return blocked
}

func (f *Faults) isPaused(addr string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.paused[addr] || f.paused[AnyAddress]
}

// onResume registers wake, called by Resume of addr, and returns its
// deregistration.
func (f *Faults) onResume(addr string, wake func()) (cancel func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextWake++
	id := f.nextWake
	if f.wake[addr] == nil {
		f.wake[addr] = map[uint64]func(){}
	}
	f.wake[addr][id] = wake
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.wake[addr], id)
		if len(f.wake[addr]) == 0 {
			delete(f.wake, addr)
		}
	}
}

// faultWake tells a paused peer that Resume was called.
type faultWake struct{}

// stashed is a message a paused peer holds.
type stashed struct {
	msg    any
	sender *actor.PID
}

// peerFaults is a peer's side of its Faults: what it stashes while
// paused and the delayed sends it has pending. Only the peer actor uses
// it, except mu's fields.
type peerFaults struct {
	f        *Faults
	stashing bool // paused since the last faultWake: every message is stashed
	stash    []stashed
	unwake   func()

	// mu guards timers and closed, which delayed sends' goroutines use.
	mu     sync.Mutex
	timers map[*time.Timer]struct{}
	closed bool
}

func newPeerFaults(f *Faults) *peerFaults {
	if f == nil {
		return nil
	}
	return &peerFaults{f: f, timers: map[*time.Timer]struct{}{}}
}

// intercept runs before the peer handles a message and reports whether
// the fault layer took it: dropped by a partition, or stashed by a
// pause. A faultWake replays the stash through handle.
func (x *peerFaults) intercept(p *peer, ctx actor.Context) bool {
	switch ctx.Message().(type) {
	case *actor.Started:
		system, self := ctx.ActorSystem(), ctx.Self()
		x.unwake = x.f.onResume(p.l.self, func() { system.Root.Send(self, faultWake{}) })
		return false
	case *actor.Restarting:
		if x.unwake != nil {
			x.unwake() // the restarted peer registers again when Started
		}
		return false
	case *actor.Stopping, *actor.Stopped:
		return false
	case faultWake:
		if x.stashing && !x.f.isPaused(p.l.self) {
			x.stashing = false
			held := x.stash
			x.stash = nil
			for _, s := range held {
				p.handle(ctx, s.msg, s.sender)
			}
		}
		return true
	case proto.Message:
		if s := ctx.Sender(); s != nil && s.Address != p.l.self && x.f.blockedInbound(s.Address, p.l.self) {
			return true
		}
	}
	if x.stashing || x.f.isPaused(p.l.self) {
		x.stashing = true
		x.stash = append(x.stash, stashed{msg: ctx.Message(), sender: ctx.Sender()})
		x.f.stats.stashed.Add(1)
		return true
	}
	return false
}

// send sends msg from the peer to pid at address to as the Faults decide.
func (x *peerFaults) send(p *peer, ctx actor.Context, to string, pid *actor.PID, msg proto.Message) {
	if to == p.l.self {
		ctx.Request(pid, msg)
		return
	}
	drop, delays, dup := x.f.route(p.l.self, to)
	if drop {
		return
	}
	for i := range 1 + btoi(dup) {
		if delays[i] <= 0 {
			ctx.Request(pid, msg)
			continue
		}
		x.later(ctx, delays[i], pid, msg)
	}
}

// later sends msg to pid after d, with the peer as its sender, unless the
// peer stops first.
func (x *peerFaults) later(ctx actor.Context, d time.Duration, pid *actor.PID, msg proto.Message) {
	system, self := ctx.ActorSystem(), ctx.Self()
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		x.mu.Lock()
		defer x.mu.Unlock()
		if x.closed {
			return
		}
		delete(x.timers, t)
		system.Root.RequestWithCustomSender(pid, msg, self)
	})
	x.timers[t] = struct{}{}
}

// stop cancels the pending delayed sends and the wake registration.
func (x *peerFaults) stop() {
	x.mu.Lock()
	x.closed = true
	for t := range x.timers {
		t.Stop()
	}
	x.timers = nil
	x.mu.Unlock()
	if x.unwake != nil {
		x.unwake()
	}
}

// DriftClock is a Clock that runs at 1+rate times the speed of the system
// clock (rate within ±1 %), for tests of clock drift: give each peer its
// own with WithClock. Its readings carry the monotonic clock, so leases
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

// Now implements Clock.
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
		return invalid("clock drift rate %v is outside ±%v", rate, MaxDrift)
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
