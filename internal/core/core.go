// Package core is Locker's protocol as a pure state machine: the
// two-phase quorum write (prepare/promise, commit/abort), leases and
// their expiry, write locks, fencing tokens, replication batches and
// membership, with no actors, goroutines or wall clock of its own.
//
// A Core is driven by its owner, one goroutine at a time. Its inputs are
// Step (a message from a peer), Tick (time passed), Unreachable (a peer
// did not get a message), PushNow, Close, and the calls that start a
// request: Submit, SetNodes, SetW, ReadMaster and Reconfigure, each of
// which returns a RequestID at once. Its outputs are data, as in
// etcd-io/raft's Ready: after each input the owner calls TakeOutput,
// sends Output.Messages, and hands each of Output.Answers (the requests
// that finished, in the order they finished, each with its RequestID) to
// whoever waits for it, then may hand the Output back with Recycle so
// that the next one reuses its arrays; NextWake says when to call Tick
// next. Close answers every request still pending as stopped. The one
// hook a Core calls is its Store's OnChange, told of each change of a
// key. Messages
// a Core addresses to itself are delivered inline. Time comes from the
// injected Clock, so tests drive a Core message by message with a fake
// clock.
//
// The invariant everything else serves (at most one holder): while a
// lease committed by W masters lives, no master replaces it with, or
// frees the key for, the state of a write that did not commit, except
// the holder's own Update, Extend or Release. Every path that moves state
// between peers (catch-up, Sync, snapshots, pushes, repair, promotion)
// keeps, of two states of a key, the one with the larger token; that is
// safe because a Lock's token is the ballot its coordinator drew before
// any master voted, and a master grants only ballots above every one it
// granted before on the key: of two writes, the one promised later by a
// master that promised both has the larger token. ballot.go states the
// rule and argues it; reconfig.go argues changes of masters, and
// catchup.go when a master restarted with empty memory may vote again.
//
// The protocol's behaviour is also written down as traces: the scripts
// in testdata/*.txt drive a network of Cores message by message and
// record every message delivered, every answer and the peers' state,
// each script opening with what it checks and why (interaction_test.go
// lists the commands). After a change that alters them on purpose,
// regenerate them and read the diff:
//
//	go test ./internal/core/ -run TestInteraction -rewrite
package core

import (
	"maps"
	"math"
	"slices"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/protoactor-locker/locker/messages"
)

// Clock tells the time. Leases use the monotonic reading of Now (its
// difference to the first reading); fencing tokens use its wall reading.
type Clock interface {
	Now() time.Time
}

// Config is what a Core is built from.
type Config struct {
	Self                string        // this peer's address
	W                   int           // initial write quorum
	RequestTimeout      time.Duration // how long a coordinator waits for answers
	WriteLockTimeout    time.Duration // how long a promise holds a key
	ReplicationInterval time.Duration // how often masters push to replicas
	MaxMessageBytes     int           // size bound for one Prepare, Commit or Replicate
	// MaxLease is the longest lease a write may ask for, in (0,
	// MaxLeaseLimit]; 0 means DefaultMaxLease, a larger one counts as
	// MaxLeaseLimit. It must be the same on every peer: a master
	// restarted with empty memory votes again without copying leases
	// once MaxLease + WriteLockTimeout + RequestTimeout (and 2 % more
	// for clock drift) has passed since it started (see catchUpWait).
	MaxLease time.Duration
	Clock    Clock
	Seed     uint64 // first transaction id (random in production)
	// Standalone makes a Core that knows only itself ready at epoch 0:
	// a single-node store on purpose, with no peers to be configured
	// with. Any other Core coordinates no write and promises none until
	// it holds a configuration that names it (see ready.go).
	Standalone bool
}

// Envelope is a message for another peer.
type Envelope struct {
	To  string
	Msg proto.Message
}

// Op is one key of a write.
type Op struct {
	Kind     messages.WriteKind
	Key      string
	Value    []byte // the value to lock with, or the value expected
	NewValue []byte // Update only
	LeaseMs  int64  // Lock and Extend
}

