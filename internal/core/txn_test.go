package core

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/protoactor-locker/locker/messages"
)

// masters returns a network of the given peers, all masters, under W = w.
func masters(t *testing.T, w int, addrs ...string) *network {
	t.Helper()
	return mastersWith(t, testConfig(), w, addrs...)
}

func mastersWith(t *testing.T, cfg Config, w int, addrs ...string) *network {
	t.Helper()
	n := newNetworkWith(t, cfg, addrs...)
	n.configure(addrs[0], addrs, nil, w)
	return n
}

// slowNetwork is a Config where a write may outlive its promises (the
// shell forbids it; the core must still count such commits as refused).
func slowNetwork() Config {
	cfg := testConfig()
	cfg.RequestTimeout = 5 * time.Second
	return cfg
}

// is returns a packet test: messages of type T to one of addrs.
func is[T any](addrs ...string) func(packet) bool {
	return func(p packet) bool {
		if _, ok := p.msg.(T); !ok {
			return false
		}
		for _, a := range addrs {
			if p.to == a {
				return true
			}
		}
		return false
	}
}

func checkOutcome(t *testing.T, o Outcome, ok bool, phase Phase, votes, commits int) {
	t.Helper()
	if o.OK != ok || o.Phase != phase || o.Votes != votes || o.Commits != commits || o.Stopped {
		t.Fatalf("outcome %+v, want OK=%v Phase=%v Votes=%d Commits=%d", o, ok, phase, votes, commits)
	}
}

func checkReasons(t *testing.T, o Outcome, want map[string]messages.Reason) {
	t.Helper()
	if len(o.Reasons) != len(want) {
		t.Fatalf("reasons %v, want %v", o.Reasons, want)
	}
	for a, r := range want {
		if o.Reasons[a] != r {
			t.Fatalf("reasons %v, want %v", o.Reasons, want)
		}
	}
}

