package server_test

import (
	"context"
	"errors"
	"fmt"
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

// single is registrytest.Single.
func single(t testing.TB) (*actor.ActorSystem, *registry.Registry) { return registrytest.Single(t) }

// serverProps is the elixir_locker test's Server: it answers "stop" with
// "ok" and stops, echoes anything else, and panics on "boom". Strings
// travel as wrapperspb.StringValue so that they cross remote.
func serverProps(started *int32) *actor.Props {
	return actor.PropsFromFunc(func(c actor.Context) {
		switch m := c.Message().(type) {
		case *actor.Started:
			if started != nil {
				*started++ // the actor's own goroutine; read after a round trip
			}
		case *wrapperspb.StringValue:
			switch m.GetValue() {
			case "stop":
				c.Respond(wrapperspb.String("ok"))
				c.Stop(c.Self())
			case "boom":
				panic("boom")
			case "started":
				c.Respond(wrapperspb.Int32(*started))
			default:
				c.Respond(wrapperspb.String("echo " + m.GetValue()))
			}
		}
	})
}

func str(s string) *wrapperspb.StringValue { return wrapperspb.String(s) }

func TestSpawnRegistersBeforeReturning(t *testing.T) {
	sys, r := single(t)
	pid, err := server.Spawn(sys.Root, "s", serverProps(nil))
	require.NoError(t, err)
	require.True(t, pid.Equal(r.WhereIs("s")), "registered when Spawn returns")
	res, err := r.Request(context.Background(), "s", str("hi"))
	require.NoError(t, err)
	require.Equal(t, "echo hi", res.(*wrapperspb.StringValue).GetValue())
}

func TestSpawnTakenLeavesNothingRunning(t *testing.T) {
	sys, r := single(t)
	first, err := server.Spawn(sys.Root, "dup", serverProps(nil))
	require.NoError(t, err)
	produced := 0
	props := actor.PropsFromProducer(func() actor.Actor {
		produced++
		return actor.ReceiveFunc(func(actor.Context) {})
	})
	_, err = server.Spawn(sys.Root, "dup", props)
	var are *registry.AlreadyRegisteredError
	require.True(t, errors.As(err, &are), "%v", err)
	require.ErrorIs(t, err, registry.ErrAlreadyRegistered)
	require.True(t, first.Equal(are.Holder))
	require.Zero(t, produced, "the second actor was never created")
	require.True(t, first.Equal(r.WhereIs("dup")))
}

func TestSpawnBadInput(t *testing.T) {
	sys, _ := single(t)
	props := serverProps(nil)
	for _, tc := range []struct {
		rule string
		err  error
	}{
		{"empty name", spawnErr(server.Spawn(sys.Root, "", props))},
		{"nil props", spawnErr(server.Spawn(sys.Root, "x", nil))},
		{"nil parent", spawnErr(server.Spawn(nil, "x", props))},
		{"lease equal to threshold", spawnErr(server.Spawn(sys.Root, "x", props,
			server.WithLeaseLength(time.Second), server.WithLeaseThreshold(time.Second)))},
		{"threshold longer than lease", spawnErr(server.Spawn(sys.Root, "x", props,
			server.WithLeaseLength(100*time.Millisecond), server.WithLeaseThreshold(200*time.Millisecond)))},
		{"negative threshold", spawnErr(server.Spawn(sys.Root, "x", props, server.WithLeaseThreshold(-time.Millisecond)))},
		{"negative lease", spawnErr(server.Spawn(sys.Root, "x", props, server.WithLeaseLength(-time.Second)))},
	} {
		require.ErrorIs(t, tc.err, registry.ErrInvalidArgument, tc.rule)
		var ae *registry.ArgumentError
		require.True(t, errors.As(tc.err, &ae), tc.rule)
	}
}

// TestSpawnChecksTheLockersMaxLease checks that a lease longer than the
// Locker's MaxLease (an hour by default) but within MaxLeaseLimit is
// refused by Spawn before anything is spawned.
func TestSpawnChecksTheLockersMaxLease(t *testing.T) {
	sys, r := single(t)
	lease := 2 * time.Hour
	produced := 0
	props := actor.PropsFromProducer(func() actor.Actor {
		produced++
		return actor.ReceiveFunc(func(actor.Context) {})
	})
	_, err := server.Spawn(sys.Root, "long", props, server.WithLeaseLength(lease))
	require.ErrorIs(t, err, registry.ErrInvalidArgument)
	var ae *registry.ArgumentError
	require.True(t, errors.As(err, &ae), "%v", err)
	require.Zero(t, produced, "nothing was spawned")
	require.Nil(t, r.WhereIs("long"))
}

func TestSpawnWithoutRegistry(t *testing.T) {
	sys := actor.NewActorSystem(testcluster.Quiet()...)
	defer sys.Shutdown()
	_, err := server.Spawn(sys.Root, "x", serverProps(nil))
	require.ErrorIs(t, err, registry.ErrNoRegistry)
}

func spawnErr(_ *actor.PID, err error) error { return err }

func TestRestartKeepsNameStopReleasesIt(t *testing.T) {
	sys, r := single(t)
	ctx := context.Background()
	var started int32
	pid, err := server.Spawn(sys.Root, "phoenix", serverProps(&started),
		server.WithLeaseLength(200*time.Millisecond), server.WithLeaseThreshold(50*time.Millisecond))
	require.NoError(t, err)
	require.NoError(t, r.Send("phoenix", str("boom")))
	res, err := r.Request(ctx, "phoenix", str("started"))
	require.NoError(t, err)
	require.Equal(t, int32(2), res.(*wrapperspb.Int32Value).GetValue(), "restarted once")
	require.True(t, pid.Equal(r.WhereIs("phoenix")), "same PID, same name after the restart")

	require.NoError(t, sys.Root.StopFuture(pid).Wait())
	testcluster.Eventually(t, 2*time.Second, func() bool { return r.WhereIs("phoenix") == nil }, "released on stop")
	_, err = server.Spawn(sys.Root, "phoenix", serverProps(nil))
	require.NoError(t, err, "free again")
}

func TestParentStopReleasesChildName(t *testing.T) {
	sys, r := single(t)
	type spawnChild struct{}
	parent := sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if _, ok := c.Message().(spawnChild); ok {
			pid, err := server.Spawn(c, "child", serverProps(nil))
			if err != nil {
				c.Respond(err)
				return
			}
			c.Respond(pid)
		}
	}))
	res, err := sys.Root.RequestFuture(parent, spawnChild{}, 5*time.Second).Result()
	require.NoError(t, err)
	child, ok := res.(*actor.PID)
	require.True(t, ok, "%v", res)
	require.Equal(t, parent.Id+"/", child.Id[:len(parent.Id)+1], "a child of parent")
	require.True(t, child.Equal(r.WhereIs("child")))
	require.NoError(t, sys.Root.StopFuture(parent).Wait())
	testcluster.Eventually(t, 2*time.Second, func() bool { return r.WhereIs("child") == nil }, "released with the parent")
}

