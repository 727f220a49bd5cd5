package core

import (
	"maps"
	"math/bits"
	"slices"
	"sort"
	"time"

	"github.com/protoactor-locker/locker/messages"
)

// Replicas catching up (anti-entropy).
//
// Masters push their changes to replicas once, unacknowledged (push). A
// replica cut off during a push would keep the stale value, or a key
// released meanwhile, until the key changes again or its lease runs out.
// So every master numbers its pushes: each Replicate it sends to replicas
// carries its incarnation (drawn when its Core was built) and a sequence,
// 1, 2, 3, ... without gaps within the incarnation. Its periodic
// configuration gossip (a ConfigCommit every gossip interval) carries the
// sequence of the last push it sent. A change a master makes without a
// push (leases copied from other masters, changes made while it had no
// replicas) takes a sequence number of its own, sent to nobody: replicas
// see it as a gap.
//
// A replica tracks, per master it follows, the last sequence it heard of
// and the sequences below it it has not received. A sequence still
// missing a retry interval after it was noticed (messages between a pair
// may overtake each other: the one missing may be on its way), a master
// heard from for the first time after it pushed, or a master restarted
// (a new incarnation) makes the replica ask that master for a snapshot,
// one at a time, asked again when it stays unanswered for a retry
// interval or arrives incomplete (complete: every part of one snapshot,
// from that master; see snapshotParts). A completed snapshot taken at
// sequence P settles every sequence up to P; a push of a sequence the
// replica already has or has settled is a repeat and is skipped whole.
//
// A snapshot carries the master's leases and its tombstones, but a
// master keeps a tombstone only for the write-lock timeout: a key
// released during a long partition is simply absent. Absent from one
// master does not mean released, though: the master may have missed the
// write that a quorum of others committed. So a replica remembers, for
// each lease it holds, which masters vouched for it (pushed or
// snapshotted it with its current token: a bit per master in the entry).
// When a snapshot from master M completes, M stops vouching for every
// lease it did not confirm during the snapshot (in a part, or in a push
// that arrived meanwhile).
//
// A lease is dropped (waking its WaitForRelease callers, and told to
// OnChange as Released) only when no master of the current configuration
// vouches for it and the replica knows what every one of them holds
// (known, below): each has completed a snapshot since it last numbered
// its state anew, or was followed from its first push, and no push of it
// is missing since. While the word of one voter is unknown (new masters
// whose snapshots have not arrived yet after a change of masters, a
// master that does not number its pushes, a gap) nothing is dropped:
// the lease stays until its deadline or until that voter is known. A
// lease dropped while some master still holds it (a push of it in
// flight) comes back with that push.
//
// A tombstone carries vouch bits too: the masters that pushed or
// snapshotted it with its token. A tombstone may be the holder's Release
// of a lease, which may have reached a minority of masters (an unknown
// outcome) and be lost there since (a restart, the short tombstone a
// repair leaves on a master that had no entry) while the others hold the
// lease, and push it or snapshot it: hidden by the tombstone, which wins
// a tie of tokens and a larger token wins outright, it never landed. Its
// token is the lease's own, or larger: a Release takes the largest token
// of the masters that promised it, which may be the residue of the
// holder's own Update on one of them (token order is not commit order).
// So a tombstone also remembers which masters sent a lease it replaced
// or hid (hid), and when no master vouches for it any more while every
// voter is known and one of those may hold that lease, it goes and they
// are asked for a snapshot again. A master's tombstone ends without a
// push (the short one a repair leaves on a master that had no entry):
// the replica keeps when the tombstones its vouchers announced end
// (vend), and past that they stop vouching, as if they had said so. The
// replica only follows what the masters hold: a tombstone some master
// holds stays.
//
// Only a replica drops leases this way, and only what it learnt as a
// replica counts: a peer that stops being a replica forgets its follows,
// vouch bits and the snapshots it asked for (their late answers are
// ignored), and a voter never drops a lease by this rule.
//
// None of this touches the masters' state or what they promise: a
// replica's table serves only its local reads and waits.

