package core

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/protoactor-locker/locker/messages"
)

// lossyReconfigure fills three masters (W=2) with leases, then changes
// the masters to n3, n4, n5 with every message lost with probability
// loss (drawn from seed), and returns the result, the simulated time the
// change took, and the network (loss switched off again).
func lossyReconfigure(t *testing.T, seed uint64, loss float64, keys int) (ReconfigResult, time.Duration, *network) {
	t.Helper()
	cfg := testConfig()
	cfg.MaxMessageBytes = 1 << 10 // snapshots of several parts
	n := mastersWith(t, cfg, 2, n1, n2, n3)
	n.start(n4)
	n.start(n5)
	var ops []Op
	for i := range keys {
		ops = append(ops, lockOp(fmt.Sprintf("key-%03d", i), fmt.Sprintf("value-%03d", i), time.Hour))
	}
	for i, o := range n.do(n1, ops...) {
		if !o.OK {
			t.Fatalf("lock %d: %+v", i, o)
		}
	}
	n.sleep(100 * time.Millisecond)
	rng := rand.New(rand.NewPCG(seed, seed))
	n.holdIf = func(packet) bool { return rng.Float64() < loss } // held for ever: lost
	var got *ReconfigResult
	start := n.clock.now
	n.onAnswer(n1, n.core(n1).Reconfigure([]string{n3, n4, n5}, nil), func(a Answer) { got = &a.Reconfig })
	for got == nil && n.clock.now.Sub(start) < 2*time.Minute {
		n.sleep(time.Millisecond)
	}
	took := n.clock.now.Sub(start)
	n.holdIf = nil
	n.held = nil
	if got == nil {
		t.Fatalf("seed %d: the reconfiguration did not answer in %v of simulated time", seed, took)
	}
	return *got, took, n
}

// TestReconfigureUnderLoss checks that a change of masters converges
// promptly when messages are lost: every step sends again what it still
// waits for (a ConfigPrepare, a ConfigCommit, a Sync, a SnapshotRequest)
// after a retry interval, instead of waiting out the step's deadline and
// failing, and a new master behind the move learns it and syncs. Times
// are simulated, so the bound is exact for these seeds.
func TestReconfigureUnderLoss(t *testing.T) {
	const keys = 300 // about twenty snapshot parts per source
	for seed := uint64(1); seed <= 10; seed++ {
		t.Run(fmt.Sprintf("seed %d: 5%% loss, the change completes within 2s with every lease copied", seed), func(t *testing.T) {
			r, took, n := lossyReconfigure(t, seed, 0.05, keys)
			if !r.OK {
				t.Fatalf("the reconfiguration failed after %v: %+v", took, r)
			}
			if took > 2*time.Second {
				t.Fatalf("the reconfiguration took %v of simulated time, want at most 2s (the sync deadline is %v)",
					took, time.Duration(n.core(n1).syncTimeout()))
			}
			n.sleep(2 * time.Second) // the last commits and gossip land
			for _, a := range []string{n3, n4, n5} {
				requireMembership(t, n.core(a), []string{n3, n4, n5}, 2)
				for i := range keys {
					k, want := fmt.Sprintf("key-%03d", i), fmt.Sprintf("value-%03d", i)
					if v, ok := n.read(a, k); !ok || v != want {
						t.Fatalf("%s: %s = %q, %v after the change; want %q", a, k, v, ok, want)
					}
				}
			}
			if o := n.do1(n4, lockOp("key-007", "thief", time.Minute)); o.OK {
				t.Fatal("a second holder got a key after the change")
			}
			if o := n.do1(n5, extendOp("key-007", "value-007", time.Hour)); !o.OK {
				t.Fatalf("the holder cannot extend after the change: %+v", o)
			}
			n.checkInvariants()
		})
	}
}

// TestSnapshotCountsEachPartOnce checks that a snapshot whose parts were
// lost is never counted complete, even when another part arrived twice
// and makes the number of entries received match: each part counts once.
func TestSnapshotCountsEachPartOnce(t *testing.T) {
	const keys = 100
	cfg := testConfig()
	cfg.MaxMessageBytes = 1 << 10
	n := mastersWith(t, cfg, 2, n1, n2, n3)
	n.start(n4)
	var ops []Op
	for i := range keys {
		ops = append(ops, lockOp(fmt.Sprintf("key-%03d", i), fmt.Sprintf("value-%03d", i), time.Hour))
	}
	n.do(n1, ops...)
	// The first snapshot each source sends each new master: its first
	// part arrives twice, its second is lost (the parts are of equal size).
	first := map[[2]string]uint64{}
	parts := map[uint64]int{}
	again := map[uint64]bool{}
	duplicated, lost := 0, 0
	n.holdIf = func(p packet) bool {
		r, ok := p.msg.(*messages.Replicate)
		if !ok || r.GetSnapshot() == 0 {
			return false
		}
		pair := [2]string{p.from, p.to}
		if _, seen := first[pair]; !seen {
			first[pair] = r.GetSnapshot()
		}
		id := r.GetSnapshot()
		if first[pair] != id || again[id] {
			again[id] = false
			return false
		}
		parts[id]++
		switch parts[id] {
		case 1:
			again[id] = true
			duplicated++
			n.queue = append([]packet{p}, n.queue...) // delivered now and again next
		case 2:
			lost++
			return true
		}
		return false
	}
	if r := n.reconfigure(n1, []string{n2, n3, n4}, nil); !r.OK {
		t.Fatalf("reconfigure: %+v", r)
	}
	if len(first) == 0 {
		t.Fatal("no snapshot was sent")
	}
	// Not vacuous: snapshots of two parts or more, a first part repeated
	// and a second lost in every first snapshot.
	if duplicated != len(first) || lost != len(first) {
		t.Fatalf("%d first snapshots, %d with a part repeated, %d with a part lost; want every one with both", len(first), duplicated, lost)
	}
	n.holdIf = nil
	n.held = nil
	for i := range keys {
		k := fmt.Sprintf("key-%03d", i)
		if _, ok := n.read(n4, k); !ok {
			t.Fatalf("n4 lacks %s: an incomplete snapshot was counted complete", k)
		}
	}
}
