package tests

// A port of every scenario of wooga/locker's test/locker_SUITE.erl, on
// three actor systems talking over protoactor remote on 127.0.0.1. The
// upstream line each step ports is quoted in the comments.
//
// Differences from upstream, all deliberate:
//   - Upstream cancels the expiry timers and calls expire_leases by hand
//     after a timer:sleep; here leases are short and the tests wait for
//     their expiry with a bounded Eventually or with WaitForRelease.
//   - Upstream's {ok, 2, 3, 3} with all three masters up becomes "at
//     least W votes and commits": the coordinator replies once W masters
//     committed and waits only a short grace for the third. Where a
//     master is down the counts are exact.
//   - "A node goes down" is either Locker.Stop (the process is killed,
//     the remote still answers with dead letters) or Node.Stop (the whole
//     actor system with its remote goes away), as upstream mixes
//     exit(Pid, kill) and slave:stop.

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/protoactor-locker/locker/lockeractor"
)

// TestSuiteAPI ports api: set_nodes/set_w/get_meta, a lock with all
// masters up, a release and a lock with one master's Locker killed
// (exactly 2 votes and 2 commits), and an update with a wrong value.
func TestSuiteAPI(t *testing.T) {
	c := startCluster(t)
	ctx := testCtx(t)
	all := addrs(c, A, B, C)

	// ok = set_nodes(Cluster, Cluster, []), {Cluster, [], 2} = get_meta()
	setNodes(t, c, A, []int{A, B, C}, []int{A, B, C}, nil)
	for i := range c.Nodes {
		requireNodes(t, c.Peer(i), all, nil, 2)
	}

	// ok = set_w([A], 3): only A changes.
	require.NoError(t, c.Peer(A).SetW(ctx, c.Addrs(A), 3))
	requireNodes(t, c.Peer(A), all, nil, 3)
	requireNodes(t, c.Peer(B), all, nil, 2)
	require.NoError(t, c.Peer(A).SetW(ctx, c.Addrs(A), 2))
	requireNodes(t, c.Peer(A), all, nil, 2)

	// {ok, 2, 3, 3} = lock(123, self())
	value := []byte("self")
	lock, err := c.Peer(A).Lock(ctx, "123", value, longLease)
	require.NoError(t, err)
	requireQuorum(t, lock, 2, 3)
	require.NotZero(t, lock.Token)
	for i := range c.Nodes { // upstream's 3 commits
		eventuallyValue(t, c.Peer(i), "123", "self")
		eventuallySummary(t, c.Peer(i), 0, 1)
	}

	// exit(whereis(locker) on C, kill)
	c.Peer(C).Stop()
	require.Nil(t, lockeractor.Get(c.Nodes[C].System))

	// {ok, 2, 2, 2} = release(123, self()) on A
	rel, err := c.Peer(A).Release(ctx, "123", value)
	require.NoError(t, err)
	requireResult(t, rel, 2, 2, 2)
	require.Equal(t, lock.Token, rel.Token, "Release returns the holder's token")

	// {ok, 2, 2, 2} = lock(123, self()) on B
	relock, err := c.Peer(B).Lock(ctx, "123", value, longLease)
	require.NoError(t, err)
	requireResult(t, relock, 2, 2, 2)
	require.Greater(t, relock.Token, lock.Token, "fencing token after release and relock")

	// {error, no_quorum} = update(123, wrong_value, new_value) on A
	_, err = c.Peer(A).Update(ctx, "123", []byte("wrong_value"), []byte("new_value"))
	qe := requireNoQuorum(t, err)
	require.False(t, qe.Committing, "nothing was committed")
	require.Equal(t, 2, qe.W)
	require.Zero(t, qe.Votes)
	requireReasons(t, qe,
		map[string]lockeractor.Reason{c.Nodes[A].Addr: lockeractor.ReasonValueDiffers},
		map[string]lockeractor.Reason{
			c.Nodes[B].Addr: lockeractor.ReasonValueDiffers,
			c.Nodes[C].Addr: lockeractor.ReasonUnreachable,
		})
	requireValue(t, c.Peer(A), "123", "self")
	eventuallyValue(t, c.Peer(B), "123", "self")
}

