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
