package core

import (
	"slices"
	"sort"

	"github.com/protoactor-locker/locker/messages"
)

// Ballots: why a copy may keep the larger token.
//
// State moves between peers in many ways: a restarted master copies
// snapshots (catch-up), a new master copies the old masters' leases
// (Sync), replicas are pushed batches and snapshots and may be promoted,
// a coordinator repairs a master whose copy differs. Each keeps, of two
// states of a key, the one with the larger fencing token. That is only
// safe if a larger token means a later write, and it did not: a write
// that failed after some commits (residue: it reached fewer than W
// masters) could carry a larger token than a Lock that a quorum committed
// after it, because tokens came from the clock of whichever peer
// proposed them, and the quorum that decided the later Lock never heard
// of the residue. A copy then let the residue replace the committed
// lease on enough masters for a third Lock to succeed while the lease
// lived (a rolling restart and one fast clock were enough).
//
// The rule, as in Paxos: a write's token is fixed before anyone votes.
//
//   - The coordinator draws the write's ballot from its hybrid logical
//     clock (above every ballot and token it has seen) and sends it in
//     the Prepare. The token a Lock or Update commits is that ballot.
//   - A master grants a Lock or Update on a key only for a ballot above
//     (a) every Lock or Update ballot it granted on the key while that
//     write could still leave state anywhere (ballots, below), (b) the
//     token of the key's state here, and (c) its floor: the clocks of
//     the peers it copied snapshots from, and ballots it stopped
//     remembering. Otherwise it refuses (REASON_BALLOT_TOO_LOW, its bound
//     in the answer) and the coordinator starts the write again, once
//     the bound is observed, with a larger ballot.
//   - A repair (a commit applied without a promise) lands only above the
//     master's bound; an ordinary commit lands only over its own live
//     promise, which no other Lock or Update ballot was granted over. A
//     write whose coordinator aborts it (decided not to commit it
//     anywhere) leaves no state, so its ballot stops counting in the
//     bound; a repair put off for it lands then.
//
// Invariant (at most one holder): while a Lock committed by W masters
// lives, no master replaces its state with, or frees the key for, the
// state of a write that did not commit, unless that write is the
// holder's own Update, Extend or Release (a holder that started a
// Release must stop using the lease, whatever the Release returned).
//
// Why it holds: let X be a Lock committed on W masters and R a write of
// the key with state left somewhere. R had W promises (no commit is
// sent before), so some master m promised both. If m promised R first,
// X's ballot is above R's: T(X) > T(R), and every copy keeps X's state
// over R's. If m promised X first, R came to m after X: a Lock R finds
// the key held (X's commit landed at m before R's promise, or m was not
// among X's committers: an ordinary commit needs the live promise R's
// grant took over, a repair needs a ballot above R's); so R is the
// holder's own write on the key. A restarted master keeps (a) through
// its floor: it copies snapshots only once every write of its earlier
// life has been decided (settleWait), from enough peers that one of them
// promised any such write, and a snapshot carries its source's clock.
// A change of masters keeps it through the joint configuration: a write
// under it needs W of the old masters too, whose promises order it after
// every write of the old epoch, and the new masters copy the old
// masters' clocks with their leases. No step of this argument compares
// tokens to decide which write came later: tokens are ordered by the
// promises of a master that saw both writes.
//
// What is remembered: a ballot is kept per key until no state of its
// write can be alive anywhere (the write's deadline, a promise's life,
// and its lease, with the drift margin); then it is folded into the
// floor, so that tokens keep increasing without any assumption on clock
// offsets. Extend and Release keep the holder's token and need no
// ballot order. The cost: a coordinator whose clock lags a master's
// bound is refused once per write and retries at once (one more round
// trip); its clock then runs from the bound it observed.

// ballotRec is a Lock or Update ballot a master granted on a key, kept
// until until (monotonic ns).
type ballotRec struct {
	ballotOf
	// prev is the record this one replaced, kept one level deep (without
	// its own prev): if this record's write is aborted (its coordinator
	// decided not to commit it anywhere), it can leave no state, and the
	// key's bound goes back to prev (see abortedBallot).
	prev    ballotOf
	hasPrev bool
}

