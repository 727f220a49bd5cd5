package tests

// Tests for what issue 2 requires beyond locker_SUITE.erl: fencing
// tokens, waiters on masters, lost waiters, context cancellation, bad
// input, large bursts, batches, and the gaps of locker it closes.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/protoactor-locker/locker/internal/testcluster"
	"github.com/protoactor-locker/locker/lockeractor"
)

// TestFencingTokensIncreaseAcrossReleaseExpiryAndRestart checks that Lock
// and Update hand out tokens strictly greater than every token before
// for the key: after a release and relock, after the lease ran out, after
// one master restarted with empty memory (and the quorum has to include
// it), and after every master restarted with empty memory. ExtendLease
// and Release return the holder's token.
func TestFencingTokensIncreaseAcrossReleaseExpiryAndRestart(t *testing.T) {
	c := startCluster(t)
	ctx := testCtx(t)
	setNodes(t, c, A, []int{A, B, C}, []int{A, B, C}, nil)
	const key = "fenced"
	var last uint64
	fresh := func(step string, res lockeractor.Result, err error) {
		t.Helper()
		require.NoError(t, err, step)
		require.Greater(t, res.Token, last, "%s: token %d after %d", step, res.Token, last)
		last = res.Token
	}

	res, err := c.Peer(A).Lock(ctx, key, []byte("v1"), longLease)
	fresh("first lock", res, err)
	res, err = c.Peer(B).Release(ctx, key, []byte("v1"))
	require.NoError(t, err)
	require.Equal(t, last, res.Token, "Release returns the holder's token")

	// A lease of a second, so that the key expires soon below (an
	// ExtendLease never shortens a lease).
	res, err = c.Peer(B).Lock(ctx, key, []byte("v2"), time.Second)
	fresh("lock after release", res, err)
	res, err = c.Peer(C).Update(ctx, key, []byte("v2"), []byte("v3"))
	fresh("update", res, err)
	res, err = c.Peer(A).ExtendLease(ctx, key, []byte("v3"), 200*time.Millisecond)
	require.NoError(t, err)
	require.Equal(t, last, res.Token, "ExtendLease returns the holder's token")
	for i := range c.Nodes {
		eventuallyAbsent(t, c.Peer(i), key)
	}
	res, err = c.Peer(C).Lock(ctx, key, []byte("v4"), longLease)
	fresh("lock after expiry", res, err)

	// C forgets everything; with A's Locker stopped, every quorum
	// includes C, and C coordinates.
	restartLocker(t, c, C, suiteOptions()...)
	setNodes(t, c, B, []int{A, B, C}, []int{A, B, C}, nil)
	require.NoError(t, c.Peer(C).Ready(ctx), "the restarted master copies A's and B's leases")
	res, err = c.Peer(B).Release(ctx, key, []byte("v4"))
	require.NoError(t, err)
	c.Peer(A).Stop()
	res, err = c.Peer(C).Lock(ctx, key, []byte("v5"), longLease)
	fresh("lock by a restarted master", res, err)
	requireResult(t, res, 2, 2, 2)

	// Every master forgets everything.
	for i := range c.Nodes {
		restartLocker(t, c, i, suiteOptions()...)
	}
	setNodes(t, c, A, []int{A, B, C}, []int{A, B, C}, nil)
	for i := range c.Nodes {
		requireAbsent(t, c.Peer(i), key)
	}
	res, err = c.Peer(A).Lock(ctx, key, []byte("v6"), longLease)
	fresh("lock after every master restarted", res, err)
	res, err = c.Peer(B).Update(ctx, key, []byte("v6"), []byte("v7"))
	fresh("update after every master restarted", res, err)
}