// TestStrictQuorum checks that a write succeeds only with W promises and
// W commits, and reports what it counted.
func TestStrictQuorum(t *testing.T) {
	t.Run("a write with every master up counts every promise and commit", func(t *testing.T) {
		n := masters(t, 2, n1, n2, n3)
		o := n.do1(n1, lockOp("k", "v", leaseForTests))
		checkOutcome(t, o, true, PhaseCommit, 3, 3)
		if o.W != 2 || o.Token == 0 || len(o.Reasons) != 0 {
			t.Fatalf("outcome %+v", o)
		}
		for _, a := range []string{n1, n2, n3} {
			if v, ok := n.read(a, "k"); !ok || v != "v" {
				t.Fatalf("%s holds %q %v", a, v, ok)
			}
			if n.core(a).WriteLocks() != 0 {
				t.Fatalf("%s still holds a write lock", a)
			}
		}
		n.checkInvariants()
	})
	t.Run("lost commits leave fewer than W: not OK in PhaseCommit at RequestTimeout", func(t *testing.T) {
		n := masters(t, 2, n1, n2, n3)
		n.holdIf = is[*messages.Commit](n2, n3)
		c := n.submit(n1, lockOp("k", "v", leaseForTests))
		n.run()
		n.sleep(n.cfg.RequestTimeout - time.Nanosecond)
		if c.done() {
			t.Fatal("replied before W commits were acknowledged")
		}
		n.sleep(time.Nanosecond)
		o := c.one()
		checkOutcome(t, o, false, PhaseCommit, 3, 1)
		checkReasons(t, o, map[string]messages.Reason{n2: rUnreachable, n3: rUnreachable})
		if v, ok := n.read(n1, "k"); !ok || v != "v" {
			t.Fatal("the coordinator's own commit was not applied")
		}
		n.checkInvariants()
	})
	t.Run("commits refused as PROMISE_EXPIRED leave fewer than W: not OK in PhaseCommit", func(t *testing.T) {
		n := mastersWith(t, slowNetwork(), 2, n1, n2, n3)
		n.holdIf = is[*messages.Commit](n2, n3)
		c := n.submit(n1, lockOp("k", "v", leaseForTests))
		n.run()
		n.advance(n.cfg.WriteLockTimeout) // the promises of n2 and n3 run out
		if c.done() {
			t.Fatal("replied before W commits were acknowledged")
		}
		n.unholdAll()
		n.run()
		o := c.one()
		checkOutcome(t, o, false, PhaseCommit, 3, 1)
		checkReasons(t, o, map[string]messages.Reason{n2: rExpired, n3: rExpired})
		for _, a := range []string{n2, n3} {
			if _, ok := n.read(a, "k"); ok {
				t.Fatalf("%s applied a commit after its promise expired", a)
			}
		}
		n.checkInvariants()
	})
	t.Run("W commits with one refused is OK", func(t *testing.T) {
		cfg := testConfig()
		cfg.WriteLockTimeout = time.Millisecond // runs out within the grace
		n := mastersWith(t, cfg, 2, n1, n2, n3)
		n.holdIf = is[*messages.Commit](n3)
		c := n.submit(n1, lockOp("k", "v", leaseForTests))
		n.run()
		n.advance(cfg.WriteLockTimeout)
		n.unholdAll()
		n.run()
		o := c.one()
		checkOutcome(t, o, true, PhaseCommit, 3, 2)
		checkReasons(t, o, map[string]messages.Reason{n3: rExpired})
	})
	t.Run("W promises are needed: fewer refuse the write", func(t *testing.T) {
		n := masters(t, 2, n1, n2, n3)
		// n3 misses the key. (A restart would not do: a master restarted
		// empty copies the others' leases before it votes.)
		n.drop[n3] = true
		n.do1(n2, lockOp("k", "v", leaseForTests))
		delete(n.drop, n3)
		n.setW(n1, []string{n1, n2, n3}, 3)
		o := n.do1(n1, releaseOp("k", "v"))
		checkOutcome(t, o, false, PhasePrepare, 2, 0)
		checkReasons(t, o, map[string]messages.Reason{n3: rNotFound})
		if _, ok := n.read(n1, "k"); !ok {
			t.Fatal("a refused release was applied")
		}
		n.checkInvariants()
	})
	t.Run("a single master with W=1 writes inline", func(t *testing.T) {
		n := newNetwork(t, n1)
		c := n.submit(n1, lockOp("k", "v", leaseForTests))
		if !c.done() {
			t.Fatal("a lone master did not decide inline")
		}
		checkOutcome(t, c.one(), true, PhaseCommit, 1, 1)
		if len(n.pending()) != 0 {
			t.Fatalf("a lone master sent %v", n.pending())
		}
	})
	t.Run("a write fails at once while W exceeds the masters", func(t *testing.T) {
		cfg := testConfig()
		cfg.W = 2 // as WithW(2) before any SetNodes
		n := newNetworkWith(t, cfg, n1)
		c := n.submit(n1, lockOp("k", "v", leaseForTests))
		if !c.done() {
			t.Fatal("waited although W cannot be reached")
		}
		o := c.one()
		checkOutcome(t, o, false, PhasePrepare, 0, 0)
		if o.W != 2 || len(n.pending()) != 0 || n.core(n1).WriteLocks() != 0 {
			t.Fatalf("outcome %+v, sent %v", o, n.pending())
		}
	})
	t.Run("a replica coordinates a write on the masters", func(t *testing.T) {
		n := newNetwork(t, n1, n2, n3)
		n.configure(n1, []string{n1, n2}, []string{n3}, 2)
		o := n.do1(n3, lockOp("k", "v", leaseForTests))
		checkOutcome(t, o, true, PhaseCommit, 2, 2)
		if countSent[*messages.Prepare](n, n3, n3) != 0 {
			t.Fatal("the replica asked itself for a promise")
		}
	})
}

