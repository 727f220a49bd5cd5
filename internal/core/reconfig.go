package core

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	"google.golang.org/protobuf/proto"

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

// syncJob is a Sync this peer carries out as a new master (or a
// catch-up after a restart).
//
// Loss: a snapshot counts only when every part of it arrived from the
// source asked (see snapshotParts): parts 1 to the count its SnapshotDone
// announces, all of the one snapshot (nonce) it ends, each counted once
// however often it arrives. One part lost makes it incomplete, and the
// source is asked again for a whole new snapshot. A request repeated on
// the way is answered with two snapshots, whose parts never mix. A
// source that has sent nothing for a retry interval (the request, a part
// or the SnapshotDone lost) is asked again too, until the job's deadline.
// Any snapshot the source takes after it moved to the job's epoch holds
// every lease it had under the epoch before, so asking again loses
// nothing.
type syncJob struct {
	request  uint64
	coord    string
	epoch    uint64
	need     int
	done     map[string]bool
	failed   map[string]bool
	sources  []string
	asked    map[uint64]string        // snapshot request id -> source, for every request not answered yet
	parts    map[uint64]snapshotParts // snapshot request id -> the parts received from its source
	heard    map[string]int64         // source -> when it was last asked or last sent something
	retry    uint64                   // the id of this job's resend timer
	deadline int64
	deferred bool // a catch-up that asks nobody before settleWait (see ballot.go)
}

// newSyncJob starts copying snapshots from sources under key.
func (c *Core) newSyncJob(key string, request uint64, coord string, epoch uint64, need int, sources []string) *syncJob {
	now := c.now()
	job := &syncJob{
		request: request, coord: coord, epoch: epoch, need: need, sources: sources,
		done: map[string]bool{}, failed: map[string]bool{}, asked: map[uint64]string{},
		parts: map[uint64]snapshotParts{}, heard: map[string]int64{},
		retry: c.id(), deadline: now + c.syncTimeout(),
	}
	c.syncs[key] = job
	c.schedule(timer{at: job.deadline, kind: timerReconf})
	c.schedule(timer{at: now + c.retryInterval(), kind: timerRetry, key: key, id: job.retry})
	if coord == "" && now < c.settleWait() {
		// A catch-up right after a restart: the snapshots must hold every
		// write the earlier life took part in (settleWait).
		job.deferred = true
		c.schedule(timer{at: c.settleWait(), kind: timerSettle})
	}
	for _, src := range sources {
		if src == c.cfg.Self {
			if c.catchingUp {
				job.failed[src] = true // restarted empty: its own memory is no copy
			} else {
				job.done[src] = true
			}
			continue
		}
		if !job.deferred {
			c.askSnapshot(job, src, now)
		}
	}
	return job
}

// settled asks for the snapshots of the catch-ups deferred until
// settleWait.
func (c *Core) settled(now int64) {
	for _, key := range slices.Sorted(maps.Keys(c.syncs)) { // a replayable order of requests
		job := c.syncs[key]
		if !job.deferred || now < c.settleWait() {
			continue
		}
		job.deferred = false
		for _, src := range job.sources {
			if !job.done[src] && !job.failed[src] {
				c.askSnapshot(job, src, now)
			}
		}
	}
}

// askSnapshot asks src for a snapshot for job.
func (c *Core) askSnapshot(job *syncJob, src string, now int64) {
	id := c.id()
	job.asked[id] = src
	job.heard[src] = now
	c.send(src, &messages.SnapshotRequest{Request: id, Epoch: job.epoch, Incarnation: c.incarnation})
}

// snapshotParts collects the parts of the snapshots that answer one
// SnapshotRequest, from the peer asked: the entries of each part by the
// snapshot's nonce and the part's index. A request repeated on the way
// is answered twice, and the source's table may change in between,
// shifting the parts' boundaries: parts of different answers must never
// add up to one snapshot, so each answer is counted apart by its nonce.
type snapshotParts map[uint64]map[uint32]int64

// maxSnapshotAnswers bounds the answers to one request kept at once; a
// request is repeated rarely, and more answers only cost a new request.
const maxSnapshotAnswers = 4

