package sim

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"slices"
	"testing"
)

// runDigest runs seed for steps and returns a digest of everything a run
// makes observable: every recorded write (client, key, kind, values,
// lease, call and return times, outcome, token), the counts of the
// result (steps, operations, faults by kind, outcomes, resource writes,
// simulated time, violations) and every event of the run, each message
// with its sender, receiver and contents (the trace, kept whole here).
// It also returns the number of events traced.
func runDigest(seed uint64, steps int) ([32]byte, int) {
	cfg := DefaultConfig(seed)
	cfg.Steps = steps
	cfg.Trace = 8 * steps // room for every event: packets, faults, restarts
	s := New(cfg)
	r := s.Run()
	h := sha256.New()
	for _, o := range r.History.Ops() {
		fmt.Fprintf(h, "op %d %d %q %d %q %q %d %d %d %d %d %t\n", o.ID, o.Client, o.Key, o.Kind, o.Value, o.NewValue,
			o.LeaseMs, o.Call, o.Return, o.Result, o.Token, o.Checked)
	}
	fmt.Fprintf(h, "result %d %d %d %d %d %d %d\n", r.Steps, r.Operations, r.Faults, r.ResourceAccepted, r.ResourceRefused, r.SimTime, len(r.Violations))
	writeCounts(h, "faults", r.FaultKinds)
	writeCounts(h, "outcomes", r.Outcomes)
	for _, v := range r.Violations {
		fmt.Fprintf(h, "violation %d %d %s %s\n", v.Step, v.At, v.Kind, v.Msg)
	}
	trace := s.traceLines()
	for _, line := range trace {
		fmt.Fprintf(h, "%d %s\n", len(line), line)
	}
	var d [32]byte
	copy(d[:], h.Sum(nil))
	return d, len(trace)
}

func writeCounts(h hash.Hash, name string, m map[string]int) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(h, "%s %s %d\n", name, k, m[k])
	}
}

// TestDeterministic checks that a seed replays exactly: two runs of the
// same seeds in one process produce the same history, results and event
// trace. Go randomises the order of every range over a map, even within
// a process, so any order of a map that leaks into the messages a Core
// sends, the ids it draws, the timers it sets or the answers it gives
// shows up as two different digests.
func TestDeterministic(t *testing.T) {
	seeds, steps := 20, 4000
	if testing.Short() || raceEnabled {
		seeds, steps = 8, 3000
	}
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		a, na := runDigest(seed, steps)
		b, nb := runDigest(seed, steps)
		if a != b {
			t.Errorf("seed %d does not replay: digests %x (%d events) and %x (%d events)", seed, a[:8], na, b[:8], nb)
		}
	}
}
