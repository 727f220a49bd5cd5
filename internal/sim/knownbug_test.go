package sim

import (
	"os"
	"testing"
)

// TestKnownBugGhostLockResurrectedBySync replays seed 5, which finds a
// lease lost while a quorum of masters lives (two holders of "a"). It is a protocol bug in internal/core, reported to the lead and
// kept out of the fixed seeds until it is fixed; run it with
// LOCKER_SIM_KNOWN_BUGS=1.
//
// The story below was traced on seed 1837 (clients without backoff) of an
// earlier build of this package, before it sorted each outbox; the seeds
// that fail now (5 in the fixed set; 294, 448, 567 of 1..1000) have not
// all been traced, and may include a second cause (seed 448: 3 masters, a
// crash and restart, no membership change). The story (5 masters; 10.0.0.4 swaps master 10.0.0.2 for 10.0.0.6):
// client 0's Lock "b"=c0.1, prepared under epoch 2, commits on 10.0.0.1
// and 10.0.0.5 only (the others moved to the joint epoch 3 and dropped
// its promises): an unknown outcome, a minority ghost with token T1 from
// 10.0.0.1's fast clock. Client 6's Lock "b"=c6.1 then succeeds under
// epoch 3 with a majority (4 commits) and token T2 < T1: its granters
// never saw T1. The repair of 10.0.0.5 keeps c0.1 (newer token). The
// reconfiguration's Sync copies the old masters' snapshots to the new
// masters, and onReplicate keeps the entry with the larger token: the
// ghost c0.1 replaces c6.1 on a majority. Client 0 (uncertain) releases
// c0.1 successfully, and client 5 locks "b" while client 6's lease runs:
// two holders. Largest-token-wins is not a valid merge rule when a
// failed write's token can exceed a later committed one's.
func TestKnownBugGhostLockResurrectedBySync(t *testing.T) {
	if os.Getenv("LOCKER_SIM_KNOWN_BUGS") == "" {
		t.Skip("known core bug (a failed Lock resurrected over a committed one by the reconfiguration's lease copy); LOCKER_SIM_KNOWN_BUGS=1 runs it")
	}
	cfg := DefaultConfig(5)
	cfg.Steps = 50000
	r := New(cfg).Run()
	for _, v := range r.Violations {
		t.Error(v)
	}
}