// TestWaitForWokenByWriteOnMastersAndReplica checks that WaitFor blocked
// on a key returns the value when a write makes the key present here: on
// the coordinating master, on the other master (both woken by the write
// itself, which locker did not do) and on a replica (woken by the push).
func TestWaitForWokenByWriteOnMastersAndReplica(t *testing.T) {
	c := startCluster(t)
	ctx := testCtx(t)
	setNodes(t, c, A, []int{A, B, C}, []int{A, B}, []int{C})

	type got struct {
		node  int
		value []byte
		err   error
	}
	results := make(chan got, 3)
	for i := range c.Nodes {
		go func() {
			v, err := c.Peer(i).WaitFor(ctx, "awaited")
			results <- got{i, v, err}
		}()
	}
	for i := range c.Nodes {
		eventuallyWaiters(t, c.Peer(i), 1) // blocked, not answered from the table
	}

	_, err := c.Peer(A).Lock(ctx, "awaited", []byte("here"), longLease)
	require.NoError(t, err)
	for range 2 {
		r := <-results
		require.NotEqual(t, C, r.node, "the replica woke before any push")
		require.NoError(t, r.err, "node %d", r.node)
		require.Equal(t, "here", string(r.value), "node %d", r.node)
	}
	pushAll(c)
	r := <-results
	require.Equal(t, C, r.node)
	require.NoError(t, r.err)
	require.Equal(t, "here", string(r.value))
	for i := range c.Nodes {
		require.Zero(t, c.Peer(i).Summary().Waiters, "node %d", i)
	}
}

// TestWaitForLosesNoWaiterRacingWithLock starts many WaitFor calls on
// every node at the same moment as the Lock that makes the key present,
// round after round: every waiter returns the value (locker loses a
// waiter that checks between the write and its registration).
func TestWaitForLosesNoWaiterRacingWithLock(t *testing.T) {
	c := startCluster(t)
	ctx := testCtx(t)
	setNodes(t, c, A, []int{A, B, C}, []int{A, B}, []int{C})

	const rounds, perNode = 20, 20
	for round := range rounds {
		key := fmt.Sprintf("race/%d", round)
		start := make(chan struct{})
		var wg sync.WaitGroup
		errs := make(chan error, perNode*len(c.Nodes))
		for i := range c.Nodes {
			for range perNode {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					v, err := c.Peer(i).WaitFor(ctx, key)
					if err == nil && string(v) != "v" {
						err = fmt.Errorf("node %d: WaitFor(%q) = %q", i, key, v)
					}
					errs <- err
				}()
			}
		}
		close(start)
		_, err := c.Peer(round%2).Lock(ctx, key, []byte("v"), longLease)
		require.NoError(t, err)
		pushAll(c)
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err, "round %d", round)
		}
	}
	for i := range c.Nodes {
		require.Zero(t, c.Peer(i).Summary().Waiters, "node %d", i)
	}
}

// blackhole listens on 127.0.0.1 and accepts connections but never
// answers, so a peer at its address neither answers nor is known to be
// down. Closing it ends every accepted connection.
type blackhole struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	done  sync.WaitGroup
}

// newBlackhole starts a blackhole and closes it when t ends, before the
// clusters started earlier in t are stopped.
func newBlackhole(t *testing.T) *blackhole {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	b := &blackhole{ln: ln}
	b.done.Add(1)
	go func() {
		defer b.done.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns = append(b.conns, conn)
			b.mu.Unlock()
			b.done.Add(1)
			go func() { defer b.done.Done(); _, _ = io.Copy(io.Discard, conn) }()
		}
	}()
	t.Cleanup(b.close)
	return b
}

// Addr is the blackhole's "host:port".
func (b *blackhole) Addr() string { return b.ln.Addr().String() }

func (b *blackhole) close() {
	_ = b.ln.Close()
	b.mu.Lock()
	for _, c := range b.conns {
		_ = c.Close()
	}
	b.mu.Unlock()
	b.done.Wait()
}

