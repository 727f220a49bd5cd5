package core

import "fmt"

// Catching up after a restart.
//
// A peer that starts with empty memory and then learns (from another
// peer, not through a Reconfigure that syncs it) a configuration in which
// it votes must not vote before it has copied the leases of enough other
// voters: otherwise it would promise "absent" for keys it held before the
// restart, and with the voters that never had a key it could form a
// quorum that grants it twice. It copies snapshots from enough voters that
// every write quorum includes one of them: n-W+1 of the n voters, all
// other than itself. Until then it refuses promises (REASON_CATCHING_UP)
// and serves no snapshots.
//
// When W or more masters restart at once, the ones restarted cannot
// copy from each other, and no n-W+1 other voters may serve: copying
// would never end. Copying is not the only way to vote safely, though:
// the leases and promises a peer lost can harm only while they live.
// Every lease it acknowledged in its earlier life was committed at most
// a request timeout plus a promise's life (the write-lock timeout) after
// that life ended, and lasts at most MaxLease from then, if every peer
// enforces the same MaxLease; a lease extended since without this peer
// lives on W other masters, which outvote it. So catchUpWait after its
// Core was built (after the earlier life ended, on its own monotonic
// clock) a peer stops catching up and votes, copied or not.

// catchUpWait is how long after it was built a Core may vote without
// having copied leases: MaxLease, the write-lock timeout and a request
// timeout (for commits in flight), with a 49th more for clocks whose
// rates are off by up to 1 % each way: a span its own clock measures as
// d may be d(1+ε)/(1−ε) ≈ 1.0202·d on another's, and 1/49 > 0.0202.
func (c *Core) catchUpWait() int64 {
	d := int64(c.maxLease()) + int64(c.cfg.WriteLockTimeout) + int64(c.cfg.RequestTimeout)
	return d + d/49 + 1
}

// endCatchUp stops catching up once catchUpWait has passed: the peer
// votes and serves snapshots again; its copying stops.
func (c *Core) endCatchUp() {
	if !c.catchingUp {
		return
	}
	c.catchingUp = false
	for key, job := range c.syncs {
		if job.coord == "" {
			delete(c.syncs, key)
		}
	}
}

// catchUpNeed returns how many snapshots of other voters a peer that lost
// its memory needs under m, and whether that many exist.
func catchUpNeed(m *Membership, self string) (int, []string) {
	others := without(m.Voters(), []string{self})
	need := len(others) // a joint configuration: copy from every other voter
	if !m.Joint() {
		need = len(m.Masters) - m.W + 1
	}
	if need > len(others) {
		need = len(others)
	}
	return need, others
}

// startCatchUp makes this peer copy leases before it votes under m.
func (c *Core) startCatchUp(m *Membership) {
	for key, job := range c.syncs {
		if job.coord == "" {
			delete(c.syncs, key) // planned under an older configuration: only a plan for m ends the catch-up
		}
	}
	need, others := catchUpNeed(m, c.cfg.Self)
	if !m.IsMaster(c.cfg.Self) || need <= 0 || c.now() >= c.catchUpWait() {
		c.catchingUp = false // nothing to copy, or everything it lost has ended
		return
	}
	if !c.catchingUp {
		c.schedule(timer{at: c.catchUpWait(), kind: timerCatchUp})
	}
	c.catchingUp = true
	c.newSyncJob(fmt.Sprintf("catch-up/%d", m.Epoch), 0, "", m.Epoch, need, others)
}

// CatchingUp reports whether this peer is copying leases before it votes.
func (c *Core) CatchingUp() bool { return c.catchingUp }
