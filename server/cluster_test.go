//go:build !race

// Tests over three actor systems talking protoactor remote (not under
// -race: protoactor's remote races when several start in one process).

package server_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/protoactor-locker/locker/internal/registrytest"
	"github.com/protoactor-locker/locker/internal/testcluster"
	"github.com/protoactor-locker/locker/lockeractor"
	"github.com/protoactor-locker/locker/registry"
	"github.com/protoactor-locker/locker/server"
)

const bound = time.Minute // bound of every Eventually: generous, it decides nothing when things work

// resolvedEverywhere waits until every node resolves name to pid (nil:
// to nothing).
func resolvedEverywhere(t *testing.T, c *registrytest.Cluster, name string, pid *actor.PID) {
	t.Helper()
	for i := range c.Nodes {
		testcluster.Eventually(t, bound, func() bool {
			got := c.Registry(i).WhereIs(name)
			if pid == nil {
				return got == nil
			}
			return pid.Equal(got)
		}, "node %d resolves %q to %v", i, name, pid)
	}
}

// callStop is the elixir test's GenServer.call({:via, Registry, name}, :stop).
func callStop(t *testing.T, r *registry.Registry, name string) {
	t.Helper()
	res, err := r.Request(context.Background(), name, str("stop"))
	require.NoError(t, err)
	require.Equal(t, "ok", res.(*wrapperspb.StringValue).GetValue())
}

// spawner is an actor that spawns servers as its children (start_link).
func spawner(sys *actor.ActorSystem) *actor.PID {
	return sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if name, ok := c.Message().(string); ok {
			var pid *actor.PID
			var err error
			if name == "" {
				pid = c.Spawn(serverProps(nil)) // without a name
			} else {
				pid, err = server.Spawn(c, name, serverProps(nil))
			}
			if err != nil {
				c.Respond(err)
				return
			}
			c.Respond(pid)
		}
	}))
}

func spawnLinked(t *testing.T, sys *actor.ActorSystem, parent *actor.PID, name string) *actor.PID {
	t.Helper()
	res, err := sys.Root.RequestFuture(parent, name, 5*time.Second).Result()
	require.NoError(t, err)
	pid, ok := res.(*actor.PID)
	require.True(t, ok, "%v", res)
	return pid
}

// Port of "server start/2 and terminate".
func TestElixirServerStartAndTerminate(t *testing.T) {
	c := registrytest.New(t, 3)
	pid, err := server.Spawn(c.System(0).Root, "test", serverProps(nil))
	require.NoError(t, err)
	require.True(t, pid.Equal(c.Registry(0).WhereIs("test")))
	resolvedEverywhere(t, c, "test", pid)
	callStop(t, c.Registry(1), "test")
	resolvedEverywhere(t, c, "test", nil)
}

// Port of "server start_link/2 and terminate".
func TestElixirServerStartLinkAndTerminate(t *testing.T) {
	c := registrytest.New(t, 3)
	parent := spawner(c.System(1))
	pid := spawnLinked(t, c.System(1), parent, "test")
	require.True(t, pid.Equal(c.Registry(1).WhereIs("test")))
	resolvedEverywhere(t, c, "test", pid)
	callStop(t, c.Registry(2), "test")
	resolvedEverywhere(t, c, "test", nil)
}

// Port of "server start/2 without opts": an actor without a name.
func TestElixirServerStartWithoutName(t *testing.T) {
	c := registrytest.New(t, 3)
	pid := c.System(0).Root.Spawn(serverProps(nil))
	require.NotNil(t, pid)
	res, err := c.System(2).Root.RequestFuture(pid, str("hi"), bound).Result()
	require.NoError(t, err)
	require.Equal(t, "echo hi", res.(*wrapperspb.StringValue).GetValue())
}

// Port of "server start_link/2 without opts".
func TestElixirServerStartLinkWithoutName(t *testing.T) {
	c := registrytest.New(t, 3)
	parent := spawner(c.System(2))
	pid := spawnLinked(t, c.System(2), parent, "")
	require.Equal(t, parent.Id+"/", pid.Id[:len(parent.Id)+1])
}

func TestNamesResolvedFromEveryNode(t *testing.T) {
	c := registrytest.New(t, 3)
	pids := make([]*actor.PID, 3)
	for i := range 3 {
		var err error
		pids[i], err = server.Spawn(c.System(i).Root, fmt.Sprintf("srv-%d", i), serverProps(nil))
		require.NoError(t, err)
	}
	for j := range 3 {
		resolvedEverywhere(t, c, fmt.Sprintf("srv-%d", j), pids[j])
		for i := range 3 {
			res, err := c.Registry(i).Request(context.Background(), fmt.Sprintf("srv-%d", j), str(fmt.Sprint(i)))
			require.NoError(t, err)
			require.Equal(t, fmt.Sprintf("echo %d", i), res.(*wrapperspb.StringValue).GetValue())
		}
	}
}