func TestLostNameStopsActor(t *testing.T) {
	sys, r := single(t)
	pid, err := server.Spawn(sys.Root, "victim", serverProps(nil),
		server.WithLeaseLength(200*time.Millisecond), server.WithLeaseThreshold(50*time.Millisecond))
	require.NoError(t, err)
	stopped := make(chan struct{})
	watcher := sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		switch m := c.Message().(type) {
		case *actor.PID:
			c.Watch(m)
		case *actor.Terminated:
			close(stopped)
		}
	}))
	sys.Root.Send(watcher, pid)
	// Somebody else takes the name behind the holder's back.
	ctx := context.Background()
	v, err := r.Locker().DirtyRead(r.Key("victim"))
	require.NoError(t, err)
	_, err = r.Locker().Update(ctx, r.Key("victim"), v, []byte("someone else"))
	require.NoError(t, err)
	select {
	case <-stopped:
	case <-time.After(2 * time.Second):
		t.Fatal("the actor that lost its name still runs")
	}
}

func ExampleSpawn() {
	system := actor.NewActorSystem(testcluster.Quiet()...)
	defer system.Shutdown()
	l, _ := lockeractor.Start(system) // start remote first to span several members
	defer l.Stop()
	r, _ := registry.New(l)
	defer r.Stop()

	props := actor.PropsFromFunc(func(c actor.Context) {
		if s, ok := c.Message().(*wrapperspb.StringValue); ok {
			c.Respond(wrapperspb.String("hello, " + s.GetValue()))
		}
	})
	pid, err := server.Spawn(system.Root, "greeter", props, server.WithLeaseLength(10*time.Second))
	if err != nil {
		panic(err)
	}
	fmt.Println(pid.Equal(r.WhereIs("greeter")))

	res, _ := r.Request(context.Background(), "greeter", wrapperspb.String("world"))
	fmt.Println(res.(*wrapperspb.StringValue).GetValue())

	_, err = server.Spawn(system.Root, "greeter", props)
	fmt.Println(errors.Is(err, registry.ErrAlreadyRegistered))
	// Output:
	// true
	// hello, world
	// true
}

// TestDefaultThresholdFollowsTheLease checks that a lease shorter than
// the Registry's threshold (500 ms) is accepted without
// WithLeaseThreshold: the default threshold follows the lease (a quarter
// of it here), so Spawn registers the name. Renewals at that threshold
// are the Registry's (registry's TestRenewalKeepsName).
func TestDefaultThresholdFollowsTheLease(t *testing.T) {
	sys, r := single(t)
	pid, err := server.Spawn(sys.Root, "short", serverProps(nil), server.WithLeaseLength(300*time.Millisecond))
	require.NoError(t, err)
	l, ok := r.Owned("short")
	require.True(t, ok)
	require.True(t, pid.Equal(l.PID))
}