// ballotOf is one granted ballot: the bound b, kept until until, the
// write it was granted to (coordinator and transaction, empty when the
// record stands for writes no longer named), and base, the bound of the
// record it replaced (0 if none): when prev is gone, aborting this write
// leaves the bound at base, not lower, since the writes below it were
// not aborted.
type ballotOf struct {
	b     uint64
	until int64
	from  string
	txn   uint64
	base  uint64
}

// maxBallotAttempts bounds how often one write starts again after a
// REASON_BALLOT_TOO_LOW (each attempt observes the bounds it was
// refused with, so the second one passes unless a master's bound moved
// again in between).
const maxBallotAttempts = 4

// ordered reports whether kind commits its ballot as the key's token
// (Lock and Update); Extend and Release keep the holder's token.
func ordered(kind messages.WriteKind) bool {
	return kind == messages.WriteKind_WRITE_KIND_LOCK || kind == messages.WriteKind_WRITE_KIND_UPDATE
}

// ballotBound is the ballot a Lock or Update on key must exceed here.
func (c *Core) ballotBound(key string) uint64 {
	b := c.floor
	if r, ok := c.ballots[key]; ok {
		b = max(b, r.b)
	}
	if e := c.store.raw(key); e != nil {
		b = max(b, e.token)
	}
	return b
}

// grantBallot records that this master granted ballot b of a Lock or
// Update on key. It is remembered as long as the write may leave state
// anywhere: its coordinator's request timeout (commits are sent only
// before it), a promise's life (a commit lands only on a live promise),
// and the lease the state lives for (the Lock's, or for an Update, which
// keeps the lease it changes, MaxLease), with the drift margin.
func (c *Core) grantBallot(key string, b uint64, kind messages.WriteKind, leaseMs, now int64, from string, txn uint64) {
	c.observe(b)
	lease := int64(c.maxLease())
	if kind == messages.WriteKind_WRITE_KIND_LOCK && leaseMs > 0 {
		lease = min(lease, leaseEnd(0, leaseMs))
	}
	d := int64(c.cfg.RequestTimeout) + int64(c.cfg.WriteLockTimeout) + lease
	until := now + d + d/49 + 1
	if c.ballots == nil {
		c.ballots = map[string]ballotRec{}
	}
	rec := ballotRec{ballotOf: ballotOf{b: b, until: until, from: from, txn: txn}}
	if r, ok := c.ballots[key]; ok {
		rec.until = max(until, r.until)
		rec.b = max(b, r.b)
		rec.base = r.b
		// One level back is enough: the repair it serves follows at once.
		rec.prev, rec.hasPrev = r.ballotOf, true
	}
	c.ballots[key] = rec
	delete(c.pending, key) // a repair put off for an earlier write: that write was not aborted
	c.scheduleKey(timerBallot, key, rec.until)
}

// abortedBallot is called when the coordinator from aborts the item of
// its transaction txn on key (it decided not to commit it anywhere: an
// abort item is sent only for such an op). If that write holds key's
// bound, the bound goes back to what it was before: the write leaves no
// state anywhere. A repair this master put off because of that write's
// ballot (pendingRepair) is then applied.
func (c *Core) abortedBallot(key, from string, txn uint64, now int64) {
	r, ok := c.ballots[key]
	if !ok || r.from != from || r.txn != txn {
		return
	}
	switch {
	case r.hasPrev:
		c.ballots[key] = ballotRec{ballotOf: r.prev}
	case r.base > 0:
		// The writes below this one are no longer named: keep their bound
		// for as long as this record would have lived, with no write to
		// abort it.
		c.ballots[key] = ballotRec{ballotOf: ballotOf{b: r.base, until: r.until}}
	default:
		delete(c.ballots, key)
	}
	if p, ok := c.pending[key]; ok {
		delete(c.pending, key)
		if p.from == from && p.txn == txn && c.repair(key, p.item, false, false, now) == messages.Reason_REASON_UNSPECIFIED {
			c.observe(p.item.GetToken())
			c.logChange(key, now)
		}
	}
}

