package core

import (
	"testing"
	"time"

	"github.com/protoactor-locker/locker/messages"
)

// TestReplicaDropsOnlyOnEveryVotersWord checks the rule that a replica
// drops a lease (telling OnChange it was released) only when every
// voter of its configuration is known to lack it (follow.go): after the
// masters are replaced, the leases it holds are vouched for only by the
// retired masters, and the first new master's snapshot lacking a key
// says nothing of the others. A voter that does not number its pushes
// (incarnation 0, an older peer) is never known, so it keeps its leases.
//
// The replica n4 is a real Core; the masters are played by hand.
func TestReplicaDropsOnlyOnEveryVotersWord(t *testing.T) {
	const n6, n7 = "10.0.0.6:1", "10.0.0.7:1"
	incs := map[string]uint64{n1: 11, n2: 22, n3: 33, n5: 55, n6: 66, n7: 77}
	setup := func(t *testing.T, newMasters []string) (*network, *Core, *[]Change) {
		n := newNetwork(t, n4)
		r := n.core(n4)
		var changes []Change
		r.Store().OnChange = func(ch Change) { changes = append(changes, ch) }
		gossip := func(from string, m *Membership, seq uint64) {
			r.Step(from, &messages.ConfigCommit{Next: toProto(m), Incarnation: incs[from], Sequence: seq})
		}
		old := &Membership{Epoch: 1, Masters: []string{n1, n2, n3}, Replicas: []string{n4}, W: 2}
		for _, a := range old.Masters {
			gossip(a, old, 0)
		}
		for _, a := range []string{n1, n2} {
			r.Step(a, &messages.Replicate{Incarnation: incs[a], Sequence: 1, Epoch: 1,
				Entries: []*messages.Entry{{Key: "k", Value: []byte("v"), Token: 7, LeaseMs: time.Hour.Milliseconds()}}})
		}
		wantRead(t, n, n4, "k", "v", "pushed")
		// The masters are replaced; the new ones copied leases (Sync):
		// sequence 1, which n4 never had.
		next := &Membership{Epoch: 3, Masters: newMasters, Replicas: []string{n4}, W: len(newMasters)/2 + 1}
		for _, a := range newMasters {
			gossip(a, next, 1)
		}
		n.queue = nil
		n.advance(n.cfg.RequestTimeout / 5) // a retry interval: n4 asks each for a snapshot
		return n, r, &changes
	}
	// answer completes the snapshot n4 asked from of, lacking k.
	answer := func(t *testing.T, n *network, from string) {
		t.Helper()
		var req *messages.SnapshotRequest
		for _, p := range n.pending() {
			if m, ok := p.msg.(*messages.SnapshotRequest); ok && p.to == from {
				req = m
			}
		}
		if req == nil {
			t.Fatalf("n4 asked %s for no snapshot", from)
		}
		n.core(n4).Step(from, &messages.SnapshotDone{Request: req.GetRequest(), Incarnation: incs[from], Sequence: 1, Nonce: 99})
	}
	released := func(changes []Change) bool {
		for _, ch := range changes {
			if ch.Kind == Released && ch.Key == "k" {
				return true
			}
		}
		return false
	}

	t.Run("one new master's snapshot does not drop what the others may hold", func(t *testing.T) {
		n, _, changes := setup(t, []string{n5, n6, n7})
		answer(t, n, n5)
		wantRead(t, n, n4, "k", "v", "after one new master's snapshot lacking k")
		answer(t, n, n6)
		wantRead(t, n, n4, "k", "v", "after two of three new masters' snapshots lacking k")
		if released(*changes) {
			t.Fatal("k was told released while a voter's word was unknown")
		}
		answer(t, n, n7)
		wantRead(t, n, n4, "k", "", "after every new master's snapshot lacked k")
		if !released(*changes) {
			t.Fatal("the drop was not told to OnChange")
		}
		n.checkInvariants()
	})
	t.Run("a voter that does not number its pushes keeps the lease", func(t *testing.T) {
		incs[n7] = 0
		defer func() { incs[n7] = 77 }()
		n, _, changes := setup(t, []string{n5, n6, n7})
		answer(t, n, n5)
		answer(t, n, n6)
		wantRead(t, n, n4, "k", "v", "with an older peer among the voters")
		if released(*changes) {
			t.Fatal("k was told released")
		}
	})
}

// TestCheckNodesBoundsMasters checks that a configuration has at most as
// many masters as a replica has vouch bits.
func TestCheckNodesBoundsMasters(t *testing.T) {
	var ms []string
	for i := range MaxMasters + 1 {
		ms = append(ms, "10.1.0.1:"+string(rune('0'+i/10))+string(rune('0'+i%10))+"1")
	}
	ms = SortedSet(ms)
	if msg := CheckNodes(ms[:MaxMasters], nil, 1); msg != "" {
		t.Fatalf("%d masters refused: %s", MaxMasters, msg)
	}
	if msg := CheckNodes(ms, nil, 1); msg == "" {
		t.Fatalf("%d masters accepted", len(ms))
	}
	var got *ReconfigResult
	n := newNetwork(t, n1)
	n.onAnswer(n1, n.core(n1).Reconfigure(ms, nil), func(a Answer) { got = &a.Reconfig })
	if got == nil || got.Reason != messages.Reason_REASON_INVALID_ARGUMENT {
		t.Fatalf("Reconfigure with %d masters: %+v, want INVALID_ARGUMENT", len(ms), got)
	}
}
