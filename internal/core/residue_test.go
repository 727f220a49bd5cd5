package core

import (
	"slices"
	"testing"
	"time"

	"github.com/protoactor-locker/locker/messages"
)

// TestPushedResidueCannotReplaceJointLease checks that masters drop
// pushes from a master of the epoch before their masters changed: such a
// push can carry the residue of an old-epoch write that reached only the
// old master itself, with a token (from a fast clock) larger than the
// lease written under the joint configuration since. Landing on the new
// masters after they left the joint configuration (jointWrites cleared),
// it replaced that lease, and once the residue was released (or expired)
// a second client locked the key while the first still held it. Found by
// review, after sim seed 2656.
func TestPushedResidueCannotReplaceJointLease(t *testing.T) {
	t.Run("residue released", func(t *testing.T) { pushedResidue(t, time.Hour, true) })
	t.Run("residue expired", func(t *testing.T) { pushedResidue(t, 3*time.Second, false) })
}

// pushedResidue: masters n1, n2, n3 (W=2; n1's clock 50 ms ahead) move
// to n2, n4, n5; n1 commits the residue c0 on itself alone while the
// change goes on, c1 locks b under the joint configuration, and n1's push
// of c0 reaches n4 and n5 after the change ended.
func pushedResidue(t *testing.T, lease time.Duration, releaseResidue bool) {
	n := residueNetwork(t)

	n.holdIf = func(p packet) bool { return p.to == n1 || p.to == n3 }
	c0 := n.submit(n1, lockOp("b", "c0", lease))
	n.run()
	n.held = slices.DeleteFunc(n.held, func(p packet) bool { return p.to == n3 })

	n.holdIf = func(p packet) bool {
		_, snap := p.msg.(*messages.SnapshotRequest)
		return p.to == n1 || snap
	}
	var rc *ReconfigResult
	n.core(n3).Reconfigure([]string{n2, n4, n5}, []string{n1, n3}, func(r ReconfigResult) { rc = &r })
	n.run()
	if m := n.core(n4).Membership(); !m.Joint() {
		t.Fatalf("n4 at %+v", m)
	}
	c1 := n.submit(n2, lockOp("b", "c1", time.Hour))
	n.settle(c1)
	if !c1.one().OK {
		t.Fatalf("c1: %+v", c1.outs)
	}
	tok := c1.one().Token
	// release snapshot requests not to n1; the change completes without n1.
	n.holdIf = func(p packet) bool { return p.to == n1 }
	var keep []packet
	for _, p := range n.held {
		if p.to == n1 {
			keep = append(keep, p)
		} else {
			n.queue = append(n.queue, p)
		}
	}
	n.held = keep
	for i := 0; rc == nil && i < 300; i++ {
		n.sleep(10 * time.Millisecond)
	}
	if rc == nil || !rc.OK {
		t.Fatalf("change: %+v", rc)
	}
	t.Logf("after change: n2 %+v n4 %+v", n.core(n2).Membership(), n.core(n4).Membership())
	// n1 (still at e) hears only n2's promise: commits c0 on itself, pushes to its replicas n4, n5.
	var promises, rest []packet
	for _, p := range n.held {
		if _, ok := p.msg.(*messages.Promise); ok && p.from == n2 {
			promises = append(promises, p)
		} else {
			rest = append(rest, p)
		}
	}
	n.held = rest
	for _, p := range promises {
		n.core(n1).Step(p.from, p.msg)
	}
	if v, _ := n.read(n1, "b"); v != "c0" {
		t.Fatalf("n1 holds %q", v)
	}
	e, _ := n.core(n1).Store().Lookup("b")
	t.Logf("residue token %d, c1 token %d", e.Token, tok)
	// hold n1's output except pushes; advance so n1's push fires
	n.holdIf = func(p packet) bool {
		if p.to == n1 {
			return true
		}
		if p.from == n1 {
			_, push := p.msg.(*messages.Replicate)
			return !push
		}
		return false
	}
	mark := len(n.sent)
	n.sleep(200 * time.Millisecond)
	// The setup: n1's push of the residue went out to n4 and n5 and was
	// delivered (pushes are neither held nor dropped here).
	for _, to := range []string{n4, n5} {
		pushed := false
		for _, p := range n.sent[mark:] {
			r, ok := p.msg.(*messages.Replicate)
			if !ok || p.from != n1 || p.to != to || n.drop[to] {
				continue
			}
			for _, e := range r.GetEntries() {
				pushed = pushed || (e.GetKey() == "b" && string(e.GetValue()) == "c0")
			}
		}
		if !pushed {
			t.Fatalf("n1 never pushed its residue b=c0 to %s", to)
		}
	}
	for _, a := range []string{n2, n4, n5} {
		v, _ := n.read(a, "b")
		t.Logf("%s holds %q (epoch %d)", a, v, n.core(a).Membership().Epoch)
	}
	if releaseResidue {
		t.Logf("release c0: %+v", n.do1(n4, releaseOp("b", "c0")))
	} else {
		n.sleep(lease + time.Second) // the residue expires
	}
	o2 := n.do1(n4, lockOp("b", "c2", time.Hour))
	if o2.OK {
		t.Errorf("second holder: c2 locked b while c1 (lease 1h) holds it: %+v", o2)
	}
	_ = c0
}

// residueNetwork is the start of these tests: masters n1, n2, n3 (W=2)
// with replicas n4, n5, n1's clock running 50 ms ahead (its tokens are
// the larger ones).
func residueNetwork(t *testing.T) *network {
	t.Helper()
	n := newNetwork(t, n1, n2, n3, n4, n5)
	n.core(n1).Close()
	cfg := n.cfg
	cfg.Self, cfg.Clock, cfg.Seed = n1, &aheadClock{base: n.clock, by: 50 * time.Millisecond}, n.seeds[n1]
	n.seeds[n1] += 1 << 20
	n.cores[n1] = New(cfg)
	n.configure(n2, []string{n1, n2, n3}, []string{n4, n5}, 2)
	return n
}