// TestContextEndsWaitsAndWrites checks that WaitFor, WaitForRelease,
// Lock, SetNodes and MasterDirtyRead return an error wrapping ctx.Err()
// when their context ends first (cancelled, or past its deadline, or
// already over), and that the ended waits leave no waiter behind.
func TestContextEndsWaitsAndWrites(t *testing.T) {
	shutsNodesDown(t)
	c := startCluster(t, lockeractor.WithRequestTimeout(5*time.Second), lockeractor.WithWriteLockTimeout(6*time.Second))
	hole := newBlackhole(t)
	ctx := testCtx(t)
	setNodes(t, c, A, []int{A, B, C}, []int{A, B}, []int{C})
	l := c.Peer(A)

	t.Run("WaitFor cancelled while blocked", func(t *testing.T) {
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { _, err := l.WaitFor(wctx, "never"); done <- err }()
		eventuallyWaiters(t, l, 1)
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
		require.Zero(t, l.Summary().Waiters)
	})
	t.Run("WaitForRelease past its deadline", func(t *testing.T) {
		_, err := l.Lock(ctx, "held", []byte("v"), longLease)
		require.NoError(t, err)
		wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		require.ErrorIs(t, l.WaitForRelease(wctx, "held"), context.DeadlineExceeded)
		require.Zero(t, l.Summary().Waiters)
	})
	t.Run("Lock with a context already cancelled", func(t *testing.T) {
		wctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := l.Lock(wctx, "not-tried", []byte("v"), longLease)
		require.ErrorIs(t, err, context.Canceled)
		requireAbsent(t, l, "not-tried")
		for _, call := range []func() error{
			func() error { _, err := l.WaitFor(wctx, "x"); return err },
			func() error { return l.WaitForRelease(wctx, "held") },
			func() error { _, err := l.Release(wctx, "held", []byte("v")); return err },
		} {
			require.ErrorIs(t, call(), context.Canceled)
		}
		requireValue(t, l, "held", "v")
	})
	t.Run("Lock waiting for a silent master", func(t *testing.T) {
		// The second master never answers; W = 2 needs it.
		require.NoError(t, c.Peer(A).SetNodes(ctx, c.Addrs(A), []string{c.Nodes[A].Addr, hole.Addr()}, nil))
		wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := l.Lock(wctx, "silent", []byte("v"), longLease)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Less(t, time.Since(start), 4*time.Second, "returned when ctx ended, not at the request timeout")
	})
	t.Run("SetNodes waiting for a silent peer", func(t *testing.T) {
		wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		err := l.SetNodes(wctx, []string{hole.Addr()}, c.Addrs(A, B), nil)
		require.ErrorIs(t, err, context.DeadlineExceeded)
	})
	t.Run("MasterDirtyRead waiting for a silent master", func(t *testing.T) {
		// C is a replica whose only master never answers.
		require.NoError(t, c.Peer(A).SetW(ctx, c.Addrs(A, C), 1))
		require.NoError(t, c.Peer(A).SetNodes(ctx, c.Addrs(C), []string{hole.Addr()}, c.Addrs(C)))
		wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		_, err := c.Peer(C).MasterDirtyRead(wctx, "held")
		require.ErrorIs(t, err, context.DeadlineExceeded)
	})
}