// MaxLeaseLimit is the hard bound on Config.MaxLease: a year. A lease
// arriving longer in a Replicate is cut to it, so that deadlines
// (nanoseconds in an int64) never overflow.
const MaxLeaseLimit = 365 * 24 * time.Hour

// DefaultMaxLease is the MaxLease of a Config that sets none: an hour.
const DefaultMaxLease = time.Hour

// maxLeaseLimitMs is MaxLeaseLimit in the wire's milliseconds.
const maxLeaseLimitMs = int64(MaxLeaseLimit / time.Millisecond)

// maxLease is the longest lease this peer accepts in a write: the
// configured one, DefaultMaxLease when none is, capped at MaxLeaseLimit
// (the shell refuses a larger one before it gets here).
func (c *Core) maxLease() time.Duration {
	if c.cfg.MaxLease <= 0 {
		return DefaultMaxLease
	}
	return min(c.cfg.MaxLease, MaxLeaseLimit)
}

// validLease reports whether ms is a lease a Lock or Extend may ask for
// here: at least a millisecond and at most this peer's MaxLease. A
// Lock or Extend with another one is refused (REASON_INVALID_ARGUMENT),
// by its coordinator and by every master it reaches.
func (c *Core) validLease(ms int64) bool { return ms > 0 && ms <= c.maxLease().Milliseconds() }

// leaseEnd is now plus ms milliseconds, ms cut to [0, MaxLeaseLimit],
// and saturating rather than overflowing.
func leaseEnd(now, ms int64) int64 {
	d := min(max(ms, 0), maxLeaseLimitMs) * int64(time.Millisecond)
	if now > math.MaxInt64-d {
		return math.MaxInt64
	}
	return now + d
}

// Phase says how far a write got.
type Phase int

// The phases of a write.
const (
	PhasePrepare Phase = iota // no commit was sent: nothing changed
	PhaseCommit               // commits were sent: some masters may have applied it
)

// Outcome is the result of one Op.
type Outcome struct {
	OK      bool
	Stopped bool // the peer stopped before the write finished
	Phase   Phase
	W       int
	Votes   int // promises granted
	Commits int // commits acknowledged
	Token   uint64
	Reasons map[string]messages.Reason // why peers refused, by address

	// NotReady: refused at once, nothing sent, because this peer is not
	// ready to coordinate writes (see Core.Ready).
	NotReady bool
}

// AdminResult is one peer's answer to SetNodes or SetW.
type AdminResult struct {
	Reason  messages.Reason // REASON_UNSPECIFIED when applied
	Message string
}

// ReadResult is a master's answer to a read.
type ReadResult struct {
	Master  string
	Found   bool
	Value   []byte
	Token   uint64
	Failure messages.Reason // REASON_UNREACHABLE when no answer came
	Stopped bool
}

type writeLock struct {
	from     string
	txn      uint64
	deadline int64
}

type timerKind uint8

const (
	timerLease timerKind = iota
	timerLock
	timerTxn
	timerRequest
	timerPush
	timerReconf
	timerGossip
	timerRetry   // resend what a reconfiguration step or a sync still waits for
	timerFollow  // a replica checks what it missed of a master's pushes (key: the master)
	timerCatchUp // the earlier life's leases and promises have all ended: stop catching up
	timerBallot  // a remembered ballot can have left no living state: fold it into the floor (key: the key)
	timerSettle  // a restarted peer's earlier writes are all decided: ask for its catch-up's snapshots
)

type timer struct {
	at   int64
	kind timerKind
	key  string
	id   uint64
}

