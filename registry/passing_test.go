package registry

import (
	"testing"

	"github.com/protoactor-locker/locker/lockeractor"
)

// TestPassingReasons: a registration is tried again only when every
// refusal passes by itself; one that says the name is held, or differs,
// or nothing at all, ends it.
func TestPassingReasons(t *testing.T) {
	for _, tc := range []struct {
		peers map[string]lockeractor.Reason
		want  bool
	}{
		{map[string]lockeractor.Reason{"a": lockeractor.ReasonStaleEpoch, "b": lockeractor.ReasonUnreachable}, true},
		{map[string]lockeractor.Reason{"a": lockeractor.ReasonWriteLocked}, true},
		{map[string]lockeractor.Reason{"a": lockeractor.ReasonCatchingUp, "b": lockeractor.ReasonNotMaster}, true},
		{map[string]lockeractor.Reason{"a": lockeractor.ReasonBallotTooLow, "b": lockeractor.ReasonPromiseExpired}, true},
		{map[string]lockeractor.Reason{"a": lockeractor.ReasonStaleEpoch, "b": lockeractor.ReasonValueDiffers}, false},
		{map[string]lockeractor.Reason{"a": lockeractor.ReasonNotFound}, false},
		{map[string]lockeractor.Reason{"a": lockeractor.ReasonInvalid}, false},
		{nil, false},
	} {
		if got := passing(&lockeractor.QuorumError{W: 2, Peers: tc.peers}); got != tc.want {
			t.Errorf("passing(%v) = %v, want %v", tc.peers, got, tc.want)
		}
	}
}