// TestInvalidArgumentsAreRejected checks that nonsense input is
// ErrInvalidArgument with a message naming the problem, is never a
// panic, and changes no peer's configuration.
func TestInvalidArgumentsAreRejected(t *testing.T) {
	c := startCluster(t)
	ctx := testCtx(t)
	setNodes(t, c, A, []int{A, B, C}, []int{A, B, C}, nil)
	l := c.Peer(A)
	all := c.Addrs(A, B, C)
	v := []byte("v")
	var nilCtx context.Context // a nil context, as a careless caller passes it

	cases := []struct {
		name string
		want string // part of the message
		call func() error
	}{
		{"Lock empty key", "empty key", func() error { _, err := l.Lock(ctx, "", v, time.Second); return err }},
		{"Update empty key", "empty key", func() error { _, err := l.Update(ctx, "", v, v); return err }},
		{"ExtendLease empty key", "empty key", func() error { _, err := l.ExtendLease(ctx, "", v, time.Second); return err }},
		{"Release empty key", "empty key", func() error { _, err := l.Release(ctx, "", v); return err }},
		{"WaitFor empty key", "empty key", func() error { _, err := l.WaitFor(ctx, ""); return err }},
		{"WaitForRelease empty key", "empty key", func() error { return l.WaitForRelease(ctx, "") }},
		{"MasterDirtyRead empty key", "empty key", func() error { _, err := l.MasterDirtyRead(ctx, ""); return err }},
		{"Batch empty key", "empty key", func() error {
			_, err := l.Batch(ctx, []lockeractor.Op{{Kind: lockeractor.OpLock, Key: "", Value: v, Lease: time.Second}})
			return err
		}},
		{"Batch unknown kind", "kind", func() error {
			_, err := l.Batch(ctx, []lockeractor.Op{{Kind: 99, Key: "k", Value: v, Lease: time.Second}})
			return err
		}},
		{"Lock zero lease", "lease", func() error { _, err := l.Lock(ctx, "k", v, 0); return err }},
		{"Lock negative lease", "lease", func() error { _, err := l.Lock(ctx, "k", v, -time.Second); return err }},
		{"ExtendLease zero lease", "lease", func() error { _, err := l.ExtendLease(ctx, "k", v, 0); return err }},
		{"ExtendLease negative lease", "lease", func() error { _, err := l.ExtendLease(ctx, "k", v, -1); return err }},
		{"Lock nil ctx", "nil context", func() error { _, err := l.Lock(nilCtx, "k", v, time.Second); return err }},
		{"Update nil ctx", "nil context", func() error { _, err := l.Update(nilCtx, "k", v, v); return err }},
		{"ExtendLease nil ctx", "nil context", func() error { _, err := l.ExtendLease(nilCtx, "k", v, time.Second); return err }},
		{"Release nil ctx", "nil context", func() error { _, err := l.Release(nilCtx, "k", v); return err }},
		{"Batch nil ctx", "nil context", func() error { _, err := l.Batch(nilCtx, nil); return err }},
		{"WaitFor nil ctx", "nil context", func() error { _, err := l.WaitFor(nilCtx, "k"); return err }},
		{"WaitForRelease nil ctx", "nil context", func() error { return l.WaitForRelease(nilCtx, "k") }},
		{"MasterDirtyRead nil ctx", "nil context", func() error { _, err := l.MasterDirtyRead(nilCtx, "k"); return err }},
		{"SetNodes nil ctx", "nil context", func() error { return l.SetNodes(nilCtx, all, all, nil) }},
		{"SetW nil ctx", "nil context", func() error { return l.SetW(nilCtx, all, 2) }},
		{"Lag nil ctx", "nil context", func() error { _, err := l.Lag(nilCtx); return err }},
		{"SetW zero", "W = 0", func() error { return l.SetW(ctx, all, 0) }},
		{"SetW negative", "W = -1", func() error { return l.SetW(ctx, all, -1) }},
		{"SetW above the masters", "W = 4", func() error { return l.SetW(ctx, all, 4) }},
		{"SetNodes fewer masters than W", "W = 2", func() error { return l.SetNodes(ctx, all, c.Addrs(A), nil) }},
		{"SetNodes no masters", "no masters", func() error { return l.SetNodes(ctx, all, nil, all) }},
		{"SetNodes master also replica", "both a master and a replica", func() error {
			return l.SetNodes(ctx, all, all, c.Addrs(C))
		}},
		{"SetNodes malformed master", "nohost", func() error { return l.SetNodes(ctx, all, []string{"nohost", all[1], all[2]}, nil) }},
		{"SetNodes malformed replica", "nohost", func() error { return l.SetNodes(ctx, all, all, []string{"nohost"}) }},
		{"SetNodes malformed cluster", "nohost", func() error { return l.SetNodes(ctx, []string{"nohost"}, all, nil) }},
		{"SetW malformed cluster", "nohost", func() error { return l.SetW(ctx, []string{"nohost"}, 2) }},
		{"SetNodes port out of range", "99999", func() error {
			return l.SetNodes(ctx, all, []string{"127.0.0.1:99999", all[1], all[2]}, nil)
		}},
		{"SetNodes empty cluster", "empty cluster", func() error { return l.SetNodes(ctx, nil, all, nil) }},
		{"SetW empty cluster", "empty cluster", func() error { return l.SetW(ctx, []string{}, 2) }},
		{"Start WithW(0)", "W = 0", func() error {
			sys := actor.NewActorSystem(testcluster.Quiet()...)
			defer sys.Shutdown()
			_, err := lockeractor.Start(sys, lockeractor.WithW(0))
			return err
		}},
		{"Start nil system", "nil", func() error { _, err := lockeractor.Start(nil); return err }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			require.NotPanics(t, func() { err = tc.call() })
			require.ErrorIs(t, err, lockeractor.ErrInvalidArgument)
			require.Contains(t, err.Error(), tc.want)
		})
	}
	for i := range c.Nodes {
		requireNodes(t, c.Peer(i), addrs(c, A, B, C), nil, 2)
		eventuallySummary(t, c.Peer(i), 0, 0)
	}
}