// TestSuiteQuorum ports quorum: two nodes lock the same key at the same
// moment; exactly one wins, and every master ends with the winner's
// value, one lease per key and no write locks. Upstream races once;
// this races on several keys, so that the interleavings where a master
// promised the loser before the winner also happen.
func TestSuiteQuorum(t *testing.T) {
	c := startCluster(t)
	ctx := testCtx(t)
	setNodes(t, c, A, []int{A, B, C}, []int{A, B, C}, nil)

	const rounds = 10
	for round := range rounds {
		key := fmt.Sprintf("123/%d", round)
		ra, rb, ea, eb := lockBoth(ctx, c.Peer(A), c.Peer(B), key, []byte("from-a"), []byte("from-b"), longLease)
		require.True(t, (ea == nil) != (eb == nil), "%s: exactly one lock wins: A %v, B %v", key, ea, eb)
		winner, res, loserErr := "from-a", ra, eb
		if eb == nil {
			winner, res, loserErr = "from-b", rb, ea
		}
		requireQuorum(t, res, 2, 3)
		requireNoQuorum(t, loserErr)

		// {ok, Pid} = dirty_read(123) on A and B; push_trans_log; on C.
		eventuallyValue(t, c.Peer(A), key, winner)
		eventuallyValue(t, c.Peer(B), key, winner)
		pushAll(c)
		eventuallyValue(t, c.Peer(C), key, winner)
	}

	// {ok, [], [{123, Pid, _}], ...} = state(N): no write locks, the leases.
	for i := range c.Nodes {
		eventuallySummary(t, c.Peer(i), 0, rounds)
	}
}

// TestSuiteNoQuorumPossible ports no_quorum_possible: with two masters
// and W = 2, both masters lock the same key at the same moment. When
// the votes split, both fail with ErrNoQuorum (at most one vote, one
// master refused with a write lock), nothing is stored anywhere and no
// write lock is left. The race is retried until that split happens;
// every round checks that at most one lock wins.
func TestSuiteNoQuorumPossible(t *testing.T) {
	c := startCluster(t)
	ctx := testCtx(t)
	// ok = set_nodes([A, B], [A, B], []), with C as a replica here, so
	// that a push reaches it: A and B are the masters.
	setNodes(t, c, A, []int{A, B, C}, []int{A, B}, []int{C})

	const rounds = 200
	split := ""
	for round := 0; round < rounds && split == ""; round++ {
		key := fmt.Sprintf("123/%d", round)
		value := []byte("parent")
		ra, rb, ea, eb := lockBoth(ctx, c.Peer(A), c.Peer(B), key, value, value, longLease)
		switch {
		case ea == nil && eb == nil:
			t.Fatalf("round %d: both locks of %q won: %+v %+v", round, key, ra, rb)
		case ea == nil || eb == nil:
			// One won the race outright; free the key and retry.
			winner := c.Peer(A)
			if eb == nil {
				winner = c.Peer(B)
			}
			requireNoQuorum(t, errors.Join(ea, eb))
			rel, err := winner.Release(ctx, key, value)
			require.NoError(t, err)
			requireResult(t, rel, 2, 2, 2)
		default:
			for _, err := range []error{ea, eb} {
				qe := requireNoQuorum(t, err)
				require.False(t, qe.Committing)
				// Each lock got one promise at most: its own master's, or
				// the other's when both masters promised the other lock
				// first; a lock its own master refused is decided at once
				// and may reply before the other's promise comes in.
				require.LessOrEqual(t, qe.Votes, 1, "%v", qe)
				require.Len(t, qe.Peers, 1, "one master refused: %v", qe)
				for _, r := range qe.Peers {
					require.Equal(t, lockeractor.ReasonWriteLocked, r, "%v", qe)
				}
			}
			split = key
		}
	}
	if split == "" {
		t.Fatalf("no split vote in %d rounds of concurrent locks", rounds)
	}

	// {error, not_found} = dirty_read(123) on A, B; push_trans_log; on C.
	// A marker locked after the split proves the push reached C: the
	// push carries the masters' log in order, so C, holding the marker,
	// would hold the split key had anything committed it.
	requireAbsent(t, c.Peer(A), split)
	requireAbsent(t, c.Peer(B), split)
	_, err := c.Peer(A).Lock(ctx, "marker", []byte("m"), longLease)
	require.NoError(t, err)
	pushAll(c)
	eventuallyValue(t, c.Peer(C), "marker", "m")
	requireAbsent(t, c.Peer(C), split)
	_, err = c.Peer(A).Release(ctx, "marker", []byte("m"))
	require.NoError(t, err)
	pushAll(c)
	eventuallyAbsent(t, c.Peer(C), "marker")

	// {ok, [], [], ...} = state(N): no write locks, no leases.
	for i := range c.Nodes {
		eventuallySummary(t, c.Peer(i), 0, 0)
	}
}

