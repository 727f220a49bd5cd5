package fsm_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"

	"github.com/protoactor-locker/locker/fsm"
	"github.com/protoactor-locker/locker/internal/registrytest"
	"github.com/protoactor-locker/locker/internal/testcluster"
	"github.com/protoactor-locker/locker/registry"
)

// single is registrytest.Single.
func single(t testing.TB) (*actor.ActorSystem, *registry.Registry) { return registrytest.Single(t) }

func TestDoor(t *testing.T) {
	sys := actor.NewActorSystem(testcluster.Quiet()...)
	defer sys.Shutdown()
	var transitions []string
	var mu = make(chan struct{}, 1)
	mu <- struct{}{}
	prod := func() *fsm.Machine {
		m := door("123", time.Hour)()
		m.OnTransition = func(_ *fsm.Context, from, to fsm.State) {
			<-mu
			transitions = append(transitions, string(from)+">"+string(to))
			mu <- struct{}{}
		}
		return m
	}
	pid := sys.Root.Spawn(fsm.Props(prod))
	ctx := context.Background()
	state := func() fsm.State {
		s, err := fsm.StateOf(ctx, sys, pid)
		require.NoError(t, err)
		return s
	}
	require.Equal(t, fsm.State("locked"), state(), "rule: starts in the initial state")
	for _, d := range "129" {
		sys.Root.Send(pid, Button{byte(d)})
	}
	require.Equal(t, fsm.State("locked"), state(), "rule: a wrong code keeps it locked")
	for _, d := range "123" {
		sys.Root.Send(pid, Button{byte(d)})
	}
	require.Equal(t, fsm.State("open"), state(), "rule: the code opens it")
	sys.Root.Send(pid, Button{'1'})
	require.Equal(t, fsm.State("open"), state(), "rule: unhandled messages change nothing")
	res, err := sys.Root.RequestFuture(pid, Status{}, time.Second).Result()
	require.NoError(t, err)
	require.Equal(t, fsm.State("open"), res, "rule: AnyState answers requests in every state")
	sys.Root.Send(pid, Close{})
	require.Equal(t, fsm.State("locked"), state())
	<-mu
	require.Equal(t, []string{"locked>open", "open>locked"}, transitions, "rule: OnTransition sees every change")
	mu <- struct{}{}
}

func TestStateTimeout(t *testing.T) {
	sys := actor.NewActorSystem(testcluster.Quiet()...)
	defer sys.Shutdown()
	var timeouts atomic.Int32
	prod := func() *fsm.Machine {
		return &fsm.Machine{
			Initial: "red",
			States: map[fsm.State]fsm.StateSpec{
				"red":   {Timeout: 20 * time.Millisecond, TimeoutTo: "green"},
				"green": {Timeout: 20 * time.Millisecond, TimeoutTo: "yellow"},
				"yellow": {Enter: func(c *fsm.Context) { c.SetStateTimeout(10 * time.Millisecond) },
					Handle: func(c *fsm.Context, msg any) fsm.State {
						if st, ok := msg.(fsm.StateTimeout); ok && st.State == "yellow" {
							timeouts.Add(1)
							return "stay"
						}
						return fsm.Unhandled
					}},
				"stay": {Handle: func(c *fsm.Context, msg any) fsm.State { return "stay" }},
			},
		}
	}
	pid := sys.Root.Spawn(fsm.Props(prod))
	testcluster.Eventually(t, 2*time.Second, func() bool {
		s, _ := fsm.StateOf(context.Background(), sys, pid)
		return s == "stay"
	}, "red > green > yellow > stay by state timeouts")
	require.Equal(t, int32(1), timeouts.Load())
}