// pendingRepair is a repair put off because the key's bound came from a
// write this master promised and that is not decided yet (from, txn):
// if that write is aborted, the repair lands (abortedBallot); if not (it
// commits, or its promise runs out), the repair is dropped.
type pendingRepair struct {
	item *messages.CommitItem
	from string
	txn  uint64
}

// forgetBallot folds key's remembered ballot into the floor once its
// write can have left no living state (see grantBallot).
func (c *Core) forgetBallot(key string, now int64) {
	r, ok := c.ballots[key]
	if !ok {
		return
	}
	if r.until > now {
		c.scheduleKey(timerBallot, key, r.until) // granted again since
		return
	}
	c.raiseFloor(r.b)
	delete(c.ballots, key)
	delete(c.pending, key)
}

// raiseFloor makes v a bound for every ballot this master grants from
// now on.
func (c *Core) raiseFloor(v uint64) {
	c.floor = max(c.floor, v)
	c.observe(v)
}

// settleWait is how long after it was built a restarted Core waits
// before it asks for the snapshots of its catch-up: every write whose
// promise or commit its earlier life counted in has been decided by then
// (a coordinator sends commits and counts acknowledgements only before
// its request timeout ends, and its write began before that life
// ended), so the snapshots taken after it hold every lease such a write
// committed and the clock of a master that promised it.
func (c *Core) settleWait() int64 {
	d := int64(c.cfg.RequestTimeout)
	return d + d/49 + 1
}

// recent is a set whose members are forgotten once their time is up:
// what a peer must remember about requests that may be repeated on the
// way for a while (decided transactions, finished syncs), and no longer.
//
// It keeps two generations of members instead of forgetting each one
// on time: a member is found only until its time is up, and a whole
// generation is dropped once every member in it is due. Forgetting one
// by one churned a large map (a write deletes one member and adds one)
// and made its lookups the hottest path of a write; two generations
// hold at most about twice the members that are not due.
type recent[K comparable, V any] struct {
	cur, prev       map[K]recentItem[V]
	curDue, prevDue int64 // the latest time any member of cur, prev is due
}

type recentItem[V any] struct {
	until int64
	value V
}

// add remembers k with v until until, unless k is remembered already,
// and forgets the generation that is due by now.
func (r *recent[K, V]) add(k K, v V, until, now int64) {
	if _, ok := r.get(k, now); !ok {
		r.put(k, v, until, now)
	}
}

// put remembers k, known not to be remembered, with v until until, and
// forgets the generation that is due by now.
func (r *recent[K, V]) put(k K, v V, until, now int64) {
	if r.prev != nil && r.prevDue <= now {
		r.prev = nil
	}
	if r.cur == nil || (r.prev == nil && len(r.cur) > 0) {
		// The older generation is gone: the current one becomes it, and
		// a new one starts.
		r.prev, r.prevDue = r.cur, r.curDue
		r.cur, r.curDue = map[K]recentItem[V]{}, 0
	}
	r.cur[k] = recentItem[V]{until: until, value: v}
	r.curDue = max(r.curDue, until)
}

// get returns what k was remembered with, if it is not due by now.
func (r *recent[K, V]) get(k K, now int64) (V, bool) {
	if it, ok := r.cur[k]; ok && it.until > now {
		return it.value, true
	}
	if it, ok := r.prev[k]; ok && it.until > now {
		return it.value, true
	}
	var zero V
	return zero, false
}

