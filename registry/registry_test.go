package registry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"

	"github.com/protoactor-locker/locker/internal/testcluster"
	"github.com/protoactor-locker/locker/lockeractor"
	"github.com/protoactor-locker/locker/registry"
)

// single starts one actor system without remote, its Locker (W=1, itself
// the only master) and a Registry, all stopped when t ends.
func single(t testing.TB, opts ...registry.Option) (*actor.ActorSystem, *registry.Registry) {
	t.Helper()
	sys := actor.NewActorSystem(testcluster.Quiet()...)
	l, err := lockeractor.Start(sys)
	require.NoError(t, err)
	r, err := registry.New(l, opts...)
	require.NoError(t, err)
	t.Cleanup(func() {
		r.Stop()
		l.Stop()
		sys.Shutdown()
	})
	return sys, r
}

func echoProps() *actor.Props {
	return actor.PropsFromFunc(func(c actor.Context) {
		if s, ok := c.Message().(string); ok {
			c.Respond("echo " + s)
		}
	})
}

func TestRegisterWhereIsUnregister(t *testing.T) {
	sys, r := single(t)
	ctx := context.Background()
	pid := sys.Root.Spawn(echoProps())
	require.Nil(t, r.WhereIs("a"))
	require.NoError(t, r.Register(ctx, "a", pid, time.Second))
	require.True(t, pid.Equal(r.WhereIs("a")))
	require.Same(t, r.WhereIs("a"), r.WhereIs("a"), "cached PID")
	require.Same(t, r, registry.Get(sys))

	res, err := r.Request(ctx, "a", "hi")
	require.NoError(t, err)
	require.Equal(t, "echo hi", res)
	require.NoError(t, r.Send("a", "x"))

	require.NoError(t, r.Unregister(ctx, "a"))
	require.Nil(t, r.WhereIs("a"))
	require.ErrorIs(t, r.Send("a", "x"), registry.ErrNotRegistered)
	_, err = r.Request(ctx, "a", "x")
	require.ErrorIs(t, err, registry.ErrNotRegistered)
	require.ErrorIs(t, r.Unregister(ctx, "a"), registry.ErrNotRegistered)
}

func TestRegisterTakenAndIdempotent(t *testing.T) {
	sys, r := single(t)
	ctx := context.Background()
	a, b := sys.Root.Spawn(echoProps()), sys.Root.Spawn(echoProps())
	require.NoError(t, r.Register(ctx, "n", a, time.Second))
	require.NoError(t, r.Register(ctx, "n", a, 2*time.Second), "same PID again")
	err := r.Register(ctx, "n", b, time.Second)
	require.ErrorIs(t, err, registry.ErrAlreadyRegistered)
	var are *registry.AlreadyRegisteredError
	require.True(t, errors.As(err, &are))
	require.Equal(t, "n", are.Name)
	require.True(t, a.Equal(are.Holder))
	require.Equal(t, 1, r.Held())
}

func TestBadInput(t *testing.T) {
	sys, r := single(t)
	ctx := context.Background()
	pid := sys.Root.Spawn(echoProps())
	for _, tc := range []struct {
		rule string
		err  error
	}{
		{"empty name", r.Register(ctx, "", pid, time.Second)},
		{"nil pid", r.Register(ctx, "x", nil, time.Second)},
		{"zero lease", r.Register(ctx, "x", pid, 0)},
		{"threshold not shorter than lease", func() error {
			_, err := registry.Reserve(r, ctx, "x", pid, time.Second, time.Second)
			return err
		}()},
		{"zero threshold", func() error {
			_, err := registry.Reserve(r, ctx, "x", pid, time.Second, 0)
			return err
		}()},
		{"send to empty name", r.Send("", 1)},
		{"unregister empty name", r.Unregister(ctx, "")},
	} {
		require.ErrorIs(t, tc.err, registry.ErrInvalidArgument, tc.rule)
		var ae *registry.ArgumentError
		require.True(t, errors.As(tc.err, &ae), tc.rule)
	}
	require.ErrorIs(t, r.Send("nobody", 1), registry.ErrNotRegistered)

	var nilReg *registry.Registry
	require.Nil(t, nilReg.WhereIs("x"))
	require.ErrorIs(t, nilReg.Register(ctx, "x", pid, time.Second), registry.ErrNoRegistry)
	_, err := registry.New(nil)
	require.ErrorIs(t, err, registry.ErrInvalidArgument)
	require.Nil(t, registry.Get(nil))
}