// Core is one peer's protocol state. See the package documentation for
// how it is driven; none of its methods may be called concurrently,
// except Store, Membership and WriteLocks, which are safe from any
// goroutine.
type Core struct {
	cfg   Config
	base  time.Time
	store *Store
	// member is atomic because Membership is read from any goroutine
	// (the shell's Locker methods: Configuration, Nodes, ReadMaster)
	// while only the owner replaces it; a published Membership is never
	// modified.
	member atomic.Pointer[Membership]

	locks map[string]writeLock
	// lockCount is len(locks), atomic for WriteLocks, which is read
	// from any goroutine (the shell's Summary).
	lockCount atomic.Int64
	hlc       uint64
	nextID    uint64
	txns      map[uint64]*txn
	reqs      map[uint64]*request
	changed   map[string]uint64 // keys changed since the last push: the token of the state logged
	pushAt    int64
	timers    timerHeap
	due       map[dueKey]int64 // when the one pending timer of a lease or write lock comes due (see scheduleKey)
	out       []Envelope
	local     []proto.Message
	down      map[string]bool
	closed    bool
	since     SinceClock // cfg.Clock, if it is one
	held      bool       // the call under way holds the clock's reading heldAt (see now)
	heldAt    int64

	// Requests (output.go).
	answers     []Answer  // requests finished since TakeOutput, in the order they finished
	lastRequest RequestID // the last request handle handed out

	rc              *reconf             // the reconfiguration this peer coordinates
	syncs           map[string]*syncJob // syncs this peer carries out, by coordinator/request
	cfgPromise      writeLock           // the configuration move this peer promised
	cfgPromiseEpoch uint64              // the epoch that promise moves away from
	catchingUp      bool                // copying leases after a restart; no promises until done
	// fresh: built with empty memory and never adopted a configuration
	// in which it votes; the first such adoption decides whether it must
	// copy leases before it votes (see adopt).
	fresh        bool
	mastersSince uint64 // the epoch from which the current masters hold

	// Ballots (ballot.go).
	ballots map[string]ballotRec                 // Lock and Update ballots granted, by key, while their writes may leave state
	floor   uint64                               // no ballot at or below it is granted, whatever the key
	decided map[string]*decidedSet               // transactions whose Commit or abort came, by coordinator
	synced  recent[string, *messages.AdminReply] // Syncs carried out, by coordinator/request: their answer
	peerInc map[string]uint64                    // each peer's incarnation, as last heard from its current life
	pending map[string]pendingRepair             // repairs put off until the write holding the key's bound is aborted

	// Replication catch-up (follow.go).
	incarnation uint64             // drawn when the Core is built, never 0
	replSeq     uint64             // the sequence of the last push sent to replicas
	replLost    bool               // state changed without a push since: the next announced sequence takes a number
	snapNonce   uint64             // the nonce of the last snapshot this peer took (snapshotNonce)
	follows     map[string]*follow // as a replica: what it knows of each master's pushes
	slots       map[string]int     // as a replica: each master's vouch bit
}

// New returns a Core that knows only itself: masters = [Self], no
// replicas, W = cfg.W.
func New(cfg Config) *Core {
	c := &Core{
		cfg:     cfg,
		base:    cfg.Clock.Now(),
		locks:   map[string]writeLock{},
		txns:    map[uint64]*txn{},
		reqs:    map[uint64]*request{},
		changed: map[string]uint64{},
		down:    map[string]bool{},
		syncs:   map[string]*syncJob{},
		nextID:  cfg.Seed,
		fresh:   true,
	}
	if sc, ok := cfg.Clock.(SinceClock); ok {
		c.since = sc
	}
	c.store = NewStore(c.readClock) // read from other goroutines too: not the held reading
	c.member.Store(&Membership{Masters: []string{cfg.Self}, W: cfg.W})
	c.hlc = uint64(c.base.UnixMicro())
	c.incarnation = incarnation(cfg.Seed, c.base)
	c.snapNonce = c.incarnation
	c.schedule(timer{at: c.gossipInterval(), kind: timerGossip})
	return c
}

// now is the monotonic time in nanoseconds since the Core was built.
//
// Within one call of Step, Submit or Tick it is read once and kept (see
// hold): everything a call does happens at one time, and a write reads
// the clock once per call, not once per handler.
func (c *Core) now() int64 {
	if c.held {
		return c.heldAt
	}
	return c.readClock()
}

// hold keeps the clock's reading for the rest of the call (now), unless
// an outer call holds it already; letGo(hold()) ends it.
func (c *Core) hold() bool {
	if c.held {
		return false
	}
	c.heldAt, c.held = c.readClock(), true
	return true
}

