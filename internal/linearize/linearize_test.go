package linearize_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/protoactor-locker/locker/internal/linearize"
	"github.com/protoactor-locker/locker/lockeractor"
	"github.com/protoactor-locker/locker/messages"
)

const (
	lock    = messages.WriteKind_WRITE_KIND_LOCK
	update  = messages.WriteKind_WRITE_KIND_UPDATE
	extend  = messages.WriteKind_WRITE_KIND_EXTEND
	release = messages.WriteKind_WRITE_KIND_RELEASE
)

// w is one write of a test history: [call, ret] (ret < 0: unknown).
type w struct {
	client    int
	kind      messages.WriteKind
	value     string
	newValue  string
	call, ret int64
	out       linearize.Outcome
	token     uint64
}

func check(t *testing.T, ws ...w) linearize.Result {
	t.Helper()
	h := &linearize.History{}
	for _, x := range ws {
		op := h.Invoke(x.client, true, "k", x.kind, x.value, x.newValue, 60000, x.call)
		h.Finish(op, x.out, x.token, x.ret)
	}
	h.CloseOpen()
	return linearize.Check(h.Operations(), 0)
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		rule  string
		ws    []w
		legal bool
	}{
		{"a lock, its update and its release in turn are legal", []w{
			{1, lock, "a", "", 0, 10, linearize.OK, 5},
			{1, update, "a", "b", 20, 30, linearize.OK, 6},
			{1, release, "b", "", 40, 50, linearize.OK, 6},
			{2, lock, "c", "", 60, 70, linearize.OK, 7},
		}, true},
		{"two locks held at once are illegal", []w{
			{1, lock, "a", "", 0, 10, linearize.OK, 5},
			{2, lock, "b", "", 20, 30, linearize.OK, 6},
		}, false},
		{"concurrent locks may both be answered ok only if one released in between: here none did", []w{
			{1, lock, "a", "", 0, 30, linearize.OK, 5},
			{2, lock, "b", "", 0, 30, linearize.OK, 6},
		}, false},
		{"a later lock's token must be larger than an earlier one's", []w{
			{1, lock, "a", "", 0, 10, linearize.OK, 9},
			{1, release, "a", "", 20, 30, linearize.OK, 9},
			{2, lock, "b", "", 40, 50, linearize.OK, 4},
		}, false},
		{"a lock answered ok without a token is illegal", []w{
			{1, lock, "a", "", 0, 10, linearize.OK, 0},
		}, false},
		{"an update answered ok without a token is illegal", []w{
			{1, lock, "a", "", 0, 10, linearize.OK, 5},
			{1, update, "a", "b", 20, 30, linearize.OK, 0},
		}, false},
		{"an update answered ok with its lock's token is illegal", []w{
			{1, lock, "a", "", 0, 10, linearize.OK, 5},
			{1, update, "a", "b", 20, 30, linearize.OK, 5},
		}, false},
		{"an update by a non-holder is illegal", []w{
			{1, lock, "a", "", 0, 10, linearize.OK, 5},
			{2, update, "x", "y", 20, 30, linearize.OK, 6},
		}, false},
		{"an extend must carry the holder's token", []w{
			{1, lock, "a", "", 0, 10, linearize.OK, 5},
			{1, extend, "a", "", 20, 30, linearize.OK, 4},
		}, false},
		{"a failed write changes nothing", []w{
			{1, lock, "a", "", 0, 10, linearize.OK, 5},
			{2, lock, "b", "", 20, 30, linearize.Failed, 0},
			{1, release, "a", "", 40, 50, linearize.OK, 5},
		}, true},
		{"an unknown release may take effect later, making a later lock legal", []w{
			{1, lock, "a", "", 0, 10, linearize.OK, 5},
			{1, release, "a", "", 20, -1, linearize.Unknown, 0},
			{2, lock, "b", "", 100, 110, linearize.OK, 6},
		}, true},
		{"an unknown lock may never take effect", []w{
			{1, lock, "a", "", 0, -1, linearize.Unknown, 0},
			{2, lock, "b", "", 100, 110, linearize.OK, 6},
		}, true},
		{"an unknown lock that took effect is seen by a later update of its value", []w{
			{1, lock, "a", "", 0, -1, linearize.Unknown, 0},
			{1, update, "a", "b", 100, 110, linearize.OK, 6},
		}, true},
		{"a pending write is unknown", []w{
			{1, lock, "a", "", 0, 10, linearize.OK, 5},
			{1, release, "a", "", 20, 0, linearize.Pending, 0},
			{2, lock, "b", "", 100, 110, linearize.OK, 6},
		}, true},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			r := check(t, tc.ws...)
			require.Empty(t, r.Inconclusive)
			require.Equal(t, 1, r.Keys)
			require.Equal(t, len(tc.ws), r.Operations)
			if tc.legal {
				require.Empty(t, r.Violations)
			} else {
				require.Len(t, r.Violations, 1)
				require.Contains(t, r.Violations[0].Error(), `"k"`)
			}
		})
	}
}

