package core

import (
	"fmt"
	"maps"
	"slices"
	"sort"

	"google.golang.org/protobuf/proto"

	"github.com/protoactor-locker/locker/messages"
)

// Copying leases from other peers' snapshots (a new master's Sync, a
// restarted master's catch-up), and the snapshots every peer serves.

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

// SyncTimeout bounds the copying of leases to new masters.
func (c *Core) syncTimeout() int64 { return 10 * int64(c.cfg.RequestTimeout) }

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
