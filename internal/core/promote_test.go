package core

import (
	"testing"
	"time"

	"github.com/protoactor-locker/locker/messages"
)

// TestPromotedReplicaKeepsCopiedLeases checks the rule that a peer
// drops leases by the replica rule (settle, follow.go) only while it is
// a replica: a snapshot it asked for as a replica that completes after
// it became a master must not drop the leases the Sync of its promotion
// copied (they carry no vouch bit), or a second Lock of a live key finds
// W masters that promise it absent.
//
// Masters n1, n2, n3 (W=2), replicas n4, n5; Lock k lands on n1 and n2
// only; n4 and n5 have snapshot requests to n3 in flight (a gap in n3's
// pushes) when a Reconfigure makes n3, n4, n5 the masters. n3's
// snapshots (without k) reach n4 and n5 after the Sync copied k to
// them. (Found by review.)
func TestPromotedReplicaKeepsCopiedLeases(t *testing.T) {
	n := newNetwork(t, n1, n2, n3, n4, n5)
	n.configure(n1, []string{n1, n2, n3}, []string{n4, n5}, 2)
	// k reaches n1 and n2 only; no push of it reaches n4 or n5.
	n.drop[n3], n.drop[n4], n.drop[n5] = true, true, true
	if o := n.do1(n1, lockOp("k", "v", time.Hour)); !o.OK {
		t.Fatalf("lock: %+v", o)
	}
	n.sleep(n.cfg.ReplicationInterval)
	n.drop = map[string]bool{}
	// n3's push of k2 to the replicas is lost: a gap they notice.
	n.holdIf = func(p packet) bool { return isReplicateTo(n3, n4)(p) || isReplicateTo(n3, n5)(p) }
	n.do1(n1, lockOp("k2", "w", time.Hour))
	n.sleep(n.cfg.ReplicationInterval)
	n.held = nil
	// From now on, n3's snapshot answers to n4 and n5 are held.
	n.holdIf = func(p packet) bool {
		if p.from != n3 || (p.to != n4 && p.to != n5) {
			return false
		}
		switch m := p.msg.(type) {
		case *messages.SnapshotDone:
			return true
		case *messages.Replicate:
			return m.GetSnapshot() != 0
		}
		return false
	}
	n.sleep(2 * time.Second) // gossip shows the gap: n4 and n5 ask n3
	for _, r := range []string{n4, n5} {
		if countSent[*messages.SnapshotRequest](n, r, n3) == 0 {
			t.Fatalf("no snapshot request from %s to n3", r)
		}
	}
	// Promote n4 and n5, retire n1 and n2.
	var got *ReconfigResult
	n.onAnswer(n1, n.core(n1).Reconfigure([]string{n3, n4, n5}, nil), func(a Answer) { got = &a.Reconfig })
	for i := 0; got == nil && i < 200; i++ {
		n.run()
		if got == nil {
			n.advance(time.Millisecond)
		}
	}
	if got == nil || !got.OK {
		t.Fatalf("reconfigure: %+v", got)
	}
	wantRead(t, n, n4, "k", "v", "copied at promotion")
	wantRead(t, n, n5, "k", "v", "copied at promotion")
	// n3's late snapshot answers arrive at the new masters.
	held := n.held
	n.held, n.holdIf = nil, nil
	for _, p := range held {
		n.deliver(p)
	}
	n.run()
	wantRead(t, n, n4, "k", "v", "after n3's late snapshot")
	wantRead(t, n, n5, "k", "v", "after n3's late snapshot")
	if o := n.do1(n4, lockOp("k", "other", time.Hour)); o.OK {
		t.Fatalf("a second Lock of k while the first holder's hour lasts: %+v (two holders)", o)
	}
	n.checkInvariants()
}
