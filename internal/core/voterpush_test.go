package core

import (
	"slices"
	"testing"
	"time"

	"github.com/protoactor-locker/locker/messages"
)

// TestPushToAVoterWhoseMastersCameBack: a push can reach a real voter,
// not only a master that missed a change. mastersSince moves only when
// adopt sees the list of masters change, so a master that skips a change
// away from its masters and the change back (it adopts the later joint
// configuration, whose Masters equal its own) keeps an old mastersSince,
// and a push from the configuration in between, in which it was a
// replica, is not dropped. Mirrored, such a push can shorten a lease the
// voter holds for a quorum: the pusher, a master stale in that
// configuration, was repaired with the holder's Update (its
// ConfigCommit lost) and pushes the Update with the lease it had before
// the holder's Extend.
//
// Epoch 1: masters n1 n2 n3 (W=2), replicas n4 n5. Change A (n1 paused)
// to masters n2 n3 n4, replicas n1 n5 (epochs 2, 3). Change B (n3
// paused) back to masters n1 n2 n3, replicas n4 n5 (epochs 4, 5): n1
// jumps from epoch 1 to the joint epoch 4, whose Masters are its own.
// Under epoch 5, c1 locks k for 5 s and extends it to an hour (n1, n2);
// n3, still at epoch 3 with its ConfigCommits lost, is repaired with the
// Lock and the Update but not the Extend, and pushes the Update (5 s
// left) to n1, its replica at epoch 3, before n1 has the Update's commit.
// After 5 s, n1 and n3 grant c2 a Lock of k while c1's hour runs.
func TestPushToAVoterWhoseMastersCameBack(t *testing.T) {
	n := newNetwork(t, n1, n2, n3, n4, n5)
	n.configure(n2, []string{n1, n2, n3}, []string{n4, n5}, 2)

	// Change A while n1 is paused.
	n.drop[n1] = true
	if r := n.reconfigure(n2, []string{n2, n3, n4}, []string{n1, n5}); !r.OK {
		t.Fatalf("change A: %+v", r)
	}
	delete(n.drop, n1)
	if e := n.core(n1).Membership().Epoch; e != 1 {
		t.Fatalf("n1 at epoch %d, want 1", e)
	}

	// Change B while n3 is paused.
	n.drop[n3] = true
	if r := n.reconfigure(n2, []string{n1, n2, n3}, []string{n4, n5}); !r.OK {
		t.Fatalf("change B: %+v", r)
	}
	m1 := n.core(n1).Membership()
	t.Logf("n1: epoch %d masters %v, mastersSince %d; n3: epoch %d", m1.Epoch, m1.Masters, n.core(n1).mastersSince, n.core(n3).Membership().Epoch)
	if n.core(n3).Membership().Epoch != 3 {
		t.Fatalf("n3 at %+v, want epoch 3", n.core(n3).Membership())
	}

	// n3 is back, but every ConfigCommit to it is lost: it stays at 3.
	delete(n.drop, n3)
	lostConfig := func(p packet) bool {
		_, cc := p.msg.(*messages.ConfigCommit)
		return cc && p.to == n3
	}
	n.holdIf = lostConfig

	lock := n.do1(n2, lockOp("k", "v", 5*time.Second))
	if !lock.OK {
		t.Fatalf("c1's Lock: %+v", lock)
	}
	// The Extend's commit (a repair) to n3 is lost.
	n.holdIf = func(p packet) bool {
		_, cm := p.msg.(*messages.Commit)
		return lostConfig(p) || (cm && p.to == n3)
	}
	ext := n.do1(n2, extendOp("k", "v", time.Hour))
	if !ext.OK {
		t.Fatalf("c1's Extend: %+v", ext)
	}
	n.held = nil // lost
	// The Update: its commit to n1 is slow; n3 is repaired with it.
	n.holdIf = func(p packet) bool {
		_, cm := p.msg.(*messages.Commit)
		return lostConfig(p) || (cm && p.to == n1)
	}
	upd := n.submit(n2, updateOp("k", "v", "v2"))
	n.run()
	n.sleep(200 * time.Millisecond) // n3 pushes the Update to its replicas
	n.logKey("k", n1, n2, n3)
	// n1's commit of the Update arrives.
	n.holdIf = lostConfig
	var lost []packet
	for _, p := range n.held {
		if p.to == n1 {
			n.queue = append(n.queue, p)
		} else {
			lost = append(lost, p)
		}
	}
	n.held = lost
	n.settle(upd)
	if !upd.one().OK {
		t.Fatalf("c1's Update: %+v", upd.one())
	}
	n.logKey("k", n1, n2, n3)

	// n3 learns the configuration, n2 is slow; after 5 s, c2 locks k.
	n.holdIf = nil
	n.unholdAll()
	n.run()
	n.sleep(6 * time.Second)
	for _, a := range []string{n1, n2, n3} {
		v, ok := n.read(a, "k")
		t.Logf("%s: k = %q %v (epoch %d)", a, v, ok, n.core(a).Membership().Epoch)
	}
	n.holdTo(n2)
	n.requireRefused(n1, lockOp("k", "c2", time.Hour), "c2 locked k while c1's hour-long lease lives (two holders)")
}

