package core

import (
	"fmt"

	"github.com/protoactor-locker/locker/messages"
)

// Spreading configurations: voters repeat their configuration to every
// peer it names (gossip), and a peer never configured asks its peers for
// theirs before its first Reconfigure plans (discovery).

// gossipInterval is how often voters repeat their configuration to every
// peer it names, so that a peer that missed a change (it was down, or
// its Locker was not started yet) learns it.
func (c *Core) gossipInterval() int64 { return 10 * int64(c.cfg.ReplicationInterval) }

// gossip sends this peer's configuration to every other peer it names,
// if this peer votes in it.
func (c *Core) gossip() {
	m := c.member.Load()
	if m.Epoch == 0 || !m.IsMaster(c.cfg.Self) {
		return
	}
	msg := &messages.ConfigCommit{Next: toProto(m), Incarnation: c.incarnation, Sequence: c.replicaSeq()}
	for _, a := range m.Everyone() {
		if a != c.cfg.Self {
			c.send(a, msg)
		}
	}
}

// discover asks the peers of a first Reconfigure (this peer was never
// configured) for their configurations, so that a peer that joins a
// configured cluster plans from the cluster's configuration instead of
// starting a lineage of its own.
func (c *Core) discover() {
	rc := c.rc
	rc.discovering, rc.unconfigured = map[string]bool{}, map[string]bool{}
	for _, a := range SortedSet(append(append([]string{}, rc.masters...), rc.replicas...)) {
		if a != c.cfg.Self {
			rc.discovering[a] = true
			c.send(a, &messages.ConfigQuery{})
		}
	}
	if len(rc.discovering) == 0 {
		c.endDiscovery()
		return
	}
	rc.id = c.id()
	rc.kind = 0
	rc.deadline = c.now() + int64(c.cfg.RequestTimeout)
	c.schedule(timer{at: rc.deadline, kind: timerReconf, id: rc.id})
}

// discovered records a configuration a peer sent back to discover.
func (c *Core) discovered(from string) {
	rc := c.rc
	if rc == nil || rc.discovering == nil || !rc.discovering[from] {
		return
	}
	delete(rc.discovering, from)
	if len(rc.discovering) == 0 || c.member.Load().Epoch > 0 {
		c.endDiscovery()
	}
}

// endDiscovery ends the discovery of a first Reconfigure: it plans from
// the configuration learnt, if any. If this peer is still at epoch 0,
// it moves from epoch 0 on its own vote, and marks the move first (no
// peer need copy leases before voting under it), only if a write quorum
// of the new masters (itself included) answered epoch 0: every
// restarted peer is at epoch 0 too, but if W of the new masters are,
// no lease written by a quorum of them lives on. Otherwise it fails:
// the masters not heard may hold a configuration (and leases) this
// peer must not start over from.
func (c *Core) endDiscovery() {
	rc := c.rc
	unconfigured := rc.unconfigured
	rc.discovering, rc.unconfigured = nil, nil
	if c.member.Load().Epoch == 0 {
		n, w := 0, Majority(len(rc.masters))
		for _, m := range rc.masters {
			if m == c.cfg.Self || unconfigured[m] {
				n++
			}
		}
		if n < w {
			c.finishReconf(false, messages.Reason_REASON_UNREACHABLE, fmt.Sprintf(
				"this peer has no configuration, and only %d of the %d new masters needed answered that they have none", n, w))
			return
		}
		rc.first = true
	}
	c.advance()
}
