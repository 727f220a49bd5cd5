package core

import (
	"testing"
	"time"

	"github.com/protoactor-locker/locker/messages"
)

// TestRestartedMasterCatchesUpFromReconfigure checks the rule that a
// master restarted with empty memory copies leases before it votes
// whichever way it learns its configuration: here from the ConfigCommit
// of a Reconfigure (request != 0) that changes only the replicas, a
// change that copies nothing to it (no Sync). Voting at once, it would
// promise "absent" for a key it held before, and with a master that
// missed the key form a quorum that grants it twice.
//
// Masters n1, n2, n3 (W=2); Lock k lands on n1 and n2; n1 restarts
// empty; n2 runs Reconfigure(the same masters, replicas [n4]); then a
// Lock of k from n3 with n2 unreachable must fail. (Found by review.)
func TestRestartedMasterCatchesUpFromReconfigure(t *testing.T) {
	n := lockedOnTwoThenRestarted(t)
	var got *ReconfigResult
	n.onAnswer(n2, n.core(n2).Reconfigure([]string{n1, n2, n3}, []string{n4}), func(a Answer) { got = &a.Reconfig })
	for i := 0; got == nil && i < 50; i++ {
		n.run()
		n.advance(time.Millisecond)
	}
	if got == nil || !got.OK {
		t.Fatalf("reconfigure: %+v", got)
	}
	if e := n.core(n1).Membership().Epoch; e != got.Epoch {
		t.Fatalf("n1 is at epoch %d, want %d", e, got.Epoch)
	}
	n.holdTo(n2)
	if o := n.do1(n3, lockOp("k", "other", time.Hour)); o.OK {
		t.Fatalf("a second Lock of k while the first holder's hour lasts: %+v (two holders)", o)
	}
	// Once n2 is back, n1 copies its leases and votes again.
	n.unhold(n2)
	n.sleep(time.Second)
	if n.core(n1).CatchingUp() {
		t.Fatal("n1 still catching up with every master reachable")
	}
	wantRead(t, n, n1, "k", "v", "after catching up")
	n.checkInvariants()
}

// TestRestartedOldMasterSyncEndsCatchUp checks the rule that a restarted
// master that stays a master through a change of masters is caught up by
// the change's Sync, which copies W of the old masters without counting
// its own (empty) memory as one of them.
//
// Masters n1, n2, n3 (W=2); Lock k lands on n1 and n2; n1 restarts
// empty; Reconfigure to n1, n2, n4. n1's catch-up under the joint
// configuration needs every other voter, n4 included, whose answers are
// held; its Sync needs n2 and n3, and ends the catch-up with k copied.
func TestRestartedOldMasterSyncEndsCatchUp(t *testing.T) {
	n := lockedOnTwoThenRestarted(t)
	n.holdIf = func(p packet) bool { return p.from == n4 && p.to == n1 }
	if r := n.reconfigure(n2, []string{n1, n2, n4}, nil); !r.OK {
		t.Fatalf("reconfigure: %+v", r)
	}
	if n.core(n1).CatchingUp() {
		t.Fatal("n1 still catching up after the Sync of the change copied the old masters' leases")
	}
	wantRead(t, n, n1, "k", "v", "after the Sync")
	n.holdIf = nil
	n.unholdAll()
	n.run()
	n.holdTo(n2)
	if o := n.do1(n4, lockOp("k", "other", time.Hour)); o.OK {
		t.Fatalf("a second Lock of k: %+v (two holders)", o)
	}
	n.checkInvariants()
}

// TestRestartedOldMasterIsNoSourceOfItsSync checks that the Sync of a
// restarted master does not count its own empty memory as a copy of an
// old master's: with n2's answers to n1 held, its Sync cannot complete
// (n3 lacks k), so n1 must not vote until it has copied k.
func TestRestartedOldMasterIsNoSourceOfItsSync(t *testing.T) {
	n := lockedOnTwoThenRestarted(t)
	n.holdIf = func(p packet) bool { return (p.from == n2 || p.from == n4) && p.to == n1 && !isConfig(p) }
	if r := n.reconfigure(n2, []string{n1, n2, n4}, nil); !r.OK {
		t.Fatalf("reconfigure: %+v", r)
	}
	if _, ok := n.read(n1, "k"); !ok && !n.core(n1).CatchingUp() {
		t.Fatal("n1 votes without k: its Sync counted its own empty memory")
	}
	n.holdIf = nil
	n.unholdAll()
	n.sleep(3 * time.Second)
	if n.core(n1).CatchingUp() {
		t.Fatal("n1 still catching up with every master reachable")
	}
	wantRead(t, n, n1, "k", "v", "after catching up")
	n.checkInvariants()
}

