package lockeractor

import (
	"sync"

	"github.com/asynkron/protoactor-go/actor"
)

// peerThroughput is how many messages the peer's mailbox runs before it
// yields the processor: protoactor's default.
const peerThroughput = 300

// peerDispatcher runs the peer actor's mailbox on one goroutine that
// lives as long as the peer, instead of protoactor's default of a new
// goroutine each time the mailbox wakes. A new goroutine starts with a
// small stack, and a write's path through the core (decode, Step, the
// ballot, the timers, the replies) is deep enough to grow it, so under
// load every wake-up copied its stack again: about 3 % of the process's
// CPU in BenchmarkPairs at 64 callers (docs/performance.md). The
// long-lived goroutine grows its stack once.
//
// protoactor's mailbox schedules at most one run at a time (it moves from
// idle to running before it calls Schedule, and back to idle only at the
// end of the run), so with one mailbox per dispatcher a buffer of one is
// never full when Schedule sends. After close, and for anything left in
// the buffer then, runs fall back to a goroutine each, as protoactor's
// default does, so a late system message to the stopped actor still runs.
type peerDispatcher struct {
	mu     sync.Mutex
	closed bool
	work   chan func()
	done   chan struct{} // closed when the worker has ended
}

var _ actor.Dispatcher = (*peerDispatcher)(nil)

// newPeerDispatcher starts the worker; close ends it.
func newPeerDispatcher() *peerDispatcher {
	d := &peerDispatcher{work: make(chan func(), 1), done: make(chan struct{})}
	go d.run()
	return d
}

func (d *peerDispatcher) run() {
	defer close(d.done)
	for fn := range d.work {
		fn()
	}
}

// Schedule runs fn on the worker, or on a goroutine of its own once the
// dispatcher is closed.
func (d *peerDispatcher) Schedule(fn func()) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		go fn()
		return
	}
	d.work <- fn
	d.mu.Unlock()
}

// Throughput is protoactor's default.
func (d *peerDispatcher) Throughput() int { return peerThroughput }

// close ends the worker once it has run what was scheduled before, and
// waits for it. Idempotent.
func (d *peerDispatcher) close() {
	d.mu.Lock()
	if !d.closed {
		d.closed = true
		close(d.work)
	}
	d.mu.Unlock()
	<-d.done
}
