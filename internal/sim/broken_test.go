package sim

import (
	"testing"
)

// TestCheckersFindBrokenQuorums proves the checkers can fail: with W
// lowered to 1 of 3 or 5 masters (quorums that need not intersect), the
// same schedules must produce double grants, and both the invariants
// and the linearizability check must report them.
func TestCheckersFindBrokenQuorums(t *testing.T) {
	kinds := map[string]int{}
	found := 0
	for seed := uint64(1); seed <= 20; seed++ {
		cfg := DefaultConfig(seed)
		cfg.Steps = 20000
		cfg.UnsafeW = 1
		cfg.KeepGoing = true
		r := New(cfg).Run()
		if len(r.Violations) > 0 {
			found++
		}
		for _, v := range r.Violations {
			kinds[v.Kind]++
		}
	}
	t.Logf("violations by kind over 20 seeds with W=1: %v", kinds)
	for _, kind := range []string{"double holder", "linearizability"} {
		if kinds[kind] == 0 {
			t.Errorf("no %q violation found with W=1: that checker cannot fail", kind)
		}
	}
	if found == 0 {
		t.Fatal("no violation found with W=1: the checkers cannot fail")
	}
}
