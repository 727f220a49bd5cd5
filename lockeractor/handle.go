package lockeractor

import "github.com/asynkron/protoactor-go/actor"

// System is the actor system this Locker runs on.
func (l *Locker) System() *actor.ActorSystem { return l.system }

// Done is closed when the Locker stops.
func (l *Locker) Done() <-chan struct{} { return l.stopped }