// maxMissing bounds the sequences a replica lists as missing from one
// master; a larger gap makes it ask for a snapshot without listing them.
const maxMissing = 256

// follow is what a replica knows of one master's pushes.
type follow struct {
	inc     uint64           // the master's incarnation
	last    uint64           // the highest sequence heard of (pushed, gossiped or settled by a snapshot)
	missing map[uint64]int64 // sequences up to last not received -> when noticed
	behind  bool             // a snapshot is due without a listed gap (a big gap, a restart, a refusal)
	slot    int              // the master's vouch bit, -1 when it has none
	snap    uint64           // the snapshot request in flight, 0 when none
	heard   int64            // when the snapshot in flight was asked or last sent a part
	parts   snapshotParts    // parts of the snapshot in flight
	seen    bool             // some entry carries this master's seen bit
	wake    int64            // when the pending check timer comes due, 0 when none
	// known: the master's vouch bits say what it holds, as of the last
	// push received: a snapshot from it completed in this incarnation,
	// or it was followed from its first push (see synced).
	known bool
}

// synced reports whether f's vouch bits tell what its master holds: it
// is known and no push of it is missing.
func (f *follow) synced() bool {
	return f.known && !f.behind && len(f.missing) == 0 && f.slot >= 0
}

func (f *follow) bit() uint32 {
	if f.slot < 0 {
		return 0
	}
	return 1 << f.slot
}

// tracks reports whether this peer follows from's pushes: it is a
// replica and from a master in its configuration.
func (c *Core) tracks(from string) bool {
	m := c.member.Load()
	return contains(m.Replicas, c.cfg.Self) && m.IsMaster(from)
}

// follower returns the follow of from for a message of incarnation inc,
// nil when this peer does not track from (or inc is 0).
//
// A message of another incarnation than the one followed means the
// master restarted: its sequence starts again, and what it holds now
// (copied from the others) may differ from what it pushed before, so
// the replica starts over and asks for a snapshot. A late message of the
// earlier life looks the same (incarnations are not ordered: a clock may
// step back across a restart); it costs a snapshot more, and the next
// message of the current life switches back.
func (c *Core) follower(from string, inc uint64, now int64) *follow {
	if inc == 0 || !c.tracks(from) {
		return nil
	}
	f := c.follows[from]
	switch {
	case f == nil:
		if c.follows == nil {
			c.follows = map[string]*follow{}
		}
		f = &follow{inc: inc, missing: map[uint64]int64{}, slot: c.slotFor(from)}
		c.follows[from] = f
	case f.inc != inc:
		f.inc, f.last, f.missing, f.behind, f.known = inc, 0, map[uint64]int64{}, true, false
		f.snap, f.parts = 0, nil
		c.followWake(from, f, now+c.retryInterval())
	}
	return f
}

// heardSeq records that from's sequence seq was pushed (push) or that
// from has pushed up to seq (gossip), and reports whether a push is new:
// neither received nor settled by a snapshot before.
func (c *Core) heardSeq(from string, f *follow, seq uint64, push bool, now int64) bool {
	if f.last == 0 && !f.known && !f.behind && len(f.missing) == 0 && ((push && seq == 1) || (!push && seq == 0)) {
		f.known = true // followed from its first change: nothing it holds was missed
	}
	if seq > f.last {
		first := f.last + 1
		end := seq // the last sequence now missing
		if push {
			end = seq - 1
		}
		switch {
		case first > end:
		case end-first >= maxMissing || len(f.missing) >= maxMissing:
			f.behind = true
		default:
			for q := first; q <= end; q++ {
				f.missing[q] = now
			}
		}
		f.last = seq
		if f.behind || len(f.missing) > 0 {
			c.followWake(from, f, now+c.retryInterval())
		}
		return true
	}
	if !push {
		return true
	}
	if _, ok := f.missing[seq]; ok {
		delete(f.missing, seq) // overtaken by a later one, arrived now
		return true
	}
	return false
}

