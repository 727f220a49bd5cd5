package lockeractor

import (
	"context"
	"fmt"
	"sync"

	"github.com/protoactor-locker/locker/messages"
)

// readiness is whether the peer may coordinate writes, as its actor last
// saw it (core.Core.Ready is for the actor only), with a channel that is
// closed while it is ready so that Ready can wait without polling.
type readiness struct {
	// mu guards ready and became: the peer actor writes them when they
	// change (after a message it handles); Ready and IsReady read them
	// from any goroutine.
	mu     sync.Mutex
	ready  bool
	why    messages.Reason // why not ready (core.Core.NotReadyReason)
	became chan struct{}   // closed while ready; replaced when readiness is lost
}

func newReadiness(ready bool) *readiness {
	r := &readiness{ready: ready, why: messages.Reason_REASON_NOT_MASTER, became: make(chan struct{})}
	if ready {
		close(r.became)
	}
	return r
}

// set records the peer's readiness; cheap when nothing changed.
func (r *readiness) set(ready bool, why messages.Reason) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.why = why
	if ready == r.ready {
		return
	}
	r.ready = ready
	if ready {
		close(r.became)
	} else {
		r.became = make(chan struct{})
	}
}

func (r *readiness) get() (bool, <-chan struct{}, messages.Reason) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ready, r.became, r.why
}

// IsReady reports whether this peer may coordinate writes now (see
// Ready); it does not wait.
func (l *Locker) IsReady() bool {
	ready, _, _ := l.ready.get()
	return ready && !l.isStopped()
}

// Ready returns nil once this peer may coordinate writes, at once if it
// may now, or an error wrapping ErrNotReady and ctx's error when ctx
// ends first (ErrStopped if the Locker stops).
//
// A Locker started without protoactor remote and without a cluster is a
// single-node store and is ready at once. Any other peer is ready once
// it holds a configuration that names it (from SetNodes, Reconfigure,
// cluster mode, or another peer's gossip) and, as a master that lost its
// memory, has copied the others' leases. Until then Lock, Update,
// ExtendLease, Release and Batch fail at once with ErrNotReady, and the
// peer promises nothing to anyone: a member never grants a write on its
// own vote because it has not heard of the cluster yet.
//
// How long that takes in cluster mode: the first configuration is made
// once the topology has been stable for WithBootstrapDelay (default 2
// s), or as soon as WithExpectedMembers members are seen, plus one
// Reconfigure (a few round trips); a member joining a configured cluster
// is ready once the coordinator sees it in the topology and adds it (one
// Reconfigure); a master restarted with empty memory once it hears the
// configuration (the masters repeat it every 10 replication intervals, 1
// s by default, and the coordinator re-adds it) and has copied the
// leases of the other masters (one snapshot round trip; see
// WithMaxLease for when W or more masters restarted at once).
func (l *Locker) Ready(ctx context.Context) error {
	if ctx == nil {
		return invalid("nil context")
	}
	for {
		ready, became, why := l.ready.get()
		if l.isStopped() {
			return ErrStopped
		}
		if ready {
			return nil
		}
		select {
		case <-became:
		case <-ctx.Done():
			return fmt.Errorf("%w (%s): %w", ErrNotReady, reasonText(why), ctx.Err())
		case <-l.stopped:
			return ErrStopped
		}
	}
}

// notReady is the error of a write refused because this peer is not
// ready.
func notReady(why Reason) error {
	if why == messages.Reason_REASON_CATCHING_UP {
		return fmt.Errorf("%w: catching up after a restart (copying the other masters' leases)", ErrNotReady)
	}
	return fmt.Errorf("%w: this peer holds no configuration that names it yet", ErrNotReady)
}
