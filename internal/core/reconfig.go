package core

import (
	"fmt"
	"maps"
	"slices"
	"sort"

	"github.com/protoactor-locker/locker/messages"
)

// Reconfiguration: how the masters change without losing a lease or
// letting two groups of peers both reach a write quorum.
//
// Every configuration has an epoch. Masters refuse promises for writes
// coordinated under another epoch, and when a peer adopts a newer
// configuration it drops the promises it gave under the older one, so a
// write prepared under epoch e can no longer commit on a peer that moved
// past e.
//
// A change from masters M (epoch e) to masters M' goes in three steps,
// each driven by one coordinator (Core.Reconfigure):
//
//  1. Move to the joint configuration J = (e+1, M', old M). A move is a
//     compare-and-set of the epoch, prepared and committed on a write
//     quorum of the configuration it leaves (here W of M): a master
//     promises at most one move away from each epoch. Under J a write
//     needs W' of M' and W of M, so it conflicts with every write
//     quorum of M (which cannot commit at epoch e any more) and of M'.
//  2. Sync: every master of M' copies the leases of at least W of M
//     (snapshots taken after they moved to J), until W' of M' have done
//     so. Every lease committed under epoch e lives on W of M, so it
//     reaches every synced master (the quorums intersect); leases
//     written under J are on W' of M' already. A copy keeps the larger
//     token, and that is the later write's (ballot.go): a write under J
//     had W of M promise it after they left e, so its ballot is above
//     every old-epoch write they promised, residue included; and each
//     synced master takes its sources' clocks as its floor, so writes
//     under (e+2, M') order after them too. After J, masters drop
//     pushes from epochs before their masters changed (the same rule as
//     for commits).
//  3. Move to (e+2, M'), prepared and committed on J's write quorum.
//     From then on a write needs only W' of M'. A Lock of a key still
//     leased needs W' promises of absence, but at least W' masters of M'
//     hold the lease and at most |M'|-W' < W' (W' a majority) do not,
//     so it is refused. Tokens stay monotonic for the same reason:
//     synced masters have observed every earlier token.
//
// Two coordinators cannot both move away from epoch e: each needs
// promises from a write quorum of the same configuration, and quorums
// intersect in a master that promised only one of them. A partition
// side without a write quorum of the current configuration cannot move
// at all. A coordinator that dies mid-way leaves the peers in J, which
// is safe; the next Reconfigure resumes from it.

// ReconfigResult is the outcome of Reconfigure.
type ReconfigResult struct {
	OK      bool
	Stopped bool
	Reason  messages.Reason
	Message string
	Epoch   uint64 // the epoch this peer is at afterwards
}

type stepKind uint8

const (
	stepMove stepKind = iota + 1
	stepSync
)

// reconf is the reconfiguration this peer coordinates.
type reconf struct {
	masters, replicas []string  // the target
	handle            RequestID // the Reconfigure call this answers
	synced            uint64    // the joint epoch whose sync completed
	attempts          int
	discovering       map[string]bool // peers asked for their configuration (first Reconfigure)
	unconfigured      map[string]bool // peers whose answer to discovery was epoch 0
	first             bool            // the move from epoch 0 makes a new cluster's first configuration (see endDiscovery)

	// the step in progress
	kind      stepKind
	id        uint64
	from      *Membership
	next      *Membership
	committed bool // move: the commit went out; now counting acks
	counted   map[string]bool
	q         *Quorum
	sync      Tally
	refusals  map[string]messages.Reason
	deadline  int64
}

func prepareMsg(rc *reconf) *messages.ConfigPrepare {
	return &messages.ConfigPrepare{Request: rc.id, FromEpoch: rc.from.Epoch, Next: toProto(rc.next)}
}

func commitMsg(rc *reconf) *messages.ConfigCommit {
	return &messages.ConfigCommit{Request: rc.id, Next: toProto(rc.next), First: rc.first && rc.from.Epoch == 0}
}

func syncMsg(rc *reconf) *messages.Sync {
	return &messages.Sync{Request: rc.id, Epoch: rc.next.Epoch, Sources: rc.next.OldMasters, Need: int32(rc.next.OldW)}
}

// maxReconfSteps bounds one Reconfigure call (resume a joint state,
// then at most two moves and a sync, with retries after stale epochs).
const maxReconfSteps = 12