// TestDelayedPushToAVoterWhoseMastersCameBack is the same door without
// any message lost, only one push slow on its way: the residue of the
// holder's own Update, committed under epoch 3 on its coordinator n3
// alone (n2 and n4 moved to the joint epoch 4 before its commits came),
// with the lease n3 had before the holder's Extend, which n3 missed. n3
// pushed it to n1, its replica at epoch 3; it reaches n1 under epoch 5,
// after n1 synced the hour-long lease as a new master of the joint
// epoch 4. n1's mastersSince is still 1 (its masters at epoch 1 are
// those of epoch 4), so the push is not dropped.
func TestDelayedPushToAVoterWhoseMastersCameBack(t *testing.T) {
	n := newNetwork(t, n1, n2, n3, n4, n5)
	n.configure(n2, []string{n1, n2, n3}, []string{n4, n5}, 2)

	// Change A while n1 is paused.
	n.drop[n1] = true
	if r := n.reconfigure(n2, []string{n2, n3, n4}, []string{n1, n5}); !r.OK {
		t.Fatalf("change A: %+v", r)
	}
	delete(n.drop, n1)

	// Epoch 3: c1 locks k for 10 s and extends it to an hour; the
	// Extend's commit to n3 is lost.
	if o := n.do1(n2, lockOp("k", "v", 10*time.Second)); !o.OK {
		t.Fatalf("c1's Lock: %+v", o)
	}
	n.holdIf = func(p packet) bool {
		_, cm := p.msg.(*messages.Commit)
		return cm && p.to == n3
	}
	if o := n.do1(n2, extendOp("k", "v", time.Hour)); !o.OK {
		t.Fatalf("c1's Extend: %+v", o)
	}
	n.held = nil // lost

	// c1's Update, coordinated by n3: n2 and n4 promise, n3 commits on
	// itself; its commits to n2 and n4, and its pushes to n1, are slow.
	slow := func(p packet) bool {
		_, cm := p.msg.(*messages.Commit)
		_, push := p.msg.(*messages.Replicate)
		return p.from == n3 && ((cm && (p.to == n2 || p.to == n4)) || (push && p.to == n1))
	}
	n.holdIf = slow
	upd := n.submit(n3, updateOp("k", "v", "v2"))
	n.run()
	n.advance(200 * time.Millisecond) // n3 pushes the Update
	n.run()

	// Change B while n3 is paused (its slow messages stay slow).
	n.holdIf = func(p packet) bool { return slow(p) || p.to == n3 || p.from == n3 }
	if r := n.reconfigure(n2, []string{n1, n2, n3}, []string{n4, n5}); !r.OK {
		t.Fatalf("change B: %+v", r)
	}
	t.Logf("n1: epoch %d, mastersSince %d", n.core(n1).Membership().Epoch, n.core(n1).mastersSince)
	var keep []packet
	for _, p := range n.held {
		if slow(p) {
			keep = append(keep, p)
		}
	}
	n.held = keep // what n3 sent and was sent while paused is lost
	n.logKey("k", n1, n2, n3)

	// The slow messages arrive: n2 and n4 refuse the Update's commit,
	// n1 gets n3's push.
	n.holdIf = nil
	n.unholdAll()
	n.run()
	n.settle(upd)
	t.Logf("c1's Update: %+v", upd.one())
	n.logKey("k", n1, n2, n3)
	n.sleep(11 * time.Second)
	n.holdTo(n2)
	n.requireRefused(n1, lockOp("k", "c2", time.Hour), "c2 locked k while c1's hour-long lease lives (two holders)")
}