// TestSuiteRelease ports release: with two of three masters' actor
// systems shut down, a release fails with ErrNoQuorum (the two named
// unreachable) and the surviving master keeps the value.
func TestSuiteRelease(t *testing.T) {
	shutsNodesDown(t)
	c := startCluster(t)
	ctx := testCtx(t)
	setNodes(t, c, A, []int{A, B, C}, []int{A, B, C}, nil)

	value := []byte("self")
	res, err := c.Peer(A).Lock(ctx, "123", value, longLease)
	require.NoError(t, err)
	requireQuorum(t, res, 2, 3)

	requireValue(t, c.Peer(A), "123", "self") // the coordinator commits to itself first
	eventuallyValue(t, c.Peer(B), "123", "self")
	pushAll(c)
	eventuallyValue(t, c.Peer(C), "123", "self")

	// slave:stop(A), slave:stop(B)
	c.Nodes[A].Stop()
	c.Nodes[B].Stop()

	// {error, no_quorum} = release(123, Value) on C
	_, err = c.Peer(C).Release(ctx, "123", value)
	qe := requireNoQuorum(t, err)
	require.False(t, qe.Committing)
	require.Equal(t, 2, qe.W)
	require.Equal(t, 1, qe.Votes, "only C promised: %v", qe)
	requireReasons(t, qe, map[string]lockeractor.Reason{
		c.Nodes[A].Addr: lockeractor.ReasonUnreachable,
		c.Nodes[B].Addr: lockeractor.ReasonUnreachable,
	}, nil)

	// push_trans_log; {ok, Value} = dirty_read(123) on C
	c.Peer(C).PushTransLog()
	requireValue(t, c.Peer(C), "123", "self")
	eventuallySummary(t, c.Peer(C), 0, 1) // C's own promise was aborted
}

