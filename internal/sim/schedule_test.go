package sim

import (
	"testing"
	"time"
)

// TestFirstSeed checks where TestSimulation starts: LOCKER_SIM_FROM when
// -sim.from is not given, else seed 1.
func TestFirstSeed(t *testing.T) {
	if *fromFlag != 0 {
		t.Skip("-sim.from given: it decides")
	}
	t.Setenv("LOCKER_SIM_FROM", "")
	if got := firstSeed(t); got != 1 {
		t.Errorf("no start seed: first seed %d, want 1", got)
	}
	t.Setenv("LOCKER_SIM_FROM", "20001")
	if got := firstSeed(t); got != 20001 {
		t.Errorf("LOCKER_SIM_FROM=20001: first seed %d, want 20001", got)
	}
}

// TestDefaultScheduleHasItsFaults checks that DefaultConfig's runs
// contain what they are for: masters restarted in turn, messages of an
// earlier life arriving late, long and short leases of the mixed key
// granted, and one master's clock ahead of the others.
func TestDefaultScheduleHasItsFaults(t *testing.T) {
	rolled, late, long, short := 0, 0, 0, 0
	for seed := uint64(1); seed <= 4; seed++ {
		cfg := DefaultConfig(seed)
		cfg.Steps = 10000
		s := New(cfg)
		r := s.Run()
		rolled += r.FaultKinds["rolling restart"]
		late += r.FaultKinds["late message"]
		for _, o := range r.History.Ops() {
			if o.Key != "m" || o.Kind != opLock || o.Result != OK {
				continue
			}
			if time.Duration(o.LeaseMs)*time.Millisecond > time.Minute {
				long++
			} else {
				short++
			}
		}
		ahead := 0
		for _, p := range s.peers {
			if p.clock.offset >= cfg.FastClock/2 {
				ahead++
			}
		}
		if ahead != 1 {
			t.Errorf("seed %d: %d peers run FastClock/2 or more ahead, want one", seed, ahead)
		}
	}
	t.Logf("rolling restarts %d, late messages %d, mixed-key locks granted: %d long, %d short", rolled, late, long, short)
	if rolled == 0 || late == 0 || long == 0 || short == 0 {
		t.Errorf("rolling restarts %d, late messages %d, long locks %d, short locks %d: want each above 0", rolled, late, long, short)
	}
}