// isConfig is a packet test: a configuration message (move, commit,
// answer), which tests let through while they hold copies.
func isConfig(p packet) bool {
	switch p.msg.(type) {
	case *messages.ConfigPrepare, *messages.ConfigPromise, *messages.ConfigCommit, *messages.ConfigQuery, *messages.AdminReply, *messages.Sync:
		return true
	}
	return false
}

// lockedOnTwoThenRestarted is the start of these tests: masters n1, n2,
// n3 (W=2) and a spare peer n4; Lock k (an hour) lands on n1 and n2 only;
// n1 restarts with empty memory.
func lockedOnTwoThenRestarted(t *testing.T) *network {
	t.Helper()
	n := masters(t, 2, n1, n2, n3)
	n.start(n4)
	n.drop[n3] = true
	if o := n.do1(n1, lockOp("k", "v", time.Hour)); !o.OK {
		t.Fatalf("lock: %+v", o)
	}
	delete(n.drop, n3)
	n.stop(n1)
	n.start(n1)
	return n
}

// TestAddedMasterStaysFreshUnderStaleJoint checks the rule that a master
// added by a change, restarted empty, needs no catch-up under the change's
// joint configuration only until a Sync of its current epoch completes on
// it: the joint configuration may be stale, gossiped by a removed master
// that missed the change's last commit, and any configuration it learns
// later (while still fresh) makes it catch up.
//
// Masters n1, n2, n3 (W=2); Lock k lands on n1 and n2; Reconfigure to
// n3, n4, n5 (joint epoch 2, final epoch 3), with n5's copies and the
// final commit to n1 held: n4 synced k, n5 did not, n1 stays at epoch 2.
// n4 restarts, hears n1's gossip of epoch 2 (where it is added), then
// the others' epoch 3; a Lock of k from n5 with n3 unreachable must fail.
func TestAddedMasterStaysFreshUnderStaleJoint(t *testing.T) {
	n := masters(t, 2, n1, n2, n3)
	n.start(n4)
	n.start(n5)
	n.drop[n3] = true
	if o := n.do1(n1, lockOp("k", "v", time.Hour)); !o.OK {
		t.Fatalf("lock: %+v", o)
	}
	delete(n.drop, n3)
	n.holdIf = func(p packet) bool {
		switch m := p.msg.(type) {
		case *messages.Replicate:
			return p.to == n5 && m.GetSnapshot() != 0
		case *messages.SnapshotDone:
			return p.to == n5
		case *messages.ConfigCommit:
			return p.to == n1 && m.GetNext().GetEpoch() == 3
		}
		return false
	}
	if r := n.reconfigure(n2, []string{n3, n4, n5}, nil); !r.OK {
		t.Fatalf("reconfigure: %+v", r)
	}
	if e := n.core(n1).Membership().Epoch; e != 2 {
		t.Fatalf("n1 is at epoch %d, want the joint epoch 2", e)
	}
	if _, ok := n.read(n5, "k"); ok {
		t.Fatal("n5 copied k; the scenario needs it without")
	}
	wantRead(t, n, n4, "k", "v", "n4 synced")
	held := n.holdIf
	n.stop(n4)
	n.start(n4)
	n.holdIf = func(p packet) bool { return held(p) || (p.to == n4 && p.from != n1) } // n1's gossip first
	n.sleep(1100 * time.Millisecond)
	if e := n.core(n4).Membership().Epoch; e != 2 {
		t.Fatalf("n4 is at epoch %d, want the stale joint epoch 2", e)
	}
	n.holdIf = func(p packet) bool { return held(p) || (p.to == n4 && p.from == n1) }
	n.sleep(1100 * time.Millisecond)
	if e := n.core(n4).Membership().Epoch; e != 3 {
		t.Fatalf("n4 is at epoch %d, want 3", e)
	}
	n.holdTo(n3)
	if o := n.do1(n5, lockOp("k", "other", time.Hour)); o.OK {
		t.Fatalf("a second Lock of k: %+v (two holders)", o)
	}
}