// TestSuiteLeaseExtend ports lease_extend: a lease runs out on every
// node, the key can then be locked again, and an extension from another
// node keeps it past its first deadline on every node.
func TestSuiteLeaseExtend(t *testing.T) {
	c := startCluster(t)
	ctx := testCtx(t)
	setNodes(t, c, A, []int{A, B, C}, []int{A, B, C}, nil)
	const lease = 300 * time.Millisecond
	value := []byte("pid")

	first, err := c.Peer(A).Lock(ctx, "123", value, lease)
	require.NoError(t, err)
	requireQuorum(t, first, 2, 3)
	for i := range c.Nodes {
		eventuallyValue(t, c.Peer(i), "123", "pid")
	}

	// timer:sleep(2000), expire_leases: {error, not_found} everywhere.
	require.NoError(t, c.Peer(A).WaitForRelease(ctx, "123"), "the lease runs out")
	for i := range c.Nodes {
		eventuallyAbsent(t, c.Peer(i), "123")
	}

	// {ok, _, _, _} = lock(123, Pid) again; readable everywhere. The
	// lease is longer now: the steps up to the extension must fit in it.
	const lease2 = time.Second
	second, err := c.Peer(A).Lock(ctx, "123", value, lease2)
	require.NoError(t, err)
	requireQuorum(t, second, 2, 3)
	require.Greater(t, second.Token, first.Token)
	for i := range c.Nodes {
		eventuallyValue(t, c.Peer(i), "123", "pid")
	}

	// A sentinel locked now with the same lease runs out, on every node,
	// after 123's original deadline there.
	_, err = c.Peer(A).Lock(ctx, "sentinel", value, lease2)
	require.NoError(t, err)
	for i := range c.Nodes {
		eventuallyValue(t, c.Peer(i), "sentinel", "pid")
	}

	// ok = extend_lease(123, Pid, 2000) on B
	ext, err := c.Peer(B).ExtendLease(ctx, "123", value, longLease)
	require.NoError(t, err)
	requireQuorum(t, ext, 2, 3)
	require.Equal(t, second.Token, ext.Token, "ExtendLease returns the holder's token")

	// expire_leases; {ok, Pid} = dirty_read(123) everywhere.
	for i := range c.Nodes {
		err := c.Peer(i).WaitForRelease(ctx, "sentinel")
		if !errors.Is(err, lockeractor.ErrKeyNotLocked) {
			require.NoError(t, err)
		}
		requireValue(t, c.Peer(i), "123", "pid")
	}
}

// TestSuiteExpireLeases ports expire_leases: two keys locked at different
// times are readable on every node, and both run out on every node.
func TestSuiteExpireLeases(t *testing.T) {
	c := startCluster(t)
	ctx := testCtx(t)
	setNodes(t, c, A, []int{A, B, C}, []int{A, B, C}, nil)
	const lease = time.Second // the reads on every node must fit in it
	value := []byte("pid")

	_, err := c.Peer(A).Lock(ctx, "123", value, lease)
	require.NoError(t, err)
	for i := range c.Nodes {
		eventuallyValue(t, c.Peer(i), "123", "pid")
	}
	_, err = c.Peer(A).Lock(ctx, "abc", value, lease)
	require.NoError(t, err)
	for i := range c.Nodes {
		eventuallyValue(t, c.Peer(i), "abc", "pid")
	}

	for i := range c.Nodes {
		eventuallyAbsent(t, c.Peer(i), "123")
		eventuallyAbsent(t, c.Peer(i), "abc")
		eventuallySummary(t, c.Peer(i), 0, 0)
	}
}

// TestSuiteOneNodeDown ports one_node_down: with one master's actor
// system shut down, a lock still succeeds with exactly 2 votes and 2
// commits, without waiting for the dead master's request timeout, and
// both live masters hold the lease and no write lock.
func TestSuiteOneNodeDown(t *testing.T) {
	shutsNodesDown(t)
	// A request timeout of an hour: the Lock can succeed within ctx only
	// if the down master costs nothing like it (no clock reading decides).
	c := startCluster(t, lockeractor.WithRequestTimeout(time.Hour), lockeractor.WithWriteLockTimeout(time.Hour+time.Second))
	ctx := testCtx(t)
	setNodes(t, c, A, []int{A, B, C}, []int{A, B, C}, nil)

	c.Nodes[C].Stop() // slave:stop(C)

	res, err := c.Peer(A).Lock(ctx, "123", []byte("pid"), longLease)
	require.NoError(t, err, "a down master must not cost the request timeout")
	requireResult(t, res, 2, 2, 2)

	requireValue(t, c.Peer(A), "123", "pid")
	requireValue(t, c.Peer(B), "123", "pid")
	eventuallySummary(t, c.Peer(A), 0, 1)
	eventuallySummary(t, c.Peer(B), 0, 1)
}

