package sim

import (
	"testing"
)

// brokenKinds are the checkers that schedules with W lowered to 1 set
// off: each must find its violation within brokenSeeds seeds. (The
// resource and replica checks need a run to last past its first hundred
// violations, which double holders use up: checkers_test.go and
// resource_test.go show them failing on known-bad inputs.)
var brokenKinds = []string{"double holder", "token order", "token reuse", "linearizability"}

// brokenSeeds bounds the seeds TestCheckersFindBrokenQuorums tries;
// seeds 1-7 set off every kind of brokenKinds today.
const brokenSeeds = 100

// TestCheckersFindBrokenQuorums proves the checkers can fail: with W
// lowered to 1 of 3 or 5 masters (quorums that need not intersect), the
// same schedules must produce double grants, and every checker of
// brokenKinds must report them. It runs seeds until each has.
func TestCheckersFindBrokenQuorums(t *testing.T) {
	kinds := map[string]int{}
	missing := func() []string {
		var out []string
		for _, k := range brokenKinds {
			if kinds[k] == 0 {
				out = append(out, k)
			}
		}
		return out
	}
	seed := uint64(1)
	for ; seed <= brokenSeeds && len(missing()) > 0; seed++ {
		cfg := DefaultConfig(seed)
		cfg.Steps = 20000
		cfg.UnsafeW = 1
		cfg.KeepGoing = true
		r := New(cfg).Run()
		for _, v := range r.Violations {
			kinds[v.Kind]++
		}
	}
	t.Logf("violations by kind over seeds 1-%d with W=1: %v", seed-1, kinds)
	for _, kind := range missing() {
		t.Errorf("no %q violation in %d seeds with W=1: that checker cannot fail", kind, brokenSeeds)
	}
}
