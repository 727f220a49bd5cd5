package tests

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/protoactor-locker/locker/lockeractor"
)

// The checkers of the fault tests, fed known-bad histories without a
// cluster: each must report its violation, and the healthy history
// nothing.

// TestHistoryCheckFindsDoubleGrantsAndStaleTokens checks history.check.
func TestHistoryCheckFindsDoubleGrantsAndStaleTokens(t *testing.T) {
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	g := func(who string, token uint64, invoke, ok, end int) *grant {
		return &grant{key: "k", who: who, token: token, invoke: at(invoke), ok: at(ok), end: at(end)}
	}
	for _, tc := range []struct {
		name   string
		grants []*grant
		broken []string // a piece of each violation expected
		held   int
	}{
		{"holders in turn with growing tokens", []*grant{g("a", 5, 0, 10, 100), g("b", 6, 50, 100, 200)}, nil, 2},
		{"a grant answered after its own lease holds nothing", []*grant{g("a", 5, 0, 10, 100), g("b", 4, 0, 60, 50)}, nil, 1},
		{"two holders at once", []*grant{g("a", 5, 0, 10, 100), g("b", 6, 20, 50, 150)}, []string{"double grant"}, 2},
		{"a later holder with a smaller token", []*grant{g("a", 5, 0, 10, 100), g("b", 4, 90, 100, 200)}, []string{"not above 5"}, 2},
		{"both at once", []*grant{g("a", 5, 0, 10, 100), g("b", 5, 20, 50, 150)}, []string{"double grant", "not above 5"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &history{byNode: make([]atomic.Int64, 1)}
			for _, x := range tc.grants {
				h.add(x)
			}
			violations, held, _ := h.check()
			require.Equal(t, tc.held, held)
			require.Len(t, violations, len(tc.broken), "%q", violations)
			for i, want := range tc.broken {
				require.Contains(t, violations[i], want)
			}
		})
	}
}

// TestResourceRefusesOverlappingHolders checks resource.write: a timely
// write the resource refuses (its token is not above one accepted
// before) is a violation; a late one is skipped.
func TestResourceRefusesOverlappingHolders(t *testing.T) {
	r := newResource()
	ahead := time.Now().Add(time.Hour)
	require.True(t, r.write("k", 5, ahead, "a"))
	require.True(t, r.write("k", 6, ahead, "b"))
	require.Empty(t, r.violations)
	require.False(t, r.write("k", 5, time.Now().Add(-time.Millisecond), "a"), "a late write")
	require.Equal(t, 1, r.late)
	require.Empty(t, r.violations, "a late write is no violation")
	require.False(t, r.write("k", 6, ahead, "c"), "a second holder with token 6")
	require.False(t, r.write("k", 4, ahead, "d"), "a holder with an older token")
	require.Len(t, r.violations, 2, "%q", r.violations)
	require.Contains(t, r.violations[0], "c's token 6 refused, 6 seen")
	require.Equal(t, 2, r.accepted)
}

// TestCheckedClientRecordsLostLeases checks the checked client's
// lost-lease check: a refusal of a surely held lease by a write quorum as
// absent or another value is recorded; a refusal that may come from
// silent or busy masters is not.
func TestCheckedClientRecordsLostLeases(t *testing.T) {
	var load checkedLoad
	c := &checkedClient{name: "chk", key: "k", mine: []string{"v"}, sure: true, lost: &load.lost, lostM: &load.mu}
	notHeld := &lockeractor.QuorumError{Key: "k", W: 2, Peers: map[string]lockeractor.Reason{
		"a": lockeractor.ReasonNotFound, "b": lockeractor.ReasonValueDiffers}}
	oneRefusal := &lockeractor.QuorumError{Key: "k", W: 2, Peers: map[string]lockeractor.Reason{
		"a": lockeractor.ReasonNotFound, "b": lockeractor.ReasonUnreachable}}
	committing := &lockeractor.QuorumError{Key: "k", W: 2, Committing: true, Peers: map[string]lockeractor.Reason{
		"a": lockeractor.ReasonNotFound, "b": lockeractor.ReasonNotFound}}
	for _, err := range []error{oneRefusal, committing, nil} {
		require.False(t, refusedAsNotHeld(err), "%v", err)
	}
	require.True(t, refusedAsNotHeld(notHeld))
	c.lostLease("Update", notHeld)
	require.Len(t, load.violations(), 1)
	require.Contains(t, load.violations()[0], `chk's Update of "v" (surely held) refused as not held`)
}