// TestSuiteExtendPropagates ports extend_propagates: a key locked while C
// is outside the cluster reaches C, made a replica later, when the lease
// is extended and the masters push their log.
func TestSuiteExtendPropagates(t *testing.T) {
	c := startCluster(t)
	ctx := testCtx(t)
	// ok = set_nodes([A, B], [A, B], [])
	setNodes(t, c, A, []int{A, B}, []int{A, B}, nil)

	value := []byte("pid")
	lock, err := c.Peer(A).Lock(ctx, "123", value, longLease)
	require.NoError(t, err)
	requireResult(t, lock, 2, 2, 2)

	requireValue(t, c.Peer(A), "123", "pid")
	requireValue(t, c.Peer(B), "123", "pid")
	requireAbsent(t, c.Peer(C), "123")
	eventuallySummary(t, c.Peer(A), 0, 1)
	eventuallySummary(t, c.Peer(B), 0, 1)
	pushAll(c)
	require.Equal(t, lockeractor.Summary{}, c.Peer(C).Summary(), "C is in no cluster yet")

	// ok = set_nodes([A, B, C], [A, B], [C])
	setNodes(t, c, A, []int{A, B, C}, []int{A, B}, []int{C})

	// ok = extend_lease(123, Pid, 2000)
	ext, err := c.Peer(A).ExtendLease(ctx, "123", value, longLease)
	require.NoError(t, err)
	requireResult(t, ext, 2, 2, 2)
	require.Equal(t, lock.Token, ext.Token)

	eventuallySummary(t, c.Peer(A), 0, 1)
	eventuallySummary(t, c.Peer(B), 0, 1)
	pushAll(c)
	eventuallyValue(t, c.Peer(C), "123", "pid")
	eventuallySummary(t, c.Peer(C), 0, 1)
}

// TestSuiteAddRemoveNode ports add_remove_node: lock and release with
// three masters, then with C removed from the masters a lock counts
// exactly the two remaining.
func TestSuiteAddRemoveNode(t *testing.T) {
	c := startCluster(t)
	ctx := testCtx(t)
	setNodes(t, c, A, []int{A, B, C}, []int{A, B, C}, nil)
	value := []byte("self")

	// {ok, 2, 3, 3} = lock on A, release on B
	lock, err := c.Peer(A).Lock(ctx, "123", value, longLease)
	require.NoError(t, err)
	requireQuorum(t, lock, 2, 3)
	for i := range c.Nodes { // upstream's 3 commits
		eventuallyValue(t, c.Peer(i), "123", "self")
		eventuallySummary(t, c.Peer(i), 0, 1)
	}
	rel, err := c.Peer(B).Release(ctx, "123", value)
	require.NoError(t, err)
	requireQuorum(t, rel, 2, 3)
	require.Equal(t, lock.Token, rel.Token)

	// ok = set_nodes(Cluster, [A, B], [])
	setNodes(t, c, A, []int{A, B, C}, []int{A, B}, nil)
	for i := range c.Nodes {
		requireNodes(t, c.Peer(i), addrs(c, A, B), nil, 2)
	}
	for _, i := range []int{A, B} {
		eventuallyAbsent(t, c.Peer(i), "123")
		eventuallySummary(t, c.Peer(i), 0, 0)
	}

	// {ok, 2, 2, 2} = lock on A
	relock, err := c.Peer(A).Lock(ctx, "123", value, longLease)
	require.NoError(t, err)
	requireResult(t, relock, 2, 2, 2)
	require.Greater(t, relock.Token, lock.Token)
}

