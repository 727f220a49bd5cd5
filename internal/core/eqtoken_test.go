package core

import (
	"testing"
	"time"

	"github.com/protoactor-locker/locker/messages"
)

// TestReleaseResidueLostByItsMasterLeavesReplicas: a holder's Release
// that commits on one master alone (an unknown outcome) is residue, and
// a replica must not keep it once no master holds it while the masters
// hold the lease it released (the undiagnosed equal-token tombstone of
// simulation seeds 676, 33055, 33592, 33760 and 34673).
//
// Masters n1 n2 n3 (W=2), replica n4. c1 locks k for an hour on all
// three; it reaches n4. c1's Release, coordinated by n1, commits on n1
// alone (its commits to n2 and n3 are lost): unknown to c1. n1 pushes
// the tombstone, with the lease's own token, to n4. n1 then restarts
// with empty memory and copies c1's lease back from n2 and n3: every
// master holds c1's lease again, none the tombstone. n4, asked for
// nothing, must come back to c1's lease; it kept the tombstone, which
// outranked the same token's lease in every merge, for the hour.
func TestReleaseResidueLostByItsMasterLeavesReplicas(t *testing.T) {
	n, lock := hourLockWithReplica(t)
	wantRead(t, n, n4, "k", "c1", "after the Lock's pushes")

	releaseOnN1Alone(t, n, "c1")
	n.sleep(200 * time.Millisecond) // n1 pushes the tombstone
	if e := n.core(n4).store.raw("k"); e == nil || !e.deleted || e.token != lock.Token {
		t.Fatalf("n4: k = %+v, want the tombstone of c1's lease (token %d)", e, lock.Token)
	}

	restartN1AndFollow(t, n, "c1")
}

// TestReleaseOnAQuorumKeepsItsTombstoneOnReplicas is the other side of
// the rule: a Release that committed on W masters keeps its tombstone
// on the replicas while a master that missed it holds the lease and
// pushes or snapshots it, also after a master restarted and the replica
// settled snapshots of every master.
//
// Masters n1 n2 n3 (W=2), replica n4. c1 locks k for an hour on all
// three; c1's Release commits on n1 and n2 (the commit to n3 is lost):
// n3 holds the lease, n1 and n2 its tombstone. n1 restarts with empty
// memory and catches up (the tombstone wins the tie of tokens on a
// master too); n4 takes a snapshot of n1's new life and must keep the
// tombstone the quorum holds.
func TestReleaseOnAQuorumKeepsItsTombstoneOnReplicas(t *testing.T) {
	n, lock := hourLockWithReplica(t)

	n.dropIf = func(p packet) bool {
		_, cm := p.msg.(*messages.Commit)
		return cm && p.to == n3
	}
	if rel := n.do1(n1, releaseOp("k", "c1")); !rel.OK {
		t.Fatalf("c1's Release: %+v", rel)
	}
	n.dropIf = nil
	n.sleep(200 * time.Millisecond) // n1 and n2 push the tombstone
	wantRead(t, n, n3, "k", "c1", "n3 missed the Release")

	restartAndCatchUp(t, n, n1, n2)
	n.sleep(5 * time.Second) // gossip, n4's snapshot of n1's new life, settling
	n.logKey("k", n1, n2, n3, n4)
	if got := countSent[*messages.SnapshotRequest](n, n4, n1); got == 0 {
		t.Fatal("n4 took no snapshot of n1's new life: the test needs it to settle one")
	}
	for _, a := range []string{n1, n2, n4} {
		if e := n.core(a).store.raw("k"); e == nil || !e.deleted || e.token != lock.Token {
			t.Errorf("%s: k = %+v, want the Release's tombstone (token %d), which W masters hold", a, e, lock.Token)
		}
	}
	n.checkInvariants()
}

// hourLockWithReplica starts masters n1 n2 n3 (W=2) and replica n4, and
// has c1 lock k for an hour through n1, pushed to n4 since.
func hourLockWithReplica(t *testing.T) (*network, Outcome) {
	t.Helper()
	n := newNetwork(t, n1, n2, n3, n4)
	n.configure(n1, []string{n1, n2, n3}, []string{n4}, 2)
	lock := n.do1(n1, lockOp("k", "c1", time.Hour))
	if !lock.OK {
		t.Fatalf("c1's Lock: %+v", lock)
	}
	n.sleep(200 * time.Millisecond) // pushed to n4
	return n, lock
}

// restartN1AndFollow restarts master n1 with empty memory, lets it copy
// the leases back from the others (n2 first), and requires every master
// and the replica n4 to read k = value once the replica settled: no
// master holds the Release's tombstone any more.
func restartN1AndFollow(t *testing.T, n *network, value string) {
	t.Helper()
	restartAndCatchUp(t, n, n1, n2)
	n.sleep(5 * time.Second) // gossip, n4's snapshot of n1's new life, settling
	n.logKey("k", n1, n2, n3, n4)
	for _, a := range []string{n1, n2, n3} {
		wantRead(t, n, a, "k", value, "after n1 copied the leases back")
	}
	wantRead(t, n, n4, "k", value, "once no master holds the Release's tombstone (replica divergence)")
	n.checkInvariants()
}

// releaseOnN1Alone has value's holder release k through n1, whose
// commits to the other masters are lost: the Release must not succeed
// (it committed on n1 alone, or by a repair there).
func releaseOnN1Alone(t *testing.T, n *network, value string) {
	t.Helper()
	n.dropIf = func(p packet) bool {
		_, cm := p.msg.(*messages.Commit)
		return cm && p.from == n1 && p.to != n1
	}
	rel := n.do1(n1, releaseOp("k", value))
	n.dropIf = nil
	if rel.OK {
		t.Fatalf("%s's Release succeeded with commits lost: %+v", value, rel)
	}
}