// Reconfigure changes the masters and replicas of every peer the old and
// new configurations name, safely (see the comment above), with W the
// majority of the new masters. The outcome comes as an Answer of
// KindReconfig with the returned handle.
func (c *Core) Reconfigure(masters, replicas []string) RequestID {
	id := c.newRequestID()
	if c.closed {
		c.answerReconfig(id, ReconfigResult{Stopped: true, Reason: messages.Reason_REASON_UNREACHABLE, Message: "peer stopped"})
		return id
	}
	ms, rs := SortedSet(masters), SortedSet(replicas)
	if msg := CheckNodes(ms, rs, 0); msg != "" {
		c.answerReconfig(id, ReconfigResult{Reason: messages.Reason_REASON_INVALID_ARGUMENT, Message: msg, Epoch: c.member.Load().Epoch})
		return id
	}
	if c.rc != nil {
		c.answerReconfig(id, ReconfigResult{Reason: messages.Reason_REASON_WRITE_LOCKED, Message: "a reconfiguration is in progress on this peer", Epoch: c.member.Load().Epoch})
		return id
	}
	c.rc = &reconf{masters: ms, replicas: rs, handle: id}
	if c.member.Load().Epoch == 0 {
		c.discover()
	} else {
		c.advance()
	}
	c.drain()
	return id
}

// advance starts the next step of the reconfiguration, or finishes it.
func (c *Core) advance() {
	rc := c.rc
	cur := c.member.Load()
	rc.attempts++
	if rc.attempts > maxReconfSteps {
		c.finishReconf(false, messages.Reason_REASON_STALE_EPOCH, "the configuration kept changing under the reconfiguration")
		return
	}
	w := Majority(len(rc.masters))
	switch {
	case cur.Joint() && rc.synced != cur.Epoch:
		c.startSync(cur)
	case cur.Joint():
		replicas := without(cur.Replicas, cur.Masters)
		if slices.Equal(cur.Masters, rc.masters) {
			replicas = rc.replicas
		}
		c.startMove(cur, &Membership{Epoch: cur.Epoch + 1, Masters: cur.Masters, Replicas: replicas, W: cur.W})
	case cur.Epoch > 0 && slices.Equal(cur.Masters, rc.masters) && slices.Equal(cur.Replicas, rc.replicas) && cur.W == w:
		// Already there. (At epoch 0 a peer's own configuration, itself
		// alone, is none: a one-member cluster still moves to epoch 1.)
		c.finishReconf(true, messages.Reason_REASON_UNSPECIFIED, "")
	case slices.Equal(cur.Masters, rc.masters):
		c.startMove(cur, &Membership{Epoch: cur.Epoch + 1, Masters: rc.masters, Replicas: rc.replicas, W: w})
	default:
		c.startMove(cur, &Membership{
			Epoch: cur.Epoch + 1, Masters: rc.masters, W: w,
			Replicas:   without(rc.replicas, cur.Masters),
			OldMasters: cur.Masters, OldW: cur.W,
		})
	}
}

func (c *Core) finishReconf(ok bool, reason messages.Reason, msg string) {
	rc := c.rc
	c.rc = nil
	c.answerReconfig(rc.handle, ReconfigResult{OK: ok, Reason: reason, Message: msg, Epoch: c.member.Load().Epoch})
}

func (c *Core) startMove(from, next *Membership) {
	rc := c.rc
	rc.kind, rc.id, rc.from, rc.next, rc.committed = stepMove, c.id(), from, next, false
	rc.counted, rc.q, rc.refusals = map[string]bool{}, QuorumOf(from), map[string]messages.Reason{}
	now := c.now()
	rc.deadline = now + int64(c.cfg.RequestTimeout)
	c.schedule(timer{at: rc.deadline, kind: timerReconf, id: rc.id})
	c.schedule(timer{at: now + c.retryInterval(), kind: timerRetry, id: rc.id})
	prep := prepareMsg(rc)
	for _, v := range from.Voters() {
		c.send(v, prep)
	}
}