func (c *Core) letGo(held bool) {
	if held {
		c.held = false
	}
}

func (c *Core) readClock() int64 {
	if c.since != nil {
		return int64(c.since.Since(c.base))
	}
	return int64(c.cfg.Clock.Now().Sub(c.base))
}

// SinceClock is a Clock that also measures the time elapsed since one of
// its own readings, more cheaply than Now().Sub: the system clock's
// time.Since reads only the monotonic clock where Now reads the wall
// clock too. The Core uses Since when its Clock has it; it is on the
// path of every DirtyRead.
type SinceClock interface {
	Clock
	Since(t time.Time) time.Duration
}

// Store is the local table, for reads and waits from any goroutine.
func (c *Core) Store() *Store { return c.store }

// Membership is the current configuration; safe from any goroutine.
func (c *Core) Membership() *Membership { return c.member.Load() }

// WriteLocks is how many promises this peer holds; safe from any goroutine.
func (c *Core) WriteLocks() int { return int(c.lockCount.Load()) }

// NextWake returns the monotonic time (as Clock.Now would return it) at
// which Tick should run next, and false when nothing is scheduled.
func (c *Core) NextWake() (time.Time, bool) {
	if len(c.timers) == 0 {
		return time.Time{}, false
	}
	return c.base.Add(time.Duration(c.timers[0].at)), true
}

func (c *Core) id() uint64 {
	c.nextID++
	if c.nextID == 0 {
		c.nextID++
	}
	return c.nextID
}

// token returns a fresh fencing token: larger than every token this peer
// has handed out or seen, and at least the wall clock in microseconds, so
// a peer restarted with empty memory still hands out larger tokens.
func (c *Core) token() uint64 {
	wall := uint64(c.cfg.Clock.Now().UnixMicro())
	if wall > c.hlc {
		c.hlc = wall
	} else {
		c.hlc++
	}
	return c.hlc
}

func (c *Core) observe(token uint64) {
	if token > c.hlc {
		c.hlc = token
	}
}

func (c *Core) send(to string, msg proto.Message) {
	if to == c.cfg.Self {
		c.local = append(c.local, msg)
		return
	}
	if c.out == nil {
		// Not recycled (see Recycle): one allocation with room for a
		// message to each other master, not a growth per message.
		c.out = make([]Envelope, 0, 4)
	}
	c.out = append(c.out, Envelope{To: to, Msg: msg})
}

// drain delivers the messages this peer sent itself.
// The queue's array is kept for the next time (a write sends itself a
// message or two at every step).
func (c *Core) drain() {
	for i := 0; i < len(c.local); i++ { // c.step may append to c.local
		msg := c.local[i]
		c.local[i] = nil
		c.step(c.cfg.Self, msg)
	}
	c.local = c.local[:0]
}

func (c *Core) schedule(t timer) { c.timers.push(t) }

// Step handles a message from peer from.
func (c *Core) Step(from string, msg proto.Message) {
	if c.closed {
		return
	}
	defer c.letGo(c.hold())
	delete(c.down, from)
	c.step(from, msg)
	c.drain()
}

func (c *Core) step(from string, msg proto.Message) {
	switch m := msg.(type) {
	case *messages.Prepare:
		c.onPrepare(from, m)
	case *messages.Promise:
		c.onPromise(from, m)
	case *messages.Commit:
		c.onCommit(from, m)
	case *messages.Committed:
		c.onCommitted(from, m)
	case *messages.Replicate:
		c.onReplicate(from, m)
	case *messages.SetNodes:
		c.onSetNodes(from, m)
	case *messages.SetW:
		c.onSetW(from, m)
	case *messages.AdminReply:
		c.onAdminReply(from, m)
	case *messages.Read:
		c.onRead(from, m)
	case *messages.ReadReply:
		c.onReadReply(from, m)
	case *messages.ConfigPrepare:
		c.onConfigPrepare(from, m)
	case *messages.ConfigPromise:
		c.onConfigPromise(from, m)
	case *messages.ConfigCommit:
		c.onConfigCommit(from, m)
		c.heardGossip(from, m)
	case *messages.ConfigQuery:
		c.onConfigQuery(from)
	case *messages.Sync:
		c.onSync(from, m)
	case *messages.SnapshotRequest:
		c.onSnapshotRequest(from, m)
	case *messages.SnapshotDone:
		c.onSnapshotDone(from, m)
	}
}