// decidedSet is what a master remembers of one coordinator's decided
// transactions. A coordinator numbers its transactions in increasing
// order and mostly decides them in that order, so most are kept in a
// list in that order (increasing numbers, and times due, since each is
// remembered for the same while): adding one appends it, forgetting
// takes them from the front, and a Prepare of a new write (above every
// decided one) needs no lookup at all. The few decided out of order go
// to a set. A map of every decided transaction was the hottest part of
// a write (an insert and a delete each, in a map of a request timeout's
// worth of writes).
type decidedSet struct {
	// inOrder is a ring: n transactions from head on, wrapping around.
	inOrder []decidedTxn
	head, n int
	late    recent[uint64, struct{}]
	top     uint64 // the largest transaction ever added
}

type decidedTxn struct {
	txn   uint64
	until int64
}

// at is the i-th transaction of the list, oldest first.
func (d *decidedSet) at(i int) *decidedTxn { return &d.inOrder[(d.head+i)%len(d.inOrder)] }

// add remembers txn until until, and forgets from the list what is due
// by now.
func (d *decidedSet) add(txn uint64, until, now int64) {
	for d.n > 0 && d.at(0).until <= now {
		d.head = (d.head + 1) % len(d.inOrder)
		d.n--
	}
	if txn <= d.top {
		if !d.has(txn, now) {
			d.late.put(txn, struct{}{}, until, now)
		}
		return
	}
	if d.n == len(d.inOrder) { // full: double it, oldest first
		grown := make([]decidedTxn, max(64, 2*d.n))
		for i := range d.n {
			grown[i] = *d.at(i)
		}
		d.inOrder, d.head = grown, 0
	}
	*d.at(d.n) = decidedTxn{txn: txn, until: until}
	d.n++
	d.top = txn
}

// has reports whether txn is remembered and not due by now.
func (d *decidedSet) has(txn uint64, now int64) bool {
	if txn > d.top {
		return false
	}
	i := sort.Search(d.n, func(i int) bool { return d.at(i).txn >= txn })
	if i < d.n && d.at(i).txn == txn {
		return d.at(i).until > now
	}
	_, ok := d.late.get(txn, now)
	return ok
}

// markDecided remembers that the coordinator from decided its
// transaction txn (a Commit or an abort came): a Prepare of it repeated
// on the way and arriving later is not granted again, which would leave
// the key write-locked here for a promise's life. It is forgotten after
// a request timeout: by then the coordinator has given the transaction
// up (its deadline is a request timeout after it began, before it
// decided), and a late promise to a transaction it no longer knows is
// aborted at once (abortPromise).
func (c *Core) markDecided(from string, txn uint64, now int64) {
	d := c.decided[from]
	if d == nil {
		if c.decided == nil {
			c.decided = map[string]*decidedSet{}
		}
		d = &decidedSet{}
		c.decided[from] = d
	}
	d.add(txn, now+int64(c.cfg.RequestTimeout), now)
}

// wasDecided reports whether the coordinator from's transaction txn was
// decided here within a request timeout (see markDecided).
func (c *Core) wasDecided(from string, txn uint64, now int64) bool {
	d := c.decided[from]
	return d != nil && d.has(txn, now)
}

// heardIncarnation records the incarnation of the peer from, taken from
// a message of its current life (not a Promise: one of an earlier life
// may arrive late).
func (c *Core) heardIncarnation(from string, inc uint64) {
	if inc == 0 || from == c.cfg.Self {
		return
	}
	if c.peerInc == nil {
		c.peerInc = map[string]uint64{}
	}
	c.peerInc[from] = inc
}

// promiseLife reports whether a Promise of incarnation inc from peer
// from may count for x: it is of the life x's Prepare was sent to and
// of the life last heard from. A promise of an earlier life was voided
// by the restart (the write lock went with the memory); one of a later
// life answers a Prepare repeated on the way, sent to the earlier one.
func (c *Core) promiseLife(x *txn, from string, inc uint64) bool {
	if inc == 0 || from == c.cfg.Self {
		return true
	}
	if i := slices.Index(x.masters, from); i >= 0 && x.inc != nil && x.inc[i] != 0 && x.inc[i] != inc {
		return false
	}
	if known := c.peerInc[from]; known != 0 && known != inc {
		return false
	}
	c.heardIncarnation(from, inc)
	return true
}
