package core

import (
	"fmt"
	"testing"
	"time"

	"github.com/protoactor-locker/locker/messages"
)

// TestShadowDeadline checks that an entry does not forget, when its
// lease runs out, a later deadline of a state it replaced: a short lease
// taken over the tombstone of a long one ends as a tombstone kept until
// the long one's deadline, so that a stale copy of the released lease
// cannot come back (sim seed 4396: a ghost lease of a released key on a
// quorum of masters, copied from masters that missed the Release).
func TestShadowDeadline(t *testing.T) {
	t.Run("a stale copy of a released lease does not come back after a short relock expired", func(t *testing.T) {
		n := newNetwork(t, n1)
		c := n.core(n1)
		var changes []Change
		c.Store().OnChange = func(ch Change) { changes = append(changes, ch) }
		old := n.do1(n1, lockOp("k", "old", time.Hour))
		if o := n.do1(n1, releaseOp("k", "old")); !o.OK {
			t.Fatalf("release: %+v", o)
		}
		short := n.do1(n1, lockOp("k", "new", 100*time.Millisecond))
		if !short.OK || short.Token <= old.Token {
			t.Fatalf("relock: %+v", short)
		}
		n.sleep(time.Second) // the short lease ran out
		if _, ok := n.read(n1, "k"); ok {
			t.Fatal("k held after its lease ran out")
		}
		l, ok := c.Store().Lookup("k")
		if !ok || !l.Released || l.Token != old.Token || l.Left <= 50*time.Minute {
			t.Fatalf("k after expiry: %+v, %v; want a tombstone with token %d (the released lease's) for the hour's rest", l, ok, old.Token)
		}
		expired := 0
		for _, ch := range changes {
			if ch.Key == "k" && ch.Kind == Expired {
				expired++
			}
		}
		if last := changes[len(changes)-1]; expired != 1 || last.Kind != Expired || string(last.Value) != "new" {
			t.Fatalf("changes %+v, want the short lease expired once, last", changes)
		}
		// A master that missed the Release copies the hour-long lease here.
		replicate(c, outsider, &messages.Entry{Key: "k", Value: []byte("old"), LeaseMs: (58 * time.Minute).Milliseconds(), Token: old.Token})
		if v, ok := n.read(n1, "k"); ok {
			t.Fatalf("k = %q: the released lease came back", v)
		}
		if o := n.do1(n1, lockOp("k", "next", time.Second)); !o.OK {
			t.Fatalf("lock after the short lease: %+v", o)
		}
		n.checkInvariants()
		// The tombstone goes at the hour's end.
		n.sleep(time.Hour)
		if _, ok := c.Store().Lookup("k"); ok {
			t.Fatal("k kept past the released lease's deadline")
		}
		n.checkInvariants()
	})
	t.Run("a copy carries the tombstone under it", func(t *testing.T) {
		n := newNetwork(t, n2)
		c := n.core(n2)
		replicate(c, n1, &messages.Entry{Key: "k", Value: []byte("old"), LeaseMs: (time.Hour).Milliseconds(), Token: 10})
		// n1 released "old" and took "new" over its tombstone.
		replicate(c, n1, &messages.Entry{Key: "k", Value: []byte("new"), LeaseMs: 100, Token: 20,
			ShadowMs: (time.Hour).Milliseconds(), ShadowToken: 10})
		n.sleep(time.Second)
		if l, ok := c.Store().Lookup("k"); !ok || !l.Released || l.Token != 10 || l.Left <= 50*time.Minute {
			t.Fatalf("k after expiry: %+v, %v; want the tombstone under \"new\" (token 10) for the hour's rest", l, ok)
		}
		replicate(c, n3, &messages.Entry{Key: "k", Value: []byte("old"), LeaseMs: (50 * time.Minute).Milliseconds(), Token: 10})
		if v, ok := n.read(n2, "k"); ok {
			t.Fatalf("k = %q: the released lease came back", v)
		}
		replicate(c, n1, &messages.Entry{Key: "k", Value: []byte("newer"), LeaseMs: 1000, Token: 30})
		if v, ok := n.read(n2, "k"); !ok || v != "newer" {
			t.Fatalf("k = %q, %v; want the newer state", v, ok)
		}
		n.checkInvariants()
	})
	t.Run("a copy without a tombstone under it replacing a longer lease leaves none", func(t *testing.T) {
		// A replica mirrors pushes: the lease a push replaced may live on
		// at a quorum (TestShadowOfAMirroredLeaseDoesNotHideIt), and a
		// later copy of it must land.
		n := newNetwork(t, n2)
		c := n.core(n2)
		replicate(c, n1, &messages.Entry{Key: "k", Value: []byte("old"), LeaseMs: (time.Hour).Milliseconds(), Token: 10})
		replicate(c, n3, &messages.Entry{Key: "k", Value: []byte("new"), LeaseMs: 100, Token: 20})
		n.sleep(time.Second)
		if l, ok := c.Store().Lookup("k"); ok {
			t.Fatalf("k after expiry: %+v; want nothing", l)
		}
		replicate(c, n1, &messages.Entry{Key: "k", Value: []byte("old"), LeaseMs: (50 * time.Minute).Milliseconds(), Token: 10})
		if v, ok := n.read(n2, "k"); !ok || v != "old" {
			t.Fatalf("k = %q, %v; want the lease pushed again", v, ok)
		}
		n.checkInvariants()
	})
	t.Run("relocks do not make the tombstone outlive the released lease", func(t *testing.T) {
		n := newNetwork(t, n1)
		c := n.core(n1)
		n.do1(n1, lockOp("k", "old", time.Minute))
		n.do1(n1, releaseOp("k", "old"))
		end := n.clock.now.Add(time.Minute)
		for i := range 20 {
			if o := n.do1(n1, lockOp("k", fmt.Sprint("short", i), 100*time.Millisecond)); !o.OK {
				t.Fatalf("relock %d: %+v", i, o)
			}
			n.sleep(time.Second)
		}
		if l, ok := c.Store().Lookup("k"); !ok || !l.Released || n.clock.now.Add(l.Left).After(end.Add(time.Millisecond)) {
			t.Fatalf("k after 20 relocks: %+v, %v; want the tombstone until the released minute's end", l, ok)
		}
		n.sleep(end.Sub(n.clock.now) + time.Millisecond)
		if l, ok := c.Store().Lookup("k"); ok {
			t.Fatalf("k kept past the released lease's end: %+v", l)
		}
		n.checkInvariants()
	})
	t.Run("the tombstone left by an expiry does not block the same lease extended elsewhere", func(t *testing.T) {
		// The tombstone takes the replaced lease's token: the short lease
		// itself may live on at masters that saw an Extend this one missed,
		// and a copy of it still lands here.
		n := newNetwork(t, n1)
		c := n.core(n1)
		n.do1(n1, lockOp("k", "old", time.Hour))
		n.do1(n1, releaseOp("k", "old"))
		short := n.do1(n1, lockOp("k", "new", 100*time.Millisecond))
		n.sleep(time.Second)
		replicate(c, outsider, &messages.Entry{Key: "k", Value: []byte("new"), LeaseMs: 5000, Token: short.Token})
		if v, ok := n.read(n1, "k"); !ok || v != "new" {
			t.Fatalf("k = %q, %v; want the extended lease", v, ok)
		}
		n.checkInvariants()
	})
}

