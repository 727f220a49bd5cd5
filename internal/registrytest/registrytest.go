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
	"github.com/protoactor-locker/locker/lockeractor"
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
	return NewWith(tb, n, nil, opts...)
}

// NewWith is New with lockerOpts for every node's Locker (e.g.
// lockertest.WithFaults with one Faults shared by all nodes).
func NewWith(tb testing.TB, n int, lockerOpts []lockeractor.Option, opts ...registry.Option) *Cluster {
	tb.Helper()
	c := &Cluster{Cluster: testcluster.New(tb, n, lockerOpts...)}
	var all []int
	for i := range n {
		all = append(all, i)
	}
	c.SetNodes(tb, all, nil)
	for i, node := range c.Nodes {
		r, err := registry.New(node.Locker, opts...)
		if err != nil {
			tb.Fatalf("registry.New on node %d: %v", i, err)
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

// LeakOptions are the goroutines goleak ignores (testcluster.LeakOptions).
func LeakOptions() []goleak.Option { return testcluster.LeakOptions() }

// Single starts one actor system without remote, with a Locker and a
// Registry (so it runs under -race); all stop when tb ends.
func Single(tb testing.TB) (*actor.ActorSystem, *registry.Registry) {
	tb.Helper()
	return SingleWith(tb, nil)
}

// SingleWith is Single with the Locker started with lockerOpts (a
// testcluster.ManualClock through lockeractor.WithClock, say: the
// Registry counts its leases on the Locker's clock) and the Registry
// with opts.
func SingleWith(tb testing.TB, lockerOpts []lockeractor.Option, opts ...registry.Option) (*actor.ActorSystem, *registry.Registry) {
	tb.Helper()
	sys := actor.NewActorSystem(testcluster.Quiet()...)
	l, err := lockeractor.Start(sys, lockerOpts...)
	if err != nil {
		tb.Fatalf("starting the Locker: %v", err)
	}
	r, err := registry.New(l, opts...)
	if err != nil {
		tb.Fatalf("registry.New: %v", err)
	}
	tb.Cleanup(func() {
		r.Stop()
		l.Stop()
		sys.Shutdown()
	})
	return sys, r
}