func (c *Core) startSync(j *Membership) {
	rc := c.rc
	rc.kind, rc.id, rc.from, rc.next = stepSync, c.id(), j, j
	rc.counted, rc.refusals = map[string]bool{}, map[string]messages.Reason{}
	rc.sync = Tally{W: j.W, Masters: len(j.Masters)}
	now := c.now()
	rc.deadline = now + c.syncTimeout()
	c.schedule(timer{at: rc.deadline, kind: timerReconf, id: rc.id})
	c.schedule(timer{at: now + c.retryInterval(), kind: timerRetry, id: rc.id})
	msg := syncMsg(rc)
	for _, m := range j.Masters {
		c.send(m, msg)
	}
}

func (c *Core) onConfigPromise(from string, p *messages.ConfigPromise) {
	rc := c.rc
	if rc == nil || rc.kind != stepMove || rc.committed || p.GetRequest() != rc.id || rc.counted[from] || !rc.from.IsMaster(from) {
		return
	}
	rc.counted[from] = true
	if cur, err := fromProto(p.GetCurrent()); err == "" && cur.Epoch > c.member.Load().Epoch {
		c.adopt(cur, false) // someone moved on: learn it
	}
	rc.q.Count(from, p.GetGranted())
	if !p.GetGranted() {
		rc.refusals[from] = p.GetReason()
	}
	c.moveProgress()
}

// moveProgress commits a move once promised, or gives up when it cannot be.
func (c *Core) moveProgress() {
	rc := c.rc
	if !rc.committed {
		switch {
		case rc.q.Reached():
			rc.committed = true
			rc.counted, rc.q = map[string]bool{}, QuorumOf(rc.from)
			commit := commitMsg(rc)
			for _, a := range SortedSet(append(rc.from.Everyone(), rc.next.Everyone()...)) {
				c.send(a, commit)
			}
		case rc.q.Impossible():
			c.moveFailed()
		}
		return
	}
	if rc.q.Reached() {
		c.advance()
	} else if rc.q.Impossible() {
		c.moveFailed()
	}
}

func (c *Core) moveFailed() {
	rc := c.rc
	for _, r := range rc.refusals {
		if r == messages.Reason_REASON_STALE_EPOCH && c.member.Load().Epoch > rc.from.Epoch {
			c.advance() // we learnt a newer configuration: plan again from it
			return
		}
	}
	c.finishReconf(false, dominant(rc.refusals), describe(rc.refusals))
}

func (c *Core) onReconfAck(from string, a *messages.AdminReply) {
	rc := c.rc
	if rc == nil || a.GetRequest() != rc.id || rc.counted[from] {
		return
	}
	ok := a.GetReason() == messages.Reason_REASON_UNSPECIFIED
	switch {
	case rc.kind == stepMove && rc.committed && rc.from.IsMaster(from):
		rc.counted[from] = true
		rc.q.Count(from, ok)
		if !ok {
			rc.refusals[from] = a.GetReason()
		}
		c.moveProgress()
	case rc.kind == stepSync && contains(rc.next.Masters, from):
		if a.GetReason() == messages.Reason_REASON_STALE_EPOCH {
			// Behind: it missed the move into the joint configuration.
			// It asks this peer for it (ConfigQuery); the Sync goes again
			// at the next retry.
			rc.refusals[from] = a.GetReason()
			return
		}
		rc.counted[from] = true
		if ok {
			delete(rc.refusals, from)
			rc.sync.Yes++
		} else {
			rc.sync.No++
			rc.refusals[from] = a.GetReason()
		}
		c.syncProgress()
	}
}

func (c *Core) syncProgress() {
	rc := c.rc
	switch {
	case rc.sync.Reached():
		rc.synced = rc.next.Epoch
		c.advance()
	case rc.sync.Impossible():
		c.finishReconf(false, dominant(rc.refusals), "new masters could not copy the leases: "+describe(rc.refusals))
	}
}

// reconfTimer handles the deadline of the reconfiguration step id.
func (c *Core) reconfTimer(id uint64) {
	rc := c.rc
	if rc != nil && rc.id == id && rc.discovering != nil {
		c.endDiscovery() // the silent ones did not answer: decide on the answers heard
	} else if rc != nil && rc.id == id {
		for _, v := range c.stepVoters() {
			if !rc.counted[v] {
				rc.counted[v] = true
				rc.refusals[v] = messages.Reason_REASON_UNREACHABLE
				if rc.kind == stepSync {
					rc.sync.No++
				} else {
					rc.q.Count(v, false)
				}
			}
		}
		if rc.kind == stepSync {
			c.syncProgress()
		} else {
			c.moveProgress()
		}
	}
	for _, key := range slices.Sorted(maps.Keys(c.syncs)) { // replayable order of replies and ids
		job := c.syncs[key]
		if job == nil || job.deadline > c.now() {
			continue
		}
		c.failSync(key, job, fmt.Sprintf("copied %d of the %d snapshots needed", len(job.done), job.need))
	}
}

