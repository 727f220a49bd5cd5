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
// whoever waits for it; NextWake says when to call Tick next. Close
// answers every request still pending as stopped. The one hook a Core
// calls is its Store's OnChange, told of each change of a key. Messages
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
// rule and argues it; reconfig.go argues changes of masters.
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
	"sort"
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

// Membership is the configuration a peer works with. Published values are
// never modified.
type Membership struct {
	Epoch    uint64
	Masters  []string // sorted
	Replicas []string // sorted
	W        int
	// OldMasters is not empty while the masters change (a joint
	// configuration): a write then needs W of Masters and OldW of
	// OldMasters.
	OldMasters []string // sorted
	OldW       int
}

// IsMaster reports whether addr votes on writes: one of the masters, or
// of the old masters during a change.
func (m *Membership) IsMaster(addr string) bool {
	return contains(m.Masters, addr) || contains(m.OldMasters, addr)
}

// Joint reports whether m is a transition between two sets of masters.
func (m *Membership) Joint() bool { return len(m.OldMasters) > 0 }

// Voters returns the masters and old masters, sorted, without repeats.
func (m *Membership) Voters() []string {
	if !m.Joint() {
		return m.Masters
	}
	return SortedSet(append(append([]string{}, m.Masters...), m.OldMasters...))
}

// Everyone returns every peer m names, sorted, without repeats.
func (m *Membership) Everyone() []string {
	return SortedSet(append(append(append([]string{}, m.Masters...), m.OldMasters...), m.Replicas...))
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
	decided map[string]*recent[uint64, struct{}] // transactions whose Commit or abort came, by coordinator
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
	c.store = NewStore(c.now)
	c.member.Store(&Membership{Masters: []string{cfg.Self}, W: cfg.W})
	c.hlc = uint64(c.base.UnixMicro())
	c.incarnation = incarnation(cfg.Seed, c.base)
	c.snapNonce = c.incarnation
	c.schedule(timer{at: c.gossipInterval(), kind: timerGossip})
	return c
}

// now is the monotonic time in nanoseconds since the Core was built.
func (c *Core) now() int64 {
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
	c.out = append(c.out, Envelope{To: to, Msg: msg})
}

// drain delivers the messages this peer sent itself.
func (c *Core) drain() {
	for len(c.local) > 0 {
		msg := c.local[0]
		c.local[0] = nil
		c.local = c.local[1:]
		c.step(c.cfg.Self, msg)
	}
	c.local = nil
}

func (c *Core) schedule(t timer) { c.timers.push(t) }

