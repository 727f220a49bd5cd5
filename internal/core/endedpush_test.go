package core

import (
	"testing"
	"time"

	"github.com/protoactor-locker/locker/messages"
)

// endedResidue builds the state both ended-push tests start from: the
// residue of the holder's own Update, committed on one master alone,
// ends there before its push, so that master pushes an ended entry whose
// token (the Update's ballot) is above the token of the lease a quorum
// still holds (the Lock's, extended).
//
// Masters n1 n2 n3 (W=2), replicas n4 n5. c1 locks k for 5 s and
// extends it to an hour through n2 (n1 and n2 commit; the commit to n3
// is lost, so n3 keeps the 5 s). 50 ms before n3's 5 s end, c1's Update
// of k, coordinated by n3, is promised by n3 and n1 and committed on n3
// alone (its commit to n1 is lost). The Update is logged with its ballot
// and ends on n3 with the 5 s lease, before n3's next push, which then
// carries Entry{k, Token: the Update's ballot, LeaseMs: 0}. n1 and n2
// hold c1's lease (the Lock's token) for an hour.
func endedResidue(t *testing.T) (n *network, lockToken uint64) {
	t.Helper()
	n = newNetwork(t, n1, n2, n3, n4, n5)
	n.configure(n2, []string{n1, n2, n3}, []string{n4, n5}, 2)
	lock := n.do1(n2, lockOp("k", "v", 5*time.Second))
	if !lock.OK {
		t.Fatalf("c1's Lock: %+v", lock)
	}
	n.sleep(200 * time.Millisecond) // pushed to the replicas

	toN3 := func(p packet) bool {
		_, cm := p.msg.(*messages.Commit)
		return cm && p.to == n3
	}
	n.holdIf = toN3
	if o := n.do1(n2, extendOp("k", "v", time.Hour)); !o.OK {
		t.Fatalf("c1's Extend: %+v", o)
	}
	n.held, n.holdIf = nil, nil     // lost
	n.sleep(200 * time.Millisecond) // n1 and n2 push the Extend
	for _, r := range []string{n4, n5} {
		if e := n.core(r).store.raw("k"); e == nil || e.deleted || time.Duration(e.deadline-n.core(r).now()) < 30*time.Minute {
			t.Fatalf("replica %s: k = %+v, want c1's hour", r, e)
		}
	}

	// Wait until n3's lease of k has 50 ms left.
	e3 := n.core(n3).store.raw("k")
	n.sleep(time.Duration(e3.deadline-n.core(n3).now()) - 50*time.Millisecond)

	// c1's Update through n3: n2 hears nothing of it, n1's commit is lost.
	n.dropIf = func(p packet) bool {
		_, cm := p.msg.(*messages.Commit)
		return p.from == n3 && (p.to == n2 || (cm && p.to == n1))
	}
	upd := n.submit(n3, updateOp("k", "v", "v2"))
	n.run()
	e3 = n.core(n3).store.raw("k")
	if e3 == nil || string(e3.value) != "v2" {
		t.Fatalf("n3: k = %+v, want the Update applied", e3)
	}
	if e3.token <= lock.Token {
		t.Fatalf("the Update's token %d is not above the Lock's %d", e3.token, lock.Token)
	}
	n.settle(upd)
	n.dropIf = nil
	t.Logf("c1's Update: %+v", upd.one())
	n.sleep(time.Second) // n3's push: the Update ended there before it
	for _, a := range []string{n1, n2} {
		if v, ok := n.read(a, "k"); !ok || v != "v" {
			t.Fatalf("master %s: k = %q %v, want c1's lease", a, v, ok)
		}
	}
	return n, lock.Token
}

// TestEndedResidueKeepsQuorumLeaseOnReplicas: an ended entry carries the
// token of the state that ended on its sender, which may be the residue
// of the holder's Update on that master alone: a larger token than the
// lease a quorum holds (an Update takes a new ballot, an Extend keeps the
// Lock's token). The replica must not take it as a state that replaced
// the quorum's lease. (Review of fd6f11e.)
func TestEndedResidueKeepsQuorumLeaseOnReplicas(t *testing.T) {
	n, tok := endedResidue(t)
	for _, r := range []string{n4, n5} {
		if v, ok := n.read(r, "k"); !ok || v != "v" {
			e := n.core(r).store.raw("k")
			t.Errorf("replica %s: k = %q %v (%+v); n1 and n2 hold c1's lease (token %d) for an hour (replica divergence)", r, v, ok, e, tok)
		}
	}
	// A later Extend of c1's lease, pushed by the quorum, reaches them.
	if o := n.do1(n2, extendOp("k", "v", time.Hour)); !o.OK {
		t.Fatalf("c1's second Extend: %+v", o)
	}
	n.sleep(time.Second)
	for _, r := range []string{n4, n5} {
		if v, ok := n.read(r, "k"); !ok || v != "v" {
			t.Errorf("replica %s: k = %q %v after c1's next Extend was pushed", r, v, ok)
		}
	}
}