func TestUncheckedWritesAreRecordedNotChecked(t *testing.T) {
	h := &linearize.History{}
	a := h.Invoke(1, false, "short", lock, "a", "", 100, 0)
	h.Finish(a, linearize.OK, 1, 1)
	b := h.Invoke(2, false, "short", lock, "b", "", 100, 2)
	h.Finish(b, linearize.OK, 2, 3) // would be illegal if checked
	require.Equal(t, 2, h.Len())
	require.Empty(t, h.Operations())
	require.Empty(t, linearize.Check(h.Operations(), 0).Violations)
}

func TestOutcomeOf(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want linearize.Outcome
	}{
		{nil, linearize.OK},
		{fmt.Errorf("wrapped: %w", &lockeractor.QuorumError{Key: "k"}), linearize.Failed},
		{&lockeractor.QuorumError{Key: "k", Committing: true}, linearize.Unknown},
		{fmt.Errorf("%w: empty key", lockeractor.ErrInvalidArgument), linearize.Failed},
		{fmt.Errorf("locker: %w (the write may still complete)", errors.New("context deadline exceeded")), linearize.Unknown},
		{lockeractor.ErrStopped, linearize.Unknown},
		{fmt.Errorf("%w: not configured", lockeractor.ErrNotReady), linearize.Failed},
	} {
		require.Equal(t, tc.want, linearize.OutcomeOf(tc.err), "%v", tc.err)
	}
}

func Example() {
	h := &linearize.History{}
	a := h.Invoke(1, true, "k", lock, "a", "", 60000, 0)
	h.Finish(a, linearize.OK, 5, 10)
	b := h.Invoke(2, true, "k", lock, "b", "", 60000, 20)
	h.Finish(b, linearize.OK, 6, 30) // a second holder while a holds k
	r := linearize.Check(h.Operations(), 0)
	fmt.Println(r.Keys, r.Operations, len(r.Violations))
	// Output: 1 2 1
}

// TestSummary checks the line .ci/run parses and when a run counts as
// judged.
func TestSummary(t *testing.T) {
	s := linearize.Summary{Histories: 1, Operations: 2, Faults: 3, Violations: 4, Runs: 6, Judged: 5}
	require.Equal(t, "1 histories, 2 operations, 3 faults, 4 violations, 5 of 6 runs judged", s.String())
	checked := linearize.Result{Keys: 1, Operations: 2}
	require.Equal(t, 1, linearize.RunSummary(checked, 10, 3, 0).Judged)
	require.Zero(t, linearize.RunSummary(checked, 10, 0, 0).Judged, "no fault injected")
	require.Zero(t, linearize.RunSummary(linearize.Result{}, 10, 3, 0).Judged, "no write checked")
	require.Zero(t, linearize.RunSummary(linearize.Result{Keys: 1, Operations: 2, Inconclusive: []string{"k"}}, 10, 3, 0).Judged, "undecided")
	require.Equal(t, 1, linearize.RunSummary(linearize.Result{}, 10, 3, 0).Runs)
}
