package sim

import "testing"

// TestGhostLockNotResurrected replays seed 5, which found a lease lost
// while a quorum of masters lived (two holders of "a"), and seed 859
// (two holders of "b"). Both came from writes decided under masters that
// had since been replaced: a Lock prepared under an old epoch committed
// (or was repaired onto masters) after the new masters had copied the
// leases, and its "ghost" value, with a larger token from a fast clock,
// then won every merge by token. Fixed in internal/core: masters refuse
// commits and repairs decided under masters they have replaced since
// (Core.mastersSince), and a new Lock or Update takes a token above every
// copy its refusers report.
func TestGhostLockNotResurrected(t *testing.T) {
	for _, seed := range []uint64{5, 859} {
		cfg := DefaultConfig(seed)
		cfg.Steps = 50000
		cfg.Replicas = 1 // as the runs that found them
		r := New(cfg).Run()
		for _, v := range r.Violations {
			t.Errorf("seed %d: %v", seed, v)
		}
	}
}