// TestDecision checks that a write is decided as soon as its outcome is
// known, that stragglers are waited for only briefly, and what happens to
// promises that come after the decision.
func TestDecision(t *testing.T) {
	t.Run("no quorum is decided as soon as refusals make W impossible", func(t *testing.T) {
		n := masters(t, 2, n1, n2, n3)
		n.do1(n1, lockOp("k", "v", leaseForTests))
		n.holdTo(n3)
		start := n.clock.now
		c := n.submit(n2, lockOp("k", "w", leaseForTests))
		n.run()
		if c.done() {
			t.Fatal("replied at once although n3 is not known to be down")
		}
		n.sleep(graceFloor)
		o := c.one()
		checkOutcome(t, o, false, PhasePrepare, 0, 0)
		checkReasons(t, o, map[string]messages.Reason{n1: rLocked, n2: rLocked})
		if got := c.at.Sub(start); got > graceFloor {
			t.Fatalf("replied after %v, want within the grace of %v", got, graceFloor)
		}
	})
	t.Run("aborts go out as soon as no quorum is decided", func(t *testing.T) {
		n := masters(t, 1, n1, n2, n3)
		n.drop[n2] = true // n2 misses the key: it promises
		n.do1(n1, lockOp("k", "v", leaseForTests))
		delete(n.drop, n2)
		n.setW(n1, []string{n1, n2, n3}, 3)
		n.holdTo(n3)
		before := countSent[*messages.Commit](n, n1, n2)
		c := n.submit(n1, lockOp("k", "w", leaseForTests))
		n.run()
		if n.core(n2).WriteLocks() != 0 {
			t.Fatal("n2's promise was not aborted once W became impossible")
		}
		if countSent[*messages.Commit](n, n1, n2) != before+1 {
			t.Fatal("no abort was sent to n2")
		}
		n.sleep(graceFloor)
		checkOutcome(t, c.one(), false, PhasePrepare, 1, 0)
	})
	t.Run("a commit is decided with W promises without waiting for the rest", func(t *testing.T) {
		n := masters(t, 2, n1, n2, n3)
		n.holdTo(n3)
		c := n.submit(n1, lockOp("k", "v", leaseForTests))
		n.run()
		if countSent[*messages.Commit](n, n1, n2) != 1 {
			t.Fatal("the commit waited for n3")
		}
		if v, ok := n.read(n2, "k"); !ok || v != "v" {
			t.Fatal("n2 did not apply the commit")
		}
		n.sleep(graceFloor)
		checkOutcome(t, c.one(), true, PhaseCommit, 2, 2)
	})
	t.Run("the grace wait for stragglers is as long as the write took", func(t *testing.T) {
		n := masters(t, 2, n1, n2, n3)
		n.holdTo(n2)
		n.holdTo(n3)
		start := n.clock.now
		c := n.submit(n1, lockOp("k", "v", leaseForTests))
		n.run()
		n.sleep(300 * time.Millisecond)
		n.unhold(n2)
		n.run() // decided at 300 ms; n3 gets as long again
		n.sleep(300*time.Millisecond - time.Nanosecond)
		if c.done() {
			t.Fatal("replied before the grace ended")
		}
		n.sleep(time.Nanosecond)
		o := c.one()
		checkOutcome(t, o, true, PhaseCommit, 2, 2)
		if got := c.at.Sub(start); got != 600*time.Millisecond {
			t.Fatalf("replied after %v, want 600ms", got)
		}
	})
	t.Run("the grace wait ends at RequestTimeout", func(t *testing.T) {
		n := masters(t, 2, n1, n2, n3)
		n.holdTo(n2)
		n.holdTo(n3)
		start := n.clock.now
		c := n.submit(n1, lockOp("k", "v", leaseForTests))
		n.run()
		n.sleep(800 * time.Millisecond)
		n.unhold(n2) // decided at 800 ms: the grace would end at 1.6 s
		n.sleep(n.cfg.RequestTimeout)
		o := c.one()
		checkOutcome(t, o, true, PhaseCommit, 2, 2)
		checkReasons(t, o, map[string]messages.Reason{n3: rUnreachable})
		if got := c.at.Sub(start); got != n.cfg.RequestTimeout {
			t.Fatalf("replied after %v, want RequestTimeout %v", got, n.cfg.RequestTimeout)
		}
	})
	t.Run("a straggler that answers within the grace is counted", func(t *testing.T) {
		n := masters(t, 2, n1, n2, n3)
		n.holdTo(n3)
		c := n.submit(n1, lockOp("k", "v", leaseForTests))
		n.run()
		n.advance(time.Millisecond)
		n.unhold(n3)
		n.run()
		checkOutcome(t, c.one(), true, PhaseCommit, 3, 3)
	})
	t.Run("no grace is spent on a master known to be down", func(t *testing.T) {
		n := masters(t, 2, n1, n2, n3)
		n.stop(n3)
		n.do1(n1, lockOp("warm", "v", leaseForTests)) // n1 learns n3 is down
		c := n.submit(n1, lockOp("k", "v", leaseForTests))
		n.run()
		if !c.done() {
			t.Fatal("waited for a master known to be down")
		}
		checkOutcome(t, c.one(), true, PhaseCommit, 2, 2)
	})
	t.Run("a late promise after a commit decision gets the commit", func(t *testing.T) {
		n := masters(t, 2, n1, n2, n3)
		n.holdTo(n3)
		c := n.submit(n1, lockOp("k", "v", leaseForTests))
		n.run()
		n.sleep(graceFloor)
		checkOutcome(t, c.one(), true, PhaseCommit, 2, 2)
		n.unhold(n3)
		n.run()
		if v, ok := n.read(n3, "k"); !ok || v != "v" {
			t.Fatal("the late master did not get the commit")
		}
		if n.core(n3).WriteLocks() != 0 {
			t.Fatal("the late master still holds its write lock")
		}
		if c.calls != 1 {
			t.Fatalf("replied %d times", c.calls)
		}
	})
	t.Run("a late lock commit does not undo a release that got there first", func(t *testing.T) {
		n := masters(t, 2, n1, n2, n3)
		n.holdTo(n3)
		n.do1(n1, lockOp("k", "v", leaseForTests))
		// n3 still has not seen the lock; the holder releases through n2.
		n.holdIf = func(p packet) bool { return p.to == n3 && p.from == n1 }
		n.hold[n3] = false
		delete(n.hold, n3)
		if o := n.do1(n2, releaseOp("k", "v")); !o.OK {
			t.Fatalf("release: %+v", o)
		}
		n.holdIf = nil
		n.unholdAll()
		n.run()
		for _, a := range []string{n1, n2, n3} {
			if _, ok := n.read(a, "k"); ok {
				t.Fatalf("%s holds the released key", a)
			}
		}
	})
	t.Run("a late promise after an abort decision gets an abort", func(t *testing.T) {
		n := masters(t, 1, n1, n2, n3)
		n.drop[n3] = true // n3 misses the key: it promises
		n.do1(n1, lockOp("k", "v", leaseForTests))
		delete(n.drop, n3)
		n.setW(n1, []string{n1, n2, n3}, 3)
		n.holdTo(n3)
		c := n.submit(n1, lockOp("k", "w", leaseForTests))
		n.run()
		n.sleep(graceFloor)
		checkOutcome(t, c.one(), false, PhasePrepare, 0, 0)
		n.unhold(n3)
		n.run()
		if n.core(n3).WriteLocks() != 0 {
			t.Fatal("the late promise was not aborted")
		}
		if _, ok := n.read(n3, "k"); ok {
			t.Fatal("an aborted lock was applied")
		}
	})
	t.Run("a promise after the transaction timed out is aborted", func(t *testing.T) {
		n := masters(t, 2, n1, n2, n3)
		n.holdTo(n2)
		n.holdTo(n3)
		c := n.submit(n1, lockOp("k", "v", leaseForTests))
		n.sleep(n.cfg.RequestTimeout)
		checkOutcome(t, c.one(), false, PhasePrepare, 1, 0)
		n.unholdAll()
		n.run()
		for _, a := range []string{n1, n2, n3} {
			if n.core(a).WriteLocks() != 0 {
				t.Fatalf("%s kept the write lock of a timed-out write", a)
			}
		}
	})
	t.Run("a late promise from a master counted unreachable is aborted", func(t *testing.T) {
		n := masters(t, 2, n1, n2, n3)
		n.holdTo(n3)
		c := n.submit(n1, lockOp("k", "v", leaseForTests))
		n.run()
		n.unreachable(n1, n3) // a false alarm: n3 got the prepare
		n.run()
		checkOutcome(t, c.one(), true, PhaseCommit, 2, 2)
		n.unhold(n3)
		n.run()
		if n.core(n3).WriteLocks() != 0 {
			t.Fatal("n3 keeps a write lock until WriteLockTimeout")
		}
	})
	t.Run("a duplicated promise is counted once", func(t *testing.T) {
		n := masters(t, 3, n1, n2, n3)
		n.holdIf = is[*messages.Promise](n1)
		c := n.submit(n1, lockOp("k", "v", leaseForTests))
		n.run()
		n.unholdTwice()
		checkOutcome(t, c.one(), true, PhaseCommit, 3, 3)
	})
	t.Run("a duplicated commit is applied once and acknowledged harmlessly", func(t *testing.T) {
		n := masters(t, 2, n1, n2)
		n.holdIf = is[*messages.Commit](n2)
		c := n.submit(n1, lockOp("k", "v", leaseForTests))
		n.run()
		n.unholdTwice()
		checkOutcome(t, c.one(), true, PhaseCommit, 2, 2)
		n.checkInvariants()
	})
}

