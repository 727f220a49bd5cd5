package core

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/protoactor-locker/locker/messages"
)

// wantRead fails unless the Core at addr reads key as want ("" for absent).
func wantRead(t *testing.T, n *network, addr, key, want, when string) {
	t.Helper()
	v, ok := n.read(addr, key)
	if want == "" && ok {
		t.Fatalf("%s: %s reads %s = %q, want it absent", when, addr, key, v)
	}
	if want != "" && (!ok || v != want) {
		t.Fatalf("%s: %s reads %s = %q (%v), want %q", when, addr, key, v, ok, want)
	}
}

// isReplicateTo is a packet test: a replication push (not a snapshot
// part) from one peer to another.
func isReplicateTo(from, to string) func(packet) bool {
	return func(p packet) bool {
		r, ok := p.msg.(*messages.Replicate)
		return ok && r.GetSnapshot() == 0 && p.from == from && p.to == to
	}
}

// TestReplicaCatchUp checks that a replica repairs what it missed of
// the masters' pushes (see follow.go).
func TestReplicaCatchUp(t *testing.T) {
	retry := testConfig().RequestTimeout / 5        // retryInterval
	gossip := 10 * testConfig().ReplicationInterval // gossipInterval

	t.Run("a push lost on the way is repaired by a snapshot once the next push shows the gap", func(t *testing.T) {
		n := replicas(t, testConfig())
		n.do1(n1, lockOp("k", "v1", time.Hour))
		n.sleep(n.cfg.ReplicationInterval)
		wantRead(t, n, n2, "k", "v1", "first push")
		n.drop[n2] = true
		n.do1(n1, updateOp("k", "v1", "v2"))
		n.sleep(n.cfg.ReplicationInterval) // push 2: lost for n2
		delete(n.drop, n2)
		n.do1(n1, lockOp("k2", "w", time.Hour))
		n.sleep(n.cfg.ReplicationInterval) // push 3 shows that 2 is missing
		wantRead(t, n, n2, "k", "v1", "before the retry interval")
		if got := countSent[*messages.SnapshotRequest](n, n2, n1); got != 0 {
			t.Fatalf("%d snapshot requests before the missing push could have arrived", got)
		}
		n.sleep(retry)
		wantRead(t, n, n2, "k", "v2", "after the retry interval")
		wantRead(t, n, n2, "k2", "w", "after the retry interval")
		if a, b := countSent[*messages.SnapshotRequest](n, n2, n1), countSent[*messages.SnapshotRequest](n, n3, n1); a != 1 || b != 0 {
			t.Fatalf("snapshot requests: %d from the replica that missed a push, %d from the one that did not; want 1 and 0", a, b)
		}
		n.sleep(3 * time.Second) // gossip shows it caught up: no more snapshots
		if got := countSent[*messages.SnapshotRequest](n, n2, n1); got != 1 {
			t.Fatalf("%d snapshot requests, want 1", got)
		}
		n.checkInvariants()
	})

	t.Run("the last push lost is repaired after the next gossip", func(t *testing.T) {
		n := replicas(t, testConfig())
		n.do1(n1, lockOp("k", "v1", time.Hour))
		n.sleep(n.cfg.ReplicationInterval)
		n.drop[n2] = true
		n.do1(n1, updateOp("k", "v1", "v2"))
		n.sleep(n.cfg.ReplicationInterval)
		delete(n.drop, n2)
		wantRead(t, n, n2, "k", "v1", "nothing shows the gap yet")
		n.sleep(gossip + retry)
		wantRead(t, n, n2, "k", "v2", "a gossip interval and a retry interval later")
		n.checkInvariants()
	})

	t.Run("a key released while the replica was cut off disappears after healing and wakes WaitAbsent", func(t *testing.T) {
		n := newNetwork(t, n1, n2, n3, n4)
		n.configure(n1, []string{n1, n2, n3}, []string{n4}, 2)
		n.do1(n1, lockOp("k", "v", time.Hour))
		n.do1(n1, lockOp("stays", "s", time.Hour))
		n.sleep(n.cfg.ReplicationInterval)
		wantRead(t, n, n4, "k", "v", "pushed")
		w := n.core(n4).Store().WaitAbsent("k")
		n.drop[n4] = true
		if o := n.do1(n2, releaseOp("k", "v")); !o.OK {
			t.Fatalf("release: %+v", o)
		}
		n.sleep(10 * time.Second) // and the gossip is lost too
		wantRead(t, n, n4, "k", "v", "cut off")
		delete(n.drop, n4)
		n.sleep(gossip + 2*retry)
		wantRead(t, n, n4, "k", "", "healed")
		wantRead(t, n, n4, "stays", "s", "healed")
		select {
		case <-w.Done():
		default:
			t.Fatal("WaitAbsent not woken on the replica")
		}
		n.checkInvariants()
	})

	t.Run("a snapshot from a master that missed a write keeps the lease the others hold", func(t *testing.T) {
		n := newNetwork(t, n1, n2, n3, n4)
		n.configure(n1, []string{n1, n2, n3}, []string{n4}, 2)
		n.drop[n3] = true // n3 misses the lock of k
		if o := n.do1(n1, lockOp("k", "v", time.Hour)); !o.OK {
			t.Fatalf("lock: %+v", o)
		}
		delete(n.drop, n3)
		n.sleep(n.cfg.ReplicationInterval)
		// n3's next push to n4 is lost: n4 asks n3 for a snapshot, which lacks k.
		n.holdIf = isReplicateTo(n3, n4)
		n.do1(n1, lockOp("k2", "w", time.Hour))
		n.sleep(n.cfg.ReplicationInterval)
		n.holdIf, n.held = nil, nil
		n.sleep(gossip + 2*retry)
		if got := countSent[*messages.SnapshotRequest](n, n4, n3); got != 1 {
			t.Fatalf("%d snapshot requests to n3, want 1", got)
		}
		if n.core(n3).store.raw("k") != nil {
			t.Fatal("n3 holds k: the test needs it to have missed the lock")
		}
		wantRead(t, n, n4, "k", "v", "after n3's snapshot")
		wantRead(t, n, n4, "k2", "w", "after n3's snapshot")
		n.checkInvariants()
	})

	t.Run("a restarted master's sequence starting again is followed, late pushes of its earlier life do not stick", func(t *testing.T) {
		n := replicas(t, testConfig())
		n.holdIf = isReplicateTo(n1, n3) // n3 gets the first life's pushes late
		for i := range 3 {
			n.do1(n1, lockOp(fmt.Sprint("old", i), "v", time.Hour))
			n.sleep(n.cfg.ReplicationInterval) // pushes 1, 2, 3
		}
		n.holdIf = nil
		late := slices.Clone(n.held)
		n.held = nil
		n.stop(n1)
		n.start(n1) // empty memory: the old leases are gone with it
		n.configure(n1, []string{n1}, []string{n2, n3}, 1)
		n.do1(n1, lockOp("new", "v", time.Hour))
		n.sleep(n.cfg.ReplicationInterval) // push 1 of the new life
		wantRead(t, n, n2, "new", "v", "first push of the new life")
		for _, p := range late {
			n.deliver(p)
		}
		n.sleep(gossip + 2*retry)
		for _, a := range []string{n2, n3} {
			wantRead(t, n, a, "new", "v", "settled")
			for i := range 3 {
				wantRead(t, n, a, fmt.Sprint("old", i), "", "settled (the restarted master lost them)")
			}
		}
		n.checkInvariants()
	})

	t.Run("reordered pushes ask for no snapshot, repeated ones do not bring a key back", func(t *testing.T) {
		n := replicas(t, testConfig())
		n.holdIf = isReplicateTo(n1, n2) // push 1 is overtaken by push 2
		n.do1(n1, lockOp("k", "v", 3*time.Second))
		n.sleep(n.cfg.ReplicationInterval)
		n.holdIf = nil
		first := n.held[0]
		n.held = nil
		n.do1(n1, releaseOp("k", "v"))
		n.sleep(n.cfg.ReplicationInterval) // push 2: the tombstone
		n.deliver(first)                   // push 1, late but within the retry interval
		wantRead(t, n, n2, "k", "", "after the late push")
		n.sleep(5 * time.Second) // the tombstones are gone everywhere
		n.deliver(first)         // push 1 again
		wantRead(t, n, n2, "k", "", "after a repeated push")
		if got := countSent[*messages.SnapshotRequest](n, "", ""); got != 0 {
			t.Fatalf("%d snapshot requests", got)
		}
		n.checkInvariants()
	})

	t.Run("one snapshot request at a time, asked again when it goes unanswered", func(t *testing.T) {
		n := replicas(t, testConfig())
		n.do1(n1, lockOp("k", "v1", time.Hour))
		n.sleep(n.cfg.ReplicationInterval)
		n.drop[n2] = true
		n.do1(n1, updateOp("k", "v1", "v2"))
		n.sleep(n.cfg.ReplicationInterval)
		delete(n.drop, n2)
		n.drop[n1] = true // the snapshot requests are lost
		n.sleep(gossip)
		asked := countSent[*messages.SnapshotRequest](n, n2, n1)
		n.sleep(retry / 2)
		if got := countSent[*messages.SnapshotRequest](n, n2, n1); got != asked {
			t.Fatalf("%d requests within a retry interval of %d, want none more", got-asked, asked)
		}
		n.sleep(retry)
		if got := countSent[*messages.SnapshotRequest](n, n2, n1); got != asked+1 {
			t.Fatalf("%d requests after a retry interval, want %d", got, asked+1)
		}
		delete(n.drop, n1)
		n.sleep(2 * retry)
		wantRead(t, n, n2, "k", "v2", "once the master answers")
		n.checkInvariants()
	})

	t.Run("a replica added to a cluster with leases copies them", func(t *testing.T) {
		n := newNetwork(t, n1, n2, n3)
		n.configure(n1, []string{n1, n2}, nil, 2)
		n.do1(n1, lockOp("k", "v", time.Hour))
		n.configure(n1, []string{n1, n2}, []string{n3}, 2)
		n.sleep(gossip + 2*retry)
		wantRead(t, n, n3, "k", "v", "a gossip interval after joining")
	})
}

