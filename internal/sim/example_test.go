package sim_test

import (
	"fmt"

	"github.com/protoactor-locker/locker/internal/sim"
)

// A run of one seed: five masters and a replica under partitions,
// crashes, pauses, drifting clocks, lossy networks and membership
// changes, eight clients on three keys. The same seed gives the same run.
func Example() {
	cfg := sim.DefaultConfig(7)
	cfg.Steps = 5000
	r := sim.New(cfg).Run()
	again := sim.New(cfg).Run()
	fmt.Println("violations:", len(r.Violations))
	fmt.Println("replays exactly:", r.Operations == again.Operations && r.Faults == again.Faults && r.SimTime == again.SimTime)
	// Output:
	// violations: 0
	// replays exactly: true
}
