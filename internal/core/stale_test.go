package core

import (
	"testing"
	"time"

	"github.com/protoactor-locker/locker/messages"
)

// TestStaleEpochRetry checks the rule that a write refused only because
// its coordinator was behind (some masters at a newer epoch, nothing
// committed) starts again once, under the configuration the coordinator
// learns from them, instead of failing or waiting forever.
func TestStaleEpochRetry(t *testing.T) {
	t.Run("a write every master answered stale starts again under the newer epoch and succeeds", func(t *testing.T) {
		n := masters(t, 2, n1, n2, n3)
		// n2 and n3 move to a newer epoch without n1.
		n.setNodes(n2, []string{n2, n3}, []string{n1, n2, n3}, nil)
		before := n.core(n1).Membership().Epoch
		c := n.submit(n1, lockOp("k", "v", time.Minute))
		n.settle(c)
		if o := c.one(); !o.OK {
			t.Fatalf("the write failed instead of starting again: %+v", o)
		}
		if e := n.core(n1).Membership().Epoch; e <= before {
			t.Fatalf("n1 at epoch %d, want past %d", e, before)
		}
		for _, a := range []string{n2, n3} {
			if v, ok := n.read(a, "k"); !ok || v != "v" {
				t.Fatalf("%s lacks the lease", a)
			}
		}
		n.checkInvariants()
	})
	t.Run("without the newer configuration the write fails at its deadline, once", func(t *testing.T) {
		n := masters(t, 2, n1, n2, n3)
		n.setNodes(n2, []string{n2, n3}, []string{n1, n2, n3}, nil)
		n.holdIf = is[*messages.ConfigCommit](n1)
		c := n.submit(n1, lockOp("k", "v", time.Minute))
		n.settle(c)
		if o := c.one(); o.OK {
			t.Fatalf("the write succeeded at a stale epoch: %+v", o)
		}
	})
}
