//go:build !race

// Tests over three actor systems talking protoactor remote (not under
// -race: protoactor's remote races when several start in one process).

package fsm_test

import (
	"context"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/protoactor-locker/locker/fsm"
	"github.com/protoactor-locker/locker/internal/registrytest"
	"github.com/protoactor-locker/locker/internal/testcluster"
)

const bound = time.Minute // bound of every Eventually: generous, it decides nothing when things work

// elixirFsm is the elixir_locker test's Fsm: it starts in "started" and
// answers the all-state request "stop" with "ok", then stops.
func elixirFsm() *fsm.Machine {
	return &fsm.Machine{
		Initial: "started",
		States:  map[fsm.State]fsm.StateSpec{"started": {}},
		AnyState: func(c *fsm.Context, msg any) fsm.State {
			if s, ok := msg.(*wrapperspb.StringValue); ok && s.GetValue() == "stop" {
				c.Respond(wrapperspb.String("ok"))
				c.Stop(c.Self())
				return fsm.Keep
			}
			return fsm.Unhandled
		},
	}
}

func fsmSpawner(sys *actor.ActorSystem) *actor.PID {
	return sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if name, ok := c.Message().(string); ok {
			if name == "" {
				c.Respond(c.Spawn(fsm.Props(elixirFsm)))
				return
			}
			pid, err := fsm.Spawn(c, name, elixirFsm)
			if err != nil {
				c.Respond(err)
				return
			}
			c.Respond(pid)
		}
	}))
}

func linked(t *testing.T, sys *actor.ActorSystem, name string) *actor.PID {
	t.Helper()
	res, err := sys.Root.RequestFuture(fsmSpawner(sys), name, bound).Result()
	require.NoError(t, err)
	pid, ok := res.(*actor.PID)
	require.True(t, ok, "%v", res)
	return pid
}

func resolved(t *testing.T, c *registrytest.Cluster, name string, pid *actor.PID) {
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

func stopByName(t *testing.T, c *registrytest.Cluster, from int, name string) {
	t.Helper()
	res, err := c.Registry(from).Request(context.Background(), name, wrapperspb.String("stop"))
	require.NoError(t, err)
	require.Equal(t, "ok", res.(*wrapperspb.StringValue).GetValue())
}

// Port of "fsm start/2 and terminate".
func TestElixirFsmStartAndTerminate(t *testing.T) {
	c := registrytest.New(t, 3)
	pid, err := fsm.Spawn(c.System(0).Root, "test", elixirFsm)
	require.NoError(t, err)
	require.True(t, pid.Equal(c.Registry(0).WhereIs("test")))
	resolved(t, c, "test", pid)
	stopByName(t, c, 2, "test")
	resolved(t, c, "test", nil)
}

// Port of "fsm start_link/2 and terminate".
func TestElixirFsmStartLinkAndTerminate(t *testing.T) {
	c := registrytest.New(t, 3)
	pid := linked(t, c.System(1), "test")
	require.True(t, pid.Equal(c.Registry(1).WhereIs("test")))
	resolved(t, c, "test", pid)
	stopByName(t, c, 0, "test")
	resolved(t, c, "test", nil)
}

// Port of "fsm start/2 without opts".
func TestElixirFsmStartWithoutName(t *testing.T) {
	c := registrytest.New(t, 3)
	pid := c.System(0).Root.Spawn(fsm.Props(elixirFsm))
	s, err := fsm.StateOf(context.Background(), c.System(0), pid)
	require.NoError(t, err)
	require.Equal(t, fsm.State("started"), s)
}

// Port of "fsm start_link/2 without opts".
func TestElixirFsmStartLinkWithoutName(t *testing.T) {
	c := registrytest.New(t, 3)
	pid := linked(t, c.System(2), "")
	s, err := fsm.StateOf(context.Background(), c.System(2), pid)
	require.NoError(t, err)
	require.Equal(t, fsm.State("started"), s)
}