// TestNameSurvivesTenLeases: a name renewed by its Registry resolves on
// every node at every check for ten lease lengths, and every node's
// store holds it. The three Lockers share a ManualClock (the Registries
// count on it too), so no lease can end because the machine stalled:
// the test moves the clock to each renewal's due time, waits (bounded,
// deciding nothing) until every node's store applied the renewal, checks,
// and moves on by less than a lease, checking again before the next
// renewal lands. A renewal that did not extend the lease on a node would
// leave that node's copy ended at the next step.
func TestNameSurvivesTenLeases(t *testing.T) {
	clk := testcluster.NewManualClock(time.Now())
	// No renew window: each renewal is due exactly a threshold before
	// the lease ends, so a Registry that renewed later fails the checks.
	c := registrytest.NewWith(t, 3, []lockeractor.Option{lockeractor.WithClock(clk)}, registry.WithRenewWindow(0))
	const (
		lease     = 200 * time.Millisecond
		threshold = 50 * time.Millisecond
		name      = "long-lived"
	)
	// step is the renewal the clock was last moved to; applied[i] the
	// step during which node i's store last applied a renewal (KeyWritten
	// of the same registration: not New). A renewal retried after its
	// real-time context ended commits twice: counting would overshoot.
	var step atomic.Int64
	applied := make([]atomic.Int64, 3)
	for i := range 3 {
		cancel := c.Peer(i).Watch(c.Registry(i).Key(name), func(ch lockeractor.Change) {
			if ch.Kind == lockeractor.KeyWritten && !ch.New {
				applied[i].Store(step.Load())
			}
		})
		t.Cleanup(cancel)
	}
	pid, err := server.Spawn(c.System(0).Root, name, serverProps(nil),
		server.WithLeaseLength(lease), server.WithLeaseThreshold(threshold))
	require.NoError(t, err)
	resolvedEverywhere(t, c, name, pid)
	check := func(what string) {
		t.Helper()
		for i := range 3 {
			require.True(t, pid.Equal(c.Registry(i).WhereIs(name)), "node %d lost the name %s", i, what)
			_, err := c.Peer(i).DirtyRead(c.Registry(i).Key(name))
			require.NoError(t, err, "node %d store %s", i, what)
		}
	}
	l, ok := c.Registry(0).Owned(name)
	require.True(t, ok)
	for n := range int64(10) {
		// Just before the renewal is due, then at its due time.
		clk.Advance(l.Deadline.Add(-threshold).Sub(clk.Now()) - time.Millisecond)
		check(fmt.Sprintf("before renewal %d", n+1))
		step.Store(n + 1)
		clk.Advance(time.Millisecond)
		for i := range 3 {
			testcluster.Eventually(t, time.Minute, func() bool { return applied[i].Load() == n+1 },
				"node %d applies renewal %d", i, n+1)
		}
		testcluster.Eventually(t, time.Minute, func() bool {
			next, ok := c.Registry(0).Owned(name)
			return ok && next.Deadline.After(l.Deadline)
		}, "the holder's Registry counts renewal %d", n+1)
		check(fmt.Sprintf("after renewal %d", n+1))
		l, _ = c.Registry(0).Owned(name)
	}
}

func TestDuplicateSpawnFailsWithHolder(t *testing.T) {
	c := registrytest.New(t, 3)
	pid, err := server.Spawn(c.System(0).Root, "unique", serverProps(nil))
	require.NoError(t, err)
	for i := range 3 {
		_, err := server.Spawn(c.System(i).Root, "unique", serverProps(nil))
		var are *registry.AlreadyRegisteredError
		require.True(t, errors.As(err, &are), "node %d: %v", i, err)
		require.True(t, pid.Equal(are.Holder), "node %d", i)
	}
}

func TestPanicRestartKeepsNameStopReleases(t *testing.T) {
	c := registrytest.New(t, 3)
	var started int32
	pid, err := server.Spawn(c.System(1).Root, "phoenix", serverProps(&started),
		server.WithLeaseLength(200*time.Millisecond), server.WithLeaseThreshold(50*time.Millisecond))
	require.NoError(t, err)
	resolvedEverywhere(t, c, "phoenix", pid)
	require.NoError(t, c.Registry(0).Send("phoenix", str("boom")))
	// Messages from different members may arrive in any order: ask until
	// the restart shows.
	testcluster.Eventually(t, bound, func() bool {
		res, err := c.Registry(2).Request(context.Background(), "phoenix", str("started"))
		require.NoError(t, err, "answered across the restart")
		return res.(*wrapperspb.Int32Value).GetValue() == 2
	}, "restarted once")
	resolvedEverywhere(t, c, "phoenix", pid)

	require.NoError(t, c.System(1).Root.StopFuture(pid).Wait())
	resolvedEverywhere(t, c, "phoenix", nil)
}

func TestKilledNodesNameExpiresAndMovesOn(t *testing.T) {
	c := registrytest.New(t, 3)
	lease := 300 * time.Millisecond
	pid, err := server.Spawn(c.System(2).Root, "movable", serverProps(nil),
		server.WithLeaseLength(lease), server.WithLeaseThreshold(100*time.Millisecond))
	require.NoError(t, err)
	resolvedEverywhere(t, c, "movable", pid)

	c.Nodes[2].Stop()
	c.Registry(2).Stop()
	for i := range 2 {
		testcluster.Eventually(t, lease+bound, func() bool { return c.Registry(i).WhereIs("movable") == nil },
			"node %d forgets the dead node's name", i)
	}
	moved, err := server.Spawn(c.System(0).Root, "movable", serverProps(nil))
	require.NoError(t, err, "taken over by a live node")
	testcluster.Eventually(t, bound, func() bool { return moved.Equal(c.Registry(1).WhereIs("movable")) }, "node 1 sees the new holder")
}