func TestStoppedActorReleasesName(t *testing.T) {
	sys, r := single(t)
	ctx := context.Background()
	pid := sys.Root.Spawn(echoProps())
	require.NoError(t, r.Register(ctx, "s", pid, time.Second))
	require.NoError(t, sys.Root.StopFuture(pid).Wait())
	testcluster.Eventually(t, 2*time.Second, func() bool { return r.WhereIs("s") == nil }, "name released after stop")
	require.Zero(t, r.Held())
}

func TestRenewalKeepsName(t *testing.T) {
	sys, r := single(t)
	ctx := context.Background()
	pid := sys.Root.Spawn(echoProps())
	// Renewals start 600 ms before the lease ends: that slack, not the
	// speed of the machine, is what the test relies on (a loaded CI
	// machine under -race stalls for tens of milliseconds).
	_, err := registry.Reserve(r, ctx, "renewed", pid, time.Second, 600*time.Millisecond)
	require.NoError(t, err)
	deadline := time.Now().Add(3 * time.Second) // three lease lengths
	for time.Now().Before(deadline) {
		v, err := r.Locker().DirtyRead(r.Key("renewed"))
		require.NoError(t, err, "lease ran out")
		require.NotEmpty(t, v)
		time.Sleep(5 * time.Millisecond)
	}
}

func TestEvents(t *testing.T) {
	sys, r := single(t)
	ctx := context.Background()
	events := make(chan any, 16)
	sub := sys.EventStream.Subscribe(func(evt any) {
		switch evt.(type) {
		case registry.NameRegistered, registry.NameReleased, registry.NameExpired, registry.NameLost:
			events <- evt
		}
	})
	defer sys.EventStream.Unsubscribe(sub)
	pid := sys.Root.Spawn(echoProps())
	require.NoError(t, r.Register(ctx, "e", pid, time.Second))
	require.Equal(t, registry.NameRegistered{Name: "e", PID: pid}, normalize(<-events))
	require.NoError(t, r.Unregister(ctx, "e"))
	require.Equal(t, registry.NameReleased{Name: "e", PID: pid}, normalize(<-events))

	// A lease nobody renews expires.
	_, err := r.Locker().Lock(ctx, r.Key("x"), []byte("\x01nonhost\x00$x"), 20*time.Millisecond)
	require.NoError(t, err)
	require.IsType(t, registry.NameRegistered{}, <-events)
	require.Equal(t, registry.NameExpired{Name: "x", PID: actor.NewPID("nonhost", "$x")}, normalize(<-events))
}

// normalize copies PIDs so that require.Equal compares values only.
func normalize(evt any) any {
	cp := func(p *actor.PID) *actor.PID { return actor.NewPID(p.Address, p.Id) }
	switch e := evt.(type) {
	case registry.NameRegistered:
		e.PID = cp(e.PID)
		return e
	case registry.NameReleased:
		e.PID = cp(e.PID)
		return e
	case registry.NameExpired:
		e.PID = cp(e.PID)
		return e
	}
	return evt
}

func BenchmarkWhereIs(b *testing.B) {
	sys, r := single(b)
	pid := sys.Root.Spawn(echoProps())
	require.NoError(b, r.Register(context.Background(), "bench", pid, time.Minute))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if r.WhereIs("bench") == nil {
			b.Fatal("not found")
		}
	}
}

func BenchmarkWhereIsParallel(b *testing.B) {
	sys, r := single(b)
	pid := sys.Root.Spawn(echoProps())
	require.NoError(b, r.Register(context.Background(), "bench", pid, time.Minute))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if r.WhereIs("bench") == nil {
				b.Fatal("not found")
			}
		}
	})
}

// BenchmarkWhereIsOthers resolves a name this Registry does not hold
// (written to the store directly, as another node's registration
// arrives): the lookup most callers make.
func BenchmarkWhereIsOthers(b *testing.B) {
	_, r := single(b)
	_, err := r.Locker().Lock(context.Background(), r.Key("other"), []byte("\x01127.0.0.1:1\x00$other"), time.Minute)
	require.NoError(b, err)
	testcluster.Eventually(b, time.Second, func() bool { return r.WhereIs("other") != nil }, "resolved")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if r.WhereIs("other") == nil {
			b.Fatal("not found")
		}
	}
}
