package tests

// How a coordinator decides: stopped peers count as down at once, a
// decided write still reaches the masters that refused, and a late write
// cannot undo a release.

import (
	"bytes"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/protoactor-locker/locker/lockeractor"
)

// TestStoppedLockerCountsAsDownAtOnce checks that a peer whose Locker was
// stopped, on an actor system that still runs (protoactor answers for it
// with a dead letter), counts as unreachable at once: a write that needs
// its answer fails with ErrNoQuorum long before the request timeout.
func TestStoppedLockerCountsAsDownAtOnce(t *testing.T) {
	// A request timeout of an hour: the Lock can fail with a QuorumError
	// within ctx only if the dead letters decide it (no clock reading
	// decides).
	c := startCluster(t, lockeractor.WithRequestTimeout(time.Hour), lockeractor.WithWriteLockTimeout(time.Hour+time.Second))
	ctx := testCtx(t)
	setNodes(t, c, A, []int{A, B, C}, []int{A, B, C}, nil)
	c.Peer(B).Stop()
	c.Peer(C).Stop()

	_, err := c.Peer(A).Lock(ctx, "k", []byte("v"), longLease)
	qe := requireNoQuorum(t, err)
	require.Equal(t, 1, qe.Votes)
	requireReasons(t, qe, map[string]lockeractor.Reason{
		c.Nodes[B].Addr: lockeractor.ReasonUnreachable,
		c.Nodes[C].Addr: lockeractor.ReasonUnreachable,
	}, nil)
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
