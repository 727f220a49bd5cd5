package core

import (
	"slices"
	"testing"
	"time"

	"github.com/protoactor-locker/locker/messages"
)

// TestCatchUpPlannedOnAStaleConfiguration: a restarted master plans its
// catch-up on the first configuration it hears that makes it a voter,
// and keeps that plan when it learns a newer one (adopt starts a
// catch-up only while the peer is fresh). If the first is stale, its
// sources are that configuration's voters, which need not hold what the
// newer configuration's quorums committed. 5fc4b8f makes the master
// learn the newer configuration from a source's answer before it merges
// the snapshot, but the catch-up still copies from the old voters and
// ends; the master then votes under the newer configuration without the
// leases it acknowledged in its earlier life. (Review of 5fc4b8f; the
// plan itself predates it.)
//
// Epoch 1: masters n1 n2 n3 (W=2), replicas n4 n5. With n2 cut off, a
// change to masters n1 n4 n5 and no replicas (epochs 2, 3): n2 stays at
// epoch 1 (cut off until n1's restart), n3 is left out. c1 locks k for an hour under epoch 3 on n1
// and n4 (the commit to n5 is lost). n1 restarts empty and hears n2's
// gossip of epoch 1 first: it catches up from n2 and n3, neither of
// which ever had k, learns epoch 3 on the way, and votes. c2's Lock of k
// through n1, with n4 cut off, gets n1 and n5: two holders.
func TestCatchUpPlannedOnAStaleConfiguration(t *testing.T) {
	n := newNetwork(t, n1, n2, n3, n4, n5)
	n.configure(n2, []string{n1, n2, n3}, []string{n4, n5}, 2)

	n.drop[n2] = true
	if r := n.reconfigure(n1, []string{n1, n4, n5}, nil); !r.OK {
		t.Fatalf("change: %+v", r)
	}
	if e := n.core(n2).Membership().Epoch; e != 1 {
		t.Fatalf("n2 at epoch %d, want 1", e)
	}
	final := n.core(n1).Membership()
	if !slices.Equal(final.Masters, []string{n1, n4, n5}) || final.Joint() {
		t.Fatalf("n1 at %+v, want masters n1 n4 n5", final)
	}

	n.dropIf = func(p packet) bool {
		_, cm := p.msg.(*messages.Commit)
		return cm && p.to == n5
	}
	if o := n.do1(n4, lockOp("k", "c1", time.Hour)); !o.OK {
		t.Fatalf("c1's Lock: %+v", o)
	}
	n.dropIf = nil
	n.sleep(3 * time.Second) // n5's promise of it runs out

	// n1 restarts; n2's gossip of epoch 1 reaches it first.
	n.stop(n1)
	n.start(n1)
	n.core(n1).Step(n2, &messages.ConfigCommit{Next: toProto(n.core(n2).Membership()), Incarnation: n.core(n2).incarnation})
	n.take(n.core(n1))
	delete(n.drop, n2) // n2 is back: it learns epoch 3 from the others' answers
	if m := n.core(n1).Membership(); m.Epoch != 1 || !n.core(n1).CatchingUp() {
		t.Fatalf("n1 at %+v, catching up %v; want epoch 1, catching up", m, n.core(n1).CatchingUp())
	}
	n.sleep(5 * time.Second)
	c := n.core(n1)
	t.Logf("n1: epoch %d masters %v, catching up %v", c.Membership().Epoch, c.Membership().Masters, c.CatchingUp())
	if c.CatchingUp() {
		t.Fatal("n1 still catching up with every peer reachable")
	}
	v, ok := n.read(n1, "k")
	t.Logf("n1: k = %q %v", v, ok)
	n.holdTo(n4)
	n.requireRefused(n1, lockOp("k", "c2", time.Hour), "c2 locked k while c1's hour-long lease lives on n4 (two holders)")
}

// TestCatchUpEndedByAnEmptySnapshotFromANewerEpoch: the rule of 5fc4b8f
// (a master learns a newer configuration before it takes a snapshot
// from it) looks at snapshot parts, and an empty snapshot has none:
// its SnapshotDone alone, which carries no epoch, counts. A restarted
// master that plans its catch-up on a stale configuration can then end
// it with no source telling it the configuration moved on, and vote
// under the newer one, once it hears of it, with nothing copied from
// its quorums.
//
// As TestCatchUpPlannedOnAStaleConfiguration, but nothing is written
// before the change (n2 and n3 hold no key: their snapshots are empty),
// and while n1 catches up it is cut off from n4 and n5, and n3's
// answers to n1's gossip are lost. n1 copies the empty snapshots of n2
// (epoch 1) and n3 (epoch 3), ends its catch-up under epoch 1, then
// learns epoch 3 and, with n5, grants a second Lock of k.
func TestCatchUpEndedByAnEmptySnapshotFromANewerEpoch(t *testing.T) {
	n := newNetwork(t, n1, n2, n3, n4, n5)
	n.configure(n2, []string{n1, n2, n3}, []string{n4, n5}, 2)

	n.drop[n2] = true
	if r := n.reconfigure(n1, []string{n1, n4, n5}, nil); !r.OK {
		t.Fatalf("change: %+v", r)
	}
	if e := n.core(n3).Membership().Epoch; e != 3 {
		t.Fatalf("n3 at epoch %d, want 3", e)
	}
	n.dropIf = func(p packet) bool {
		_, cm := p.msg.(*messages.Commit)
		return cm && p.to == n5
	}
	if o := n.do1(n4, lockOp("k", "c1", time.Hour)); !o.OK {
		t.Fatalf("c1's Lock: %+v", o)
	}
	n.sleep(3 * time.Second) // n5's promise of it runs out

	// n1 restarts cut off from n4 and n5; n2 stays at epoch 1 (cut off
	// from n3 too); n3's answers to n1's gossip are lost.
	side := func(a string) bool { return a == n4 || a == n5 }
	n.dropIf = func(p packet) bool {
		_, cc := p.msg.(*messages.ConfigCommit)
		return side(p.from) != side(p.to) ||
			(p.from == n2 && p.to == n3) || (p.from == n3 && p.to == n2) ||
			(cc && p.from == n3 && p.to == n1)
	}
	n.stop(n1)
	n.start(n1)
	n.core(n1).Step(n2, &messages.ConfigCommit{Next: toProto(n.core(n2).Membership()), Incarnation: n.core(n2).incarnation})
	n.take(n.core(n1))
	delete(n.drop, n2)
	n.sleep(3 * time.Second)
	c := n.core(n1)
	t.Logf("n1 before the heal: epoch %d, catching up %v", c.Membership().Epoch, c.CatchingUp())

	n.dropIf = nil
	n.sleep(3 * time.Second)
	t.Logf("n1 after the heal: epoch %d masters %v, catching up %v", c.Membership().Epoch, c.Membership().Masters, c.CatchingUp())
	if c.CatchingUp() {
		t.Fatal("n1 still catching up with every peer reachable")
	}
	wantRead(t, n, n1, "k", "c1", "after catching up under epoch 3")
	n.holdTo(n4)
	n.requireRefused(n1, lockOp("k", "c2", time.Hour), "c2 locked k while c1's hour-long lease lives on n4 (two holders)")
}
