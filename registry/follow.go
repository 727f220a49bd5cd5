package registry

import (
	"fmt"

	"github.com/protoactor-locker/locker/lockeractor"
)

// followHeld drops a name this Registry holds as soon as this node's
// store shows that the cluster no longer holds it for this Registry's
// PID, instead of at the next renewal:
//   - released: a release of the registration's value with its token
//     (or a later one), by an Unregister on any node;
//   - taken: another value written under a larger token (the name was
//     taken over, after its lease ended on a quorum).
//
// WhereIs stops resolving the name here at once, its actor is stopped
// and NameLost is published, with an error wrapping ErrNotRegistered
// (released) or an *AlreadyRegisteredError (taken).
//
// An expiry of the name in this node's store is not a loss by itself:
// the masters count a lease from when its commit reached them, so a
// renewal in flight may still extend it there. WhereIs stops resolving
// the name here once the lease this Registry counts has ended (and the
// store's copy with it); the renewal's outcome decides whether the name
// is lost.
//
// Events of an earlier registration of the same name (late replication)
// carry an older token and are ignored. It runs on the store's goroutine
// (the watch callback): it takes r.mu, which nobody holds across a call
// to the store, and sends without waiting.
func (r *Registry) followHeld(name string, ch lockeractor.Change) {
	r.mu.Lock()
	h := r.owned[name]
	if h == nil || h.key != ch.Key {
		r.mu.Unlock()
		return
	}
	var why error
	switch ch.Kind {
	case lockeractor.KeyReleased:
		if h.entry.matches(ch.Value) && ch.Token >= h.token {
			why = fmt.Errorf("%w: %q was released by another node", ErrNotRegistered, name)
		}
	case lockeractor.KeyWritten:
		if !h.entry.matches(ch.Value) && ch.Token > h.token {
			why = &AlreadyRegisteredError{Name: name, Holder: decodePID(ch.Value)}
		}
	}
	if why == nil {
		r.mu.Unlock()
		return
	}
	r.dropLocked(h)
	r.mu.Unlock()
	r.lost(h, why)
}