// TestEndedResidueThenPromotion: the replicas' copy of an ended entry is
// a tombstone with the residue's token, which outranks the quorum's
// live lease in every later merge: made masters, they skip it in the
// change's Sync, and a second Lock of k succeeds on them while c1's hour
// lasts on n1 and n2. (Review of fd6f11e.)
func TestEndedResidueThenPromotion(t *testing.T) {
	n, _ := endedResidue(t)
	if r := n.reconfigure(n1, []string{n1, n4, n5}, []string{n2, n3}); !r.OK {
		t.Fatalf("promoting n4 and n5: %+v", r)
	}
	for _, a := range []string{n1, n4, n5} {
		v, ok := n.read(a, "k")
		t.Logf("master %s: k = %q %v", a, v, ok)
	}
	n.requireRefused(n4, lockOp("k", "c2", time.Hour), "c2 locked k while c1's hour-long lease lives (two holders)")
}

// TestEndedEntryOvertakesTheSameLeaseExtended: no residue is needed. The
// equal-token rule (an ended entry leaves the same lease, extended
// through another master) holds only if the other master's push comes
// first. Masters n1 n2 n3 (W=2), replicas n4 n5. c1's hour-long lease
// of k is on the replicas; within one push interval c1 releases it, c2
// locks k for 50 ms and extends it to an hour through n2 and n3 (n1's
// commit of the Extend is lost). n1's state of k ends before its push
// (an ended entry with c2's token), n2's and n3's carry c2's hour. n1's
// push reaches the replicas first: they tombstone c1's lease with c2's
// token, then skip c2's live lease as no newer than the tombstone.
// Promoted, they skip it in the Sync too. (Review of fd6f11e.)
func TestEndedEntryOvertakesTheSameLeaseExtended(t *testing.T) {
	n := newNetwork(t, n1, n2, n3, n4, n5)
	n.configure(n2, []string{n1, n2, n3}, []string{n4, n5}, 2)
	if o := n.do1(n2, lockOp("k", "c1", time.Hour)); !o.OK {
		t.Fatalf("c1's Lock: %+v", o)
	}
	n.sleep(200 * time.Millisecond) // pushed to the replicas

	// Nothing is pushed while the three writes go (the interval starts
	// with the first of them).
	start := n.clock.now
	if o := n.do1(n2, releaseOp("k", "c1")); !o.OK {
		t.Fatalf("c1's Release: %+v", o)
	}
	lock := n.do1(n2, lockOp("k", "c2", 50*time.Millisecond))
	if !lock.OK {
		t.Fatalf("c2's Lock: %+v", lock)
	}
	n.dropIf = func(p packet) bool {
		_, cm := p.msg.(*messages.Commit)
		return cm && p.to == n1
	}
	if o := n.do1(n2, extendOp("k", "c2", time.Hour)); !o.OK {
		t.Fatalf("c2's Extend: %+v", o)
	}
	n.dropIf = nil
	if d := n.clock.now.Sub(start); d >= n.cfg.ReplicationInterval {
		t.Fatalf("the writes took %v, not within one push interval", d)
	}
	n.sleep(time.Second) // n1's push (ended) goes first, then n2's and n3's
	for _, a := range []string{n2, n3} {
		if v, ok := n.read(a, "k"); !ok || v != "c2" {
			t.Fatalf("master %s: k = %q %v, want c2's hour", a, v, ok)
		}
	}
	diverged := false
	for _, r := range []string{n4, n5} {
		if v, ok := n.read(r, "k"); !ok || v != "c2" {
			diverged = true
			t.Errorf("replica %s: k = %q %v (%+v); n2 and n3 hold c2's lease for an hour (replica divergence)", r, v, ok, n.core(r).store.raw("k"))
		}
	}
	if !diverged {
		return
	}
	if r := n.reconfigure(n2, []string{n2, n4, n5}, []string{n1, n3}); !r.OK {
		t.Fatalf("promoting n4 and n5: %+v", r)
	}
	n.requireRefused(n4, lockOp("k", "c3", time.Hour), "c3 locked k while c2's hour-long lease lives (two holders)")
}
