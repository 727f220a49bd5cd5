// Package testcluster starts Locker peers on real actor systems talking
// over protoactor remote on 127.0.0.1, for tests and benchmarks.
//
//	c := testcluster.New(t, 3)           // three systems, one peer each
//	c.SetNodes(t, []int{0, 1, 2}, nil)  // all masters, W=2
//	res, err := c.Peer(0).Lock(ctx, "k", []byte("v"), time.Second)
package testcluster

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"

	"github.com/protoactor-locker/locker/lockeractor"
)

// Node is one actor system with remote and a Locker peer.
type Node struct {
	System *actor.ActorSystem
	Remote *remote.Remote
	Locker *lockeractor.Locker
	Addr   string
	opts   []lockeractor.Option
	once   sync.Once
}

// Cluster is a set of nodes in this process.
type Cluster struct {
	Nodes []*Node
}

// Quiet returns actor-system options that discard protoactor's logs.
func Quiet() []actor.ConfigOption {
	return []actor.ConfigOption{actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	})}
}

// StartNode starts one actor system with remote on 127.0.0.1 (with
// lockeractor.RemoteOptions) and a Locker peer on it.
func StartNode(opts ...lockeractor.Option) (*Node, error) {
	return StartNodeWith(lockeractor.RemoteOptions(), opts...)
}

// StartNodeWith is StartNode with the given remote options instead.
func StartNodeWith(remoteOpts []remote.ConfigOption, opts ...lockeractor.Option) (*Node, error) {
	sys := actor.NewActorSystem(Quiet()...)
	r := remote.NewRemote(sys, remote.Configure("127.0.0.1", 0, remoteOpts...))
	r.Start()
	l, err := lockeractor.Start(sys, opts...)
	if err != nil {
		r.Shutdown(false)
		sys.Shutdown()
		return nil, err
	}
	return &Node{System: sys, Remote: r, Locker: l, Addr: sys.Address(), opts: opts}, nil
}

// Stop stops the node's peer and remote and the actor system; idempotent.
//
// It survives a panic of protoactor's remote.Shutdown: when another node
// has just stopped, this node's endpoint reader for that node's stream
// ends and closes its disconnect channel, and a goroutine removes it from
// the endpoint manager's map a moment later; Shutdown, in between, sends
// on the closed channel (remote/endpoint_manager.go, stop) and panics.
// What that panic skips is the rest of the disconnect notices and the
// graceful gRPC stop: a hard stop of the gRPC server and the actor
// system's shutdown finish the job.
func (n *Node) Stop() {
	n.once.Do(func() {
		n.Locker.Stop()
		if !shutdownRemote(n.Remote) {
			n.Remote.Shutdown(false)
		}
		n.System.Shutdown()
	})
}

// shutdownRemote shuts r down gracefully and reports whether it did, or
// whether Shutdown panicked on protoactor's closed disconnect channel.
func shutdownRemote(r *remote.Remote) (ok bool) {
	defer func() {
		if p := recover(); p != nil {
			if err, isErr := p.(error); !isErr || err.Error() != "send on closed channel" {
				panic(p)
			}
			ok = false
		}
	}()
	r.Shutdown(true)
	return true
}

// SkipUnderRace skips tb when the race detector is on: protoactor-go's
// 2024-08-22 snapshot has data races of its own when several remotes run
// in one process (grpclog.SetLoggerV2, MemberList reads), so multi-node
// tests in one process run in the plain `go test ./...` pass only.
func SkipUnderRace(tb testing.TB) {
	tb.Helper()
	if RaceEnabled {
		tb.Skip("several protoactor remotes in one process race inside protoactor-go; this test runs without -race")
	}
}

// New starts n nodes and stops them when tb ends. With n > 1 it skips tb
// under the race detector (see SkipUnderRace).
func New(tb testing.TB, n int, opts ...lockeractor.Option) *Cluster {
	tb.Helper()
	if n > 1 {
		SkipUnderRace(tb)
	}
	c := &Cluster{}
	for i := 0; i < n; i++ {
		node, err := StartNode(opts...)
		if err != nil {
			c.Stop()
			tb.Fatalf("starting node %d: %v", i, err)
		}
		c.Nodes = append(c.Nodes, node)
	}
	tb.Cleanup(c.Stop)
	return c
}

// Stop stops every node.
func (c *Cluster) Stop() {
	var wg sync.WaitGroup
	for _, n := range c.Nodes {
		wg.Add(1)
		go func() { defer wg.Done(); n.Stop() }()
	}
	wg.Wait()
}

// Peer returns node i's Locker.
func (c *Cluster) Peer(i int) *lockeractor.Locker { return c.Nodes[i].Locker }

// All returns every node's address, in node order.
func (c *Cluster) All() []string {
	var out []string
	for _, n := range c.Nodes {
		out = append(out, n.Addr)
	}
	return out
}

// Addrs returns the addresses of the nodes with the given indices.
func (c *Cluster) Addrs(idx ...int) []string {
	var out []string
	for _, i := range idx {
		out = append(out, c.Nodes[i].Addr)
	}
	return out
}

// SetNodes configures every node: masters and replicas by node index,
// W = majority of the masters.
func (c *Cluster) SetNodes(tb testing.TB, masters, replicas []int) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	live := c.All()
	if err := c.Peer(0).SetNodes(ctx, live, c.Addrs(masters...), c.Addrs(replicas...)); err != nil {
		tb.Fatalf("SetNodes: %v", err)
	}
	if err := c.Peer(0).SetW(ctx, live, len(masters)/2+1); err != nil {
		tb.Fatalf("SetW: %v", err)
	}
}

// Eventually polls cond until it holds or the bound passes, then fails tb
// with msg. It decides nothing by time except giving up.
func Eventually(tb testing.TB, bound time.Duration, cond func() bool, format string, args ...any) {
	tb.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("not within %v: %s", bound, fmt.Sprintf(format, args...))
		}
		time.Sleep(time.Millisecond)
	}
}
