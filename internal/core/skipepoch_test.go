package core

import (
	"testing"
	"time"

	"github.com/protoactor-locker/locker/messages"
)

// TestJointToFinalKeepsPromises checks that 5e3ef74's rule (a skipped
// epoch counts as a change of masters) does not fire on a change that
// every peer follows step by step: the joint epoch and the final one
// are consecutive, so a write prepared under the joint configuration
// whose commits arrive after the move to the final one still commits on
// every master (leaving the joint configuration for its new masters
// keeps their promises). (Review of 5e3ef74.)
func TestJointToFinalKeepsPromises(t *testing.T) {
	n := newNetwork(t, n1, n2, n3, n4)
	n.configure(n1, []string{n1, n2, n3}, nil, 2)
	finalPrepare := func(p packet) bool {
		cp, ok := p.msg.(*messages.ConfigPrepare)
		return ok && cp.GetFromEpoch() == 2
	}
	n.holdIf = finalPrepare
	var rc *ReconfigResult
	n.onAnswer(n1, n.core(n1).Reconfigure([]string{n1, n2, n4}, nil), func(a Answer) { rc = &a.Reconfig })
	for i := 0; len(n.held) == 0 && i < 500; i++ {
		n.run()
		n.sleep(10 * time.Millisecond)
	}
	if len(n.held) == 0 {
		t.Fatal("the move to the final configuration never started")
	}
	for _, a := range []string{n1, n2, n3, n4} {
		if m := n.core(a).Membership(); m.Epoch != 2 || !m.Joint() {
			t.Fatalf("%s at %+v, want the joint epoch 2", a, m)
		}
	}

	// A Lock under the joint epoch; its commits wait.
	n.holdIf = func(p packet) bool {
		_, cm := p.msg.(*messages.Commit)
		return finalPrepare(p) || (cm && p.from == n2)
	}
	w := n.submit(n2, lockOp("k", "v", time.Hour))
	n.run()

	// The move to the final configuration goes through.
	n.holdIf = func(p packet) bool {
		_, cm := p.msg.(*messages.Commit)
		return cm && p.from == n2
	}
	var keep []packet
	for _, p := range n.held {
		if finalPrepare(p) {
			n.queue = append(n.queue, p)
		} else {
			keep = append(keep, p)
		}
	}
	n.held = keep
	for i := 0; rc == nil && i < 500; i++ {
		n.run()
		n.advance(time.Millisecond)
	}
	if rc == nil || !rc.OK {
		t.Fatalf("reconfigure: %+v", rc)
	}
	for _, a := range []string{n1, n2, n4} {
		c := n.core(a)
		if m := c.Membership(); m.Epoch != 3 || m.Joint() {
			t.Fatalf("%s at %+v, want the final epoch 3", a, m)
		}
		if c.mastersSince != 2 {
			t.Fatalf("%s: mastersSince %d, want 2", a, c.mastersSince)
		}
		if a != n2 && c.WriteLocks() != 1 { // n2 committed on itself at once
			t.Fatalf("%s: %d write locks, want the Lock's promise", a, c.WriteLocks())
		}
	}
	n.holdIf = nil
	n.unholdAll()
	n.settle(w)
	if o := w.one(); !o.OK || o.Commits < 3 {
		t.Fatalf("the joint-epoch Lock after the move to the final epoch: %+v, want committed on n1 n2 n4", o)
	}
}