// TestShadowOfAMirroredLeaseDoesNotHideIt: a replica mirrors what its
// masters push, so the state a push replaces there may be a lease a
// quorum still holds: here the residue of the holder's own Update,
// committed on one master alone whose copy of the lease is shorter,
// replaces on the replicas the hour-long lease the other two masters
// hold. When the residue's lease runs out, the replicas must not keep a
// tombstone with the replaced lease's token until its hour: it would
// hide that lease from every later push of it (replica divergence), and
// from the Sync that makes the replicas masters, which would then grant
// a second Lock of a held key. (Review of 8cc6210.)
//
// Masters n1 n2 n3 (W=2), replicas n4 n5. c1 locks k for 5 s and
// extends it to an hour through n2 (n3's commit is lost: n3 keeps the
// 5 s). c1's Update of k through n3 commits on n3 alone (n1's commit is
// lost, n2 hears nothing); n3 pushes it, live for the 2.5 s it has left.
func TestShadowOfAMirroredLeaseDoesNotHideIt(t *testing.T) {
	n := newNetwork(t, n1, n2, n3, n4, n5)
	n.configure(n2, []string{n1, n2, n3}, []string{n4, n5}, 2)
	lock := n.do1(n2, lockOp("k", "v", 5*time.Second))
	if !lock.OK {
		t.Fatalf("c1's Lock: %+v", lock)
	}
	n.sleep(200 * time.Millisecond) // pushed to the replicas
	n.dropIf = func(p packet) bool {
		_, cm := p.msg.(*messages.Commit)
		return cm && p.to == n3
	}
	if o := n.do1(n2, extendOp("k", "v", time.Hour)); !o.OK {
		t.Fatalf("c1's Extend: %+v", o)
	}
	n.dropIf = nil
	// n1 and n2 push the hour; n3's promise of the Extend, never
	// decided there, holds k until the write-lock timeout.
	n.sleep(n.cfg.WriteLockTimeout + 100*time.Millisecond)
	n.dropIf = func(p packet) bool {
		_, cm := p.msg.(*messages.Commit)
		return p.from == n3 && (p.to == n2 || (cm && p.to == n1))
	}
	upd := n.submit(n3, updateOp("k", "v", "v2"))
	n.settle(upd)
	n.dropIf = nil
	if o := upd.one(); o.OK {
		t.Fatalf("c1's Update succeeded: %+v", o)
	}
	t.Logf("c1's Update: %+v", upd.one())
	n.logKey("k", n1, n2, n3, n4, n5)
	n.sleep(200 * time.Millisecond) // n3 pushes the Update, live
	for _, r := range []string{n4, n5} {
		if v, _ := n.read(r, "k"); v != "v2" {
			t.Fatalf("replica %s: k = %q, want the Update's residue pushed by n3", r, v)
		}
	}
	n.sleep(5 * time.Second) // the residue ran out everywhere
	n.logKey("k", n1, n2, n3, n4, n5)

	// c1 goes on extending its lease, through the quorum.
	if o := n.do1(n2, extendOp("k", "v", time.Hour)); !o.OK {
		t.Fatalf("c1's second Extend: %+v", o)
	}
	n.sleep(time.Second) // pushed
	n.logKey("k", n1, n2, n3, n4, n5)
	for _, r := range []string{n4, n5} {
		if v, ok := n.read(r, "k"); !ok || v != "v" {
			t.Errorf("replica %s: k = %q %v after c1's Extend was pushed; n1 and n2 hold c1's lease (token %d) for an hour (replica divergence)", r, v, ok, lock.Token)
		}
	}
	if r := n.reconfigure(n1, []string{n1, n4, n5}, []string{n2, n3}); !r.OK {
		t.Fatalf("promoting n4 and n5: %+v", r)
	}
	n.logKey("k", n1, n4, n5)
	n.requireRefused(n4, lockOp("k", "c2", time.Hour), "c2 locked k while c1's hour-long lease lives (two holders)")
}