// TestTimeouts checks what happens to masters that do not answer.
func TestTimeouts(t *testing.T) {
	t.Run("at RequestTimeout silent masters count as unreachable", func(t *testing.T) {
		n := masters(t, 2, n1, n2, n3)
		n.drop[n2], n.drop[n3] = true, true
		start := n.clock.now
		c := n.submit(n1, lockOp("k", "v", leaseForTests))
		n.sleep(n.cfg.RequestTimeout - time.Nanosecond)
		if c.done() {
			t.Fatal("replied before RequestTimeout")
		}
		n.sleep(time.Nanosecond)
		o := c.one()
		checkOutcome(t, o, false, PhasePrepare, 1, 0)
		checkReasons(t, o, map[string]messages.Reason{n2: rUnreachable, n3: rUnreachable})
		if c.at.Sub(start) != n.cfg.RequestTimeout {
			t.Fatalf("replied after %v", c.at.Sub(start))
		}
		if n.core(n1).WriteLocks() != 0 {
			t.Fatal("the coordinator's own promise was not aborted")
		}
		if len(n.core(n1).txns) != 0 {
			t.Fatal("the transaction is still remembered after RequestTimeout")
		}
	})
	t.Run("at RequestTimeout missing commit acknowledgements count as unreachable", func(t *testing.T) {
		n := masters(t, 2, n1, n2)
		n.holdIf = is[*messages.Committed](n1)
		c := n.submit(n1, lockOp("k", "v", leaseForTests))
		n.sleep(n.cfg.RequestTimeout)
		o := c.one()
		checkOutcome(t, o, false, PhaseCommit, 2, 1)
		checkReasons(t, o, map[string]messages.Reason{n2: rUnreachable})
	})
	t.Run("the promises of a coordinator that stopped expire after WriteLockTimeout", func(t *testing.T) {
		n := masters(t, 2, n1, n2, n3)
		n.holdIf = is[*messages.Promise](n1)
		n.submit(n1, lockOp("k", "v", leaseForTests))
		n.run()
		n.stop(n1)
		n.advance(n.cfg.WriteLockTimeout - time.Nanosecond)
		if n.core(n2).WriteLocks() != 1 || n.core(n3).WriteLocks() != 1 {
			t.Fatal("a promise ran out early")
		}
		n.advance(time.Nanosecond)
		if n.core(n2).WriteLocks() != 0 || n.core(n3).WriteLocks() != 0 {
			t.Fatal("a promise outlived WriteLockTimeout")
		}
		n.held = nil
		n.holdIf = nil
		n.configure(n2, []string{n2, n3}, nil, 2)
		checkOutcome(t, n.do1(n2, lockOp("k", "w", leaseForTests)), true, PhaseCommit, 2, 2)
	})
	t.Run("Unreachable decides at once", func(t *testing.T) {
		n := masters(t, 2, n1, n2)
		n.holdTo(n2)
		c := n.submit(n1, lockOp("k", "v", leaseForTests))
		n.run()
		n.unreachable(n1, n2)
		o := c.one()
		checkOutcome(t, o, false, PhasePrepare, 1, 0)
		checkReasons(t, o, map[string]messages.Reason{n2: rUnreachable})
		if n.core(n1).WriteLocks() != 0 {
			t.Fatal("the coordinator's own promise was not aborted")
		}
	})
	t.Run("a stopped master is unreachable at once", func(t *testing.T) {
		n := masters(t, 2, n1, n2)
		n.stop(n2)
		c := n.submit(n1, lockOp("k", "v", leaseForTests))
		n.run()
		checkOutcome(t, c.one(), false, PhasePrepare, 1, 0)
	})
	t.Run("Unreachable in the commit phase fails the commit at once", func(t *testing.T) {
		n := masters(t, 2, n1, n2)
		n.holdIf = is[*messages.Commit](n2)
		c := n.submit(n1, lockOp("k", "v", leaseForTests))
		n.run()
		n.unreachable(n1, n2)
		o := c.one()
		checkOutcome(t, o, false, PhaseCommit, 2, 1)
		checkReasons(t, o, map[string]messages.Reason{n2: rUnreachable})
	})
	t.Run("Unreachable of a master that answered changes nothing", func(t *testing.T) {
		n := masters(t, 2, n1, n2, n3)
		n.holdTo(n3)
		c := n.submit(n1, lockOp("k", "v", leaseForTests))
		n.run()
		n.unreachable(n1, n2)
		n.unreachable(n1, n3)
		o := c.one()
		checkOutcome(t, o, true, PhaseCommit, 2, 2)
		checkReasons(t, o, map[string]messages.Reason{n3: rUnreachable})
	})
	t.Run("Unreachable of itself is ignored", func(t *testing.T) {
		n := masters(t, 2, n1, n2)
		n.holdTo(n2)
		c := n.submit(n1, lockOp("k", "v", leaseForTests))
		n.run()
		n.unreachable(n1, n1)
		if c.done() {
			t.Fatal("a peer counted itself unreachable")
		}
	})
}

