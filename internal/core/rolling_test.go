package core

import (
	"slices"
	"testing"
	"time"

	"github.com/protoactor-locker/locker/messages"
)

// TestRollingRestartKeepsTheCommittedLease checks the ballot rule
// (ballot.go) on a rolling restart with one fast clock, no change of
// masters. Masters n1, n2, n3 (W=2), n1's clock 50 ms ahead. n1 begins
// Lock c0 (short lease) and promises itself; n2's Promise is on its way
// back; n3 never sees the Prepare. n2 restarts empty and catches up;
// n3 locks the key for c1 (an hour) on n2 and n3. n2's old Promise then
// reaches n1. Later n3 restarts and catches up from n1 and n2. Once c0's
// short lease has ended, no third client may lock the key: c1 holds it.
//
// With tokens drawn from each proposer's clock, n1 committed c0 on
// itself alone with a token above c1's, n3's catch-up merged by token
// and kept c0, and when c0 ran out a third Lock succeeded on n1 and n3.
func TestRollingRestartKeepsTheCommittedLease(t *testing.T) {
	t.Run("an old promise arrives after its master restarted", func(t *testing.T) {
		n := rollingNetwork(t, 50*time.Millisecond)
		// 1. n1 begins c0: its own promise, n2's held, none to n3.
		n.holdIf = func(p packet) bool { return p.to == n1 && p.from == n2 || p.to == n3 && p.from == n1 }
		c0 := n.submit(n1, lockOp("k", "c0", 10*time.Second))
		n.run()
		var oldPromise []packet
		n.held = slices.DeleteFunc(n.held, func(p packet) bool {
			if _, ok := p.msg.(*messages.Promise); ok && p.from == n2 && p.to == n1 {
				oldPromise = append(oldPromise, p)
			}
			return true
		})
		if len(oldPromise) != 1 {
			t.Fatalf("n2's promise for c0 was not held: %d", len(oldPromise))
		}
		n.holdIf = nil
		// 2. n2 restarts empty; it learns the configuration and catches up.
		restartAndCatchUp(t, n, n2, n1)
		// 3. c1 locks k from n3 (n1 refuses: it is write-locked by c0).
		n.holdIf = func(p packet) bool { return p.to == n1 }
		c1 := n.do1(n3, lockOp("k", "c1", time.Hour))
		if !c1.OK {
			t.Fatalf("c1: %+v", c1)
		}
		n.held, n.holdIf = nil, nil
		// 4. n2's old promise reaches n1: a promise of an earlier life
		// never counts (and c0's deadline has passed by now).
		for _, p := range oldPromise {
			n.core(n1).Step(p.from, p.msg)
		}
		n.run()
		if c0.done() && c0.one().OK {
			t.Fatalf("c0 succeeded: %+v", c0.one())
		}
		if v, ok := n.read(n1, "k"); ok {
			t.Fatalf("n1 applied c0 (%q) on an old promise", v)
		}
		thirdLockFails(t, n, c1)
	})
	t.Run("a residue from a fast clock and a lost commit", func(t *testing.T) {
		// n1's clock is ahead by more than the time c1 waits for n2's
		// write lock of c0 to run out.
		n := rollingNetwork(t, 5*time.Second)
		// 1. n1 locks k for c0 with n2's promise; the commit to n2 is
		// lost, so c0 fails with one commit (n1's own: the residue).
		residue := residueOnN1(t, n)
		// 2. n2's write lock for c0 runs out; n3 locks k for c1 on n2 and
		// n3 (n1's refusal comes too late to matter).
		n.advance(n.cfg.WriteLockTimeout)
		n.holdIf = func(p packet) bool { return p.to == n3 && p.from == n1 }
		c1 := n.do1(n3, lockOp("k", "c1", time.Hour))
		if !c1.OK {
			t.Fatalf("c1: %+v", c1)
		}
		n.held, n.holdIf = nil, nil
		// n2 promised c0 before c1, so c1's ballot is above c0's however
		// fast n1's clock.
		if residue.Token >= c1.Token {
			t.Fatalf("the residue's token %d is not below c1's %d: n2 promised c0 first", residue.Token, c1.Token)
		}
		thirdLockFails(t, n, c1)
	})
}

// thirdLockFails restarts n3, which catches up from n1 and n2, waits
// until c0's short lease has ended everywhere, and checks that no third
// client can lock k while c1 holds it.
func thirdLockFails(t *testing.T, n *network, c1 Outcome) {
	t.Helper()
	restartAndCatchUp(t, n, n3, n1)
	if e, _ := n.core(n3).Store().Lookup("k"); string(e.Value) != "c1" || e.Token != c1.Token {
		t.Fatalf("n3 copied %q (token %d), want c1's lease (token %d)", e.Value, e.Token, c1.Token)
	}
	n.sleep(11 * time.Second) // c0's lease (10 s) has ended everywhere
	for _, from := range []string{n1, n2, n3} {
		if o := n.do1(from, lockOp("k", "c2", time.Hour)); o.OK {
			t.Fatalf("a second holder: c2 locked k from %s while c1 holds it: %+v", from, o)
		}
	}
	n.checkInvariants()
}

// residueOnN1 has n1 lock k for c0 (a 10 s lease) with n2's promise,
// n3 hearing nothing and the commit to n2 lost: c0 fails with one
// commit, n1's own. It returns the residue n1 holds.
func residueOnN1(t *testing.T, n *network) Lease {
	t.Helper()
	n.holdIf = func(p packet) bool {
		_, commit := p.msg.(*messages.Commit)
		return p.to == n3 && p.from == n1 || p.to == n2 && commit
	}
	call := n.submit(n1, lockOp("k", "c0", 10*time.Second))
	n.sleep(n.cfg.RequestTimeout + 10*time.Millisecond)
	if !call.done() {
		t.Fatal("c0 did not reply by its deadline")
	}
	if c0 := call.one(); c0.OK || c0.Commits != 1 {
		t.Fatalf("c0: %+v, want a failure with one commit", c0)
	}
	n.held, n.holdIf = nil, nil
	residue, _ := n.core(n1).Store().Lookup("k")
	return residue
}

// rollingNetwork is three masters n1, n2, n3 (W=2) with n1's clock
// ahead of the others' by ahead.
func rollingNetwork(t *testing.T, ahead time.Duration) *network {
	t.Helper()
	n := newNetwork(t, n1, n2, n3)
	n.close(n1)
	cfg := n.cfg
	cfg.Self, cfg.Clock, cfg.Seed = n1, &aheadClock{base: n.clock, by: ahead}, n.seeds[n1]
	n.seeds[n1] += 1 << 20
	n.cores[n1] = New(cfg)
	n.configure(n2, []string{n1, n2, n3}, nil, 2)
	n.run()
	return n
}

// restartAndCatchUp restarts addr with empty memory, tells it the
// configuration from peer, and lets it copy leases until it votes.
func restartAndCatchUp(t *testing.T, n *network, addr, peer string) {
	t.Helper()
	n.stop(addr)
	n.start(addr)
	n.core(addr).Step(peer, &messages.ConfigCommit{Next: toProto(n.core(peer).Membership())})
	if !n.core(addr).CatchingUp() {
		t.Fatalf("%s restarted and votes at once", addr)
	}
	n.sleep(time.Duration(n.core(addr).settleWait()) + 100*time.Millisecond)
	if n.core(addr).CatchingUp() {
		t.Fatalf("%s is still catching up", addr)
	}
}
