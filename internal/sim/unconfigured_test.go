package sim

import (
	"testing"
)

// TestClientsCallUnconfiguredPeers runs seeds with RunClientsFirst:
// clients call every peer from the moment it starts, before the cluster
// is configured (and again on peers restarted with empty memory). No
// violation may be found, and writes must have been refused then: the
// run did call peers that were not ready.
func TestClientsCallUnconfiguredPeers(t *testing.T) {
	seeds, steps := 20, 20000
	if raceEnabled || testing.Short() {
		seeds, steps = 4, 5000
	}
	refused := 0
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		cfg := DefaultConfig(seed)
		cfg.Steps = steps
		res := New(cfg).RunClientsFirst()
		for _, v := range res.Violations {
			t.Errorf("%v", v)
		}
		refused += res.Outcomes[notReadyOutcome]
	}
	if refused == 0 {
		t.Error("no write was refused as not ready: the clients never called an unconfigured peer")
	}
	t.Logf("%d seeds, %d writes refused as not ready", seeds, refused)
}
