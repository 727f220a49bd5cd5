package tests

// Batches and bursts: many keys in one quorum round, all or nothing, and
// large bursts replicated within the message bound.

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/protoactor-locker/locker/lockeractor"
)

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