// TestReplicaConvergesUnderLoss runs writes from every peer over a
// network that loses messages at random, then heals it, and checks
// that every replica holds what a write quorum of masters holds (see
// below).
func TestReplicaConvergesUnderLoss(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			n := newNetwork(t, n1, n2, n3, n4, n5)
			all := []string{n1, n2, n3, n4, n5}
			n.configure(n1, []string{n1, n2, n3}, []string{n4, n5}, 2)
			loss := 0.05 + 0.25*rng.Float64()
			n.holdIf = func(packet) bool { return rng.Float64() < loss }
			var keys []string
			for i := range 20 {
				keys = append(keys, fmt.Sprint("k", i))
			}
			held := map[string]string{}
			// Keys whose last release failed after commits went out: the
			// masters that applied it pushed a tombstone, and may have
			// dropped it since.
			unknownRelease := map[string]bool{}
			for i := range 300 {
				k := keys[rng.IntN(len(keys))]
				by := all[rng.IntN(len(all))]
				v := fmt.Sprint("v", i)
				var op Op
				switch old, ok := held[k]; {
				case !ok:
					op = lockOp(k, v, time.Hour)
				case rng.IntN(3) == 0:
					op = releaseOp(k, old)
				default:
					op = updateOp(k, old, v)
				}
				c := n.submit(by, op)
				for waited := time.Duration(0); !c.done() && waited <= 2*n.cfg.RequestTimeout; waited += time.Millisecond {
					n.sleep(time.Millisecond)
				}
				n.held = nil // lost
				if c.done() && !c.one().OK && c.one().Phase == PhaseCommit && op.Kind == messages.WriteKind_WRITE_KIND_RELEASE {
					unknownRelease[k] = true
				}
				if c.done() && c.one().OK {
					if op.Kind != messages.WriteKind_WRITE_KIND_RELEASE {
						delete(unknownRelease, k)
					}
					switch op.Kind {
					case messages.WriteKind_WRITE_KIND_RELEASE:
						delete(held, k)
					case messages.WriteKind_WRITE_KIND_LOCK:
						held[k] = v
					default:
						held[k] = string(op.NewValue)
					}
				}
				n.sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
			}
			n.holdIf = nil
			n.sleep(5 * time.Second)
			// What the replicas must hold: the lease with the newest token
			// among the masters' when a write quorum holds it and no master
			// released it, nothing when no master holds the key. Otherwise
			// (a minority holds a write's residue, or released the lease in
			// a release whose outcome is unknown: the tombstones it pushed
			// win) either is right.
			checked, open := 0, 0
			state := func(c *Core, k string) string {
				if e := c.store.get(k, c.now()); e != nil {
					return fmt.Sprintf("%q token %d", e.value, e.token)
				}
				return "absent"
			}
			for _, k := range keys {
				var newest *entry
				holders, absent, released := 0, 0, uint64(0)
				for _, m := range []string{n1, n2, n3} {
					c := n.core(m)
					if e := c.store.raw(k); e != nil && e.deleted {
						released = max(released, e.token)
					}
					switch e := c.store.get(k, c.now()); {
					case e == nil:
						absent++
					case newest == nil || e.token > newest.token:
						newest, holders = e, 1
					case e.token == newest.token:
						holders++
					}
				}
				want := "absent"
				switch {
				case absent == 3:
				case holders >= 2 && released < newest.token && !unknownRelease[k]:
					want = fmt.Sprintf("%q token %d", newest.value, newest.token)
				default:
					open++
					continue
				}
				checked++
				for _, r := range []string{n4, n5} {
					if got := state(n.core(r), k); got != want {
						t.Errorf("replica %s holds %s: %s, want %s", r, k, got, want)
					}
				}
			}
			if checked < len(keys)/3 {
				t.Fatalf("%d keys checked, %d left open: the test checks too little", checked, open)
			}
			n.checkInvariants()
		})
	}
}
