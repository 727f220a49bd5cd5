package core

import (
	"testing"
	"time"

	"github.com/protoactor-locker/locker/messages"
)

// TestCatchUpAbandonedAsReplicaEndsOnStaleSources: 1e2f3e9 plans the
// catch-up again only under a newer configuration that makes the peer a
// master. One that makes it a replica leaves the stale plan running
// (catchingUp stays set), and ad6ef0b counts its sources' snapshots from
// newer epochs, since the peer is no master now. The stale plan ends the
// catch-up; fresh was cleared when it began, so the current configuration,
// which makes the peer a master again, starts no catch-up and it votes
// with nothing copied. (Review of 1e2f3e9.)
//
// Epoch 1: masters n1 n2 n3, replicas n4 n5 (W=2). A change to masters
// n2 n3 n4 (epochs 2, 3; n1 a replica), then to masters n1 n4 n5
// (epochs 4, 5; n1 synced as an added master). c1 locks k for an hour on
// n1 and n4 (n5's commit lost); n2 and n3 (replicas) hear nothing of it.
// n1 restarts and hears stale gossip of epoch 1 (a master: catch-up from
// n2 and n3), then of epoch 3 (a replica), before its snapshots come.
func TestCatchUpAbandonedAsReplicaEndsOnStaleSources(t *testing.T) {
	n := newNetwork(t, n1, n2, n3, n4, n5)
	n.configure(n2, []string{n1, n2, n3}, []string{n4, n5}, 2)
	if r := n.reconfigure(n2, []string{n2, n3, n4}, []string{n1, n5}); !r.OK {
		t.Fatalf("first change: %+v", r)
	}
	m3 := n.core(n2).Membership()
	if m3.Epoch != 3 {
		t.Fatalf("epoch %d after the first change, want 3", m3.Epoch)
	}
	if r := n.reconfigure(n4, []string{n1, n4, n5}, []string{n2, n3}); !r.OK {
		t.Fatalf("second change: %+v", r)
	}
	if e := n.core(n1).Membership().Epoch; e != 5 {
		t.Fatalf("n1 at epoch %d, want 5", e)
	}
	n.dropIf = func(p packet) bool {
		_, cm := p.msg.(*messages.Commit)
		return (cm && p.to == n5) || ((p.to == n2 || p.to == n3) && p.from != n1)
	}
	if o := n.do1(n4, lockOp("k", "c1", time.Hour)); !o.OK {
		t.Fatalf("c1's Lock: %+v", o)
	}
	n.dropIf = nil
	n.drop[n2], n.drop[n3] = true, true
	n.sleep(3 * time.Second) // n5's promise of it runs out
	delete(n.drop, n2)
	delete(n.drop, n3)

	n.stop(n1)
	n.start(n1)
	m1 := &Membership{Epoch: 1, Masters: []string{n1, n2, n3}, Replicas: []string{n4, n5}, W: 2}
	c := n.core(n1)
	c.Step(n2, &messages.ConfigCommit{Next: toProto(m1), Incarnation: 7})
	c.Step(n2, &messages.ConfigCommit{Next: toProto(m3), Incarnation: 7})
	n.take(c)
	t.Logf("n1: epoch %d masters %v, catching up %v", c.Membership().Epoch, c.Membership().Masters, c.CatchingUp())
	// Until the stale plan's snapshots are in, n1 hears no configuration.
	n.dropIf = func(p packet) bool {
		_, cc := p.msg.(*messages.ConfigCommit)
		return cc && p.to == n1 && c.CatchingUp()
	}
	n.sleep(5 * time.Second)
	n.dropIf = nil
	n.sleep(3 * time.Second) // n1 learns epoch 5 from the gossip
	t.Logf("n1: epoch %d masters %v, catching up %v", c.Membership().Epoch, c.Membership().Masters, c.CatchingUp())
	v, ok := n.read(n1, "k")
	t.Logf("n1: k = %q %v", v, ok)
	n.holdTo(n4)
	o := n.do1(n1, lockOp("k", "c2", time.Hour))
	t.Logf("c2's Lock: %+v; n5: %+v", o, n.core(n5).store.raw("k"))
	if o.OK {
		t.Fatalf("c2 locked k while c1's hour-long lease lives on n4 (two holders): %+v", o)
	}
}
