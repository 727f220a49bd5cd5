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
	delete(n.drop, n2) // n2 is back: it learns epoch 3 from the others' answers
	if m := n.core(n1).Membership(); m.Epoch != 1 || !n.core(n1).CatchingUp() {
		t.Fatalf("n1 at %+v, catching up %v; want epoch 1, catching up", m, n.core(n1).CatchingUp())
	}
	n.sleep(5 * time.Second)
	c := n.core(n1)
	t.Logf("n1: epoch %d masters %v, catching up %v", c.Membership().Epoch, c.Membership().Masters, c.CatchingUp())
	if c.CatchingUp() {
		return // still copying: it does not vote
	}
	v, ok := n.read(n1, "k")
	t.Logf("n1: k = %q %v", v, ok)
	n.holdTo(n4)
	if o := n.do1(n1, lockOp("k", "c2", time.Hour)); o.OK {
		t.Fatalf("c2 locked k while c1's hour-long lease lives on n4 (two holders): %+v", o)
	}
}
