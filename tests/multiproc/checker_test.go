package multiproc

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/protoactor-locker/locker/internal/nodeproc"
)

// inv and ret build the records two node processes would have written.
func inv(proc string, seq int64, t int64, w nodeproc.Write) *rec {
	return &rec{proc: proc, inv: nodeproc.Event{Ev: nodeproc.EvInvoke, Seq: seq, T: t, Write: &w}}
}

func (r *rec) answered(t int64, outcome string, token uint64) *rec {
	r.ret = &nodeproc.Event{Ev: nodeproc.EvReturn, Seq: r.inv.Seq, T: t, Outcome: outcome, Token: token}
	return r
}

// TestJudgeFindsInjectedDoubleGrant proves the checking path of the
// kill test can fail: the records of two processes, merged by the same
// code, with a Lock granted on one while the other's holder never
// released, must give a violation; the same records with the holder's
// release in between, and with a killed process's Lock left in flight,
// must not.
func TestJudgeFindsInjectedDoubleGrant(t *testing.T) {
	base := int64(1_700_000_000_000_000_000) // wall-clock nanoseconds, as nodes write them
	lockA := func() *rec {
		return inv("m0#1", 1, base+10, nodeproc.Write{Client: 1, Checked: true, Kind: lock, Key: "hot-0", Value: "a", LeaseMs: longMs}).answered(base+20, ok, 100)
	}
	lockB := func() *rec {
		return inv("m1#1", 1, base+50, nodeproc.Write{Client: 2, Checked: true, Kind: lock, Key: "hot-0", Value: "b", LeaseMs: longMs}).answered(base+60, ok, 101)
	}
	releaseA := inv("m0#1", 2, base+30, nodeproc.Write{Client: 1, Checked: true, Kind: release, Key: "hot-0", Value: "a"}).answered(base+40, ok, 100)
	// A Lock of a killed process, never answered: unknown, open-ended.
	inFlight := inv("r3#1", 7, base+5, nodeproc.Write{Client: 3, Checked: true, Kind: lock, Key: "hot-1", Value: "c", LeaseMs: longMs})
	laterOnHot1 := inv("m1#1", 2, base+70, nodeproc.Write{Client: 2, Checked: true, Kind: lock, Key: "hot-1", Value: "d", LeaseMs: longMs}).answered(base+80, failed, 0)

	legal := judge([]*rec{lockB(), releaseA, inFlight, lockA(), laterOnHot1}, checkBound)
	require.Empty(t, legal.errs)
	require.Equal(t, 5, legal.ops)
	require.Equal(t, 1, legal.open)
	require.Equal(t, 1, legal.unknown, "the killed process's Lock is kept as unknown")
	require.Equal(t, 2, legal.result.Keys)

	doubled := judge([]*rec{lockB(), inFlight, lockA(), laterOnHot1}, checkBound)
	require.Len(t, doubled.result.Violations, 1, "%v", doubled.errs)
	require.Equal(t, "hot-0", doubled.result.Violations[0].Key)
	require.Len(t, doubled.errs, 1)

	bad := judge([]*rec{inv("m0#1", 1, base+10, nodeproc.Write{Client: 1, Checked: true, Kind: lock, Key: "k", Value: "a", LeaseMs: longMs}).answered(base+5, ok, 1)}, checkBound)
	require.Len(t, bad.errs, 1, "an answer before its invocation is malformed")
}

// TestStderrProblem checks what in a node's stderr fails a test.
func TestStderrProblem(t *testing.T) {
	for stderr, want := range map[string]string{
		"": "",
		"nodeproc m0#1: alive for 10m0s, exiting":                                            "",
		"==================\nWARNING: DATA RACE\nWrite at 0x00c0001ac960 by goroutine 8913:": "WARNING: DATA RACE",
		"panic: send on closed channel\n\ngoroutine 1 [running]:":                            "panic:",
		"fatal error: concurrent map read and map write":                                     "fatal error:",
	} {
		require.Equal(t, want, stderrProblem(stderr), "%q", stderr)
	}
}