// followWake makes sure from's check runs at or before at.
func (c *Core) followWake(from string, f *follow, at int64) {
	if f.wake != 0 && f.wake <= at {
		return
	}
	f.wake = at
	c.schedule(timer{at: at, kind: timerFollow, key: from})
}

// followTimer runs the check of the follow t names, if t is its pending
// timer.
func (c *Core) followTimer(t timer, now int64) {
	f := c.follows[t.key]
	if f == nil || f.wake != t.at {
		return
	}
	f.wake = 0
	if !c.tracks(t.key) {
		delete(c.follows, t.key) // no longer a master, or this peer no longer a replica
		return
	}
	wait := c.retryInterval()
	if f.snap != 0 {
		if now-f.heard >= wait {
			c.askFollowSnapshot(t.key, f, now) // the request, a part or the end was lost
		}
		c.followWake(t.key, f, f.heard+wait)
		return
	}
	due, oldest := f.behind, int64(-1)
	for _, at := range f.missing {
		if at+wait <= now {
			due = true
		}
		if oldest < 0 || at < oldest {
			oldest = at
		}
	}
	switch {
	case due:
		c.askFollowSnapshot(t.key, f, now)
		c.followWake(t.key, f, now+wait)
	case oldest >= 0:
		c.followWake(t.key, f, oldest+wait)
	}
}

// askFollowSnapshot asks from for a snapshot, replacing any in flight.
func (c *Core) askFollowSnapshot(from string, f *follow, now int64) {
	if f.seen {
		c.clearSeen(f.bit())
		f.seen = false
	}
	f.snap, f.heard, f.parts = c.id(), now, snapshotParts{}
	c.send(from, &messages.SnapshotRequest{Request: f.snap})
}

// followPart records a part of the snapshot in flight from from, and
// returns its follow (nil when r is no part of it).
func (c *Core) followPart(from string, r *messages.Replicate) *follow {
	if !c.tracks(from) {
		return nil // asked as a replica, answered after it stopped being one (or from stopped being a master)
	}
	f := c.follows[from]
	if f == nil || f.snap == 0 || f.snap != r.GetSnapshot() {
		return nil
	}
	f.parts.add(r)
	f.heard = c.now()
	return f
}

// followDone handles the end of a snapshot from from, and reports
// whether it was one this peer asked for as a replica.
func (c *Core) followDone(from string, d *messages.SnapshotDone) bool {
	if !c.tracks(from) {
		return false
	}
	f := c.follows[from]
	if f == nil || f.snap == 0 || f.snap != d.GetRequest() {
		return false
	}
	now := c.now()
	whole := f.parts.complete(d)
	f.snap, f.parts, f.heard = 0, nil, now
	switch {
	case d.GetReason() != messages.Reason_REASON_UNSPECIFIED || d.GetIncarnation() != f.inc:
		// Not ready (catching up after a restart), or restarted since:
		// ask again after a retry interval.
		f.behind = true
		c.followWake(from, f, now+c.retryInterval())
	case !whole:
		c.askFollowSnapshot(from, f, now) // a part was lost on the way: a whole new snapshot
		c.followWake(from, f, now+c.retryInterval())
	default:
		p := d.GetSequence()
		for q := range f.missing {
			if q <= p {
				delete(f.missing, q)
			}
		}
		f.last = max(f.last, p)
		f.behind = false
		f.known = true
		c.settle(f)
		if len(f.missing) > 0 {
			c.followWake(from, f, now+c.retryInterval())
		}
	}
	return true
}