// TestClose checks that Close fails everything pending as stopped.
func TestClose(t *testing.T) {
	t.Run("Close fails a write waiting for promises as Stopped", func(t *testing.T) {
		n := masters(t, 2, n1, n2)
		n.holdTo(n2)
		c := n.submit(n1, lockOp("k", "v", leaseForTests), lockOp("j", "v", leaseForTests))
		n.run()
		n.close(n1)
		if c.calls != 1 || len(c.outs) != 2 {
			t.Fatalf("replied %d times with %d outcomes", c.calls, len(c.outs))
		}
		for _, o := range c.outs {
			if !o.Stopped || o.OK || o.Phase != PhasePrepare || o.W != 2 {
				t.Fatalf("outcome %+v, want Stopped in PhasePrepare", o)
			}
		}
	})
	t.Run("Close fails a write waiting for commits as Stopped in PhaseCommit", func(t *testing.T) {
		n := masters(t, 2, n1, n2)
		n.holdIf = is[*messages.Commit](n2)
		c := n.submit(n1, lockOp("k", "v", leaseForTests))
		n.run()
		n.close(n1)
		if o := c.one(); !o.Stopped || o.OK || o.Phase != PhaseCommit {
			t.Fatalf("outcome %+v, want Stopped in PhaseCommit", o)
		}
	})
	t.Run("Submit after Close is Stopped at once", func(t *testing.T) {
		n := newNetwork(t, n1)
		n.close(n1)
		c := n.submit(n1, lockOp("k", "v", leaseForTests), releaseOp("j", "v"))
		if c.calls != 1 || len(c.outs) != 2 || !c.outs[0].Stopped || !c.outs[1].Stopped {
			t.Fatalf("replied %d times: %+v", c.calls, c.outs)
		}
	})
	t.Run("Close fails pending reads and admin requests", func(t *testing.T) {
		n := newNetwork(t, n1, n2)
		n.configure(n1, []string{n2}, []string{n1}, 1)
		n.holdTo(n2)
		var rr *ReadResult
		n.onAnswer(n1, n.core(n1).ReadMaster("k"), func(a Answer) { rr = &a.Read })
		var ar map[string]AdminResult
		n.onAnswer(n1, n.core(n1).SetW([]string{n1, n2}, 1), func(a Answer) { ar = a.Admin })
		n.run()
		n.close(n1)
		if rr == nil || !rr.Stopped {
			t.Fatalf("read %+v, want Stopped", rr)
		}
		if ar == nil || ar[n1].Reason != rNone || ar[n2].Reason != rUnreachable {
			t.Fatalf("admin %+v, want n1 applied and n2 unreachable", ar)
		}
		var after *ReadResult
		n.onAnswer(n1, n.core(n1).ReadMaster("k"), func(a Answer) { after = &a.Read })
		if after == nil || !after.Stopped {
			t.Fatalf("read after Close %+v, want Stopped", after)
		}
		var adm map[string]AdminResult
		n.onAnswer(n1, n.core(n1).SetNodes([]string{n1}, []string{n1}, nil), func(a Answer) { adm = a.Admin })
		if adm[n1].Reason != rUnreachable {
			t.Fatalf("admin after Close %+v, want unreachable", adm)
		}
	})
	t.Run("Close wakes every waiter", func(t *testing.T) {
		n := newNetwork(t, n1)
		n.do1(n1, lockOp("held", "v", leaseForTests))
		_, wp := n.core(n1).Store().WaitPresent("absent")
		wa := n.core(n1).Store().WaitAbsent("held")
		n.close(n1)
		for _, w := range []*Waiter{wp, wa} {
			select {
			case <-w.Done():
			default:
				t.Fatal("a waiter was not woken by Close")
			}
		}
		if _, waiting := n.core(n1).Store().Counts(); waiting != 0 {
			t.Fatalf("%d waiters left", waiting)
		}
	})
	t.Run("a closed Core ignores messages and ticks", func(t *testing.T) {
		n := newNetwork(t, n1)
		c := n.core(n1)
		c.Close()
		c.Close()
		c.Step(n2, &messages.Prepare{Txn: 1, Ballot: c.hlc + 1, Items: []*messages.PrepareItem{prepItem(kLock, "k", "")}})
		c.Tick()
		c.PushNow()
		c.Unreachable(n2)
		if out := c.TakeOutput(); len(out.Messages) != 0 || len(out.Answers) != 0 || c.WriteLocks() != 0 {
			t.Fatal("a closed Core acted")
		}
	})
}

