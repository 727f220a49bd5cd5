package lockeractor_test

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/protoactor-locker/locker/internal/testcluster"
	"github.com/protoactor-locker/locker/lockeractor"
)

// This package's tests use one actor system per test and no remote, so
// they run under -race; its examples start remotes and a cluster member.
// The ignored goroutines are protoactor's and gRPC's, left by those
// examples' shutdowns (testcluster.LeakOptions, and see LeaveCluster);
// none of them belongs to Locker.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, append(testcluster.LeakOptions(),
		// remote.Shutdown(false) does not stop the endpoint writers: a
		// writer to a stopped peer retries 5 times, 2 s apart, then ends.
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/remote.(*endpointWriter).initialize"),
		// The in-memory test provider's TTL loop ranges over a ticker's
		// channel; Shutdown stops the ticker, which never closes it.
		goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/cluster/clusterproviders/test.(*Provider).startTtlReport.func1"),
		// The gossip log throttle sleeps out its period and ends; nothing
		// stops it.
		goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/cluster.(*Gossiper).StartGossiping.NewThrottle.func3.1"),
	)...)
}

func start(t *testing.T, opts ...lockeractor.Option) *lockeractor.Locker {
	t.Helper()
	system := quietSystem()
	l, err := lockeractor.Start(system, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { l.Stop(); system.Shutdown() })
	return l
}

func TestStartGetStop(t *testing.T) {
	system := quietSystem()
	defer system.Shutdown()
	require.Nil(t, lockeractor.Get(system), "nil before Start")
	l, err := lockeractor.Start(system)
	require.NoError(t, err)
	require.Same(t, l, lockeractor.Get(system))
	_, err = lockeractor.Start(system)
	require.ErrorIs(t, err, lockeractor.ErrAlreadyStarted)
	masters, replicas, w := l.Nodes()
	require.Equal(t, []string{l.Address()}, masters, "a fresh peer knows only itself")
	require.Empty(t, replicas)
	require.Equal(t, 1, w)

	l.Stop()
	l.Stop() // idempotent
	require.Nil(t, lockeractor.Get(system), "nil after Stop")
	_, err = l.Lock(context.Background(), "k", []byte("v"), time.Second)
	require.ErrorIs(t, err, lockeractor.ErrStopped)

	l2, err := lockeractor.Start(system) // a restart on the same system
	require.NoError(t, err)
	defer l2.Stop()
	_, err = l2.Lock(context.Background(), "k", []byte("v"), time.Second)
	require.NoError(t, err)
}

func TestBadInputIsInvalidArgument(t *testing.T) {
	l := start(t)
	ctx := context.Background()
	var nilCtx context.Context
	cases := map[string]error{}
	_, cases["empty key"] = l.Lock(ctx, "", []byte("v"), time.Second)
	_, cases["zero lease"] = l.Lock(ctx, "k", []byte("v"), 0)
	_, cases["negative lease"] = l.ExtendLease(ctx, "k", []byte("v"), -time.Second)
	_, cases["sub-millisecond lease"] = l.Lock(ctx, "k", []byte("v"), time.Microsecond)
	_, cases["lease over MaxLease"] = l.Lock(ctx, "k", []byte("v"), lockeractor.DefaultMaxLease+time.Millisecond)
	_, cases["lease of math.MaxInt64"] = l.Lock(ctx, "k", []byte("v"), math.MaxInt64)
	_, cases["extend over MaxLease"] = l.ExtendLease(ctx, "k", []byte("v"), math.MaxInt64-time.Millisecond)
	_, cases["nil context"] = l.Lock(nilCtx, "k", []byte("v"), time.Second)
	_, cases["value too large"] = l.Lock(ctx, "k", make([]byte, 1<<20), time.Second)
	_, cases["unknown op kind"] = l.Batch(ctx, []lockeractor.Op{{Kind: 99, Key: "k"}})
	_, cases["wait for empty key"] = l.WaitFor(ctx, "")
	cases["wait for release nil ctx"] = l.WaitForRelease(nilCtx, "k")
	cases["W below 1"] = l.SetW(ctx, []string{"127.0.0.1:1"}, 0)
	cases["empty cluster"] = l.SetNodes(ctx, nil, []string{"127.0.0.1:1"}, nil)
	cases["no masters"] = l.SetNodes(ctx, []string{"127.0.0.1:1"}, nil, nil)
	cases["malformed address"] = l.SetNodes(ctx, []string{"nohost"}, []string{"nohost"}, nil)
	cases["master also replica"] = l.SetNodes(ctx, []string{"127.0.0.1:1"}, []string{"127.0.0.1:1"}, []string{"127.0.0.1:1"})
	_, cases["master read empty key"] = l.MasterDirtyRead(ctx, "")
	for name, err := range cases {
		require.ErrorIs(t, err, lockeractor.ErrInvalidArgument, name)
	}
	_, err := lockeractor.Start(quietSystem(), lockeractor.WithW(0))
	require.ErrorIs(t, err, lockeractor.ErrInvalidArgument)
	_, err = lockeractor.Start(quietSystem(), lockeractor.WithWriteLockTimeout(time.Millisecond))
	require.ErrorIs(t, err, lockeractor.ErrInvalidArgument)
	_, err = lockeractor.Start(nil)
	require.ErrorIs(t, err, lockeractor.ErrInvalidArgument)
	for _, d := range []time.Duration{0, -time.Second, time.Microsecond, lockeractor.MaxLeaseLimit + time.Millisecond} {
		_, err = lockeractor.Start(quietSystem(), lockeractor.WithMaxLease(d))
		require.ErrorIs(t, err, lockeractor.ErrInvalidArgument, "WithMaxLease(%v)", d)
	}
}

