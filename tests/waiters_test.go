package tests

// Waiters: WaitFor is woken on masters and replicas, and no waiter is lost
// to a racing write.

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

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