// TestBatch checks how Submit splits ops into transactions.
func TestBatch(t *testing.T) {
	t.Run("ops on distinct keys go in one transaction", func(t *testing.T) {
		n := masters(t, 2, n1, n2)
		outs := n.do(n1, lockOp("a", "1", leaseForTests), lockOp("b", "2", leaseForTests), lockOp("c", "3", leaseForTests))
		for _, o := range outs {
			checkOutcome(t, o, true, PhaseCommit, 2, 2)
		}
		if got := countSent[*messages.Prepare](n, n1, n2); got != 1 {
			t.Fatalf("%d prepares sent, want 1", got)
		}
		if got := countSent[*messages.Commit](n, n1, n2); got != 1 {
			t.Fatalf("%d commits sent, want 1", got)
		}
	})
	t.Run("outcomes come back in the order of the ops, each on its own", func(t *testing.T) {
		n := masters(t, 2, n1, n2)
		n.do1(n1, lockOp("b", "x", leaseForTests))
		outs := n.do(n1, lockOp("a", "1", leaseForTests), lockOp("b", "2", leaseForTests), releaseOp("b", "x"), updateOp("c", "1", "2"))
		want := []bool{true, false, true, false}
		for i, o := range outs {
			if o.OK != want[i] {
				t.Fatalf("op %d: %+v, want OK=%v", i, o, want[i])
			}
		}
		checkReasons(t, outs[1], map[string]messages.Reason{n1: rLocked, n2: rLocked})
		checkReasons(t, outs[3], map[string]messages.Reason{n1: rNotFound, n2: rNotFound})
	})
	t.Run("a repeated key goes in a later transaction, begun once the earlier one is decided", func(t *testing.T) {
		n := masters(t, 2, n1, n2)
		c := n.submit(n1, lockOp("k", "v", leaseForTests), lockOp("j", "v", leaseForTests), extendOp("k", "v", 2*leaseForTests), releaseOp("j", "v"))
		if got := len(n.pending()); got != 1 {
			t.Fatalf("%d messages sent at once, want the first transaction's prepare only", got)
		}
		n.settle(c)
		if c.calls != 1 {
			t.Fatalf("replied %d times", c.calls)
		}
		for _, o := range c.outs {
			checkOutcome(t, o, true, PhaseCommit, 2, 2)
		}
		if got := countSent[*messages.Prepare](n, n1, n2); got != 2 {
			t.Fatalf("%d prepares sent, want 2", got)
		}
		if _, ok := n.read(n2, "j"); ok {
			t.Fatal("j not released")
		}
		if e := n.core(n2).store.raw("k"); e == nil || e.deadline != int64(2*leaseForTests) {
			t.Fatalf("k not extended: %+v", e)
		}
	})
	t.Run("a repeated key later in a batch sees the earlier write", func(t *testing.T) {
		n := newNetwork(t, n1)
		outs := n.do(n1, lockOp("k", "v", leaseForTests), lockOp("k", "w", leaseForTests), updateOp("k", "v", "x"), releaseOp("k", "x"))
		want := []bool{true, false, true, true}
		for i, o := range outs {
			if o.OK != want[i] {
				t.Fatalf("op %d: %+v, want OK=%v", i, o, want[i])
			}
		}
		checkReasons(t, outs[1], map[string]messages.Reason{n1: rLocked})
		if outs[2].Token <= outs[0].Token || outs[3].Token != outs[2].Token {
			t.Fatalf("tokens %d %d %d", outs[0].Token, outs[2].Token, outs[3].Token)
		}
	})
	t.Run("the message size bound splits a batch into concurrent transactions", func(t *testing.T) {
		cfg := testConfig()
		cfg.MaxMessageBytes = 1024
		n := newNetworkWith(t, cfg, n1, n2)
		n.configure(n1, []string{n1, n2}, nil, 2)
		var ops []Op
		for i := range 40 {
			ops = append(ops, lockOp(fmt.Sprintf("key-%02d", i), strings.Repeat("v", 100), leaseForTests))
		}
		c := n.submit(n1, ops...)
		prepares := len(n.pending())
		if prepares < 5 {
			t.Fatalf("%d prepares for 40 ops of ~150 bytes under 1 KiB", prepares)
		}
		n.settle(c) // the harness checks every message against MaxMessageBytes
		for i, o := range c.outs {
			if !o.OK {
				t.Fatalf("op %d: %+v", i, o)
			}
		}
		if got := countSent[*messages.Commit](n, n1, n2); got != prepares {
			t.Fatalf("%d commits for %d prepares", got, prepares)
		}
	})
	t.Run("an empty Submit replies at once", func(t *testing.T) {
		n := newNetwork(t, n1)
		c := n.submit(n1)
		if c.calls != 1 || len(c.outs) != 0 {
			t.Fatalf("replied %d times with %v", c.calls, c.outs)
		}
	})
	t.Run("Close stops the later transactions of a batch", func(t *testing.T) {
		n := masters(t, 2, n1, n2)
		n.holdTo(n2)
		c := n.submit(n1, lockOp("k", "v", leaseForTests), releaseOp("k", "v"))
		n.run()
		n.close(n1)
		if c.calls != 1 || len(c.outs) != 2 || !c.outs[0].Stopped || !c.outs[1].Stopped {
			t.Fatalf("replied %d times: %+v", c.calls, c.outs)
		}
	})
}
