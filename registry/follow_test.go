//go:build !race

// Over three actor systems talking protoactor remote (see cluster_test.go
// for why not under -race).

package registry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"

	"github.com/protoactor-locker/locker/internal/registrytest"
	"github.com/protoactor-locker/locker/internal/testcluster"
	"github.com/protoactor-locker/locker/registry"
)

// longLease is far longer than every bound below: a name dropped within
// a bound was dropped by the store's watch, not by a failed renewal
// (which comes a threshold before the lease ends).
const longLease = 30 * time.Second

// stoppedProps is an actor that closes stopped when it stops.
func stoppedProps(stopped chan struct{}) *actor.Props {
	return actor.PropsFromFunc(func(c actor.Context) {
		if _, ok := c.Message().(*actor.Stopped); ok {
			close(stopped)
		}
	})
}

// TestNameReleasedElsewhereStopsItsHolderAtOnce: Unregister on another
// node releases the name; the holder's node sees the release in its
// store and at once stops resolving the name, stops the actor and
// publishes NameLost, instead of waiting for its next renewal to fail.
func TestNameReleasedElsewhereStopsItsHolderAtOnce(t *testing.T) {
	c := registrytest.New(t, 3)
	ctx := context.Background()
	stopped := make(chan struct{})
	pid := c.System(1).Root.Spawn(stoppedProps(stopped))
	lost := make(chan registry.NameLost, 1)
	sub := c.System(1).EventStream.Subscribe(func(evt any) {
		if e, ok := evt.(registry.NameLost); ok && e.Name == "direct" {
			lost <- e
		}
	})
	defer c.System(1).EventStream.Unsubscribe(sub)
	require.NoError(t, c.Registry(1).Register(ctx, "direct", pid, longLease))
	testcluster.Eventually(t, 5*time.Second, func() bool { return pid.Equal(c.Registry(2).WhereIs("direct")) }, "node 2 resolves the name")

	require.NoError(t, c.Registry(2).Unregister(ctx, "direct"))
	select {
	case e := <-lost:
		require.ErrorIs(t, e.Err, registry.ErrNotRegistered)
		require.True(t, pid.Equal(e.PID))
	case <-time.After(5 * time.Second):
		t.Fatal("no NameLost on the holder's node")
	}
	require.Nil(t, c.Registry(1).WhereIs("direct"), "the holder's node resolves the released name")
	_, owned := c.Registry(1).Owned("direct")
	require.False(t, owned)
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("the holder's actor still runs")
	}
}

// TestHolderOnDepartedMemberIsNotResolved: once the configuration drops
// the member that holds a name, WhereIs on the others returns nil at
// once (its lease has not ended), Send and Request fail at once with
// ErrNotRegistered instead of waiting for an answer that cannot come.
func TestHolderOnDepartedMemberIsNotResolved(t *testing.T) {
	c := registrytest.New(t, 3)
	ctx := context.Background()
	pid := c.System(2).Root.Spawn(echoProps())
	require.NoError(t, c.Registry(2).Register(ctx, "far", pid, longLease))
	testcluster.Eventually(t, 5*time.Second, func() bool { return pid.Equal(c.Registry(0).WhereIs("far")) }, "node 0 resolves the name")

	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, c.Nodes[0].Locker.Reconfigure(rctx, c.Addrs(0, 1), nil))
	_, err := c.Nodes[0].Locker.DirtyRead(c.Registry(0).Key("far"))
	require.NoError(t, err, "the lease still runs in the store")
	require.Nil(t, c.Registry(0).WhereIs("far"), "a holder on a departed member")
	require.ErrorIs(t, c.Registry(0).Send("far", "hello"), registry.ErrNotRegistered)
	_, err = c.Registry(0).Request(rctx, "far", "hello")
	require.ErrorIs(t, err, registry.ErrNotRegistered)
	require.False(t, errors.Is(err, registry.ErrRequestTimeout))
}
