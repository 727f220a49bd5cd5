package core

import (
	"testing"
	"time"

	"github.com/protoactor-locker/locker/messages"
)

// TestRestartedMasterCatchesUpFromReconfigure checks the rule that a
// master restarted with empty memory copies leases before it votes
// whichever way it learns its configuration: here from the ConfigCommit
// of a Reconfigure (request != 0) that changes only the replicas, a
// change that copies nothing to it (no Sync). Voting at once, it would
// promise "absent" for a key it held before, and with a master that
// missed the key form a quorum that grants it twice.
//
// Masters n1, n2, n3 (W=2); Lock k lands on n1 and n2; n1 restarts
// empty; n2 runs Reconfigure(the same masters, replicas [n4]); then a
// Lock of k from n3 with n2 unreachable must fail. (Found by review.)
func TestRestartedMasterCatchesUpFromReconfigure(t *testing.T) {
	n := lockedOnTwoThenRestarted(t)
	var got *ReconfigResult
	n.core(n2).Reconfigure([]string{n1, n2, n3}, []string{n4}, func(r ReconfigResult) { got = &r })
	for i := 0; got == nil && i < 50; i++ {
		n.run()
		n.advance(time.Millisecond)
	}
	if got == nil || !got.OK {
		t.Fatalf("reconfigure: %+v", got)
	}
	if e := n.core(n1).Membership().Epoch; e != got.Epoch {
		t.Fatalf("n1 is at epoch %d, want %d", e, got.Epoch)
	}
	n.holdTo(n2)
	if o := n.do1(n3, lockOp("k", "other", time.Hour)); o.OK {
		t.Fatalf("a second Lock of k while the first holder's hour lasts: %+v (two holders)", o)
	}
	// Once n2 is back, n1 copies its leases and votes again.
	n.unhold(n2)
	n.sleep(time.Second)
	if n.core(n1).CatchingUp() {
		t.Fatal("n1 still catching up with every master reachable")
	}
	wantRead(t, n, n1, "k", "v", "after catching up")
	n.checkInvariants()
}

// TestRestartedOldMasterSyncEndsCatchUp checks the rule that a restarted
// master that stays a master through a change of masters is caught up by
// the change's Sync, which copies W of the old masters without counting
// its own (empty) memory as one of them.
//
// Masters n1, n2, n3 (W=2); Lock k lands on n1 and n2; n1 restarts
// empty; Reconfigure to n1, n2, n4. n1's catch-up under the joint
// configuration needs every other voter, n4 included, whose answers are
// held; its Sync needs n2 and n3, and ends the catch-up with k copied.
func TestRestartedOldMasterSyncEndsCatchUp(t *testing.T) {
	n := lockedOnTwoThenRestarted(t)
	n.holdIf = func(p packet) bool { return p.from == n4 && p.to == n1 }
	if r := n.reconfigure(n2, []string{n1, n2, n4}, nil); !r.OK {
		t.Fatalf("reconfigure: %+v", r)
	}
	if n.core(n1).CatchingUp() {
		t.Fatal("n1 still catching up after the Sync of the change copied the old masters' leases")
	}
	wantRead(t, n, n1, "k", "v", "after the Sync")
	n.holdIf = nil
	n.unholdAll()
	n.run()
	n.holdTo(n2)
	if o := n.do1(n4, lockOp("k", "other", time.Hour)); o.OK {
		t.Fatalf("a second Lock of k: %+v (two holders)", o)
	}
	n.checkInvariants()
}

// TestRestartedOldMasterIsNoSourceOfItsSync checks that the Sync of a
// restarted master does not count its own empty memory as a copy of an
// old master's: with n2's answers to n1 held, its Sync cannot complete
// (n3 lacks k), so n1 must not vote until it has copied k.
func TestRestartedOldMasterIsNoSourceOfItsSync(t *testing.T) {
	n := lockedOnTwoThenRestarted(t)
	n.holdIf = func(p packet) bool { return (p.from == n2 || p.from == n4) && p.to == n1 && !isConfig(p) }
	if r := n.reconfigure(n2, []string{n1, n2, n4}, nil); !r.OK {
		t.Fatalf("reconfigure: %+v", r)
	}
	if _, ok := n.read(n1, "k"); !ok && !n.core(n1).CatchingUp() {
		t.Fatal("n1 votes without k: its Sync counted its own empty memory")
	}
	n.holdIf = nil
	n.unholdAll()
	n.sleep(3 * time.Second)
	if n.core(n1).CatchingUp() {
		t.Fatal("n1 still catching up with every master reachable")
	}
	wantRead(t, n, n1, "k", "v", "after catching up")
	n.checkInvariants()
}

// isConfig is a packet test: a configuration message (move, commit,
// answer), which tests let through while they hold copies.
func isConfig(p packet) bool {
	switch p.msg.(type) {
	case *messages.ConfigPrepare, *messages.ConfigPromise, *messages.ConfigCommit, *messages.ConfigQuery, *messages.AdminReply, *messages.Sync:
		return true
	}
	return false
}

// lockedOnTwoThenRestarted is the start of these tests: masters n1, n2,
// n3 (W=2) and a spare peer n4; Lock k (an hour) lands on n1 and n2 only;
// n1 restarts with empty memory.
func lockedOnTwoThenRestarted(t *testing.T) *network {
	t.Helper()
	n := masters(t, 2, n1, n2, n3)
	n.start(n4)
	n.drop[n3] = true
	if o := n.do1(n1, lockOp("k", "v", time.Hour)); !o.OK {
		t.Fatalf("lock: %+v", o)
	}
	delete(n.drop, n3)
	n.stop(n1)
	n.start(n1)
	return n
}