// TestStaleGossiperLearnsNewerConfiguration checks the rule that a peer
// gossiping an older configuration is answered with the newer one: a
// master removed by a change whose last commit it lost is named by no
// newer configuration, so nobody else would ever tell it.
//
// Masters n1, n2, n3 (W=2); Reconfigure to n2, n3, n4 with the final
// commit to n1 lost: n1 stays in the joint configuration until its
// gossip is answered.
func TestStaleGossiperLearnsNewerConfiguration(t *testing.T) {
	n := masters(t, 2, n1, n2, n3)
	n.start(n4)
	n.holdIf = func(p packet) bool {
		m, ok := p.msg.(*messages.ConfigCommit)
		return ok && p.to == n1 && m.GetRequest() != 0 && m.GetNext().GetEpoch() == 3
	}
	if r := n.reconfigure(n2, []string{n2, n3, n4}, nil); !r.OK {
		t.Fatalf("reconfigure: %+v", r)
	}
	n.holdIf = nil
	n.sleep(3 * time.Second) // the held commit stays held: n1 learns from its own gossip's answer
	if m := n.core(n1).Membership(); m.Epoch != 3 || m.IsMaster(n1) {
		t.Fatalf("n1 is at %+v, want epoch 3 without n1", m)
	}
}

// TestRestartedCoordinatorDiscoveryNeedsWUnconfigured checks the rule
// that a first Reconfigure (its coordinator at epoch 0) moves from epoch
// 0 on its own vote, as a new cluster's first configuration, only if
// discovery heard epoch 0 from a write quorum of the new masters: every
// restarted peer is at epoch 0, and one whose discovery answers were late
// must not start a cluster over, clearing its need to catch up.
//
// Masters n1, n2, n3 (W=2), moved to epoch 2; Lock k lands on n1 and n2;
// n1 restarts and runs Reconfigure with the answers to its discovery
// held past the deadline: it fails; n1 then learns epoch 2 and catches
// up, so a Lock of k from n3 with n2 unreachable fails.
func TestRestartedCoordinatorDiscoveryNeedsWUnconfigured(t *testing.T) {
	n := masters(t, 2, n1, n2, n3)
	if r := n.reconfigure(n2, []string{n1, n2, n3}, []string{n4}); !r.OK { // epoch 2
		t.Fatalf("reconfigure: %+v", r)
	}
	n.drop[n3] = true
	if o := n.do1(n1, lockOp("k", "v", time.Hour)); !o.OK {
		t.Fatalf("lock: %+v", o)
	}
	delete(n.drop, n3)
	n.stop(n1)
	n.start(n1)
	n.holdIf = func(p packet) bool { // discovery answers to n1 are late
		_, ok := p.msg.(*messages.ConfigCommit)
		return ok && p.to == n1 && p.from != n1
	}
	var got *ReconfigResult
	n.onAnswer(n1, n.core(n1).Reconfigure([]string{n1, n2, n3}, nil), func(a Answer) { got = &a.Reconfig })
	n.run()
	n.advance(1100 * time.Millisecond) // discovery times out
	if got == nil || got.OK || got.Reason != messages.Reason_REASON_UNREACHABLE || got.Epoch != 0 {
		t.Fatalf("reconfigure: %+v, want a failure at epoch 0 (discovery heard no write quorum)", got)
	}
	n.holdIf = nil
	n.unholdAll()
	n.run()
	if e := n.core(n1).Membership().Epoch; e != 2 {
		t.Fatalf("n1 is at epoch %d, want 2", e)
	}
	n.holdTo(n2)
	if o := n.do1(n3, lockOp("k", "other", time.Hour)); o.OK {
		t.Fatalf("a second Lock of k: %+v (two holders)", o)
	}
}

