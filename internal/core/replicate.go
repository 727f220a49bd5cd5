package core

import (
	"sort"
	"time"

	"github.com/protoactor-locker/locker/messages"
)

// Replicate messages: masters push what changed to their replicas, the
// same messages carry snapshot parts, and every peer applies them
// (onReplicate). How a replica catches up on pushes it missed is in
// follow.go.

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

// entryMessages turns the entries of keys into Replicate messages of at
// most MaxMessageBytes each; tombstones go as deletions. A snapshot
// (ended nil) leaves expired entries out. A push (ended: the token each
// changed key had when its change was logged) sends a lease that ended
// before the push as an entry with no lease left: the replica may hold
// the older state the change replaced, and it expires only the states it
// was sent; the sender stops vouching for the older state there, which
// goes once no master vouches for it (see onReplicate).
func (c *Core) entryMessages(keys []string, now int64, epoch uint64, ended map[string]uint64) []*messages.Replicate {
	var out []*messages.Replicate
	cur := &messages.Replicate{Epoch: epoch}
	size := 0
	for _, k := range keys {
		e := c.store.raw(k)
		var en *messages.Entry
		switch {
		case e != nil && e.deleted:
			en = &messages.Entry{Key: k, Token: e.token, Deleted: true}
			if e.deadline > now {
				// How long the receiver must keep the tombstone (rounded up):
				// as long as a stale copy of the released lease could live.
				en.LeaseMs = (e.deadline - now + int64(time.Millisecond) - 1) / int64(time.Millisecond)
			}
		case e != nil && (e.deadline-now)/int64(time.Millisecond) > 0:
			en = &messages.Entry{Key: k, Value: e.value, LeaseMs: (e.deadline - now) / int64(time.Millisecond), Token: e.token}
			if shadow, token := e.under(now); shadow > 0 {
				// The tombstone under it goes along (rounded up, as a
				// tombstone's lease): the receiver keeps it as long.
				en.ShadowMs = (shadow - now + int64(time.Millisecond) - 1) / int64(time.Millisecond)
				en.ShadowToken = token
			}
		default: // expired, or about to
			tok := ended[k]
			if e != nil {
				tok = max(tok, e.token)
			}
			if ended == nil || tok == 0 {
				continue // a snapshot leaves it out
			}
			en = &messages.Entry{Key: k, Token: tok} // no lease left: it ended here
		}
		n := EntrySize(k, en.Value)
		if size+n > c.cfg.MaxMessageBytes-overhead && len(cur.Entries) > 0 {
			out = append(out, cur)
			cur = &messages.Replicate{Epoch: epoch}
			size = 0
		}
		cur.Entries = append(cur.Entries, en)
		size += n
	}
	if len(cur.Entries) > 0 {
		out = append(out, cur)
	}
	return out
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

// copyTombstone applies a tombstone of key with token, which its sender
// keeps leaseMs more: a live state with a token no larger is released
// here, and the tombstone (made here if the key was absent) is kept as
// long, so that a stale copy of the released lease, pushed by another
// master, cannot bring the key back. vouch and seen are the sender's
// bits when the tombstone came as itself (see follow.go), 0 when it came
// under a live state (its shadow).
func (c *Core) copyTombstone(key string, token uint64, leaseMs, now int64, vouch, seen uint32) {
	c.observe(token)
	cur := c.store.raw(key)
	switch {
	case cur != nil && !cur.deleted && cur.token <= token:
		// The tombstone may be the residue of the holder's Release on
		// its sender alone (with the lease's token, or a larger one):
		// the masters that vouched for the lease may hold it still (see
		// settle).
		hid := cur.vouch // who may hold the lease still (see settle)
		c.store.tombstone(key, token)
		c.dropLock(key)
		cur.vouch, cur.seen, cur.hid, cur.vend = 0, 0, hid, 0
	case cur != nil && cur.deleted && cur.token < token && leaseMs > 0:
		// A newer tombstone: the masters vouched for the older one, and
		// what it hid is older than this one.
		cur.vouch, cur.seen, cur.hid, cur.vend = 0, 0, 0, 0
	}
	deadline := leaseEnd(now, leaseMs)
	if leaseMs > 0 && c.store.keepTombstone(key, token, deadline) {
		c.scheduleKey(timerLease, key, deadline)
	}
	if vouch != 0 {
		if e := c.store.raw(key); e != nil && e.deleted && e.token == token {
			e.vouch |= vouch
			e.seen |= seen
			e.hid &^= vouch
			// The sender's tombstone ends with the lease it sent, which
			// may be shorter than this one's (the short tombstone of a
			// repair): past it the sender no longer vouches, and tells
			// nobody (see vouchEnded).
			e.vend = max(e.vend, deadline+(deadline-now)/49+int64(time.Millisecond))
			c.scheduleVouchEnd(key, e)
		}
	}
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
		deadline := leaseEnd(now, en.GetLeaseMs())
		if en.GetDeleted() {
			c.copyTombstone(key, en.GetToken(), en.GetLeaseMs(), now, vouch, seen)
			continue
		}
		if en.GetLeaseMs() > 0 && en.GetShadowMs() > 0 && en.GetShadowToken() > 0 {
			// The tombstone the sender keeps under this state (see
			// entry.shadow) lands first, as if sent on its own: it
			// releases here a state it released there (the sender
			// missed no Release this peer saw: a larger token wins
			// each merge), and the state is then written over it.
			c.copyTombstone(key, en.GetShadowToken(), en.GetShadowMs(), now, 0, 0)
		}
		cur := c.store.raw(key)
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
		_, under := cur.under(now)
		switch {
		case cur != nil && !cur.deleted && cur.token != en.GetToken() && en.GetToken() <= under:
			// A copy of a state released here, under the live one (a
			// stale copy of a released lease): the tombstone would have
			// stopped it; it neither lands nor lends its deadline.
			continue
		case cur != nil && !cur.deleted && cur.token > en.GetToken() && master && cur.deadline > now && deadline > cur.deadline:
			// Newer state here, but the copy's lease runs longer: keep the
			// state and the later deadline (see below), so that a lease
			// never ends earlier on a master for having been merged.
			c.putLease(key, cur.value, deadline, cur.token)
			continue
		case cur != nil && cur.deleted && cur.token >= en.GetToken():
			// A tombstone hides this lease. It may be the residue of the
			// holder's Release on masters that have lost it since (a
			// restart, the short tombstone of a repair) while the others
			// hold the lease: the sender is noted, and asked again once
			// no master vouches for the tombstone (settle). The
			// tombstone's token may be the lease's own or larger (a
			// Release takes the largest token of the masters that
			// promised it, which may be the residue of the holder's own
			// Update on one of them): token order is not commit order.
			cur.hid |= vouch
			c.scheduleVouchEnd(key, cur)
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