// Tick runs what is due: expiries, timeouts and replication.
func (c *Core) Tick() {
	if c.closed {
		return
	}
	defer c.letGo(c.hold())
	now := c.now()
	for len(c.timers) > 0 && c.timers[0].at <= now {
		t := c.timers.pop()
		switch t.kind {
		case timerLease:
			c.fired(t)
			c.expireKey(t.key, now)
			if e := c.store.raw(t.key); e != nil {
				at := e.deadline // extended since: due later
				if e.deleted && e.vend > now {
					at = min(at, e.vend)
				}
				c.scheduleKey(timerLease, t.key, at)
			}
		case timerLock:
			c.fired(t)
			if wl, ok := c.locks[t.key]; ok {
				if wl.deadline <= now {
					c.dropLock(t.key)
				} else {
					c.scheduleKey(timerLock, t.key, wl.deadline) // promised again since
				}
			}
		case timerTxn:
			if x := c.txns[t.id]; x != nil {
				c.txnTimer(x, now)
			}
		case timerRequest:
			if r := c.reqs[t.id]; r != nil && r.deadline <= now {
				c.requestDeadline(r)
			}
		case timerPush:
			c.pushAt = 0
			c.push(now)
		case timerReconf:
			c.reconfTimer(t.id)
		case timerRetry:
			c.retryTimer(t, now)
		case timerFollow:
			c.followTimer(t, now)
		case timerCatchUp:
			c.endCatchUp()
		case timerBallot:
			c.fired(t)
			c.forgetBallot(t.key, now)
		case timerSettle:
			c.settled(now)
		case timerGossip:
			c.gossip()
			c.schedule(timer{at: now + c.gossipInterval(), kind: timerGossip})
		}
	}
	c.drain()
}

// PushNow sends the pending replication batch at once.
func (c *Core) PushNow() {
	if c.closed {
		return
	}
	c.push(c.now())
	c.drain()
}

// Unreachable tells the Core that a message to addr was not delivered
// (the peer is not running there): whatever waits for addr's answer
// counts it as refused.
func (c *Core) Unreachable(addr string) {
	if c.closed || addr == c.cfg.Self {
		return
	}
	c.down[addr] = true
	now := c.now()
	// In the order of their ids, not of the maps: the order decides the
	// order of the answers and of the messages and ids that follow.
	for _, id := range slices.Sorted(maps.Keys(c.txns)) {
		if x := c.txns[id]; x != nil { // an earlier one may have retired it
			c.txnUnreachable(x, addr, now)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(c.reqs)) {
		if r := c.reqs[id]; r != nil && r.waiting(addr) {
			r.answer(c, addr, nil)
		}
	}
	c.reconfUnreachable(addr)
	c.drain()
}

// Close fails every pending operation as stopped and wakes all waiters.
func (c *Core) Close() {
	if c.closed {
		return
	}
	c.closed = true
	for _, id := range slices.Sorted(maps.Keys(c.txns)) { // answer in a replayable order
		if x := c.txns[id]; !x.replied {
			x.replied = true
			outs := make([]Outcome, len(x.ops))
			for i := range outs {
				outs[i] = Outcome{Stopped: true, W: x.w, Phase: x.phase(i)}
			}
			x.batch.done(x.offset, outs)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(c.reqs)) {
		c.reqs[id].stop(c)
	}
	if c.rc != nil {
		rc := c.rc
		c.rc = nil
		c.answerReconfig(rc.handle, ReconfigResult{Stopped: true, Reason: messages.Reason_REASON_UNREACHABLE, Message: "peer stopped"})
	}
	c.txns = map[uint64]*txn{}
	c.reqs = map[uint64]*request{}
	c.store.wakeAll()
}
