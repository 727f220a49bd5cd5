package core

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/protoactor-locker/locker/messages"
)

// snapshotKeys fills the master at addr (W=1 or a quorum, by do) with
// the leases key-000, key-002, ... key-038: twenty entries of 64 bytes,
// which a MaxMessageBytes of 1 KiB cuts into parts of 14 and 6.
func snapshotKeys(t *testing.T, n *network, addr string) {
	t.Helper()
	var ops []Op
	for i := 0; i < 40; i += 2 {
		ops = append(ops, lockOp(fmt.Sprintf("key-%03d", i), fmt.Sprintf("value-key-%03d", i), time.Hour))
	}
	for i, o := range n.do(addr, ops...) {
		if !o.OK {
			t.Fatalf("lock %d: %+v", i, o)
		}
	}
}

// answerTwice delivers the SnapshotRequest req to its source twice, with
// key-001 added to the source's table in between, and returns the two
// answers (parts then SnapshotDone, as sent). The boundaries of the parts
// shift between them: the first has parts of 14 (from key-000) and 6
// entries, the second parts of 14 (from key-000, now with key-001) and 7
// (from key-026).
func answerTwice(t *testing.T, n *network, req packet) (first, second []packet) {
	t.Helper()
	src := n.core(req.to)
	answer := func() []packet {
		n.queue = nil
		n.deliver(req)
		out := n.pending()
		n.queue = nil
		return out
	}
	first = answer()
	src.putLease("key-001", []byte("value-key-001"), src.now()+int64(time.Hour), src.token())
	second = answer()
	sizes := func(ps []packet) []int {
		var s []int
		for _, p := range ps {
			if r, ok := p.msg.(*messages.Replicate); ok {
				s = append(s, len(r.GetEntries()))
			}
		}
		return s
	}
	if a, b := sizes(first), sizes(second); fmt.Sprint(a) != "[14 6]" || fmt.Sprint(b) != "[14 7]" {
		t.Fatalf("parts of %v and %v entries; the test needs [14 6] and [14 7]", a, b)
	}
	return first, second
}

// TestSnapshotIntegrity checks the rule that a snapshot counts complete
// only when every part of one snapshot arrived from the peer asked: a
// SnapshotRequest repeated on the way is answered twice, and when the
// source's table changed in between, parts of the two answers must not
// add up to one complete snapshot (a lease would be missing), nor may
// parts from another peer fill a gap.
func TestSnapshotIntegrity(t *testing.T) {
	cfg := testConfig()
	cfg.MaxMessageBytes = 1 << 10

	// catchUp restarts n3 of three masters (W=2) empty, lets it copy n2's
	// snapshot, and returns its SnapshotRequest to n1, not delivered yet.
	catchUp := func(t *testing.T) (*network, packet) {
		n := mastersWith(t, cfg, 2, n1, n2, n3)
		snapshotKeys(t, n, n1)
		n.stop(n3)
		n.start(n3)
		n.advance(time.Duration(n.core(n3).settleWait())) // its earlier life's writes are decided: it asks at once
		n.core(n3).Step(n1, &messages.ConfigCommit{Next: toProto(n.core(n1).Membership())})
		var req packet
		for _, p := range n.pending() {
			if _, ok := p.msg.(*messages.SnapshotRequest); ok && p.to == n1 {
				req = p
			}
		}
		if req.msg == nil {
			t.Fatal("n3 did not ask n1 for a snapshot")
		}
		var rest []packet
		for _, p := range n.queue {
			if p.to != n1 {
				rest = append(rest, p)
			}
		}
		n.queue = rest
		n.run() // n2's snapshot, complete
		if !n.core(n3).CatchingUp() {
			t.Fatal("n3 caught up from one snapshot; it needs two")
		}
		return n, req
	}

	t.Run("catch-up: parts of two answers to a repeated request do not make a snapshot", func(t *testing.T) {
		n, req := catchUp(t)
		first, second := answerTwice(t, n, req)
		c := n.core(n3)
		// The first answer's first part, the second answer's second part
		// and end: 14 + 7 entries, the 21 the end announces, key-001 in
		// neither part.
		for _, p := range []packet{first[0], second[1], second[2]} {
			c.Step(p.from, p.msg)
		}
		if !c.CatchingUp() {
			_, ok := n.read(n3, "key-001")
			t.Fatalf("n3 counted a mix of two snapshots complete and votes again (holds key-001: %v)", ok)
		}
		n.sleep(time.Second) // asked again: a whole new snapshot
		if c.CatchingUp() {
			t.Fatal("n3 did not catch up after asking again")
		}
		wantRead(t, n, n3, "key-001", "value-key-001", "after catching up")
		n.checkInvariants()
	})

	t.Run("catch-up: a part from a peer not asked does not count and is not applied", func(t *testing.T) {
		n, req := catchUp(t)
		first, _ := answerTwice(t, n, req)
		c := n.core(n3)
		c.Step(first[0].from, first[0].msg)
		// The missing part, from someone else, with a lease of its own.
		forged := proto.Clone(first[1].msg).(*messages.Replicate)
		forged.Entries = append(forged.Entries, &messages.Entry{Key: "forged", Value: []byte("x"), Token: 1 << 62, LeaseMs: time.Hour.Milliseconds()})
		c.Step(outsider, forged)
		wantRead(t, n, n3, "forged", "", "after a part from a peer not asked")
		c.Step(first[2].from, first[2].msg)
		if !c.CatchingUp() {
			t.Fatal("n3 counted a part from a peer it did not ask")
		}
		// The same part from the peer asked, after the snapshot ended
		// (incomplete, so asked again under a new request): late.
		late := proto.Clone(forged).(*messages.Replicate)
		c.Step(first[1].from, late)
		wantRead(t, n, n3, "forged", "", "after a part that came after its snapshot's end")
		// And a part of a request nobody made.
		late.Snapshot = 1<<63 + 1
		c.Step(first[1].from, late)
		wantRead(t, n, n3, "forged", "", "after a part of a snapshot nobody asked for")
		n.checkInvariants()
	})

	t.Run("replica: parts of two answers to a repeated request do not settle it", func(t *testing.T) {
		n := newNetworkWith(t, cfg, n1, n2)
		n.configure(n1, []string{n1}, []string{n2}, 1)
		snapshotKeys(t, n, n1)
		n.sleep(n.cfg.ReplicationInterval)
		// The replica restarts and hears n1's gossip: it asks for a
		// snapshot a retry interval later.
		n.stop(n2)
		n.start(n2)
		m := n.core(n1)
		n.core(n2).Step(n1, &messages.ConfigCommit{Next: toProto(m.Membership()), Incarnation: m.incarnation, Sequence: m.replicaSeq()})
		n.queue = nil
		n.advance(n.cfg.RequestTimeout / 5)
		var req packet
		for _, p := range n.pending() {
			if _, ok := p.msg.(*messages.SnapshotRequest); ok && p.from == n2 {
				req = p
			}
		}
		if req.msg == nil {
			t.Fatal("the replica did not ask for a snapshot")
		}
		first, second := answerTwice(t, n, req)
		r := n.core(n2)
		for _, p := range []packet{first[0], second[1], second[2]} {
			r.Step(p.from, p.msg)
		}
		if f := r.follows[n1]; f == nil || f.snap == 0 {
			t.Fatal("the replica settled a mix of two snapshots as complete")
		}
		n.sleep(time.Second)
		wantRead(t, n, n2, "key-001", "value-key-001", "after the snapshot asked again")
		n.checkInvariants()
	})
}
