package tests

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/protoactor-locker/locker/internal/testcluster"
	"github.com/protoactor-locker/locker/lockeractor"
)

// TestUnconfiguredPeerIsNotReady: peers with protoactor remote and no
// configuration grant nothing: a Lock fails at once with ErrNotReady
// (not after a quorum round, and never succeeds on the peer's own vote),
// Ready waits, and returns as soon as SetNodes configured the peers.
func TestUnconfiguredPeerIsNotReady(t *testing.T) {
	c := startCluster(t)
	ctx := testCtx(t)
	for i := range c.Nodes {
		l := c.Peer(i)
		require.False(t, l.IsReady())
		_, err := l.Lock(ctx, "k", []byte("v"), longLease)
		require.ErrorIs(t, err, lockeractor.ErrNotReady, "peer %d", i)
		require.NotErrorIs(t, err, lockeractor.ErrNoQuorum)
		short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		err = l.Ready(short)
		cancel()
		require.ErrorIs(t, err, lockeractor.ErrNotReady)
		require.ErrorIs(t, err, context.DeadlineExceeded)
	}
	ready := make(chan error, len(c.Nodes))
	for i := range c.Nodes {
		go func() { ready <- c.Peer(i).Ready(ctx) }()
	}
	setNodes(t, c, A, []int{A, B, C}, []int{A, B, C}, nil)
	for range c.Nodes {
		require.NoError(t, <-ready)
	}
	_, err := c.Peer(B).Lock(ctx, "k", []byte("v"), longLease)
	require.NoError(t, err)
	_, err = c.Peer(C).Lock(ctx, "k", []byte("w"), longLease)
	require.ErrorIs(t, err, lockeractor.ErrNoQuorum)
}

// TestRestartedPeerNotReadyUntilItHearsTheCluster: a master restarted
// with empty memory refuses writes with ErrNotReady (it would otherwise
// be its own single master and grant a key another holds) until the
// others' gossip gave it the configuration and it copied their leases;
// then it is ready and refuses the held key.
func TestRestartedPeerNotReadyUntilItHearsTheCluster(t *testing.T) {
	gossip := lockeractor.WithReplicationInterval(20 * time.Millisecond) // masters gossip every 10 intervals
	c := startCluster(t, gossip)
	ctx := testCtx(t)
	setNodes(t, c, A, []int{A, B, C}, []int{A, B, C}, nil)
	require.NoError(t, c.Peer(A).SetW(ctx, c.Addrs(A, B, C), 2))
	_, err := c.Peer(A).Lock(ctx, "k", []byte("a"), longLease)
	require.NoError(t, err)

	// C's clock stands still until C has refused the Lock: a restarted
	// peer waits a request timeout (on its clock) before it asks for the
	// snapshots it copies, so it cannot be ready yet, however slowly the
	// test runs. Then its clock moves past that wait and runs on.
	clk := testcluster.NewManualClock(time.Now())
	restartLocker(t, c, C, append(suiteOptions(gossip), lockeractor.WithClock(clk))...)
	l := c.Peer(C)
	_, err = l.Lock(ctx, "k", []byte("c"), longLease)
	require.ErrorIs(t, err, lockeractor.ErrNotReady, "the restarted peer grants nothing on its own")
	clk.Advance(2 * time.Second) // past the 500 ms request timeout of suiteOptions, far below MaxLease
	clk.Run()                    // C's own writes wait on timers from here on
	require.NoError(t, l.Ready(ctx))
	_, err = l.Lock(ctx, "k", []byte("c"), longLease)
	var qe *lockeractor.QuorumError
	require.True(t, errors.As(err, &qe), "%v", err)
	got, err := l.DirtyRead("k")
	require.NoError(t, err, "it copied the lease before it was ready")
	require.Equal(t, "a", string(got))
}

// TestDeparted: a member the configuration no longer names counts as
// departed; members it names do not, and neither does anyone before
// the first configuration.
func TestDeparted(t *testing.T) {
	c := startCluster(t)
	ctx := testCtx(t)
	require.False(t, c.Peer(A).Departed(c.Nodes[C].Addr), "no configuration yet")
	setNodes(t, c, A, []int{A, B, C}, []int{A, B, C}, nil)
	require.False(t, c.Peer(A).Departed(c.Nodes[C].Addr))
	require.NoError(t, c.Peer(A).Reconfigure(ctx, c.Addrs(A, B), nil))
	require.True(t, c.Peer(A).Departed(c.Nodes[C].Addr))
	require.False(t, c.Peer(A).Departed(c.Nodes[B].Addr))
	require.False(t, c.Peer(C).Departed(c.Nodes[C].Addr), "never itself")
}