// Step handles a message from peer from.
func (c *Core) Step(from string, msg proto.Message) {
	if c.closed {
		return
	}
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
	now := c.now()
	for len(c.timers) > 0 && c.timers[0].at <= now {
		t := c.timers.pop()
		switch t.kind {
		case timerLease:
			c.fired(t)
			c.store.expire(t.key, now)
			if e := c.store.raw(t.key); e != nil {
				c.scheduleKey(timerLease, t.key, e.deadline) // extended since: due later
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

// --- master side ---

func (c *Core) onPrepare(from string, p *messages.Prepare) {
	m := c.member.Load()
	isMaster := m.IsMaster(c.cfg.Self)
	now := c.now()
	resp := &messages.Promise{Txn: p.GetTxn(), Epoch: m.Epoch, Items: make([]*messages.PromiseItem, len(p.GetItems())), Incarnation: c.incarnation}
	decided := c.wasDecided(from, p.GetTxn(), now)
	for i, it := range p.GetItems() {
		pi := &messages.PromiseItem{}
		resp.Items[i] = pi
		key := it.GetKey()
		e := c.store.get(key, now)
		if e != nil {
			pi.Token = e.token
		}
		wl, held := c.locks[key]
		locked := held && wl.deadline > now
		switch {
		case decided:
			// A Prepare repeated on the way, after its write was decided
			// here: granting it again would leave the key write-locked.
			pi.Reason = messages.Reason_REASON_PROMISE_EXPIRED
		case p.GetEpoch() != m.Epoch:
			pi.Reason = messages.Reason_REASON_STALE_EPOCH
		case !isMaster || c.unconfigured():
			pi.Reason = messages.Reason_REASON_NOT_MASTER
		case c.catchingUp:
			pi.Reason = messages.Reason_REASON_CATCHING_UP
		case key == "" || it.GetKind() < messages.WriteKind_WRITE_KIND_LOCK || it.GetKind() > messages.WriteKind_WRITE_KIND_RELEASE:
			pi.Reason = messages.Reason_REASON_INVALID_ARGUMENT
		case it.GetLeaseMs() != 0 && !c.validLease(it.GetLeaseMs()) &&
			(it.GetKind() == messages.WriteKind_WRITE_KIND_LOCK || it.GetKind() == messages.WriteKind_WRITE_KIND_EXTEND):
			// A lease longer than this master's MaxLease: refused before
			// any master commits it. (0: a coordinator older than the
			// field; the commit is checked.)
			pi.Reason = messages.Reason_REASON_INVALID_ARGUMENT
		case locked && (wl.from != from || wl.txn != p.GetTxn()):
			pi.Reason = messages.Reason_REASON_WRITE_LOCKED
		case it.GetKind() == messages.WriteKind_WRITE_KIND_LOCK:
			if e != nil {
				pi.Reason = messages.Reason_REASON_ALREADY_LOCKED
			}
		case e == nil:
			pi.Reason = messages.Reason_REASON_NOT_FOUND
		case !sameValue(e.value, it.GetExpected()):
			pi.Reason = messages.Reason_REASON_VALUE_DIFFERS
		}
		again := held && wl.from == from && wl.txn == p.GetTxn() // a repeat of the Prepare that holds the key
		if pi.Reason == messages.Reason_REASON_UNSPECIFIED && ordered(it.GetKind()) && !again {
			if bound := c.ballotBound(key); p.GetBallot() <= bound {
				pi.Reason, pi.Proposal = messages.Reason_REASON_BALLOT_TOO_LOW, bound
			}
		}
		if pi.Reason != messages.Reason_REASON_UNSPECIFIED {
			continue
		}
		pi.Granted = true
		if ordered(it.GetKind()) {
			c.grantBallot(key, p.GetBallot(), it.GetKind(), it.GetLeaseMs(), now, from, p.GetTxn())
		}
		if !held { // an expired lock not yet dropped is replaced, not added
			c.lockCount.Add(1)
		}
		deadline := now + int64(c.cfg.WriteLockTimeout)
		c.locks[key] = writeLock{from: from, txn: p.GetTxn(), deadline: deadline}
		c.scheduleKey(timerLock, key, deadline)
	}
	c.send(from, resp)
}

func (c *Core) dropLock(key string) {
	if _, ok := c.locks[key]; ok {
		delete(c.locks, key)
		c.lockCount.Add(-1)
	}
}

func (c *Core) onCommit(from string, cm *messages.Commit) {
	now := c.now()
	c.markDecided(from, cm.GetTxn(), now)
	if len(cm.GetItems()) == 0 {
		// Abort everything promised to this transaction (a coordinator
		// that no longer knows the transaction).
		for key, wl := range c.locks {
			if wl.from == from && wl.txn == cm.GetTxn() {
				c.dropLock(key)
			}
		}
		return
	}
	ack := &messages.Committed{Txn: cm.GetTxn(), Items: make([]*messages.CommittedItem, len(cm.GetItems()))}
	needAck := false
	for i, it := range cm.GetItems() {
		ci := &messages.CommittedItem{}
		ack.Items[i] = ci
		key := it.GetKey()
		wl, held := c.locks[key]
		live := held && wl.deadline > now
		mine := live && wl.from == from && wl.txn == cm.GetTxn()
		if it.GetAbort() {
			if held && wl.from == from && wl.txn == cm.GetTxn() {
				c.dropLock(key)
			}
			c.abortedBallot(key, from, cm.GetTxn(), now)
			ci.Ok = true
			continue
		}
		needAck = true
		switch {
		case cm.GetEpoch() < c.mastersSince:
			// Decided under masters this peer has replaced since: its
			// leases were copied without this write, so it must not land.
			ci.Reason = messages.Reason_REASON_STALE_EPOCH
		case it.GetKind() < messages.WriteKind_WRITE_KIND_LOCK || it.GetKind() > messages.WriteKind_WRITE_KIND_RELEASE ||
			key == "" || (!c.validLease(it.GetLeaseMs()) && (it.GetKind() == messages.WriteKind_WRITE_KIND_LOCK || it.GetKind() == messages.WriteKind_WRITE_KIND_EXTEND)):
			ci.Reason = messages.Reason_REASON_INVALID_ARGUMENT
		case it.GetRepair():
			ci.Reason = c.repair(key, it, live, mine, now)
		case !mine && c.applied(key, it, now):
			// A repeated Commit of a write applied here already: say so
			// again rather than refuse it.
		case !mine:
			ci.Reason = messages.Reason_REASON_PROMISE_EXPIRED
		default:
			c.dropLock(key)
			ci.Reason = c.apply(key, it, now)
		}
		if ci.Reason == messages.Reason_REASON_UNSPECIFIED {
			ci.Ok = true
			c.observe(it.GetToken())
			c.logChange(key, now)
		}
	}
	if needAck {
		c.send(from, ack)
	}
}

// apply performs a committed item whose promise this peer holds.
func (c *Core) apply(key string, it *messages.CommitItem, now int64) messages.Reason {
	if it.GetKind() == messages.WriteKind_WRITE_KIND_LOCK && c.releasedSince(key, it.GetToken()) {
		return messages.Reason_REASON_ALREADY_LOCKED
	}
	switch it.GetKind() {
	case messages.WriteKind_WRITE_KIND_LOCK, messages.WriteKind_WRITE_KIND_EXTEND:
		c.putLease(key, it.GetValue(), c.leaseDeadline(key, it, now), it.GetToken())
	case messages.WriteKind_WRITE_KIND_UPDATE:
		if c.store.get(key, now) == nil {
			return messages.Reason_REASON_NOT_FOUND // expired since the promise, or no lease to keep
		}
		c.store.setValue(key, it.GetValue(), it.GetToken())
	case messages.WriteKind_WRITE_KIND_RELEASE:
		c.release(key, it.GetToken(), now)
	}
	return messages.Reason_REASON_UNSPECIFIED
}

// applied reports whether a Lock, Update or Release item is already what
// key holds here: its token (unique to the write) with its value, or
// released.
func (c *Core) applied(key string, it *messages.CommitItem, now int64) bool {
	e := c.store.raw(key)
	if e == nil || e.token != it.GetToken() || it.GetKind() == messages.WriteKind_WRITE_KIND_EXTEND {
		// An Extend keeps the holder's token: a repeat would look applied
		// without the lease having been extended by this transaction.
		return false
	}
	if it.GetKind() == messages.WriteKind_WRITE_KIND_RELEASE {
		return e.deleted
	}
	return !e.deleted && e.deadline > now && sameValue(e.value, it.GetValue())
}

// leaseDeadline is when the lease of a Lock or Extend item ends here:
// now plus its lease, but an Extend never shortens a lease this peer
// holds. A holder whose ExtendLease failed with an unknown outcome can
// then keep counting from its last known lease: the extension may have
// landed on some masters, but cannot have cut the lease short there.
func (c *Core) leaseDeadline(key string, it *messages.CommitItem, now int64) int64 {
	d := leaseEnd(now, it.GetLeaseMs())
	if it.GetKind() == messages.WriteKind_WRITE_KIND_EXTEND {
		if e := c.store.get(key, now); e != nil && sameValue(e.value, it.GetValue()) && e.deadline > d {
			return e.deadline
		}
	}
	return d
}

// release deletes key, leaving a tombstone with the holder's token for at
// least the write-lock timeout: a late commit of the lock being released
// (prepared before the release, delayed on its way here) must not bring
// the key back.
func (c *Core) release(key string, token uint64, now int64) {
	c.store.tombstone(key, token)
	if deadline := now + int64(c.cfg.WriteLockTimeout); c.store.keepTombstone(key, token, deadline) {
		c.schedule(timer{at: deadline, kind: timerLease, key: key})
	}
}

// releasedSince reports whether key was released here under a token at
// least token: a Lock committing with it was prepared before that release.
func (c *Core) releasedSince(key string, token uint64) bool {
	e := c.store.raw(key)
	return e != nil && e.deleted && e.token >= token
}

// repair applies a committed item on a master that did not promise it
// because its copy of the key differed from what a quorum decided
// (locker's anti-entropy): the decision replaces the copy, unless the
// copy carries a newer token. A promise this master gave another write
// on the key is dropped: that write cannot have W promises while this
// one has, so it cannot commit.
func (c *Core) repair(key string, it *messages.CommitItem, live, mine bool, now int64) messages.Reason {
	e := c.store.get(key, now)
	if e != nil && e.token > it.GetToken() {
		return messages.Reason_REASON_VALUE_DIFFERS // newer here: keep it
	}
	if ordered(it.GetKind()) && !mine && c.ballotBound(key) > it.GetToken() {
		// This master granted a larger ballot on the key since (or copied
		// from peers that did): the repair's write may have been overtaken
		// by it, so it must not land over it (see ballot.go). If that
		// ballot is a write promised here and not decided yet, the repair
		// waits for it to be aborted.
		if r, ok := c.ballots[key]; ok && live && c.locks[key].from == r.from && c.locks[key].txn == r.txn && r.b > max(c.floor, it.GetToken()) {
			if c.pending == nil {
				c.pending = map[string]pendingRepair{}
			}
			c.pending[key] = pendingRepair{item: it, from: r.from, txn: r.txn}
		}
		return messages.Reason_REASON_BALLOT_TOO_LOW
	}
	if live || mine {
		c.dropLock(key)
	}
	return c.apply(key, it, now) // the store is as read above: dropLock leaves it
}

func (c *Core) putLease(key string, value []byte, deadline int64, token uint64) {
	c.store.put(key, value, deadline, token)
	c.scheduleKey(timerLease, key, deadline)
}

// logChange queues key for the next replication batch.
func (c *Core) logChange(key string, now int64) {
	if len(c.member.Load().Replicas) == 0 {
		c.replLost = true // replicas that join later must learn they lack it
		return
	}
	if e := c.store.raw(key); e != nil {
		c.changed[key] = max(c.changed[key], e.token)
	} else if _, ok := c.changed[key]; !ok {
		c.changed[key] = 0
	}
	if c.pushAt == 0 {
		c.pushAt = now + int64(c.cfg.ReplicationInterval)
		c.schedule(timer{at: c.pushAt, kind: timerPush})
	}
}

// push sends the keys changed since the last push to every replica, in
// as few messages as MaxMessageBytes allows.
func (c *Core) push(now int64) {
	if len(c.changed) == 0 {
		return
	}
	m := c.member.Load()
	changed := c.changed
	c.changed = map[string]uint64{}
	if len(m.Replicas) == 0 || !m.IsMaster(c.cfg.Self) {
		c.replLost = true
		return
	}
	keys := make([]string, 0, len(changed))
	for k := range changed {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	batches := c.entryMessages(keys, now, m.Epoch, changed)
	for _, b := range batches {
		c.replSeq++
		b.Incarnation, b.Sequence = c.incarnation, c.replSeq
	}
	for _, r := range m.Replicas {
		for _, b := range batches {
			c.send(r, b)
		}
	}
}

// overhead is room left in every message for its envelope and header.
const overhead = 128

// EntrySize bounds the encoded size of one key with its values in any
// message, so that callers can check an item fits MaxMessageBytes.
func EntrySize(key string, values ...[]byte) int {
	n := len(key) + 40
	for _, v := range values {
		n += len(v) + 4
	}
	return n
}

// Fits reports whether an Op fits one message under limit.
func Fits(op Op, limit int) bool {
	return EntrySize(op.Key, op.Value, op.NewValue) <= limit-overhead
}

// onReplicate applies the entries of a push, or of a snapshot part, from
// peer from. A snapshot part is applied only when this peer waits for
// it: a sync job or a follow asked from for that snapshot and has not
// had its end yet. As a replica following from (see follow.go), it
// skips a push it has already had and records which masters vouch for
// its leases; as a master, a change that arrives this way (leases copied
// from other masters) is one its own replicas were not pushed.
func (c *Core) onReplicate(from string, r *messages.Replicate) {
	now := c.now()
	var vouch, seen uint32
	if id := r.GetSnapshot(); id != 0 {
		if m := c.member.Load(); m.Epoch > 0 && m.IsMaster(c.cfg.Self) && r.GetEpoch() > m.Epoch {
			// A part from a newer configuration than this master's: it
			// may be a replica there, or a voter; merged as a voter's
			// copy, a stale lease of its own would lend its deadline to
			// a newer one no master holds that long, and mirrored, a
			// copy could shorten a lease it holds as a voter there. It
			// learns the configuration first, and asks for the snapshot
			// again at the job's next retry.
			for _, job := range c.syncs {
				if src, ok := job.asked[id]; ok && src == from {
					delete(job.asked, id)
					delete(job.parts, id)
					job.heard[src] = now
					c.send(from, &messages.ConfigQuery{})
				}
			}
			return
		}
		asked := c.snapshotPart(from, r)
		if f := c.followPart(from, r); f != nil {
			asked = true
			vouch, seen = f.bit(), f.bit()
		}
		if !asked {
			return // late, for a copy that ended, or from a peer not asked
		}
	} else {
		if m := c.member.Load(); m.IsMaster(c.cfg.Self) && (r.GetEpoch() < c.mastersSince || (m.Epoch > 0 && r.GetEpoch() <= m.Epoch)) {
			// A push from a master of the epoch before this one's masters
			// changed: it may carry the residue of an old-epoch write that
			// never reached a quorum, with a token larger than a lease
			// written since. Masters copy leases through Sync and catch-up,
			// which copy from quorums; commits are refused the same way.
			//
			// Nor is any push from this peer's own epoch or an older one
			// for a master: pushes go to the replicas of their sender's
			// configuration, and this peer is a master of its own (masters
			// and replicas are disjoint, one configuration per epoch), so
			// it was a replica of the sender's configuration and has been
			// made a master since. mastersSince alone misses that when
			// this peer skipped a change away from its masters and the
			// change back (it adopts the later configuration, whose
			// Masters equal its own): a push from the configuration in
			// between, mirrored, shortened a lease it held for a quorum.
			return
		}
		c.heardIncarnation(from, r.GetIncarnation())
		if f := c.follower(from, r.GetIncarnation(), now); f != nil {
			if !c.heardSeq(from, f, r.GetSequence(), true, now) {
				return // a repeat, or settled by a snapshot since
			}
			vouch = f.bit()
			if f.snap != 0 {
				seen = vouch // confirms what the snapshot in flight may lack
			}
		}
	}
	if seen != 0 {
		c.follows[from].seen = true
	}
	if len(r.GetEntries()) > 0 && c.member.Load().IsMaster(c.cfg.Self) {
		c.replLost = true
	}
	// A voter keeps the later deadline of a merge (below) of a copy it
	// asked for (a snapshot part: catch-up, Sync); any other peer, a
	// replica or one holding no configuration yet (it counts itself its
	// own master then), mirrors what it is sent. So does a master sent a
	// push: one from its own epoch or an older one was dropped above, so
	// a push reaching a master comes from a newer configuration, in which
	// this peer is a replica that has not heard of it yet: kept as a
	// voter's, the later deadline would outlive every master's lease, and
	// stay once the peer learns it is a replica. Its own configuration is
	// over: a newer one exists only once a write quorum of its voters
	// promised to leave it, and the one case where writes under it may
	// still gather a quorum (a joint configuration while its move to its
	// new masters reaches them) needs W of the new masters too, which are
	// no replicas of the move and hold every lease (the change's Sync).
	m := c.member.Load() // the configuration does not change while a message is handled
	master := m.Epoch > 0 && m.IsMaster(c.cfg.Self) && r.GetSnapshot() != 0
	for _, en := range r.GetEntries() {
		key := en.GetKey()
		if key == "" {
			continue
		}
		// A write in progress here does not stop a newer state from
		// landing: a new master copying leases (Sync) must not skip a
		// lease because a doomed write locked the key. But the write was
		// promised against the state it replaces, so its promise goes: a
		// late Release or Extend of the replaced lease would otherwise
		// end or overwrite the new one. (A commit of the very write that
		// produced the new state still lands: see applied.)
		cur := c.store.raw(key)
		deadline := leaseEnd(now, en.GetLeaseMs())
		if en.GetDeleted() {
			c.observe(en.GetToken())
			if cur != nil && !cur.deleted && cur.token <= en.GetToken() {
				c.store.tombstone(key, en.GetToken())
				c.dropLock(key)
			}
			// Keep the tombstone (made here if the key was absent) for the
			// lease the sender had left, so that a stale copy of the
			// released lease, pushed by another master, cannot bring the
			// key back.
			if en.GetLeaseMs() > 0 && c.store.keepTombstone(key, en.GetToken(), deadline) {
				c.scheduleKey(timerLease, key, deadline)
			}
			continue
		}
		if en.GetLeaseMs() <= 0 {
			// A state that ended at the sender before it pushed it: the
			// sender no longer holds an older state of the key, so it
			// stops vouching for the one here, which is dropped once no
			// master of the configuration vouches for it (each master
			// that replaced it pushes its new state, live or ended; a
			// push lost is a gap, settled by a snapshot). The same state
			// (an equal token) may live longer here, extended through
			// another master, and expires here.
			//
			// It leaves no tombstone, and keeps the older state while
			// another master vouches for it: the ended state need not
			// have replaced it anywhere else. It may be the residue of
			// the holder's own Update on the sender alone (a ballot
			// above the Lock's token, which the Extends of a quorum
			// keep), or a lease the others extended, whose pushes come
			// after this one. A tombstone with its token would outrank
			// that lease in every later merge: the others' pushes of it,
			// and the Sync that copies it when this peer is made a
			// master, which then promises a second Lock of a held key.
			//
			// Pushes alone send such entries (a snapshot leaves ended
			// states out): in a snapshot part, which a voter merges as
			// its copy, one is ignored.
			c.observe(en.GetToken())
			//
			// As in settle (follow.go), only a replica drops, and only
			// once it knows what every voter holds: a voter whose pushes
			// or snapshot are still on their way may hold the state.
			if r.GetSnapshot() == 0 && vouch != 0 && cur != nil && !cur.deleted && cur.token < en.GetToken() {
				cur.vouch &^= vouch
				cur.seen &^= vouch
				if !m.IsMaster(c.cfg.Self) && cur.vouch&c.voterBits() == 0 && c.votersKnown() {
					c.store.drop(key)
					c.dropLock(key)
				}
			}
			continue
		}
		switch {
		case cur != nil && !cur.deleted && cur.token > en.GetToken() && master && cur.deadline > now && deadline > cur.deadline:
			// Newer state here, but the copy's lease runs longer: keep the
			// state and the later deadline (see below), so that a lease
			// never ends earlier on a master for having been merged.
			c.putLease(key, cur.value, deadline, cur.token)
			continue
		case cur != nil && (cur.token > en.GetToken() || (cur.deleted && cur.token >= en.GetToken())):
			continue // newer state here already
		case cur != nil && !cur.deleted && cur.token == en.GetToken() && cur.deadline >= deadline:
			// The same lease, already extended further here.
		default:
			if cur == nil || cur.deleted || cur.token != en.GetToken() {
				c.dropLock(key)
			}
			if cur != nil && !cur.deleted && cur.deadline > now && master {
				// On a master, a newer state never shortens the lease it
				// replaces: the only state that may replace a committed
				// live lease is its holder's own write (ballot.go), and an
				// Update keeps the lease it changes, while the copy may come
				// from a master that missed the holder's later Extend. (A
				// replica mirrors what the masters push; it grants nothing.)
				deadline = max(deadline, cur.deadline)
			}
			c.observe(en.GetToken())
			c.putLease(key, en.GetValue(), deadline, en.GetToken())
		}
		if vouch != 0 {
			if e := c.store.raw(key); e != nil && !e.deleted && e.token == en.GetToken() {
				e.vouch |= vouch
				e.seen |= seen
			}
		}
	}
}

func (c *Core) onSetNodes(from string, s *messages.SetNodes) {
	cur := c.member.Load()
	masters, replicas := SortedSet(s.GetMasters()), SortedSet(s.GetReplicas())
	reply := &messages.AdminReply{Request: s.GetRequest()}
	if msg := CheckNodes(masters, replicas, cur.W); msg != "" {
		reply.Reason, reply.Message = messages.Reason_REASON_INVALID_ARGUMENT, msg
	} else {
		epoch := cur.Epoch
		if s.GetEpoch() > epoch {
			epoch = s.GetEpoch()
		}
		// Through adopt even at the same epoch: a fresh peer made a master
		// catches up first, and a change of masters drops older promises.
		// From epoch 0 to 1 it counts as a new cluster's first
		// configuration: SetNodes is unsafe, and run again from a
		// restarted peer it starts the peers it reaches over (see adopt).
		first := cur.Epoch == 0 && epoch == 1
		c.adopt(&Membership{Epoch: epoch, Masters: masters, Replicas: replicas, W: c.firstW(cur.W, masters, first)}, first)
	}
	reply.Configuration = c.configuration()
	c.send(from, reply)
}

func (c *Core) onSetW(from string, s *messages.SetW) {
	cur := c.member.Load()
	reply := &messages.AdminReply{Request: s.GetRequest()}
	if msg := CheckW(int(s.GetW()), len(cur.Masters)); msg != "" {
		reply.Reason, reply.Message = messages.Reason_REASON_INVALID_ARGUMENT, msg
	} else {
		c.member.Store(&Membership{Epoch: cur.Epoch, Masters: cur.Masters, Replicas: cur.Replicas, W: int(s.GetW())})
	}
	reply.Configuration = c.configuration()
	c.send(from, reply)
}

func (c *Core) configuration() *messages.Configuration {
	m := c.member.Load()
	return &messages.Configuration{Epoch: m.Epoch, Masters: m.Masters, Replicas: m.Replicas, W: int32(m.W)}
}

func (c *Core) onRead(from string, r *messages.Read) {
	reply := &messages.ReadReply{Request: r.GetRequest()}
	if e := c.store.get(r.GetKey(), c.now()); e != nil {
		reply.Found, reply.Value, reply.Token = true, e.value, e.token
	}
	c.send(from, reply)
}