// settle ends a completed snapshot from f's master: the master stops
// vouching for the leases and tombstones it did not confirm, the leases
// no master of the configuration vouches for any more are dropped, and
// so are the tombstones no master vouches for any more that hide the
// lease of their own token from a master that sent it.
//
// Only on a replica: a voter never drops a lease by this rule (its
// leases came from commits and Syncs, which carry no vouch bits).
func (c *Core) settle(f *follow) {
	b := f.bit()
	if b == 0 || c.member.Load().IsMaster(c.cfg.Self) {
		return
	}
	voters := c.voterBits()
	known := c.votersKnown()
	now := c.now()
	var drop, forget []string
	var ask uint32 // the masters to ask again for what a forgotten tombstone hid
	// Without mu: the peer is the store's only writer, and vouch, seen
	// and hid are its own.
	for k, e := range c.store.entries {
		if e.deleted {
			// A tombstone no master vouches for any more, while one sent
			// the lease of its very token (the residue of the holder's
			// Release on a minority, lost since by the masters that had
			// it), goes; the masters that sent the lease are asked again,
			// and their snapshots land on the absent key.
			if e.seen&b == 0 {
				e.vouch &^= b
			}
			e.seen &^= b
			if e.forgettable(voters, known, now) {
				forget = append(forget, k)
				ask |= e.hid & voters
			}
			continue
		}
		if e.seen&b == 0 {
			e.vouch &^= b
			if known && e.vouch&voters == 0 && e.deadline > now {
				drop = append(drop, k)
			}
		}
		e.seen &^= b
	}
	f.seen = false
	sort.Strings(drop) // wake and notify in a replayable order
	for _, k := range drop {
		c.store.drop(k)
	}
	for _, k := range forget {
		c.store.forget(k)
	}
	if len(drop) > 0 {
		// A dropped lease may have hidden what the masters hold: a state
		// with a smaller token (a master's Update that never committed,
		// pushed here, then lost in that master's restart) was skipped as
		// older when the snapshot arrived. Ask again: the key is absent
		// now, so the next snapshot lands.
		ask |= b
	}
	c.askAgain(ask, now)
}

// askAgain makes the masters of the vouch bits ask ask for a snapshot.
func (c *Core) askAgain(ask uint32, now int64) {
	if ask == 0 {
		return
	}
	for _, addr := range slices.Sorted(maps.Keys(c.follows)) {
		if g := c.follows[addr]; g.bit()&ask != 0 {
			g.behind = true
			c.followWake(addr, g, now)
		}
	}
}

// scheduleVouchEnd makes sure the tombstone e of key is looked at when
// its vouchers' tombstones end, if it lasts longer here.
func (c *Core) scheduleVouchEnd(key string, e *entry) {
	if e.deleted && e.vend != 0 && e.vend < e.deadline {
		c.scheduleKey(timerLease, key, e.vend)
	}
}

// expireKey expires key if its deadline is due at now. On a replica, a
// tombstone that ends having skipped the lease of its very token (hid)
// may have hidden a lease that outlives it: a Release's residue, the
// short tombstone of a repair, arrived before the lease's pushes. Those
// masters pushed it once; they are asked again, and their snapshots land
// on the absent key. Then see vouchEnded.
func (c *Core) expireKey(key string, now int64) {
	var ask uint32
	if e := c.store.raw(key); e != nil && e.deleted && e.deadline <= now {
		ask = e.hid &^ e.vouch // one that sent the tombstone too held it, last or first
	}
	c.store.expire(key, now)
	if ask != 0 && c.store.raw(key) == nil && !c.member.Load().IsMaster(c.cfg.Self) {
		c.askAgain(ask&c.voterBits(), now)
	}
	c.vouchEnded(key, now)
}

// vouchEnded handles a tombstone of key whose vouchers' tombstones have
// all ended (vend, at now): a master's tombstone ends without a push
// or a gap, so a replica whose tombstone lasts longer (its own lease's
// deadline, which a repair's short tombstone replaced) would otherwise
// count them as vouching until a snapshot it has no reason to ask for.
// They stop vouching, and the tombstone goes as in settle: when every
// voter is known and one sent the lease of its very token. A voucher
// that kept its tombstone longer (a later Release, a copy) told since:
// a push, or a gap.
func (c *Core) vouchEnded(key string, now int64) {
	e := c.store.raw(key)
	if e == nil || !e.deleted || e.vend == 0 || e.vend > now {
		return
	}
	e.vouch, e.seen, e.vend = 0, 0, 0
	if c.member.Load().IsMaster(c.cfg.Self) {
		return
	}
	if voters := c.voterBits(); e.forgettable(voters, c.votersKnown(), now) {
		c.store.forget(key)
		c.askAgain(e.hid&voters, now)
	}
}

