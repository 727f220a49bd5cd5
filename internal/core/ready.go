package core

import (
	"maps"
	"slices"

	"github.com/protoactor-locker/locker/messages"
)

// Readiness: whether this peer may coordinate writes and promise them.
//
// A Core starts knowing only itself (masters = [Self], epoch 0). Unless
// it was built Standalone (a single-node store on purpose, with no peers
// to learn a configuration from), that self-made configuration grants
// nothing: a member of a cluster that has not learnt a configuration
// that includes it yet (a fresh member before the cluster's first
// configuration, a newcomer before the cluster adds it, a restarted
// member before it hears from the others) would otherwise grant every
// write on its own vote, and a name or lock another member holds could
// be taken twice. So until it is ready:
//   - Submit answers every op at once with Outcome.NotReady, sending
//     nothing;
//   - a Prepare of epoch 0 is refused (REASON_NOT_MASTER): no
//     unconfigured peer votes for another.
//
// A peer is ready when it holds a configuration (epoch > 0) that names
// it, as a master or a replica, and, as a master, is not catching up
// after losing its memory (see startCatchUp). A Standalone Core is ready
// at epoch 0 as well.

// Ready reports whether this peer may coordinate writes now (see the
// comment above). Like Submit, it must be called by the Core's owner.
func (c *Core) Ready() bool {
	if c.closed {
		return false
	}
	m := c.member.Load()
	self := c.cfg.Self
	switch {
	case m.Epoch == 0:
		return c.cfg.Standalone
	case m.IsMaster(self):
		return !c.catchingUp
	}
	return contains(m.Replicas, self)
}

// NotReadyReason says why Ready is false: REASON_CATCHING_UP for a
// master copying leases, REASON_NOT_MASTER for a peer that holds no
// configuration naming it, REASON_UNSPECIFIED when it is ready. Owner
// only, like Ready.
func (c *Core) NotReadyReason() messages.Reason {
	switch {
	case c.Ready():
		return messages.Reason_REASON_UNSPECIFIED
	case c.catchingUp && c.member.Load().IsMaster(c.cfg.Self):
		return messages.Reason_REASON_CATCHING_UP
	}
	return messages.Reason_REASON_NOT_MASTER
}

// unconfigured reports whether this peer may not vote because it holds
// no configuration yet (and is not Standalone): onPrepare refuses.
func (c *Core) unconfigured() bool {
	return c.member.Load().Epoch == 0 && !c.cfg.Standalone
}

// refuseNotReady returns the outcomes of the ops of a Submit on a peer
// that is not ready: NotReady, nothing sent, nothing written.
func (c *Core) refuseNotReady(ops []Op) []Outcome {
	w, why := c.member.Load().W, c.NotReadyReason()
	outs := make([]Outcome, len(ops))
	for i := range outs {
		outs[i] = Outcome{NotReady: true, W: w, Reasons: map[string]messages.Reason{c.cfg.Self: why}}
	}
	return outs
}

// firstSetNodes is SetNodes from a peer that holds no configuration:
// it may be a new cluster's first, or a peer that lost its memory
// running a set-up script again. It asks every other peer of cluster
// for its configuration first (ConfigQuery; an answer of a newer epoch
// is adopted here as any gossip is), then:
//   - if every peer answered and none has a configuration, it sends
//     SetNodes under epoch 1: a new cluster's first configuration, in
//     which no peer copies leases before it votes;
//   - if one has a configuration, this peer adopted it (and catches up
//     if it votes in it), and SetNodes goes out under the next epoch:
//     every peer still at epoch 0 lost its memory and catches up before
//     it votes, as after any restart (see adopt);
//   - if a peer did not answer, nothing is sent: it may hold a
//     configuration and leases that a first configuration would let the
//     others grant over. Every silent peer is answered
//     REASON_UNREACHABLE.
//
// Peers that all lost their memory at once (W or more masters) look
// like a new cluster; nobody remembers otherwise. That is losing a
// quorum, as the package documentation of the shell says.
func (c *Core) firstSetNodes(handle RequestID, cluster, masters, replicas []string) {
	c.queryConfigs(cluster, func(heard map[string]uint64) {
		res := map[string]AdminResult{}
		for _, a := range SortedSet(cluster) {
			if _, ok := heard[a]; !ok && a != c.cfg.Self {
				res[a] = AdminResult{Reason: messages.Reason_REASON_UNREACHABLE,
					Message: "no answer to the configuration query: a peer with no configuration sets nodes only once every peer of the cluster answered"}
			}
		}
		if len(res) > 0 || c.closed {
			c.answerAdmin(handle, res)
			return
		}
		c.setNodes(handle, cluster, masters, replicas)
	})
}

// queryConfigs asks every peer of cluster but this one for its
// configuration and calls then with the epochs heard, once all answered
// or a request timeout passed.
func (c *Core) queryConfigs(cluster []string, then func(heard map[string]uint64)) {
	r := &request{id: c.id(), pending: map[string]bool{}, heard: map[string]uint64{}, then: then}
	others := slices.DeleteFunc(slices.Clone(cluster), func(a string) bool { return a == c.cfg.Self })
	if !c.ask(r, others, &messages.ConfigQuery{}) {
		then(r.heard)
	}
}

// heardConfig records the epoch peer from holds (any ConfigCommit it
// sent: an answer to ConfigQuery, gossip, a commit) for the
// configuration queries waiting for it.
func (c *Core) heardConfig(from string, epoch uint64) {
	for _, id := range slices.Sorted(maps.Keys(c.reqs)) {
		if r := c.reqs[id]; r != nil && r.then != nil && r.waiting(from) {
			r.answer(c, from, epoch)
		}
	}
}

// heardFrom is answer for a configuration query: msg is the epoch heard,
// nil when addr did not answer.
func (r *request) heardFrom(c *Core, addr string, msg any) {
	if e, ok := msg.(uint64); ok {
		r.heard[addr] = e
	}
	if len(r.pending) == 0 && !r.replied {
		r.replied = true
		delete(c.reqs, r.id)
		r.then(r.heard)
	}
}

// firstW is the W a peer adopts with SetNodes: its own, but for a new
// cluster's first configuration at least a majority of the masters. The
// peers' W before any configuration is the shell's WithW (1 by default),
// and the SetW that sets the cluster's W comes after SetNodes: in
// between, peers already configured (ready) would grant writes with
// quorums that miss each other. SetW may lower it afterwards. A
// Standalone Core keeps its W (it was ready before, as it is after).
func (c *Core) firstW(w int, masters []string, first bool) int {
	if first && !c.cfg.Standalone {
		return max(w, Majority(len(masters)))
	}
	return w
}