// TestSuiteReplica ports replica: every node sees the same masters,
// replicas and W; a replica gets a lock only when the masters push;
// with a master's actor system shut down a release fails, naming it
// unreachable, and the live master keeps the value.
func TestSuiteReplica(t *testing.T) {
	shutsNodesDown(t)
	c := startCluster(t)
	ctx := testCtx(t)
	setNodes(t, c, A, []int{A, B, C}, []int{A, B}, []int{C})

	// {[A, B], [C], 2} = get_meta() on A, B and C
	for i := range c.Nodes {
		requireNodes(t, c.Peer(i), addrs(c, A, B), addrs(c, C), 2)
	}

	value := []byte("pid")
	res, err := c.Peer(A).Lock(ctx, "123", value, longLease)
	require.NoError(t, err)
	requireResult(t, res, 2, 2, 2)

	requireValue(t, c.Peer(A), "123", "pid")
	requireValue(t, c.Peer(B), "123", "pid")
	requireAbsent(t, c.Peer(C), "123") // no push yet (the interval is an hour)
	pushAll(c)
	eventuallyValue(t, c.Peer(C), "123", "pid")

	c.Nodes[B].Stop() // slave:stop(B)

	// {error, no_quorum} = release(123, Pid) on A
	_, err = c.Peer(A).Release(ctx, "123", value)
	qe := requireNoQuorum(t, err)
	require.False(t, qe.Committing)
	require.Equal(t, 1, qe.Votes, "%v", qe)
	requireReasons(t, qe, map[string]lockeractor.Reason{c.Nodes[B].Addr: lockeractor.ReasonUnreachable}, nil)
	requireValue(t, c.Peer(A), "123", "pid")
	requireValue(t, c.Peer(C), "123", "pid")
	eventuallySummary(t, c.Peer(A), 0, 1)
}

// TestSuitePromote ports promote: a replica that got a key by
// replication is promoted to master and then votes with the value it
// holds. Beyond upstream, a release with A's Locker stopped needs C's
// vote, so it proves C promised with the replicated value.
func TestSuitePromote(t *testing.T) {
	c := startCluster(t)
	ctx := testCtx(t)
	setNodes(t, c, A, []int{A, B, C}, []int{A, B}, []int{C})

	value := []byte("pid")
	for _, key := range []string{"123", "456"} {
		res, err := c.Peer(A).Lock(ctx, key, value, longLease)
		require.NoError(t, err)
		requireResult(t, res, 2, 2, 2)
		requireValue(t, c.Peer(A), key, "pid")
		requireValue(t, c.Peer(B), key, "pid")
	}
	pushAll(c)
	eventuallyValue(t, c.Peer(C), "123", "pid")
	eventuallyValue(t, c.Peer(C), "456", "pid")

	// ok = set_nodes(Cluster, [A, B, C], [])
	setNodes(t, c, A, []int{A, B, C}, []int{A, B, C}, nil)
	for i := range c.Nodes {
		requireNodes(t, c.Peer(i), addrs(c, A, B, C), nil, 2)
	}
	require.NoError(t, c.Peer(C).Ready(ctx), "the promoted replica is ready once it copied the masters' leases")

	// {ok, 2, 3, 3} = release(123, Pid) on A
	rel, err := c.Peer(A).Release(ctx, "123", value)
	require.NoError(t, err)
	requireQuorum(t, rel, 2, 3)
	for i := range c.Nodes {
		eventuallyAbsent(t, c.Peer(i), "123")
	}

	// Only B and C can vote now: C must hold the replicated value.
	c.Peer(A).Stop()
	rel, err = c.Peer(B).Release(ctx, "456", value)
	require.NoError(t, err, "the promoted replica must promise with its replicated value")
	requireResult(t, rel, 2, 2, 2)
	requireAbsent(t, c.Peer(B), "456")
	eventuallyAbsent(t, c.Peer(C), "456")
}

