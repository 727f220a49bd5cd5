package lockeractor

import (
	"slices"

	"github.com/asynkron/protoactor-go/actor"
)

// System is the actor system this Locker runs on.
func (l *Locker) System() *actor.ActorSystem { return l.system }

// Done is closed when the Locker stops.
func (l *Locker) Done() <-chan struct{} { return l.stopped }

// Configuration is a peer's membership, with its epoch.
type Configuration struct {
	Epoch    uint64
	Masters  []string // sorted
	Replicas []string // sorted
	W        int
	// OldMasters and OldW are set while the masters change (a joint
	// configuration, see Reconfigure): writes then need W of Masters and
	// OldW of OldMasters.
	OldMasters []string
	OldW       int
}

// Joint reports whether c is a change of masters in progress.
func (c Configuration) Joint() bool { return len(c.OldMasters) > 0 }

// Configuration returns the membership this peer works with now.
func (l *Locker) Configuration() Configuration {
	m := l.core.Membership()
	return Configuration{
		Epoch: m.Epoch, Masters: slices.Clone(m.Masters), Replicas: slices.Clone(m.Replicas), W: m.W,
		OldMasters: slices.Clone(m.OldMasters), OldW: m.OldW,
	}
}