// TestLargeBurstReachesReplicaInOnePush locks 20,000 keys with values of
// 300 bytes (about 7 MB, well over gRPC's 4 MiB frame limit) and pushes
// them to the replica with one PushTransLog: every key arrives, because
// replication batches are chunked into small messages.
func TestLargeBurstReachesReplicaInOnePush(t *testing.T) {
	// This is about what arrives, not how fast: a generous timeout keeps
	// a slow moment of this 2-core machine from failing a write.
	c := startCluster(t, lockeractor.WithRequestTimeout(5*time.Second), lockeractor.WithWriteLockTimeout(6*time.Second))
	ctx := testCtx(t)
	setNodes(t, c, A, []int{A, B, C}, []int{A, B}, []int{C})

	const keys = 20000
	value := bytes.Repeat([]byte("x"), 300)
	ops := make([]lockeractor.Op, keys)
	for i := range ops {
		ops[i] = lockeractor.Op{Kind: lockeractor.OpLock, Key: fmt.Sprintf("burst/%05d", i), Value: value, Lease: longLease}
	}
	for lo := 0; lo < keys; lo += 2000 {
		res, err := c.Peer(A).Batch(ctx, ops[lo:lo+2000])
		require.NoError(t, err)
		for i, r := range res {
			require.NoError(t, r.Err, "op %d", lo+i)
		}
	}
	require.Equal(t, keys, c.Peer(A).Summary().Leases)
	require.Zero(t, c.Peer(C).Summary().Leases, "nothing pushed yet")

	c.Peer(A).PushTransLog()
	eventually(t, func() error {
		if n := c.Peer(C).Summary().Leases; n != keys {
			return fmt.Errorf("replica holds %d of %d keys", n, keys)
		}
		return nil
	})
	for _, i := range []int{0, keys / 2, keys - 1} {
		got, err := c.Peer(C).DirtyRead(ops[i].Key)
		require.NoError(t, err)
		require.Equal(t, value, got)
	}
}

