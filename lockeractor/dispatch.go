package lockeractor

import (
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// peerThroughput is how many messages the peer's mailbox runs before it
// yields the processor: protoactor's default.
const peerThroughput = 300

// peerIdle is how long the peer's mailbox goroutine waits for the next
// run before it ends. Under load runs follow each other far more often,
// so one goroutine serves them all; an idle peer keeps no goroutine (as
// with protoactor's default dispatcher), so an actor system shut down
// without Locker.Stop leaves none behind.
const peerIdle = 10 * time.Millisecond

// peerDispatcher runs the peer actor's mailbox on one goroutine that
// lives while the peer is busy, instead of protoactor's default of a new
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
// never full when Schedule sends. Schedule sends under mu, and the worker
// ends only under mu with the buffer empty, so no run is left behind.
// After close, runs fall back to a goroutine each, as protoactor's
// default does, so a late system message to the stopped actor still runs.
type peerDispatcher struct {
	idle time.Duration
	work chan func()

	mu      sync.Mutex
	closed  bool
	running bool          // a worker goroutine exists
	quit    chan struct{} // closed by close: the worker ends once the buffer is empty
}

var _ actor.Dispatcher = (*peerDispatcher)(nil)

// newPeerDispatcher returns a dispatcher whose worker ends after idle
// without work. It starts no goroutine until the first run.
func newPeerDispatcher(idle time.Duration) *peerDispatcher {
	return &peerDispatcher{idle: idle, work: make(chan func(), 1), quit: make(chan struct{})}
}

// Schedule runs fn on the worker, starting one if none runs, or on a
// goroutine of its own once the dispatcher is closed.
func (d *peerDispatcher) Schedule(fn func()) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		go fn()
		return
	}
	if !d.running {
		d.running = true
		go d.run()
	}
	d.work <- fn
	d.mu.Unlock()
}

func (d *peerDispatcher) run() {
	t := time.NewTimer(d.idle)
	defer t.Stop()
	for {
		select {
		case fn := <-d.work:
			fn()
			t.Reset(d.idle)
			continue
		case <-t.C:
		case <-d.quit:
		}
		d.mu.Lock()
		if len(d.work) > 0 {
			d.mu.Unlock()
			continue
		}
		d.running = false
		d.mu.Unlock()
		return
	}
}

// Throughput is protoactor's default.
func (d *peerDispatcher) Throughput() int { return peerThroughput }

// close makes the worker end once it has run what was scheduled before;
// it does not wait for that (Stop may be called on the worker itself,
// from a Watch callback). Idempotent.
func (d *peerDispatcher) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	d.closed = true
	close(d.quit)
}