// TestMaxLeaseHolds checks that a lease of the Locker's MaxLease is held
// (its deadline does not overflow, also at MaxLeaseLimit) and released
// like any other, and that a longer one is refused.
func TestMaxLeaseHolds(t *testing.T) {
	for _, limit := range []time.Duration{0, time.Minute, lockeractor.MaxLeaseLimit} {
		var opts []lockeractor.Option
		want := lockeractor.DefaultMaxLease
		if limit > 0 {
			opts, want = append(opts, lockeractor.WithMaxLease(limit)), limit
		}
		l := start(t, opts...)
		require.Equal(t, want, l.MaxLease())
		ctx := context.Background()
		_, err := l.Lock(ctx, "k", []byte("v"), l.MaxLease())
		require.NoError(t, err)
		v, err := l.DirtyRead("k")
		require.NoError(t, err)
		require.Equal(t, "v", string(v))
		_, err = l.ExtendLease(ctx, "k", []byte("v"), l.MaxLease())
		require.NoError(t, err)
		_, err = l.ExtendLease(ctx, "k", []byte("v"), l.MaxLease()+time.Millisecond)
		require.ErrorIs(t, err, lockeractor.ErrInvalidArgument)
		_, err = l.Release(ctx, "k", []byte("v"))
		require.NoError(t, err)
		l.Stop()
	}
}

func TestWithWAboveMastersCannotWrite(t *testing.T) {
	l := start(t, lockeractor.WithW(2)) // locker's start_link(2) before SetNodes
	_, err := l.Lock(context.Background(), "k", []byte("v"), time.Second)
	var qe *lockeractor.QuorumError
	require.ErrorAs(t, err, &qe)
	require.Equal(t, 2, qe.W)
	require.False(t, qe.Committing)
}

func TestSingleNodeLifecycle(t *testing.T) {
	l := start(t)
	ctx := context.Background()
	r1, err := l.Lock(ctx, "k", []byte("v1"), time.Minute)
	require.NoError(t, err)
	require.Equal(t, lockeractor.Result{W: 1, Votes: 1, Commits: 1, Token: r1.Token}, r1)

	r2, err := l.Update(ctx, "k", []byte("v1"), []byte("v2"))
	require.NoError(t, err)
	require.Greater(t, r2.Token, r1.Token, "Update hands out a larger token")
	_, err = l.Update(ctx, "k", []byte("v1"), []byte("v3"))
	require.ErrorIs(t, err, lockeractor.ErrNoQuorum, "Update needs the current value")

	r3, err := l.ExtendLease(ctx, "k", []byte("v2"), time.Minute)
	require.NoError(t, err)
	require.Equal(t, r2.Token, r3.Token, "ExtendLease returns the holder's token")
	r4, err := l.Release(ctx, "k", []byte("v2"))
	require.NoError(t, err)
	require.Equal(t, r2.Token, r4.Token, "Release returns the holder's token")
	_, err = l.DirtyRead("k")
	require.ErrorIs(t, err, lockeractor.ErrNotFound)
	r5, err := l.Lock(ctx, "k", []byte("v"), time.Minute)
	require.NoError(t, err)
	require.Greater(t, r5.Token, r2.Token, "a relock after release gets a larger token")
	require.Equal(t, lockeractor.Summary{Leases: 1}, l.Summary())
}