// TestBatchOfManyKeys checks Locker.Batch: 500 locks in one call, then
// one call mixing extensions, updates, releases, new locks and ops that
// must fail on their own (already locked, wrong value, absent key).
func TestBatchOfManyKeys(t *testing.T) {
	c := startCluster(t)
	ctx := testCtx(t)
	setNodes(t, c, A, []int{A, B, C}, []int{A, B, C}, nil)
	key := func(i int) string { return fmt.Sprintf("k/%03d", i) }
	v, v2 := []byte("v"), []byte("v2")

	locks := make([]lockeractor.Op, 500)
	for i := range locks {
		locks[i] = lockeractor.Op{Kind: lockeractor.OpLock, Key: key(i), Value: v, Lease: longLease}
	}
	res, err := c.Peer(B).Batch(ctx, locks)
	require.NoError(t, err)
	require.Len(t, res, len(locks))
	tokens := map[string]uint64{}
	for i, r := range res {
		require.NoError(t, r.Err, "lock %d", i)
		requireQuorum(t, r.Result, 2, 3)
		require.NotZero(t, r.Result.Token)
		tokens[key(i)] = r.Result.Token
	}
	for i := range c.Nodes {
		eventuallySummary(t, c.Peer(i), 0, 500)
	}

	var mixed []lockeractor.Op
	for i := 0; i < 100; i++ {
		mixed = append(mixed, lockeractor.Op{Kind: lockeractor.OpExtendLease, Key: key(i), Value: v, Lease: longLease})
	}
	for i := 100; i < 200; i++ {
		mixed = append(mixed, lockeractor.Op{Kind: lockeractor.OpUpdate, Key: key(i), Value: v, NewValue: v2})
	}
	for i := 200; i < 300; i++ {
		mixed = append(mixed, lockeractor.Op{Kind: lockeractor.OpRelease, Key: key(i), Value: v})
	}
	for i := 0; i < 100; i++ {
		mixed = append(mixed, lockeractor.Op{Kind: lockeractor.OpLock, Key: fmt.Sprintf("new/%03d", i), Value: v, Lease: longLease})
	}
	failing := len(mixed)
	mixed = append(mixed,
		lockeractor.Op{Kind: lockeractor.OpLock, Key: key(300), Value: v, Lease: longLease},
		lockeractor.Op{Kind: lockeractor.OpUpdate, Key: key(301), Value: []byte("wrong"), NewValue: v2},
		lockeractor.Op{Kind: lockeractor.OpRelease, Key: "absent", Value: v},
	)
	res, err = c.Peer(C).Batch(ctx, mixed)
	require.NoError(t, err)
	require.Len(t, res, len(mixed))
	for i, r := range res[:failing] {
		op := mixed[i]
		require.NoError(t, r.Err, "%v %s", op.Kind, op.Key)
		requireQuorum(t, r.Result, 2, 3)
		switch op.Kind {
		case lockeractor.OpExtendLease, lockeractor.OpRelease:
			require.Equal(t, tokens[op.Key], r.Result.Token, "%v %s returns the holder's token", op.Kind, op.Key)
		case lockeractor.OpUpdate:
			require.Greater(t, r.Result.Token, tokens[op.Key], "%v %s", op.Kind, op.Key)
		}
	}
	for i, reason := range []lockeractor.Reason{lockeractor.ReasonAlreadyLocked, lockeractor.ReasonValueDiffers, lockeractor.ReasonNotFound} {
		r := res[failing+i]
		qe := requireNoQuorum(t, r.Err)
		require.Zero(t, qe.Votes, "%v", qe)
		require.NotEmpty(t, qe.Peers)
		for addr, got := range qe.Peers {
			require.Equal(t, reason, got, "%s in %v", addr, qe)
		}
	}
	for i := range c.Nodes {
		l := c.Peer(i)
		eventuallySummary(t, l, 0, 500)
		eventuallyValue(t, l, key(0), "v")
		eventuallyValue(t, l, key(150), "v2")
		eventuallyAbsent(t, l, key(250))
		eventuallyValue(t, l, "new/050", "v")
		requireValue(t, l, key(301), "v")
	}
}

// TestBatchRefusedAsAWholeForOneBadOp checks that a batch with one
// invalid op is ErrInvalidArgument and writes nothing, and that an empty
// batch is no error.
func TestBatchRefusedAsAWholeForOneBadOp(t *testing.T) {
	c := startCluster(t)
	ctx := testCtx(t)
	setNodes(t, c, A, []int{A, B, C}, []int{A, B, C}, nil)
	v := []byte("v")
	_, err := c.Peer(A).Batch(ctx, []lockeractor.Op{
		{Kind: lockeractor.OpLock, Key: "good/1", Value: v, Lease: longLease},
		{Kind: lockeractor.OpLock, Key: "", Value: v, Lease: longLease},
	})
	require.ErrorIs(t, err, lockeractor.ErrInvalidArgument)
	require.ErrorContains(t, err, "op 1")
	for i := range c.Nodes {
		requireAbsent(t, c.Peer(i), "good/1")
		require.Equal(t, lockeractor.Summary{}, c.Peer(i).Summary())
	}

	res, err := c.Peer(A).Batch(ctx, nil)
	require.NoError(t, err)
	require.Empty(t, res)
}

// TestBatchRepeatingAKeyAppliesItsOpsInOrder checks a batch that locks,
// updates and releases one key: the ops on a repeated key go in later
// transactions (core.Submit), so each sees the one before and all three
// succeed, with a fresh token for the update and the holder's token for
// the release.
func TestBatchRepeatingAKeyAppliesItsOpsInOrder(t *testing.T) {
	c := startCluster(t)
	ctx := testCtx(t)
	setNodes(t, c, A, []int{A, B, C}, []int{A, B, C}, nil)
	res, err := c.Peer(A).Batch(ctx, []lockeractor.Op{
		{Kind: lockeractor.OpLock, Key: "again", Value: []byte("a"), Lease: longLease},
		{Kind: lockeractor.OpUpdate, Key: "again", Value: []byte("a"), NewValue: []byte("b")},
		{Kind: lockeractor.OpRelease, Key: "again", Value: []byte("b")},
	})
	require.NoError(t, err)
	for i, r := range res {
		require.NoError(t, r.Err, "op %d", i)
	}
	require.Greater(t, res[1].Result.Token, res[0].Result.Token)
	require.Equal(t, res[1].Result.Token, res[2].Result.Token)
	requireAbsent(t, c.Peer(A), "again")
}