// TestFirstReconfigureWithUnconfiguredQuorum checks that a new cluster
// still starts with Reconfigure: peers at epoch 0 that answer discovery
// with epoch 0 (a write quorum of the new masters with the coordinator)
// make the move from epoch 0 a first configuration, which nobody catches
// up under.
func TestFirstReconfigureWithUnconfiguredQuorum(t *testing.T) {
	n := newNetwork(t, n1, n2, n3)
	n.drop[n3] = true // silent: not needed
	var got *ReconfigResult
	n.onAnswer(n1, n.core(n1).Reconfigure([]string{n1, n2, n3}, nil), func(a Answer) { got = &a.Reconfig })
	for i := 0; got == nil && i < 200; i++ {
		n.run()
		n.advance(10 * time.Millisecond)
	}
	if got == nil || !got.OK {
		t.Fatalf("reconfigure: %+v", got)
	}
	delete(n.drop, n3)
	n.sleep(2 * time.Second)
	for _, a := range []string{n1, n2, n3} {
		if c := n.core(a); c.Membership().Epoch == 0 || c.CatchingUp() {
			t.Fatalf("%s at %+v, catching up %v", a, c.Membership(), c.CatchingUp())
		}
	}
	if o := n.do1(n3, lockOp("k", "v", time.Hour)); !o.OK {
		t.Fatalf("lock: %+v", o)
	}
}

// TestSetNodesRerunFromRestartedPeerStartsOver documents a limit of
// SetNodes, the unsafe administrative call (no transition, no quorum): a
// SetNodes from epoch 0 to 1 counts as a new cluster's first
// configuration, so run again from a restarted peer it makes the peers
// still at epoch 0 (itself among them) vote at once without copying the
// leases they lost. Use Reconfigure on a cluster that may hold leases.
func TestSetNodesRerunFromRestartedPeerStartsOver(t *testing.T) {
	n := masters(t, 2, n1, n2, n3)
	n.drop[n3] = true
	if o := n.do1(n1, lockOp("k", "v", time.Hour)); !o.OK {
		t.Fatalf("lock: %+v", o)
	}
	delete(n.drop, n3)
	n.stop(n1)
	n.start(n1)
	n.setNodes(n1, []string{n1, n2, n3}, []string{n1, n2, n3}, nil)
	if c := n.core(n1); c.Membership().Epoch != 1 || c.CatchingUp() {
		t.Fatalf("n1 at %+v, catching up %v; documented: epoch 1, voting at once", c.Membership(), c.CatchingUp())
	}
}

// TestSetNodesAtSameEpochMakesFreshMasterCatchUp checks the rule that
// SetNodes with an epoch not above the receiver's goes through adopt like
// any other configuration: a restarted peer it makes a master catches
// up before it votes.
//
// Masters n1, n2, n3 (W=2); Lock k lands on n1 and n2; n1 restarts; at
// epoch 2 it is first made a replica, then (SetNodes at the same epoch,
// as n2 and n3 get it) a master again; a Lock of k from n3 with n2
// unreachable must fail.
func TestSetNodesAtSameEpochMakesFreshMasterCatchUp(t *testing.T) {
	n := lockedOnTwoThenRestarted(t)
	all := []string{n1, n2, n3}
	n.core(n1).Step(outsider, &messages.SetNodes{Request: 1, Epoch: 2, Masters: []string{n2, n3}, Replicas: []string{n1}})
	for _, a := range []string{n2, n3, n1} {
		n.core(a).Step(outsider, &messages.SetNodes{Request: 2, Epoch: 2, Masters: all})
	}
	n.run()
	if e := n.core(n1).Membership().Epoch; e != 2 {
		t.Fatalf("n1 at epoch %d, want 2", e)
	}
	if _, ok := n.read(n1, "k"); !ok && !n.core(n1).CatchingUp() {
		t.Fatal("n1 votes without k: made a master at the same epoch, it did not catch up")
	}
	n.holdTo(n2)
	if o := n.do1(n3, lockOp("k", "other", time.Hour)); o.OK {
		t.Fatalf("a second Lock of k: %+v (two holders)", o)
	}
}