// TestSuiteWaitFor ports wait_for: on a replica, WaitFor times out (an
// error wrapping context.DeadlineExceeded) until the masters push, then
// returns the value.
func TestSuiteWaitFor(t *testing.T) {
	c := startCluster(t)
	ctx := testCtx(t)
	setNodes(t, c, A, []int{A, B, C}, []int{A, B}, []int{C})

	res, err := c.Peer(A).Lock(ctx, "123", []byte("pid"), longLease)
	require.NoError(t, err)
	requireResult(t, res, 2, 2, 2)

	requireAbsent(t, c.Peer(C), "123")
	// {badrpc, {'EXIT', {timeout, _}}} = wait_for(123, 100) on C
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, err = c.Peer(C).WaitFor(short, "123")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Zero(t, c.Peer(C).Summary().Waiters, "the timed-out waiter is gone")

	// push_trans_log; {ok, Pid} = wait_for(123, 5000) on C
	pushAll(c)
	v, err := c.Peer(C).WaitFor(ctx, "123")
	require.NoError(t, err)
	require.Equal(t, "pid", string(v))
}

// TestSuiteWaitForRelease ports wait_for_release: a replica without the
// key answers ErrKeyNotLocked; once replicated, WaitForRelease on a
// master and on the replica both return when the lease runs out.
func TestSuiteWaitForRelease(t *testing.T) {
	c := startCluster(t)
	ctx := testCtx(t)
	setNodes(t, c, A, []int{A, B, C}, []int{A, B}, []int{C})

	const lease = time.Second
	res, err := c.Peer(A).Lock(ctx, "123", []byte("pid"), lease)
	require.NoError(t, err)
	requireResult(t, res, 2, 2, 2)

	requireValue(t, c.Peer(B), "123", "pid")
	requireAbsent(t, c.Peer(C), "123")
	// {error, key_not_locked} = wait_for_release(123, 100) on C
	require.ErrorIs(t, c.Peer(C).WaitForRelease(ctx, "123"), lockeractor.ErrKeyNotLocked)

	pushAll(c)
	eventuallyValue(t, c.Peer(C), "123", "pid")

	errs := make(chan error, 2)
	for _, i := range []int{B, C} {
		go func() { errs <- c.Peer(i).WaitForRelease(ctx, "123") }()
	}
	for range 2 {
		require.NoError(t, <-errs, "{ok, released}")
	}
	for i := range c.Nodes {
		requireAbsent(t, c.Peer(i), "123")
	}
}

// TestSuiteUpdate ports update: an update from another master changes
// the value everywhere (after a push on the replica) with a fresh
// fencing token, an update from a stale value fails, and the lease,
// unchanged by the update, runs out everywhere.
func TestSuiteUpdate(t *testing.T) {
	c := startCluster(t)
	ctx := testCtx(t)
	setNodes(t, c, A, []int{A, B, C}, []int{A, B}, []int{C})

	const lease = time.Second
	lock, err := c.Peer(A).Lock(ctx, "123", []byte("41"), lease)
	require.NoError(t, err)
	requireResult(t, lock, 2, 2, 2)
	upd, err := c.Peer(B).Update(ctx, "123", []byte("41"), []byte("42"))
	require.NoError(t, err)
	requireResult(t, upd, 2, 2, 2)
	require.Greater(t, upd.Token, lock.Token, "Update returns a fresh fencing token")

	pushAll(c)
	eventuallyValue(t, c.Peer(C), "123", "42")
	requireValue(t, c.Peer(B), "123", "42")
	requireValue(t, c.Peer(A), "123", "42")

	// {error, no_quorum} = update(Key, Value0, random_value) on A
	_, err = c.Peer(A).Update(ctx, "123", []byte("41"), []byte("random_value"))
	qe := requireNoQuorum(t, err)
	require.Zero(t, qe.Votes)
	requireReasons(t, qe,
		map[string]lockeractor.Reason{c.Nodes[A].Addr: lockeractor.ReasonValueDiffers},
		map[string]lockeractor.Reason{c.Nodes[B].Addr: lockeractor.ReasonValueDiffers})

	// timer:sleep(LeaseLength), expire_leases: not_found on all three.
	for i := range c.Nodes {
		err := c.Peer(i).WaitForRelease(ctx, "123")
		if !errors.Is(err, lockeractor.ErrKeyNotLocked) {
			require.NoError(t, err)
		}
		requireAbsent(t, c.Peer(i), "123")
	}
}