// TestDirtyReadNeverReturnsExpiredEntry checks that once a lease's
// deadline has passed on a master, DirtyRead there no longer returns the
// key, whatever the expiry timer did. A master's deadline is at most
// the lease after Lock returned (it started the lease when the commit
// arrived, before the reply). The peers share a manual clock that stands
// still while the Lock runs and then moves past the deadline by a
// millisecond; the lease is an hour, so the expiry timers (armed in real
// time) cannot have fired: only the deadline check can hide the key.
func TestDirtyReadNeverReturnsExpiredEntry(t *testing.T) {
	clk := testcluster.NewManualClock(time.Now())
	c := startCluster(t, lockeractor.WithClock(clk))
	ctx := testCtx(t)
	setNodes(t, c, A, []int{A, B}, []int{A, B}, nil)
	const lease = time.Hour
	for round := range 5 {
		key := fmt.Sprintf("short/%d", round)
		res, err := c.Peer(A).Lock(ctx, key, []byte("v"), lease)
		require.NoError(t, err)
		requireResult(t, res, 2, 2, 2) // both masters committed before the reply
		requireValue(t, c.Peer(A), key, "v")
		requireValue(t, c.Peer(B), key, "v")
		clk.Advance(lease + time.Millisecond)
		requireAbsent(t, c.Peer(A), key)
		requireAbsent(t, c.Peer(B), key)
	}
}

// TestMasterDirtyReadAndLag checks MasterDirtyRead on a master and on a
// replica that has not had a push (it asks a master), and that Lag
// measures a write without leaving its probe key behind.
func TestMasterDirtyReadAndLag(t *testing.T) {
	c := startCluster(t)
	ctx := testCtx(t)
	setNodes(t, c, A, []int{A, B, C}, []int{A, B}, []int{C})
	_, err := c.Peer(A).Lock(ctx, "read", []byte("v"), longLease)
	require.NoError(t, err)

	for i := range c.Nodes {
		v, err := c.Peer(i).MasterDirtyRead(ctx, "read")
		require.NoError(t, err, "node %d", i)
		require.Equal(t, "v", string(v), "node %d", i)
		_, err = c.Peer(i).MasterDirtyRead(ctx, "unknown")
		require.ErrorIs(t, err, lockeractor.ErrNotFound, "node %d", i)
	}
	requireAbsent(t, c.Peer(C), "read")

	lag, err := c.Peer(C).Lag(ctx)
	require.NoError(t, err)
	require.Positive(t, lag)
	for _, i := range []int{A, B} {
		eventuallySummary(t, c.Peer(i), 0, 1)
	}
}

// TestStoppedLockerCountsAsDownAtOnce checks that a peer whose Locker was
// stopped, on an actor system that still runs (protoactor answers for it
// with a dead letter), counts as unreachable at once: a write that needs
// its answer fails with ErrNoQuorum long before the request timeout.
func TestStoppedLockerCountsAsDownAtOnce(t *testing.T) {
	c := startCluster(t, lockeractor.WithRequestTimeout(5*time.Second), lockeractor.WithWriteLockTimeout(6*time.Second))
	ctx := testCtx(t)
	setNodes(t, c, A, []int{A, B, C}, []int{A, B, C}, nil)
	c.Peer(B).Stop()
	c.Peer(C).Stop()

	start := time.Now()
	_, err := c.Peer(A).Lock(ctx, "k", []byte("v"), longLease)
	took := time.Since(start)
	qe := requireNoQuorum(t, err)
	require.Equal(t, 1, qe.Votes)
	requireReasons(t, qe, map[string]lockeractor.Reason{
		c.Nodes[B].Addr: lockeractor.ReasonUnreachable,
		c.Nodes[C].Addr: lockeractor.ReasonUnreachable,
	}, nil)
	require.Less(t, took, time.Second, "the dead letters of B and C decide the write; the request timeout is 5 s")
}

