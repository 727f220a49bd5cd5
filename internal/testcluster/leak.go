package testcluster

import "go.uber.org/goleak"

// LeakOptions are the goroutines that outlive stopped actor systems in
// this protoactor-go and gRPC version; goleak ignores them and nothing
// else. Members that all stop cleanly leave none of them; they come from
// tests that kill a member while the others still run.
func LeakOptions() []goleak.Option {
	return []goleak.Option{
		// The surviving members' gRPC client connections to a killed
		// member keep reconnecting: protoactor's Remote.Shutdown does not
		// close a connection whose endpoint it already dropped.
		goleak.IgnoreTopFunction("google.golang.org/grpc.(*addrConn).resetTransport"),
		// ... and the callback serializers of those connections.
		goleak.IgnoreTopFunction("google.golang.org/grpc/internal/grpcsync.(*CallbackSerializer).run"),
		// protoactor's dead-letter log throttle (actor/throttler.go) waits
		// out one DeadLetterThrottleInterval (1 s) after the first dead
		// letter of a period, whatever happens to the actor system. The
		// two names are the closure inlined into NewDeadLetter and not.
		goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"),
		goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewThrottle.func1.1"),
	}
}