// TestLeavingStateCancelsTimeout: a's timeout fires while a handles
// "go" (its handler outlasts it), so the timer's message is queued behind
// "go", and a leaves for b, which has no timeout of its own. That message
// must be ignored in b: b's Enter queues "finish" behind it, and b ends in
// "done", not "stale". (A machine stalled for the whole 20 ms, its timer
// goroutine not run, would let the test pass without checking; it cannot
// make it fail.)
func TestLeavingStateCancelsTimeout(t *testing.T) {
	sys := actor.NewActorSystem(testcluster.Quiet()...)
	defer sys.Shutdown()
	var path []fsm.State // the actor's goroutine writes, read after "ended"
	var ended atomic.Bool
	end := func(*fsm.Context) { ended.Store(true) }
	prod := func() *fsm.Machine {
		return &fsm.Machine{
			Initial: "a",
			States: map[fsm.State]fsm.StateSpec{
				"a": {TimeoutTo: "timedout",
					Enter: func(c *fsm.Context) {
						c.Send(c.Self(), "go") // queued before the timeout is armed
						c.SetStateTimeout(time.Millisecond)
					},
					Handle: func(*fsm.Context, any) fsm.State {
						time.Sleep(20 * time.Millisecond) // a's timeout fires meanwhile
						return "b"
					}},
				"b": {
					Enter: func(c *fsm.Context) { c.Send(c.Self(), "finish") },
					Handle: func(_ *fsm.Context, msg any) fsm.State {
						if _, ok := msg.(fsm.StateTimeout); ok {
							return "stale" // a's timeout, not cancelled
						}
						return "done"
					}},
				"timedout": {Enter: end},
				"stale":    {Enter: end},
				"done":     {Enter: end},
			},
			OnTransition: func(_ *fsm.Context, _, to fsm.State) { path = append(path, to) },
		}
	}
	sys.Root.Spawn(fsm.Props(prod))
	testcluster.Eventually(t, time.Minute, ended.Load, "b ends")
	require.Equal(t, []fsm.State{"b", "done"}, path, "rule: leaving a state cancels its timeout")
}

func TestInvalidMachine(t *testing.T) {
	sys, _ := single(t)
	for _, tc := range []struct {
		rule string
		m    *fsm.Machine
	}{
		{"nil machine", nil},
		{"no states", &fsm.Machine{Initial: "a"}},
		{"unknown initial", &fsm.Machine{Initial: "x", States: map[fsm.State]fsm.StateSpec{"a": {}}}},
		{"unknown timeout target", &fsm.Machine{Initial: "a", States: map[fsm.State]fsm.StateSpec{"a": {TimeoutTo: "x"}}}},
	} {
		_, err := fsm.Spawn(sys.Root, "m", func() *fsm.Machine { return tc.m })
		require.ErrorIs(t, err, fsm.ErrInvalidMachine, tc.rule)
		require.ErrorIs(t, err, registry.ErrInvalidArgument, tc.rule)
	}
	_, err := fsm.Spawn(sys.Root, "m", nil)
	require.ErrorIs(t, err, fsm.ErrInvalidMachine)
	_, err = fsm.Spawn(sys.Root, "", door("1", time.Second))
	require.ErrorIs(t, err, registry.ErrInvalidArgument)
	_, err = fsm.StateOf(context.Background(), sys, nil)
	require.ErrorIs(t, err, registry.ErrInvalidArgument)
}

func TestSpawnTakenAndRestart(t *testing.T) {
	sys, r := single(t)
	pid, err := fsm.Spawn(sys.Root, "door", door("1", time.Hour), fsm.WithLeaseLength(time.Second))
	require.NoError(t, err)
	_, err = fsm.Spawn(sys.Root, "door", door("1", time.Hour))
	var are *registry.AlreadyRegisteredError
	require.True(t, errors.As(err, &are))
	require.True(t, pid.Equal(are.Holder))

	// A panic restarts the machine in its initial state, under its name.
	boom := func() *fsm.Machine {
		m := door("1", time.Hour)()
		m.AnyState = func(c *fsm.Context, msg any) fsm.State {
			switch msg.(type) {
			case string:
				panic("boom")
			case Status:
				c.Respond(c.State())
				return fsm.Keep
			}
			return fsm.Unhandled
		}
		return m
	}
	p2, err := fsm.Spawn(sys.Root, "boom", boom)
	require.NoError(t, err)
	sys.Root.Send(p2, Button{'1'})
	s, err := fsm.StateOf(context.Background(), sys, p2)
	require.NoError(t, err)
	require.Equal(t, fsm.State("open"), s)
	sys.Root.Send(p2, "boom")
	s, err = fsm.StateOf(context.Background(), sys, p2)
	require.NoError(t, err)
	require.Equal(t, fsm.State("locked"), s, "restarted in the initial state")
	require.True(t, p2.Equal(r.WhereIs("boom")))
}