// TestShadowTravelsWithTheLease: the later deadline of the released
// lease a short relock replaced must go with the relock when it is
// copied. A master restarted with empty memory copies, while the relock
// lives, the relock from one master and the released lease from the
// master that missed the Release; merged as a voter's copy, the relock
// took the released lease's hour (a merge keeps the later deadline), and
// the key stayed locked by nobody for that hour once the relock ran out
// (the ghost lease). (Review of 8cc6210.)
//
// Masters n1 n2 n3 (W=2). c1 locks k for an hour and releases it (the
// commit to n3 is lost); c2 locks k for 3 s (n3's repair is lost). n2
// restarts and catches up from n1 and n3 while c2's lease lives; once it
// ran out, n1 restarts and catches up from n2 and n3.
func TestShadowTravelsWithTheLease(t *testing.T) {
	n := newNetwork(t, n1, n2, n3)
	n.configure(n1, []string{n1, n2, n3}, nil, 2)
	if o := n.do1(n1, lockOp("k", "c1", time.Hour)); !o.OK {
		t.Fatalf("c1's Lock: %+v", o)
	}
	n.dropIf = func(p packet) bool {
		_, cm := p.msg.(*messages.Commit)
		return cm && p.to == n3
	}
	if o := n.do1(n1, releaseOp("k", "c1")); !o.OK {
		t.Fatalf("c1's Release: %+v", o)
	}
	if o := n.do1(n1, lockOp("k", "c2", 3*time.Second)); !o.OK {
		t.Fatalf("c2's Lock: %+v", o)
	}
	n.dropIf = nil
	restartAndCatchUp(t, n, n2, n1)
	n.logKey("k", n1, n2, n3)
	n.sleep(3 * time.Second) // c2's lease ran out
	n.logKey("k", n1, n2, n3)
	if v, ok := n.read(n2, "k"); ok {
		t.Errorf("n2 holds k = %q after c2's lease ran out", v)
	}
	// n1 restarts in turn and copies from n2 (the tombstone under c2's
	// lease, copied with it) and n3 (c1's stale lease).
	restartAndCatchUp(t, n, n1, n2)
	n.logKey("k", n1, n2, n3)
	if v, ok := n.read(n1, "k"); ok {
		t.Errorf("n1 holds k = %q after c2's lease ran out (c1 released k)", v)
	}
	if o := n.do1(n1, lockOp("k", "c3", time.Second)); !o.OK {
		t.Errorf("c3's Lock after c2's lease ran out (c1 released k): %+v", o)
	}
	n.checkInvariants()
}