// TestStaleSyncAnsweredFromANewerEpoch is seed 11145's divergence by the
// other door: snapshot parts still get a voter's merge, and a master
// that missed changes can be sent parts from a newer configuration, in
// which it is a replica, that answer a SnapshotRequest it sent before.
//
// Epoch 1: masters n1 n2 n3 (W=2), replicas n4 n5; c1 locks k for an
// hour. Change A to masters n1 n2 n4, replicas n5: n4, a new master of
// the joint epoch 2, asks n1 n2 n3 for snapshots and is cut off (its
// requests slow). The change completes without it (epoch 3); c1 releases
// k (n4 misses it) and c2 locks k for 2 s. Change B to masters n1 n2 n5,
// replica n4 (epochs 4, 5). n4's requests arrive: the snapshots of epoch
// 5 carry c2's 2 s lease, which n4, still a master of epoch 2, merges
// over c1's hour as a voter. It learns it is a replica and holds c2's
// value for an hour after every master let it go.
func TestStaleSyncAnsweredFromANewerEpoch(t *testing.T) {
	n := newNetwork(t, n1, n2, n3, n4, n5)
	n.configure(n2, []string{n1, n2, n3}, []string{n4, n5}, 2)
	if o := n.do1(n2, lockOp("k", "c1", time.Hour)); !o.OK {
		t.Fatalf("c1's Lock: %+v", o)
	}
	n.sleep(time.Second) // pushed to the replicas

	// Change A: n4's snapshot requests are slow, and it hears nothing
	// once it has started its Sync.
	n.holdIf = func(p packet) bool {
		_, req := p.msg.(*messages.SnapshotRequest)
		return (req && p.from == n4) || (p.to == n4 && len(n.core(n4).syncs) > 0)
	}
	var rc *ReconfigResult
	n.onAnswer(n2, n.core(n2).Reconfigure([]string{n1, n2, n4}, []string{n5}), func(a Answer) { rc = &a.Reconfig })
	for i := 0; rc == nil && i < 2000; i++ {
		n.run()
		n.sleep(10 * time.Millisecond)
	}
	if rc == nil || !rc.OK {
		t.Fatalf("change A: %+v", rc)
	}
	if m := n.core(n4).Membership(); !m.Joint() || len(n.core(n4).syncs) == 0 {
		t.Fatalf("n4 at %+v with %d sync jobs, want the joint epoch and its Sync running", m, len(n.core(n4).syncs))
	}
	releaseAndRelockFor2s(t, n)
	if r := n.reconfigure(n2, []string{n1, n2, n5}, []string{n4}); !r.OK {
		t.Fatalf("change B: %+v", r)
	}

	// n4's slow requests arrive, and the answers (nothing else reaches
	// it yet).
	var keep []packet
	for _, p := range n.held {
		if _, req := p.msg.(*messages.SnapshotRequest); req && p.from == n4 {
			n.queue = append(n.queue, p)
		} else {
			keep = append(keep, p)
		}
	}
	n.held = keep
	n.holdIf = func(p packet) bool {
		_, part := p.msg.(*messages.Replicate)
		_, done := p.msg.(*messages.SnapshotDone)
		return p.to == n4 && !part && !done
	}
	n.run()
	if e := n.core(n4).store.raw("k"); e != nil {
		t.Logf("n4 (epoch %d): k = %q, %v left", n.core(n4).Membership().Epoch, e.value, time.Duration(e.deadline-n.core(n4).now()))
	}

	// n4 hears the rest and follows the masters as a replica.
	n.holdIf = nil
	n.unholdAll()
	n.sleep(10 * time.Second)
	for _, a := range []string{n1, n2, n5} {
		if v, ok := n.read(a, "k"); ok {
			t.Fatalf("master %s still holds k = %q", a, v)
		}
	}
	if m := n.core(n4).Membership(); !slices.Contains(m.Replicas, n4) {
		t.Fatalf("n4 at %+v, want a replica", m)
	}
	if v, ok := n.read(n4, "k"); ok {
		e := n.core(n4).store.raw("k")
		t.Fatalf("replica n4 holds k = %q (%v left) that no master holds (replica divergence)", v, time.Duration(e.deadline-n.core(n4).now()))
	}
}

// TestSkippedEpochDropsPromises checks that a master which skipped
// epochs counts the skip as a change of masters. n1 promised a Lock under
// epoch 1, then missed a change of masters away from it (n1 made a
// replica) and heard of the change back only at its joint epoch, whose
// masters look like its own. The Lock's commit, decided under epoch 1,
// reaches n1 only then: it must not land after the change's Sync copied
// the leases without it (it may be the residue of a write that failed
// once the other masters moved on), so n1 drops the promise and refuses
// the commit as decided under masters it has replaced since.
func TestSkippedEpochDropsPromises(t *testing.T) {
	n := newNetwork(t, n1, n2, n3, n4, n5)
	n.configure(n2, []string{n1, n2, n3}, []string{n4, n5}, 2)
	n.holdIf = func(p packet) bool {
		_, cm := p.msg.(*messages.Commit)
		return cm && p.to == n1
	}
	n.submit(n2, lockOp("k", "v", time.Hour))
	n.run()
	if n.core(n1).WriteLocks() != 1 {
		t.Fatalf("n1 holds %d write locks, want the Lock's promise", n.core(n1).WriteLocks())
	}
	held := n.held
	n.held, n.holdIf = nil, nil

	n.drop[n1] = true // change A while n1 is paused
	if r := n.reconfigure(n2, []string{n2, n3, n4}, []string{n1, n5}); !r.OK {
		t.Fatalf("change A: %+v", r)
	}
	delete(n.drop, n1)
	if r := n.reconfigure(n2, []string{n1, n2, n3}, []string{n4, n5}); !r.OK {
		t.Fatalf("change B: %+v", r)
	}
	c := n.core(n1)
	if m := c.Membership(); !m.IsMaster(n1) || m.Epoch <= 3 {
		t.Fatalf("n1 at %+v, want a master after change B", m)
	}
	if c.WriteLocks() != 0 {
		t.Fatalf("n1 still holds the promise of epoch 1 after skipping to epoch %d", c.Membership().Epoch)
	}
	for _, p := range held {
		c.Step(p.from, p.msg)
	}
	acks := 0
	for _, env := range c.TakeOutput().Messages {
		if ack, ok := env.Msg.(*messages.Committed); ok {
			acks++
			if it := ack.GetItems()[0]; it.GetOk() || it.GetReason() != messages.Reason_REASON_STALE_EPOCH {
				t.Fatalf("n1 answered the epoch-1 commit with %v, want STALE_EPOCH", it)
			}
		}
	}
	if acks != 1 {
		t.Fatalf("n1 answered %d commits, want the one held", acks)
	}
}