// forgettable reports whether a replica's tombstone e goes (see settle):
// no voter vouches for it any more, every voter's word is known, it has
// not ended, and a voter sent a lease it replaced or hid.
func (e *entry) forgettable(voters uint32, known bool, now int64) bool {
	return known && e.deleted && e.vouch&voters == 0 && e.hid&voters != 0 && e.deadline > now
}

// stopFollowing forgets what this peer knew as a replica when it stops
// being one: its follows (snapshots in flight included, whose answers
// are then ignored), the masters' vouch bits and every entry's vouch and
// seen bits. A peer that becomes a replica again starts over.
func (c *Core) stopFollowing() {
	if c.follows == nil && c.slots == nil {
		return
	}
	c.follows, c.slots = nil, nil
	for _, e := range c.store.entries {
		e.vouch, e.seen, e.hid, e.vend = 0, 0, 0, 0
	}
}

// clearSeen clears the seen bits b of every entry.
func (c *Core) clearSeen(b uint32) {
	for _, e := range c.store.entries {
		e.seen &^= b
	}
}

// voterBits are the vouch bits of the masters of the configuration.
func (c *Core) voterBits() uint32 {
	var b uint32
	for _, v := range c.member.Load().Voters() {
		if s, ok := c.slots[v]; ok {
			b |= 1 << s
		}
	}
	return b
}

// votersKnown reports whether this replica knows what every voter of
// its configuration holds (follow.synced): only then may it conclude
// from the vouch bits that none holds a lease.
func (c *Core) votersKnown() bool {
	for _, v := range c.member.Load().Voters() {
		if f := c.follows[v]; f == nil || !f.synced() || !c.tracks(v) {
			return false
		}
	}
	return true
}

// slotFor returns the vouch bit index of master addr, assigning one if
// it has none: a free one, or one of a peer that is no master any more
// (whose bits are cleared from every entry first, and whose follow is
// forgotten). -1 when all 32 are taken by masters.
func (c *Core) slotFor(addr string) int {
	if s, ok := c.slots[addr]; ok {
		return s
	}
	if c.slots == nil {
		c.slots = map[string]int{}
	}
	var used uint32
	for _, s := range c.slots {
		used |= 1 << s
	}
	if used == ^uint32(0) {
		m := c.member.Load()
		var gone uint32
		for _, a := range slices.Sorted(maps.Keys(c.slots)) {
			if !m.IsMaster(a) {
				gone |= 1 << c.slots[a]
				delete(c.slots, a)
				// Its follow goes too (it would go at its next check): a
				// master again, it starts over with a slot of its own,
				// not this one, which another master is given.
				delete(c.follows, a)
			}
		}
		if gone == 0 {
			return -1
		}
		for _, e := range c.store.entries {
			e.vouch &^= gone
			e.seen &^= gone
			e.hid &^= gone
		}
		used &^= gone
	}
	s := bits.TrailingZeros32(^used)
	c.slots[addr] = s
	return s
}

// replicaSeq is the sequence a master announces: the last push it sent,
// after taking a number for changes it made without a push.
func (c *Core) replicaSeq() uint64 {
	if c.replLost {
		c.replSeq++
		c.replLost = false
	}
	return c.replSeq
}

// heardGossip records the sequence a master's gossip announces.
func (c *Core) heardGossip(from string, cm *messages.ConfigCommit) {
	now := c.now()
	c.heardIncarnation(from, cm.GetIncarnation())
	if f := c.follower(from, cm.GetIncarnation(), now); f != nil {
		c.heardSeq(from, f, cm.GetSequence(), false, now)
	}
}

// incarnation draws a Core's incarnation from its seed (random in
// production) and its start time, so that a restarted peer differs from
// its earlier life; never 0 (0 marks a sender that does not number its
// pushes).
func incarnation(seed uint64, start time.Time) uint64 {
	z := seed ^ uint64(start.UnixNano()) ^ 0x9e3779b97f4a7c15 // splitmix64
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	if z == 0 {
		z = 1
	}
	return z
}
