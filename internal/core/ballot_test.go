package core

import (
	"testing"

	"github.com/protoactor-locker/locker/messages"
)

// TestRepairBelowABallotPromisedHere checks the rule for a repair (a
// commit applied without a promise) whose token is below a ballot this
// master promised on the key to another write that is not decided yet:
// it does not land while that write may still commit (its residue would
// have the larger token), lands once the write is aborted (it can leave
// no state anywhere), and is dropped if the write commits.
func TestRepairBelowABallotPromisedHere(t *testing.T) {
	repairItem := &messages.CommitItem{Key: "k", Kind: kLock, Value: []byte("winner"), LeaseMs: 60_000, Token: 50, Repair: true}
	for _, tc := range []struct {
		name   string
		decide *messages.CommitItem // what the coordinator of the promised write sends
		want   string               // the value k holds after it
	}{
		{name: "the promised write is aborted: the repair lands", decide: &messages.CommitItem{Key: "k", Kind: kLock, Abort: true}, want: "winner"},
		{name: "the promised write commits: the repair is dropped", decide: &messages.CommitItem{Key: "k", Kind: kLock, Value: []byte("other")}, want: "other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newNetwork(t, n1)
			c := n.core(n1)
			p := prepare(t, c, n2, 1, prepItem(kLock, "k", ""))
			if !p.GetItems()[0].GetGranted() {
				t.Fatalf("promise: %v", p)
			}
			ack := commit(t, c, n3, 5, repairItem)
			if ack == nil || ack.GetItems()[0].GetOk() || ack.GetItems()[0].GetReason() != messages.Reason_REASON_BALLOT_TOO_LOW {
				t.Fatalf("repair below the promised ballot: %v, want BALLOT_TOO_LOW", ack)
			}
			if _, ok := n.read(n1, "k"); ok {
				t.Fatal("the repair landed while the promised write may still commit")
			}
			decide := tc.decide
			if !decide.GetAbort() {
				decide.LeaseMs, decide.Token = 60_000, c.ballots["k"].b
			}
			commit(t, c, n2, 1, decide)
			if v, _ := n.read(n1, "k"); v != tc.want {
				t.Fatalf("k = %q, want %q", v, tc.want)
			}
			n.checkInvariants()
		})
	}
}

// TestRecentForgetsOnTimeInTwoGenerations: a member is found until its
// time is up and not after, whichever generation holds it; a member
// added again while remembered keeps its first value; and however long
// members are added, at most about two lifetimes' worth are kept.
func TestRecentForgetsOnTimeInTwoGenerations(t *testing.T) {
	const life = 100
	var r recent[int, int]
	for now := int64(0); now < 10*life; now++ {
		k := int(now)
		r.add(k, k, now+life, now)
		r.add(k, -1, now+life, now) // already remembered: kept as it was
		for back := int64(0); back <= now && back <= life+1; back++ {
			v, ok := r.get(k-int(back), now)
			if want := back < life; ok != want || (ok && v != k-int(back)) {
				t.Fatalf("at %d, member %d: got %d, %v; want found=%v", now, k-int(back), v, ok, want)
			}
		}
		if n := len(r.cur) + len(r.prev); n > 2*life+1 {
			t.Fatalf("at %d: %d members kept for a lifetime of %d", now, n, life)
		}
	}
}

// TestWasDecidedAboveTheTop: a transaction above every decided one of
// its coordinator is not decided (the fast path); one decided is, until
// a request timeout passes; another coordinator's is not.
func TestWasDecidedAboveTheTop(t *testing.T) {
	c := &Core{cfg: Config{RequestTimeout: 100}}
	c.markDecided("a", 7, 0)
	c.markDecided("a", 5, 1)
	for _, tc := range []struct {
		from string
		txn  uint64
		now  int64
		want bool
	}{{"a", 7, 50, true}, {"a", 5, 100, true}, {"a", 6, 50, false}, {"a", 8, 50, false}, {"b", 7, 50, false}, {"a", 7, 100, false}, {"a", 5, 101, false}} {
		if got := c.wasDecided(tc.from, tc.txn, tc.now); got != tc.want {
			t.Errorf("wasDecided(%s, %d, at %d) = %v, want %v", tc.from, tc.txn, tc.now, got, tc.want)
		}
	}
}

// TestDecidedOutOfOrderAndForgotten: transactions decided out of their
// order are remembered as well as those in order, each until a request
// timeout after it was decided, and the list forgets from its front.
func TestDecidedOutOfOrderAndForgotten(t *testing.T) {
	c := &Core{cfg: Config{RequestTimeout: 100}}
	for txn := uint64(10); txn < 20; txn += 2 {
		c.markDecided("a", txn, int64(txn))
	}
	c.markDecided("a", 13, 30) // out of order: below the top
	c.markDecided("a", 14, 31) // decided again: kept as first decided
	for _, tc := range []struct {
		txn  uint64
		now  int64
		want bool
	}{{10, 109, true}, {10, 110, false}, {13, 129, true}, {13, 130, false}, {14, 113, true}, {14, 114, false}, {11, 50, false}, {18, 117, true}} {
		if got := c.wasDecided("a", tc.txn, tc.now); got != tc.want {
			t.Errorf("wasDecided(a, %d, at %d) = %v, want %v", tc.txn, tc.now, got, tc.want)
		}
	}
	c.markDecided("a", 40, 200)
	if n := c.decided["a"].n; n != 1 {
		t.Errorf("%d transactions kept in the list after the others were due, want 1", n)
	}
}