// TestLockReachesMasterThatRefusedItsPromise checks that a Lock decided
// by a quorum reaches every master, also one that refused its promise
// because it held a stale entry (as locker's do_write writes to every
// master): otherwise that master keeps the stale value, and the holder
// can no longer release its lock once another master is down.
func TestLockReachesMasterThatRefusedItsPromise(t *testing.T) {
	c := startCluster(t)
	ctx := testCtx(t)
	// A and B form a cluster; C, alone with W = 1, takes the key.
	setNodes(t, c, A, []int{A, B}, []int{A, B}, nil)
	require.NoError(t, c.Peer(C).SetW(ctx, c.Addrs(C), 1))
	setNodes(t, c, C, []int{C}, []int{C}, nil)
	_, err := c.Peer(C).Lock(ctx, "k", []byte("stale"), longLease)
	require.NoError(t, err)
	// C joins as a master; W = 2 everywhere.
	setNodes(t, c, A, []int{A, B, C}, []int{A, B, C}, nil)
	require.NoError(t, c.Peer(A).SetW(ctx, c.Addrs(A, B, C), 2))

	res, err := c.Peer(A).Lock(ctx, "k", []byte("new"), longLease)
	require.NoError(t, err)
	requireResult(t, res, 2, 2, 2)

	c.Peer(A).Stop()
	rel, err := c.Peer(B).Release(ctx, "k", []byte("new"))
	require.NoError(t, err, "the holder releases its lock with two of three masters up")
	requireResult(t, rel, 2, 2, 2)
	eventuallyAbsent(t, c.Peer(C), "k")
}

// TestReleaseIsNotUndoneByALateLock checks that a release decided while
// one master has not yet seen the lock it releases wins once every
// message is delivered: no master holds the key. A flood of junk from
// A's actor system to C's delays A's Prepare and Commit to C (one
// protoactor endpoint per pair of systems, in order) but not B's
// messages to C, so C hears B's release before A's lock.
func TestReleaseIsNotUndoneByALateLock(t *testing.T) {
	c := startCluster(t, lockeractor.WithRequestTimeout(5*time.Second), lockeractor.WithWriteLockTimeout(6*time.Second))
	ctx := testCtx(t)
	setNodes(t, c, A, []int{A, B, C}, []int{A, B, C}, nil)

	var sunk atomic.Int64
	sink, err := c.Nodes[C].System.Root.SpawnNamed(actor.PropsFromFunc(func(ctx actor.Context) {
		if _, ok := ctx.Message().(*wrapperspb.BytesValue); ok {
			sunk.Add(1)
		}
	}), "sink")
	require.NoError(t, err)
	const flood = 20000
	junk := &wrapperspb.BytesValue{Value: bytes.Repeat([]byte("j"), 1000)}
	for range flood {
		c.Nodes[A].System.Root.Send(actor.NewPID(c.Nodes[C].Addr, sink.Id), junk)
	}

	lock, err := c.Peer(A).Lock(ctx, "k", []byte("v"), longLease)
	require.NoError(t, err)
	requireQuorum(t, lock, 2, 3)
	rel, err := c.Peer(B).Release(ctx, "k", []byte("v"))
	require.NoError(t, err)
	requireQuorum(t, rel, 2, 3)
	// The setup: when the release was decided, C had not applied A's
	// lock, and the flood ahead of A's messages to C was still arriving.
	requireAbsent(t, c.Peer(C), "k")
	require.Less(t, sunk.Load(), int64(flood), "the flood did not delay A's messages to C past B's release")

	eventually(t, func() error {
		if n := sunk.Load(); n != flood {
			return fmt.Errorf("the sink got %d of %d", n, flood)
		}
		return nil
	})
	for i := range c.Nodes {
		eventuallyAbsent(t, c.Peer(i), "k")
		eventuallySummary(t, c.Peer(i), 0, 0)
	}
}