func TestWaitForWokenByLocalWrite(t *testing.T) {
	l := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const waiters = 50
	var wg sync.WaitGroup
	errs := make(chan error, waiters)
	for i := 0; i < waiters; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := l.WaitFor(ctx, "k")
			if err == nil && string(v) != "v" {
				err = errors.New("wrong value " + string(v))
			}
			errs <- err
		}()
	}
	_, err := l.Lock(ctx, "k", []byte("v"), time.Minute)
	require.NoError(t, err)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err, "no waiter is lost, whether it registered before or after the write")
	}
}

func TestContextEndsWaits(t *testing.T) {
	l := start(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := l.WaitFor(ctx, "never"); done <- err }()
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)

	_, err := l.Lock(context.Background(), "held", []byte("v"), time.Minute)
	require.NoError(t, err)
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() { done <- l.WaitForRelease(ctx2, "held") }()
	cancel2()
	require.ErrorIs(t, <-done, context.Canceled)
	require.ErrorIs(t, l.WaitForRelease(context.Background(), "absent"), lockeractor.ErrKeyNotLocked)
	testcluster.Eventually(t, 5*time.Second, func() bool { return l.Summary().Waiters == 0 },
		"cancelled waiters still registered: %+v", l.Summary())
}

func TestStopWakesWaiters(t *testing.T) {
	system := quietSystem()
	defer system.Shutdown()
	l, err := lockeractor.Start(system)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { _, err := l.WaitFor(context.Background(), "never"); done <- err }()
	testcluster.Eventually(t, 5*time.Second, func() bool { return l.Summary().Waiters == 1 }, "the waiter never registered")
	l.Stop()
	require.ErrorIs(t, <-done, lockeractor.ErrStopped)
}

func TestWatchSeesWritesReleasesAndExpiries(t *testing.T) {
	l := start(t)
	ctx := context.Background()
	events := make(chan lockeractor.Change, 16)
	cancel := l.Watch("w/", func(c lockeractor.Change) { events <- c })
	defer cancel()
	_, err := l.Lock(ctx, "w/a", []byte("1"), time.Minute)
	require.NoError(t, err)
	_, err = l.Lock(ctx, "other", []byte("1"), time.Minute) // not watched
	require.NoError(t, err)
	_, err = l.ExtendLease(ctx, "w/a", []byte("1"), time.Minute)
	require.NoError(t, err)
	_, err = l.Release(ctx, "w/a", []byte("1"))
	require.NoError(t, err)
	_, err = l.Lock(ctx, "w/b", []byte("2"), 20*time.Millisecond)
	require.NoError(t, err)
	want := []struct {
		kind lockeractor.ChangeKind
		key  string
		new  bool
	}{
		{lockeractor.KeyWritten, "w/a", true},
		{lockeractor.KeyWritten, "w/a", false},
		{lockeractor.KeyReleased, "w/a", false},
		{lockeractor.KeyWritten, "w/b", true},
		{lockeractor.KeyExpired, "w/b", false},
	}
	for _, w := range want {
		select {
		case c := <-events:
			require.Equal(t, w.kind, c.Kind, "%+v", c)
			require.Equal(t, w.key, c.Key)
			require.Equal(t, w.new, c.New, "%+v", c)
		case <-time.After(10 * time.Second):
			t.Fatalf("no %v event for %s", w.kind, w.key)
		}
	}
}
