package core

import "github.com/protoactor-locker/locker/messages"

// A master's side of a write: it promises (onPrepare), then applies what
// its coordinator commits, repairs a copy that differs from what a quorum
// decided, or drops the promise of an aborted write (onCommit).

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
	if it.GetKind() == messages.WriteKind_WRITE_KIND_LOCK { // the lookup only for a Lock: every commit comes here
		if t, ok := c.tombstoneToken(key); ok && t >= it.GetToken() {
			// Released here under a token at least the Lock's: the Lock
			// was prepared before that Release.
			return messages.Reason_REASON_ALREADY_LOCKED
		}
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

// tombstoneToken is the token of key's tombstone here, if key's entry is
// one (a Release, its repair or its copy).
func (c *Core) tombstoneToken(key string) (uint64, bool) {
	if e := c.store.raw(key); e != nil && e.deleted {
		return e.token, true
	}
	return 0, false
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
	if t, ok := c.tombstoneToken(key); ok && it.GetKind() == messages.WriteKind_WRITE_KIND_EXTEND && t == it.GetToken() {
		// A repair needs no promise, so nothing orders it with the
		// writes after it: the holder's Release of this very lease (its
		// token) landed here first, and a late repair of its Extend
		// must not bring the released lease back
		// (TestLateExtendRepairAfterRelease). A tombstone with a larger
		// token does not stop it: it may be a failed write's residue
		// (token order is not commit order), and would keep the lease a
		// quorum committed off this master while it lasts.
		return messages.Reason_REASON_NOT_FOUND
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