// add records part r (a part without a nonce or an index counts for
// nothing).
func (s snapshotParts) add(r *messages.Replicate) {
	nonce, part := r.GetNonce(), r.GetPart()
	if nonce == 0 || part == 0 {
		return
	}
	p := s[nonce]
	if p == nil {
		if len(s) >= maxSnapshotAnswers {
			return
		}
		p = map[uint32]int64{}
		s[nonce] = p
	}
	p[part] = int64(len(r.GetEntries()))
}

// complete reports whether the snapshot d ends arrived whole: parts 1 to
// d's count of d's nonce, holding d's count of entries in all.
func (s snapshotParts) complete(d *messages.SnapshotDone) bool {
	if d.GetNonce() == 0 {
		return false
	}
	p := s[d.GetNonce()]
	if len(p) != int(d.GetParts()) {
		return false
	}
	n := int64(0)
	for i := uint32(1); i <= d.GetParts(); i++ {
		k, ok := p[i]
		if !ok {
			return false
		}
		n += k
	}
	return n == d.GetEntries()
}

// forget drops the requests to src still unanswered.
func (job *syncJob) forget(src string) {
	for id, s := range job.asked {
		if s == src {
			delete(job.asked, id)
			delete(job.parts, id)
		}
	}
}

// retryInterval is how long a reconfiguration step or a sync waits for
// an answer before it sends its message again: messages can be lost,
// and every one of them is safe to repeat.
func (c *Core) retryInterval() int64 { return max(int64(c.cfg.RequestTimeout)/5, 1) }

