package tests

// Fencing tokens grow strictly per key across release, expiry and
// restarts.

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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
