package lockertest

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/protoactor-locker/locker/internal/faulthook"
	"github.com/protoactor-locker/locker/lockeractor"
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
func WithFaults(f *Faults) lockeractor.Option {
	if f == nil {
		return func(*lockeractor.Config) {}
	}
	return faulthook.WithInjector(injector{f}).(lockeractor.Option)
}

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

// injector is f as the peer sees it (faulthook.Injector), so that the
// hook's methods stay out of Faults' documentation.
type injector struct{ f *Faults }

func (i injector) Route(from, to string) (bool, [2]time.Duration, bool) { return i.f.route(from, to) }
func (i injector) BlockedInbound(from, to string) bool                  { return i.f.blockedInbound(from, to) }
func (i injector) Paused(addr string) bool                              { return i.f.isPaused(addr) }
func (i injector) Stashed()                                             { i.f.stats.stashed.Add(1) }
func (i injector) OnResume(addr string, wake func()) func()             { return i.f.onResume(addr, wake) }