func (c *Core) stepVoters() []string {
	rc := c.rc
	if rc.kind == stepSync {
		return rc.next.Masters
	}
	return rc.from.Voters()
}

// reconfUnreachable counts addr as refusing the current step.
func (c *Core) reconfUnreachable(addr string) {
	rc := c.rc
	if rc != nil && rc.discovering != nil {
		c.discovered(addr)
		return
	}
	if rc == nil || rc.counted[addr] || !contains(c.stepVoters(), addr) {
		return
	}
	rc.counted[addr] = true
	rc.refusals[addr] = messages.Reason_REASON_UNREACHABLE
	if rc.kind == stepSync {
		rc.sync.No++
		c.syncProgress()
		return
	}
	rc.q.Count(addr, false)
	c.moveProgress()
}

// dominant is the most frequent refusal reason (the smallest on ties).
func dominant(refusals map[string]messages.Reason) messages.Reason {
	counts := map[messages.Reason]int{}
	best := messages.Reason_REASON_UNREACHABLE
	for _, r := range refusals {
		counts[r]++
	}
	for r, n := range counts {
		if n > counts[best] || (n == counts[best] && r < best) {
			best = r
		}
	}
	return best
}

func describe(refusals map[string]messages.Reason) string {
	addrs := make([]string, 0, len(refusals))
	for a := range refusals {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	s := ""
	for i, a := range addrs {
		if i > 0 {
			s += ", "
		}
		s += a + " " + refusals[a].String()
	}
	return s
}

// --- every peer ---

func (c *Core) onConfigPrepare(from string, p *messages.ConfigPrepare) {
	cur := c.member.Load()
	now := c.now()
	resp := &messages.ConfigPromise{Request: p.GetRequest(), Current: toProto(cur)}
	next, msg := fromProto(p.GetNext())
	switch {
	case msg != "" || next.Epoch != p.GetFromEpoch()+1:
		resp.Reason = messages.Reason_REASON_INVALID_ARGUMENT
	case p.GetFromEpoch() != cur.Epoch:
		resp.Reason = messages.Reason_REASON_STALE_EPOCH
	case c.cfgPromise.deadline > now && (c.cfgPromise.from != from || c.cfgPromise.txn != p.GetRequest()) && c.cfgPromiseEpoch == cur.Epoch:
		resp.Reason = messages.Reason_REASON_WRITE_LOCKED
	default:
		resp.Granted = true
		c.cfgPromise = writeLock{from: from, txn: p.GetRequest(), deadline: now + int64(c.cfg.WriteLockTimeout)}
		c.cfgPromiseEpoch = cur.Epoch
	}
	c.send(from, resp)
}

func (c *Core) onConfigCommit(from string, cm *messages.ConfigCommit) {
	defer c.heardConfig(from, cm.GetNext().GetEpoch()) // after any adopt below
	if rc := c.rc; rc != nil && rc.discovering[from] && cm.GetNext().GetEpoch() == 0 {
		rc.unconfigured[from] = true
	}
	defer c.discovered(from)
	next, msg := fromProto(cm.GetNext())
	reply := &messages.AdminReply{Request: cm.GetRequest()}
	if msg != "" {
		reply.Reason, reply.Message = messages.Reason_REASON_INVALID_ARGUMENT, msg
	} else if cur := c.member.Load(); next.Epoch > cur.Epoch {
		// Only a commit its coordinator marked first (see endDiscovery)
		// makes a new cluster's first configuration: being at epoch 0
		// proves nothing, every restarted peer is.
		c.adopt(next, cm.GetFirst() && cur.Epoch == 0 && next.Epoch == 1)
	} else if next.Epoch < cur.Epoch && cm.GetIncarnation() != 0 {
		// Gossip of an older configuration: its sender missed a commit
		// (a master removed by a change whose last commit it lost is
		// named by no newer configuration, so nobody else tells it).
		c.send(from, &messages.ConfigCommit{Next: toProto(cur)})
	}
	if cm.GetRequest() != 0 {
		reply.Configuration = toProto(c.member.Load())
		c.send(from, reply)
	}
}

func (c *Core) onConfigQuery(from string) {
	c.send(from, &messages.ConfigCommit{Next: toProto(c.member.Load())})
}

// adopt makes next this peer's configuration. Promises given under the
// older epoch are dropped: their writes can no longer commit here.
//
// A fresh Core (see Core.fresh) that adopts a configuration in which
// it votes copies leases before it votes (startCatchUp), whichever way
// it learnt it (gossip, a Reconfigure's commit, an answer, SetNodes),
// except:
//   - first: next is the first configuration of a new cluster, which no
//     peer held a lease under: a Reconfigure's move from epoch 0 whose
//     commit its coordinator marked first (see endDiscovery), or
//     SetNodes from epoch 0 to epoch 1 (SetNodes is unsafe: a restarted
//     peer that runs it again counts as a new cluster too);
//   - next is a joint configuration that adds this peer as a new master
//     (not one of its old masters): the change's Sync copies the old
//     masters' leases to it, and until the change completes every write
//     also needs W of the old masters, which all kept their memory. The
//     Core stays fresh until a Sync of its current epoch completes on
//     it: the joint configuration may be stale, gossiped by a removed
//     master that missed the change's last commit, after this peer
//     synced in its earlier life and the cluster moved on.
//
// A restarted old master (in next's old masters, or in next's masters
// when they do not change) gets no such Sync of its own making: it
// catches up. A Sync of the change that completes on it ends that
// catch-up early (see syncCheck).
func (c *Core) adopt(next *Membership, first bool) {
	cur := c.member.Load()
	c.member.Store(next)
	// A peer still catching up under an older configuration plans again
	// under next, as if fresh: the configuration it first heard may be
	// stale (gossip from a peer cut off through changes), and its voters,
	// the sources of that catch-up, need not hold what next's quorums
	// committed, which this peer may have acknowledged before it lost
	// its memory.
	replan := c.catchingUp && next.Epoch > cur.Epoch
	if replan && !next.IsMaster(c.cfg.Self) {
		// Not a voter under next: the plan made under the older one must
		// not end the catch-up (its sources, past it, would be counted:
		// this peer is no master to refuse them), or a later configuration
		// that makes it a master again would find it neither fresh nor
		// catching up, and it would vote with nothing copied. It is fresh
		// again: that configuration decides.
		for key, job := range c.syncs {
			if job.coord == "" {
				delete(c.syncs, key)
			}
		}
		c.catchingUp, c.fresh = false, true
	}
	if self := c.cfg.Self; (c.fresh || replan) && next.IsMaster(self) {
		switch added := next.Joint() && contains(next.Masters, self) && !contains(next.OldMasters, self); {
		case first:
			c.fresh = false
		case added:
			// Still fresh: next may be stale (gossip from a master that
			// missed the change's last commit). A Sync of the current
			// epoch completed here ends freshness (syncCheck); any other
			// configuration adopted before that starts a catch-up. (A
			// peer catching up becomes fresh again: voting under next
			// is safe without a copy, but not under the configuration
			// after it.)
			c.fresh = true
		default:
			c.fresh = false
			defer c.startCatchUp(next)
		}
	}
	// A change of masters (into a joint configuration, or SetNodes) drops
	// the promises of the older epoch: their writes must not commit after
	// the leases were copied. Leaving a joint configuration for its new
	// masters alone, or changing only replicas, keeps them: those writes
	// already need a quorum of the masters that stay. A peer that skipped
	// an epoch cannot tell whether the masters changed in between (away
	// and back: its masters then look the same), so it counts a skip as a
	// change.
	if !slices.Equal(next.Masters, cur.Masters) || next.Epoch > cur.Epoch+1 {
		c.mastersSince = next.Epoch
		for key := range c.locks {
			c.dropLock(key)
		}
	}
	if !contains(next.Replicas, c.cfg.Self) {
		c.stopFollowing() // no longer a replica (promoted, or removed)
	}
	c.retryStale()
}
