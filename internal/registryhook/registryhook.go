// Package registryhook is what packages server and fsm use of a
// registry.Registry beyond its public API: reserving a name for an actor
// before it is spawned, and the lease rules Spawn checks first.
package registryhook

import (
	"context"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/extensions"
)

// Reservation is a name registered for an actor about to be spawned:
// renewed like any other, but not yet tied to the actor's life.
type Reservation interface {
	// Commit ties the name to the actor's life: when it stops, the name
	// is released. Idempotent.
	Commit()
	// Cancel releases the name if the reservation still holds it.
	Cancel(ctx context.Context) error
}

// Registry is a running registry.Registry as server and fsm see it.
type Registry interface {
	// CheckLease validates a lease and its renewal threshold against the
	// Registry's Locker (an *registry.ArgumentError when invalid).
	CheckLease(lease, threshold time.Duration) error
	// Threshold is the renewal threshold the Registry uses for lease
	// when none is given (registry.Config.LeaseThreshold, or a quarter of
	// a short lease).
	Threshold(lease time.Duration) time.Duration
	// Reserve registers name for pid, not yet tied to pid's life.
	Reserve(ctx context.Context, name string, pid *actor.PID, lease, threshold time.Duration) (Reservation, error)
}

// ExtensionID is the id of package registry's actor-system extension,
// which implements Source.
var ExtensionID = extensions.NextExtensionID()

// Source is package registry's extension: it yields the running
// Registry of its actor system, or nil.
type Source interface {
	Registry() Registry
}

// Get returns the running Registry of system, or nil when none runs.
func Get(system *actor.ActorSystem) Registry {
	if system == nil {
		return nil
	}
	if src, ok := system.Extensions.Get(ExtensionID).(Source); ok {
		return src.Registry()
	}
	return nil
}
