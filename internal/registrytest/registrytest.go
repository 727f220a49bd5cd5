// Package registrytest starts test clusters with a name Registry on
// every member, for the tests of packages registry, server and fsm.
//
//	c := registrytest.New(t, 3)    // three systems over remote, all masters, W=2
//	pid, err := server.Spawn(c.System(0).Root, "name", props)
//	c.Registry(2).WhereIs("name")  // the same PID, from another member
package registrytest

import (
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/goleak"

	"github.com/protoactor-locker/locker/internal/testcluster"
	"github.com/protoactor-locker/locker/registry"
)

// Cluster is a testcluster.Cluster with a Registry on every node.
type Cluster struct {
	*testcluster.Cluster
	Registries []*registry.Registry
}

// New starts n nodes (all masters, W a majority) with a Registry each;
// everything stops when tb ends.
func New(tb testing.TB, n int, opts ...registry.Option) *Cluster {
	tb.Helper()
	c := &Cluster{Cluster: testcluster.New(tb, n)}
	var all []int
	for i := range n {
		all = append(all, i)
	}
	c.SetNodes(tb, all, nil)
	for i, node := range c.Nodes {
		r := registry.New(node.Locker, opts...)
		if r == nil {
			tb.Fatalf("registry.New on node %d returned nil", i)
		}
		c.Registries = append(c.Registries, r)
	}
	// Cleanups run last-in first-out: the registries stop before the nodes.
	tb.Cleanup(func() {
		for _, r := range c.Registries {
			r.Stop()
		}
	})
	return c
}

// System is node i's actor system.
func (c *Cluster) System(i int) *actor.ActorSystem { return c.Nodes[i].System }

// Registry is node i's Registry.
func (c *Cluster) Registry(i int) *registry.Registry { return c.Registries[i] }

// LeakOptions are the goroutines that outlive a stopped cluster in this
// protoactor and gRPC version; goleak ignores them and nothing else.
// A cluster whose members all stop cleanly leaves none of them; they come
// from tests that kill a member while the others still run.
func LeakOptions() []goleak.Option {
	return []goleak.Option{
		// The surviving members' gRPC client connections to a killed
		// member keep reconnecting: protoactor's Remote.Shutdown does not
		// close a connection whose endpoint it already dropped.
		goleak.IgnoreTopFunction("google.golang.org/grpc.(*addrConn).resetTransport"),
		// ... and the callback serializers of those connections.
		goleak.IgnoreTopFunction("google.golang.org/grpc/internal/grpcsync.(*CallbackSerializer).run"),
		// protoactor's dead-letter log throttle sleeps out its period
		// after messages to the killed member went to dead letters.
		goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"),
	}
}
