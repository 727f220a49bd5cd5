package tests

// Reads: local reads never return an expired entry; MasterDirtyRead and
// Lag.

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/protoactor-locker/locker/internal/testcluster"
	"github.com/protoactor-locker/locker/lockeractor"
)

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