// TestReaddedMasterMergesAReleasedLeaseIntoTheNext: the voter merge
// assumes that the newer of two states of a key is the holder's own
// write, but a master removed by a change keeps its table, and when a
// later change adds it back its Sync merges what it kept with what the
// masters hold now. A lease released after it was removed (it missed
// the Release) is then merged into the next holder's: the next holder's
// value with the released lease's deadline. Not two holders (the other
// masters dropped the key; a Lock succeeds and repairs it), but a master
// that holds, and a replica that follows it and reads, a lease for an
// hour after its holder's 2 s ran out on every other peer; once the
// master is demoted (change C), a replica holding a value no master
// holds (replica divergence), as replicas keep the later deadline of
// the same lease.
//
// Epoch 1: masters n1 n2 n3 (W=2), replica n4; c1 locks k for an hour.
// Change A to masters n1 n2 n5 (n3 removed). c1 releases k, c2 locks it
// for 2 s. Change B to masters n1 n2 n3, replica n4: n3's Sync merges
// c2's lease with the hour of c1's it kept.
func TestReaddedMasterMergesAReleasedLeaseIntoTheNext(t *testing.T) {
	n := newNetwork(t, n1, n2, n3, n4, n5)
	n.configure(n2, []string{n1, n2, n3}, []string{n4}, 2)
	if o := n.do1(n2, lockOp("k", "c1", time.Hour)); !o.OK {
		t.Fatalf("c1's Lock: %+v", o)
	}
	if r := n.reconfigure(n2, []string{n1, n2, n5}, []string{n4}); !r.OK {
		t.Fatalf("change A: %+v", r)
	}
	releaseAndRelockFor2s(t, n)
	if r := n.reconfigure(n2, []string{n1, n2, n3}, []string{n4}); !r.OK {
		t.Fatalf("change B: %+v", r)
	}
	n.sleep(5 * time.Second)
	for _, a := range []string{n1, n2, n3, n4} {
		if v, ok := n.read(a, "k"); ok {
			e := n.core(a).store.raw("k")
			t.Errorf("%s (epoch %d) holds k = %q with %v left, after c2's 2 s lease ended", a, n.core(a).Membership().Epoch, v, time.Duration(e.deadline-n.core(a).now()))
		}
	}
	// Demoted, n3 keeps it as a replica: no master holds k any more.
	if r := n.reconfigure(n2, []string{n1, n2, n5}, []string{n3, n4}); !r.OK {
		t.Fatalf("change C: %+v", r)
	}
	n.sleep(5 * time.Second)
	for _, a := range []string{n1, n2, n5} {
		if v, ok := n.read(a, "k"); ok {
			t.Fatalf("master %s holds k = %q", a, v)
		}
	}
	for _, a := range []string{n3, n4} {
		if v, ok := n.read(a, "k"); ok {
			t.Errorf("replica %s holds k = %q that no master holds (replica divergence)", a, v)
		}
	}
}

// releaseAndRelockFor2s: through n2, c1 releases k, its tombstones end,
// and c2 locks k for 2 s.
func releaseAndRelockFor2s(t *testing.T, n *network) {
	t.Helper()
	if o := n.do1(n2, releaseOp("k", "c1")); !o.OK {
		t.Fatalf("c1's Release: %+v", o)
	}
	n.sleep(3 * time.Second) // the tombstones go
	if o := n.do1(n2, lockOp("k", "c2", 2*time.Second)); !o.OK {
		t.Fatalf("c2's Lock: %+v", o)
	}
}
