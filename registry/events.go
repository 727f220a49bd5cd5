package registry

import (
	"strings"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/protoactor-locker/locker/lockeractor"
)

// Events. NameRegistered, NameReleased, NameExpired and NameLost are
// published on the actor system's EventStream as values, not pointers
// (protoactor's own events, such as *cluster.ClusterTopology, are
// pointers): match them with a type switch on registry.NameLost, not
// *registry.NameLost. A value can be kept or passed on without anyone
// else changing it.

// NameRegistered is published on the actor system's EventStream when
// this node's store sees a name taken, or taken over by another PID: at
// once on a master, after replication on a replica. Lease renewals are
// not published.
type NameRegistered struct {
	Name string
	PID  *actor.PID
}

// NameReleased is published when this node's store sees a name released
// (Unregister, or its actor stopped).
type NameReleased struct {
	Name string
	PID  *actor.PID
}

// NameExpired is published when a name's lease runs out in this node's
// store: its holder's node stopped renewing it.
type NameExpired struct {
	Name string
	PID  *actor.PID
}

// NameLost is published on the node that held a name when it no longer
// holds it: its renewal failed, or this node's store saw it released by
// another node or taken by another PID (at once, not at the next
// renewal). The actor was stopped (if the name was tied to it). Err says
// why: it wraps ErrNotRegistered (released), is an
// *AlreadyRegisteredError (taken), or is the renewal's error.
type NameLost struct {
	Name string
	PID  *actor.PID
	Err  error
}

// Messages of the registry actor (local only, never on the wire).
type (
	publishEvent struct{ event any }
	watchPID     struct{ pid *actor.PID }
	unwatchPID   struct{ pid *actor.PID }
)

// onChange is the store's watch callback. It runs on the store's actor
// goroutine: it updates the cache and hands events to the registry
// actor, and never blocks.
func (r *Registry) onChange(ch lockeractor.Change) {
	name := strings.TrimPrefix(ch.Key, r.cfg.KeyPrefix)
	r.followHeld(name, ch)
	switch ch.Kind {
	case lockeractor.KeyWritten:
		if !ch.New {
			return // a renewal
		}
		pid := decodePID(ch.Value)
		if pid == nil {
			return
		}
		e := r.cache.put(name, ch.Key, ch.Value, pid)
		r.publish(NameRegistered{Name: name, PID: e.pid})
	case lockeractor.KeyReleased, lockeractor.KeyExpired:
		r.cache.drop(name, ch.Value, r.nanotime())
		pid := decodePID(ch.Value)
		if pid == nil {
			return
		}
		if ch.Kind == lockeractor.KeyReleased {
			r.publish(NameReleased{Name: name, PID: pid})
		} else {
			r.publish(NameExpired{Name: name, PID: pid})
		}
	}
}

// publish hands event to the registry actor, which publishes it: the
// EventStream calls subscribers synchronously, so the store's goroutine
// must not.
func (r *Registry) publish(event any) {
	if !r.stopped() {
		r.system.Root.Send(r.pid, &publishEvent{event: event})
	}
}

// registryActor publishes events and watches named actors, so that
// their names are released when they stop.
type registryActor struct {
	r       *Registry
	watched map[pidKey]bool
}

// Receive implements actor.Actor.
func (a *registryActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *publishEvent:
		ctx.ActorSystem().EventStream.Publish(m.event)
	case *watchPID:
		if k := keyOf(m.pid); !a.watched[k] {
			a.watched[k] = true
			ctx.Watch(m.pid)
		}
	case *unwatchPID:
		if k := keyOf(m.pid); a.watched[k] {
			delete(a.watched, k)
			ctx.Unwatch(m.pid)
		}
	case *actor.Terminated:
		if m.Who != nil {
			delete(a.watched, keyOf(m.Who))
			a.r.onTerminated(m.Who)
		}
	}
}
