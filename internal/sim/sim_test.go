package sim

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/protoactor-locker/locker/internal/linearize"
)

// knownBugSeeds are seeds of the fixed set that find a known, not yet
// fixed protocol bug in internal/core, each with a note naming it; the
// fixed set skips them (saying why) and -sim.seed replays them.
//
// The ghost lease, fixed: a short lease that replaced a released key's
// tombstone expired, the store forgot the key, and a stale copy of the
// older, longer lease (on a master that missed the Release) came back
// through catch-up and snapshots onto a quorum of masters. An entry now
// keeps the tombstone it was written over until that tombstone's end,
// and copies carry it (internal/core TestShadowDeadline,
// TestShadowTravelsWithTheLease, TestShadowOfAMirroredLeaseDoesNotHideIt);
// TestGhostLeaseStaysReleased replays the seeds that found it.
//
// (Seed 676, left out until the equal-token tombstone was fixed, runs
// again: see TestReleaseResidueTombstoneLeavesReplicas.)
var knownBugSeeds = map[uint64]string{}

var (
	seedFlag = flag.Uint64("sim.seed", 0, "replay one simulation seed (also LOCKER_SIM_SEED); 0 runs the fixed set")
	fromFlag = flag.Uint64("sim.from", 0, "the first seed of the set TestSimulation runs (also LOCKER_SIM_FROM); 0 means 1")
)

// firstSeed returns the first seed of the set to run: -sim.from, else
// LOCKER_SIM_FROM, else 1.
func firstSeed(t *testing.T) uint64 {
	if *fromFlag != 0 {
		return *fromFlag
	}
	if v := os.Getenv("LOCKER_SIM_FROM"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 {
			t.Fatalf("LOCKER_SIM_FROM=%q: want a seed of 1 or more", v)
		}
		return n
	}
	return 1
}

// replaySeed returns the seed to replay, if one was asked for.
func replaySeed(t *testing.T) (uint64, bool) {
	if *seedFlag != 0 {
		return *seedFlag, true
	}
	if v := os.Getenv("LOCKER_SIM_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("LOCKER_SIM_SEED=%q: %v", v, err)
		}
		return n, true
	}
	return 0, false
}

// judgedSample is the smallest set of seeds TestSimulation requires
// judgedPct % of to be judged (see Result.Judged).
const judgedSample = 50

// judgedPct is the share of runs that must settle enough to be judged.
// Not more: a run whose change of masters meets W old masters restarted
// with empty memory settles only once every lease they could have lost
// has ended (catchUpWait, over an hour of simulated time), which a run
// does not wait for; the runs that need it vary with the seed (about 12 %
// of seeds 1-1000).
const judgedPct = 85

// TestSimulation runs the fixed set of seeds (or the one given with
// -sim.seed / LOCKER_SIM_SEED) and checks after every step that at most
// one client holds each key, that fencing tokens follow real time and
// that the protected resource never accepts interleaved holders, and at
// the end that each long key's history is linearizable.
func TestSimulation(t *testing.T) {
	seeds, steps := 200, 50000
	switch {
	case raceEnabled:
		seeds, steps = 4, 5000
	case testing.Short():
		seeds, steps = 10, 10000
	}
	if v, err := strconv.Atoi(os.Getenv("LOCKER_SIM_SEEDS")); err == nil && v > 0 {
		seeds = v // a longer hunt: LOCKER_SIM_SEEDS=5000
	}
	if v, err := strconv.Atoi(os.Getenv("LOCKER_SIM_STEPS")); err == nil && v > 0 {
		steps = v
	}
	var list []uint64
	if s, ok := replaySeed(t); ok {
		list = []uint64{s}
	} else {
		from := firstSeed(t)
		for i := range uint64(seeds) {
			seed := from + i
			if why, ok := knownBugSeeds[seed]; ok {
				t.Logf("seed %d left out: %s", seed, why)
				continue
			}
			list = append(list, seed)
		}
	}
	start := time.Now()
	var histories, ops, faults, violations, stepsRun, judged atomic.Int64
	var mu sync.Mutex
	jobs := make(chan uint64)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seed := range jobs {
				cfg := DefaultConfig(seed)
				cfg.Steps = steps
				r := New(cfg).Run()
				histories.Add(1)
				ops.Add(int64(r.Operations))
				faults.Add(int64(r.Faults))
				stepsRun.Add(int64(r.Steps))
				violations.Add(int64(len(r.Violations)))
				if r.Judged {
					judged.Add(1)
				}
				mu.Lock()
				for _, v := range r.Violations {
					t.Errorf("%v\nreplay: go test ./internal/sim/ -run TestSimulation -sim.seed=%d", v, seed)
				}
				if len(r.Inconclusive) > 0 {
					t.Errorf("seed %d: the linearizability check of %v timed out", seed, r.Inconclusive)
				}
				if len(list) == 1 {
					t.Logf("seed %d: %d steps, %v simulated, outcomes %v, resource writes %d accepted %d refused, faults %v",
						seed, r.Steps, r.SimTime, r.Outcomes, r.ResourceAccepted, r.ResourceRefused, r.FaultKinds)
				}
				mu.Unlock()
			}
		}()
	}
	for _, s := range list {
		jobs <- s
	}
	close(jobs)
	wg.Wait()
	sum := linearize.Summary{Histories: int(histories.Load()), Operations: int(ops.Load()), Faults: int(faults.Load()), Violations: int(violations.Load()),
		Runs: int(histories.Load()), Judged: int(judged.Load())}
	span := ""
	if len(list) > 0 {
		span = fmt.Sprintf("seeds %d-%d, ", list[0], list[len(list)-1])
	}
	fmt.Printf("simulation: %v (%s%d steps in %v)\n", sum, span, stepsRun.Load(), time.Since(start).Round(time.Second))
	// A run that never settles judges no replica (see checkConverged):
	// of a set of seeds (the fixed set, CI's longer one) nearly every
	// run must; of a handful (-short, -race, a replay), one.
	switch {
	case sum.Runs >= judgedSample && sum.Judged*100 < sum.Runs*judgedPct:
		t.Errorf("only %d of %d runs settled enough to judge the replicas (at least %d %% must)", sum.Judged, sum.Runs, judgedPct)
	case sum.Runs < judgedSample && sum.Judged == 0:
		t.Errorf("none of %d runs settled enough to judge the replicas", sum.Runs)
	}
}
