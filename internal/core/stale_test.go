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
		start := n.clock.now
		c := n.submit(n1, lockOp("k", "v", time.Minute))
		n.settle(c)
		if o := c.one(); o.OK {
			t.Fatalf("the write succeeded at a stale epoch: %+v", o)
		}
		if want := start.Add(n.cfg.RequestTimeout); !c.at.Equal(want) {
			t.Fatalf("the write answered at %v, want at its deadline %v", c.at.Sub(start), want.Sub(start))
		}
		n.sleep(3 * n.cfg.RequestTimeout)
		n.unholdAll() // the newer configuration, late: nothing to retry any more
		n.sleep(n.cfg.RequestTimeout)
		if c.calls != 1 {
			t.Fatalf("the write answered %d times, want once", c.calls)
		}
	})
	t.Run("a late report after the grace does not fail a write waiting for the newer configuration", func(t *testing.T) {
		// Four masters, W=3: n2 and n3 are at a newer epoch, n4 is slow.
		// n1's write is refused stale by n2 and n3, decided, and waits
		// out the grace for n4; then it waits for the configuration n2
		// and n3 answer with (held). n4's promise arrives after the grace
		// (it gets its abort, which is not acknowledged), then n4 is
		// reported unreachable: neither answers the write; it starts
		// again once the configuration arrives, and succeeds.
		n := masters(t, 3, n1, n2, n3, n4)
		n.setNodes(n2, []string{n2, n3}, []string{n1, n2, n3, n4}, nil)
		n.holdIf = func(p packet) bool {
			_, cfg := p.msg.(*messages.ConfigCommit)
			return (cfg && p.to == n1) || p.to == n4
		}
		start := n.clock.now
		c := n.submit(n1, lockOp("k", "v", time.Minute))
		n.run()
		n.sleep(100 * time.Millisecond) // past the grace
		if c.done() {
			t.Fatalf("the write answered at %v: %+v", n.clock.now.Sub(start), c.outs)
		}
		if x := n.core(n1).txns[n.core(n1).nextID]; x == nil || !x.awaiting {
			t.Fatal("the write is not waiting for the newer configuration")
		}
		n.holdIf = is[*messages.ConfigCommit](n1)
		n.unhold(n4) // n4 answers, late: it promises and gets its abort
		n.run()
		if n.core(n4).WriteLocks() != 0 {
			t.Fatal("n4's late promise was not aborted")
		}
		if c.done() {
			t.Fatalf("a late promise answered the write waiting to start again: %+v", c.outs)
		}
		n.unreachable(n1, n4)
		n.run()
		if c.done() {
			t.Fatalf("a late report answered the write waiting to start again: %+v", c.outs)
		}
		n.unholdAll()
		n.settle(c)
		if o := c.one(); !o.OK {
			t.Fatalf("the write failed instead of starting again under the newer epoch: %+v", o)
		}
		n.sleep(2 * n.cfg.RequestTimeout)
		if c.calls != 1 {
			t.Fatalf("the write answered %d times, want once", c.calls)
		}
		n.checkInvariants()
	})
}