// retryTimer sends again what the reconfiguration step or the sync job
// named by t still waits for, and sets the next retry.
func (c *Core) retryTimer(t timer, now int64) {
	next := timer{at: now + c.retryInterval(), kind: timerRetry, key: t.key, id: t.id}
	if t.key != "" {
		job := c.syncs[t.key]
		if job == nil || job.retry != t.id || job.deadline <= now {
			return
		}
		if job.deferred {
			c.schedule(next)
			return
		}
		for _, src := range job.sources {
			if !job.done[src] && !job.failed[src] && now-job.heard[src] >= c.retryInterval() {
				c.askSnapshot(job, src, now)
			}
		}
		c.schedule(next)
		return
	}
	rc := c.rc
	if rc == nil || rc.id != t.id || rc.discovering != nil || now >= rc.deadline {
		return
	}
	var msg proto.Message
	var to []string
	switch {
	case rc.kind == stepMove && !rc.committed:
		msg, to = prepareMsg(rc), rc.from.Voters()
	case rc.kind == stepMove:
		// Resent to the old voters only, whose acks count; new masters
		// that missed the first commit learn it from gossip or ConfigQuery.
		msg, to = commitMsg(rc), rc.from.Voters()
	case rc.kind == stepSync:
		msg, to = syncMsg(rc), rc.next.Masters
	default:
		return
	}
	for _, a := range to {
		if !rc.counted[a] {
			c.send(a, msg)
		}
	}
	c.schedule(next)
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

// Majority is the smallest majority of n masters.
func Majority(n int) int { return n/2 + 1 }

// SyncTimeout bounds the copying of leases to new masters.
func (c *Core) syncTimeout() int64 { return 10 * int64(c.cfg.RequestTimeout) }

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

// failSync ends a copy that cannot complete: a catch-up starts again, a
// coordinator's Sync is answered UNREACHABLE with why.
func (c *Core) failSync(key string, job *syncJob, why string) {
	delete(c.syncs, key)
	if job.coord == "" {
		c.startCatchUp(c.member.Load()) // try again
		return
	}
	c.endSync(key, job, &messages.AdminReply{Request: job.request, Reason: messages.Reason_REASON_UNREACHABLE, Message: why})
}

// endSync answers the coordinator of a Sync that ended, and remembers the
// answer for as long as the Sync may be repeated on the way: a repeat
// gets the same answer, and starts no second copy.
func (c *Core) endSync(key string, job *syncJob, reply *messages.AdminReply) {
	now := c.now()
	c.synced.add(key, reply, now+c.syncTimeout(), now)
	c.send(job.coord, reply)
}

func (c *Core) onSync(from string, s *messages.Sync) {
	key := fmt.Sprintf("%s/%d", from, s.GetRequest())
	if c.syncs[key] != nil {
		return // sent again while the job runs
	}
	if reply, ok := c.synced.get(key, c.now()); ok {
		c.send(from, reply) // sent again after the job ended
		return
	}
	sources, need := SortedSet(s.GetSources()), int(s.GetNeed())
	if need < 1 || need > len(sources) {
		c.send(from, &messages.AdminReply{Request: s.GetRequest(), Reason: messages.Reason_REASON_INVALID_ARGUMENT,
			Message: fmt.Sprintf("a sync that needs %d of %d sources", need, len(sources))})
		return
	}
	if epoch := c.member.Load().Epoch; epoch < s.GetEpoch() {
		c.send(from, &messages.AdminReply{Request: s.GetRequest(), Reason: messages.Reason_REASON_STALE_EPOCH,
			Message: fmt.Sprintf("this peer is at epoch %d, the sync needs %d", epoch, s.GetEpoch())})
		c.send(from, &messages.ConfigQuery{}) // learn the configuration whose commit it missed
		return
	}
	job := c.newSyncJob(key, s.GetRequest(), from, s.GetEpoch(), need, sources)
	c.syncCheck(key, job)
}

func (c *Core) syncCheck(key string, job *syncJob) {
	switch {
	case len(job.done) >= job.need:
		delete(c.syncs, key)
		if job.coord == "" {
			c.catchingUp = false // caught up: vote again
			return
		}
		if job.epoch == c.member.Load().Epoch {
			c.fresh = false // copied the old masters' leases in this life (see adopt)
		}
		if c.catchingUp && job.failed[c.cfg.Self] && job.epoch == c.member.Load().Epoch {
			// A Sync of the change this peer catches up under, copied
			// without counting its own memory: W of the old masters, a
			// majority, hold every lease that lives, so it holds them
			// all now (see adopt).
			c.endCatchUp()
		}
		c.endSync(key, job, &messages.AdminReply{Request: job.request})
	case len(job.sources)-len(job.failed) < job.need:
		c.failSync(key, job, fmt.Sprintf("only %d of the %d snapshots needed could be had", len(job.done), job.need))
	}
}

func (c *Core) onSnapshotRequest(from string, r *messages.SnapshotRequest) {
	c.heardIncarnation(from, r.GetIncarnation())
	cur := c.member.Load()
	switch {
	case cur.Epoch < r.GetEpoch():
		c.send(from, &messages.SnapshotDone{Request: r.GetRequest(), Reason: messages.Reason_REASON_STALE_EPOCH})
		return
	case c.catchingUp:
		// Restarted empty and still copying: what it holds may lack
		// leases it held before, so it is no source yet.
		c.send(from, &messages.SnapshotDone{Request: r.GetRequest(), Reason: messages.Reason_REASON_CATCHING_UP})
		return
	}
	keys := make([]string, 0, len(c.store.entries))
	for k := range c.store.entries {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	msgs := c.entryMessages(keys, c.now(), cur.Epoch, nil)
	nonce := c.snapshotNonce()
	n := 0
	for i, m := range msgs {
		m.Snapshot, m.Nonce, m.Part = r.GetRequest(), nonce, uint32(i+1)
		c.send(from, m)
		n += len(m.Entries)
	}
	c.send(from, &messages.SnapshotDone{Request: r.GetRequest(), Entries: int64(n), Incarnation: c.incarnation, Sequence: c.replicaSeq(),
		Nonce: nonce, Parts: uint32(len(msgs)), Clock: c.hlc, Epoch: cur.Epoch})
}

// snapshotNonce draws the nonce of a snapshot this peer takes: a
// counter started at the incarnation (random in production), so unique
// to this peer within its life and, but for a chance of 2^-64 per
// snapshot, across its restarts.
func (c *Core) snapshotNonce() uint64 {
	c.snapNonce++
	if c.snapNonce == 0 {
		c.snapNonce++
	}
	return c.snapNonce
}

func (c *Core) onSnapshotDone(from string, d *messages.SnapshotDone) {
	if c.followDone(from, d) {
		return
	}
	id := d.GetRequest()
	for key, job := range c.syncs { // request ids are unique: at most one job asked for id
		src, ok := job.asked[id]
		if !ok || src != from {
			continue
		}
		whole := job.parts[id].complete(d)
		delete(job.asked, id)
		delete(job.parts, id)
		now := c.now()
		job.heard[src] = now
		switch d.GetReason() {
		case messages.Reason_REASON_UNSPECIFIED:
			if m := c.member.Load(); m.Epoch > 0 && m.IsMaster(c.cfg.Self) && d.GetEpoch() > m.Epoch {
				// Taken under a newer configuration than this master's,
				// as a part from one is (see onReplicate); an empty
				// snapshot has no part to say so. Its configuration
				// first, then the snapshot again at the next retry. A
				// catch-up needs this: planned on a stale configuration,
				// it would end on its voters' snapshots, one of which
				// acknowledged the move away from it, and the master
				// would vote under the newer one without having copied
				// from its quorums (adopt plans again under it).
				c.send(src, &messages.ConfigQuery{})
				return
			}
		case messages.Reason_REASON_STALE_EPOCH, messages.Reason_REASON_CATCHING_UP:
			// Not ready yet: it missed the move (tell it the configuration)
			// or is catching up itself. Asked again at the next retry.
			if cur := c.member.Load(); cur.Epoch >= job.epoch && d.GetReason() == messages.Reason_REASON_STALE_EPOCH {
				c.send(src, &messages.ConfigCommit{Next: toProto(cur)})
			}
			return
		default:
			job.failed[src] = true
			job.forget(src)
			c.syncCheck(key, job)
			return
		}
		if !whole {
			c.askSnapshot(job, src, now) // a part of it was lost on the way: a whole new snapshot
			return
		}
		job.done[src] = true
		job.forget(src)
		// No ballot at or below the source's clock is granted here from
		// now on: the source promised or saw every write this copy
		// must order after (see ballot.go).
		c.raiseFloor(d.GetClock())
		c.syncCheck(key, job)
		return
	}
}

// snapshotPart records a part of a snapshot from peer from for the job
// that asked from for it (see snapshotParts), and reports whether one
// did: a part no job waits for (late, for a job that ended, from a peer
// not asked) is not applied.
func (c *Core) snapshotPart(from string, r *messages.Replicate) bool {
	id := r.GetSnapshot()
	for _, job := range c.syncs { // request ids are unique: at most one job asked for id
		if src, ok := job.asked[id]; ok {
			if src != from {
				return false // not the peer asked
			}
			if job.parts[id] == nil {
				job.parts[id] = snapshotParts{}
			}
			job.parts[id].add(r)
			job.heard[src] = c.now()
			return true
		}
	}
	return false
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

// --- conversions and helpers ---

func toProto(m *Membership) *messages.Configuration {
	return &messages.Configuration{
		Epoch: m.Epoch, Masters: m.Masters, Replicas: m.Replicas, W: int32(m.W),
		OldMasters: m.OldMasters, OldW: int32(m.OldW),
	}
}

// fromProto checks a configuration from the wire; the string says what
// is wrong with it, "" when nothing is.
func fromProto(p *messages.Configuration) (*Membership, string) {
	if p == nil {
		return nil, "no configuration"
	}
	m := &Membership{
		Epoch: p.GetEpoch(), Masters: SortedSet(p.GetMasters()), Replicas: SortedSet(p.GetReplicas()),
		W: int(p.GetW()), OldMasters: SortedSet(p.GetOldMasters()), OldW: int(p.GetOldW()),
	}
	if len(m.OldMasters) == 0 {
		m.OldMasters, m.OldW = nil, 0
	}
	if msg := CheckNodes(m.Masters, m.Replicas, m.W); msg != "" {
		return nil, msg
	}
	if msg := CheckW(m.W, len(m.Masters)); msg != "" {
		return nil, msg
	}
	if m.Joint() {
		if msg := CheckNodes(m.OldMasters, nil, m.OldW); msg != "" {
			return nil, msg
		}
		if msg := CheckW(m.OldW, len(m.OldMasters)); msg != "" {
			return nil, msg
		}
		for _, r := range m.Replicas {
			if contains(m.OldMasters, r) {
				return nil, fmt.Sprintf("%s is both an old master and a replica", r)
			}
		}
	}
	return m, ""
}

// without returns the addresses of a that are not in b.
func without(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !contains(b, x) {
			out = append(out, x)
		}
	}
	return out
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

// --- catching up after a restart ---
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

// --- spreading configurations ---

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
