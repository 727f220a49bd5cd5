package sim

import (
	"container/heap"
	"slices"
	"time"
)

// notReadyOutcome counts, in Result.Outcomes, the failed writes a peer
// refused because it was not ready (no configuration naming it yet, or
// copying leases after a restart); they are counted as "fail" too.
const notReadyOutcome = "not ready"

// unconfiguredTime is how long RunClientsFirst lets the clients call
// their peers before the cluster is configured.
const unconfiguredTime = 300 * time.Millisecond

// RunClientsFirst runs the simulation the way users start a cluster:
// every peer starts with no configuration and the clients call their
// peers at once, for a while, before anyone configures the cluster; then
// the run goes on as Run (configuration, faults, checks). A peer that
// holds no configuration must refuse every write (core.Outcome.NotReady)
// rather than grant it as its own single master: the invariants, checked
// after every step from the first, find two clients holding a key if one
// does. (Peers restarted with empty memory during Run are called at once
// too: clients do not wait for their peer's configuration.)
func (s *Sim) RunClientsFirst() *Result {
	for _, c := range s.clients {
		c.schedule()
	}
	s.runFor(unconfiguredTime)
	if s.stopped {
		return s.finish(s.cfg.KeepGoing)
	}
	// Run schedules the clients again: drop their pending turns so that
	// each client keeps one. Unconfigured peers answer at once, so no
	// write is in flight.
	s.queue = slices.DeleteFunc(s.queue, func(e *event) bool { return e.kind == evClient })
	heap.Init(&s.queue)
	return s.Run()
}
