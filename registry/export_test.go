package registry

import (
	"context"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Cached reports whether r's cache has an entry for name (whether or not
// WhereIs vouches for it), for tests that show WhereIs refusing an entry
// the store's watch has not dropped yet.
func Cached(r *Registry, name string) bool { return r.cache.get(name) != nil }

// Reserve is r.reserve, for tests: a name registered for pid with an
// explicit threshold, not yet tied to pid's life.
func Reserve(r *Registry, ctx context.Context, name string, pid *actor.PID, lease, threshold time.Duration) (*reservation, error) {
	return r.reserve(ctx, name, pid, lease, threshold)
}

// CheckLease is r.checkLease, for tests.
func CheckLease(r *Registry, lease, threshold time.Duration) error {
	return r.checkLease(lease, threshold)
}

// Threshold is r.threshold, for tests: the renewal threshold Register
// and server.Spawn use for lease when none is given.
func Threshold(r *Registry, lease time.Duration) time.Duration { return r.threshold(lease) }
