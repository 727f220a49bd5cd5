package registry_test

import (
	"context"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"

	"github.com/protoactor-locker/locker/internal/registrytest"
	"github.com/protoactor-locker/locker/internal/testcluster"
	"github.com/protoactor-locker/locker/lockeractor"
	"github.com/protoactor-locker/locker/registry"
)

// manualSingle starts one system whose Locker and Registry share clk.
// The replication interval is an hour, so that the peer's own timers
// (armed in real time from clk's readings) fire after the test: nothing
// but the test's calls reaches the store while it runs.
func manualSingle(t *testing.T, clk *testcluster.ManualClock) (*actor.ActorSystem, *registry.Registry) {
	t.Helper()
	return registrytest.SingleWith(t, []lockeractor.Option{lockeractor.WithClock(clk), lockeractor.WithReplicationInterval(time.Hour)})
}

// A name held by another node (written to the store directly) stops
// resolving the moment this node's clock passes its lease, although the
// store's expiry timer has not fired and the cache still has the entry.
func TestWhereIsRefusesNameHeldElsewherePastItsLease(t *testing.T) {
	clk := testcluster.NewManualClock(time.Now())
	_, r := manualSingle(t, clk)
	ctx := context.Background()
	lease := time.Hour // the expiry timer is armed an hour ahead in real time
	_, err := r.Locker().Lock(ctx, r.Key("far"), []byte("\x01127.0.0.1:1\x00$far"), lease)
	require.NoError(t, err)
	want := actor.NewPID("127.0.0.1:1", "$far")
	testcluster.Eventually(t, time.Second, func() bool { return want.Equal(r.WhereIs("far")) }, "resolved")

	clk.Advance(lease - time.Millisecond)
	require.True(t, want.Equal(r.WhereIs("far")), "a millisecond before the deadline")

	clk.Advance(time.Millisecond) // exactly the deadline: exclusive
	require.True(t, registry.Cached(r, "far"), "the watch has not dropped the entry")
	require.Nil(t, r.WhereIs("far"), "past the lease on this node's clock")
	require.ErrorIs(t, r.Send("far", "x"), registry.ErrNotRegistered)
	_, err = r.Request(ctx, "far", "x")
	require.ErrorIs(t, err, registry.ErrNotRegistered)
}

// A name this Registry holds resolves until the end of the lease it
// obtained (Owned().Deadline on the Registry's clock) and not after,
// whatever its renewal does meanwhile: a renewal that starts past the
// deadline finds the store's lease ended too.
func TestWhereIsRefusesOwnedNamePastItsLease(t *testing.T) {
	clk := testcluster.NewManualClock(time.Now())
	sys, r := manualSingle(t, clk)
	ctx := context.Background()
	pid := sys.Root.Spawn(echoProps())
	lease := time.Hour
	start := clk.Now()
	require.NoError(t, r.Register(ctx, "mine", pid, lease))
	l, ok := r.Owned("mine")
	require.True(t, ok)
	require.Equal(t, start.Add(lease), l.Deadline, "counted from the call, on the Registry's clock")
	require.NotZero(t, l.Token, "the registration's fencing token")
	require.True(t, pid.Equal(r.WhereIs("mine")))

	clk.Advance(lease)
	require.Nil(t, r.WhereIs("mine"), "past the lease on this node's clock")
	require.ErrorIs(t, r.Send("mine", "x"), registry.ErrNotRegistered)
	if l, ok := r.Owned("mine"); ok {
		require.False(t, l.Deadline.After(clk.Now()), "a hold past its deadline until its renewal fails")
	}
}

func TestOwnedTokenGrowsAcrossRegistrations(t *testing.T) {
	sys, r := single(t)
	ctx := context.Background()
	a, b := sys.Root.Spawn(echoProps()), sys.Root.Spawn(echoProps())
	require.NoError(t, r.Register(ctx, "t", a, time.Second))
	la, ok := r.Owned("t")
	require.True(t, ok)
	require.True(t, a.Equal(la.PID))
	require.NoError(t, r.Register(ctx, "t", a, time.Second), "again: an extension keeps the token")
	again, _ := r.Owned("t")
	require.Equal(t, la.Token, again.Token)
	require.NoError(t, r.Unregister(ctx, "t"))
	_, ok = r.Owned("t")
	require.False(t, ok)
	require.NoError(t, r.Register(ctx, "t", b, time.Second))
	lb, _ := r.Owned("t")
	require.Greater(t, lb.Token, la.Token, "a later registration fences the earlier one")
	var nilReg *registry.Registry
	_, ok = nilReg.Owned("t")
	require.False(t, ok)
}
