package tests

// Seeded fault scenarios over real remote, each with its
// writes recorded and checked for linearizability: a master that crashes
// mid-commit and restarts with empty memory, and a replica that misses a
// burst of writes and catches up. (Membership changes during traffic are
// TestFaultPartitionScenario's reconfigurations.)

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/protoactor-locker/locker/internal/linearize"
	"github.com/protoactor-locker/locker/internal/testcluster"
	"github.com/protoactor-locker/locker/lockeractor"
	"github.com/protoactor-locker/locker/lockeractor/lockertest"
)

// TestFaultMasterRestartMidCommit crashes a master mid-commit and
// restarts it with empty memory on the same address, under checked
// traffic: three masters, W = 2, two checked clients per node on two
// long-lease keys throughout.
//
//  1. C coordinates a Batch that locks 20 keys while its messages to the
//     others are delayed by 300-500 ms: once C has committed to itself
//     (it is in the commit phase), its commits to A and B are in flight.
//  2. C is paused (a GC pause: its inbound messages are held) and A
//     locks five witness keys: acknowledged by A and B, in flight to C.
//  3. C's Locker stops, dropping what it held and its delayed commits,
//     and a new one starts on the same address with empty memory.
//
// Checked: the Batch's keys end as the model allows (its outcome is
// unknown: C stopped); no witness lease acknowledged before the crash is
// lost: the restarted C learns the configuration from its peers, copies
// their leases before it votes, and then shows every witness, another
// client's Lock of a witness coordinated by C is refused, and the
// holder's Update and Release succeed; the checked clients (C's own
// included, which waits for the configuration after the restart) keep
// making progress; all histories are linearizable, holders never
// overlap and tokens grow (history.check, resource).
func TestFaultMasterRestartMidCommit(t *testing.T) { seeded(t, testFaultMasterRestartMidCommit) }

func testFaultMasterRestartMidCommit(t *testing.T, seed uint64) {
	f := lockertest.NewFaults(seed)
	c := startFaultCluster(t, 3, shared(f))
	ctx := testCtx(t)
	long := checkedKeys("long", 2)
	witnesses := checkedKeys("acked", 5)
	mids := checkedKeys("mid", 20)
	rec := newRecorder(append(append(append([]string{}, long...), witnesses...), mids...)...)
	h := &history{byNode: make([]atomic.Int64, 3)}
	res := newResource()
	refs := []*lockerRef{fixedRef(c.Peer(A)), fixedRef(c.Peer(B)), fixedRef(c.Peer(C))}

	clients := newLoadGroup()
	stopped := clients.stopped
	var load checkedLoad
	for node := range 3 {
		for range 2 {
			load.add(&clients.WaitGroup, refs[node], node, seed, long, rec, h, res, stopped)
		}
	}
	defer clients.halt() // also when a require fails: no client outlives the test
	testcluster.Eventually(t, 10*time.Second, func() bool { return load.succeeded() >= 20 }, "checked writes succeed")

	// 1. C in the commit phase of a Batch, its commits in flight.
	// A fixed delay, below the request timeout: C gets its promises (a
	// delayed prepare, an undelayed answer) whatever the draw.
	f.Delay(c.Nodes[C].Addr, lockertest.AnyAddress, 300*time.Millisecond, 300*time.Millisecond)
	ops := make([]lockeractor.Op, len(mids))
	for i, k := range mids {
		ops[i] = lockeractor.Op{Kind: lockeractor.OpLock, Key: k, Value: []byte("mid.c"), Lease: checkedLease}
	}
	type outcome struct {
		rs  []lockeractor.OpResult
		err error
	}
	midDone := make(chan outcome, 1)
	midClient, oldC := rec.client(), c.Peer(C)
	go func() {
		rs, err := rec.batch(ctx, oldC, midClient, ops)
		midDone <- outcome{rs, err}
	}()
	testcluster.Eventually(t, settle, func() bool {
		_, err := c.Peer(C).DirtyRead(mids[0])
		return err == nil
	}, "C commits the batch to itself")

	// 2. C paused; witnesses acknowledged by A and B.
	stashed := f.Stats().Stashed
	f.Pause(c.Nodes[C].Addr)
	witnessClient := rec.client()
	values := map[string]string{}
	for _, k := range witnesses {
		values[k] = "w." + k
		_, err := rec.write(ctx, c.Peer(A), witnessClient, lockeractor.Op{Kind: lockeractor.OpLock, Key: k, Value: []byte(values[k]), Lease: checkedLease})
		require.NoError(t, err, "witness %s acknowledged by A and B", k)
	}
	testcluster.Eventually(t, settle, func() bool { return f.Stats().Stashed > stashed }, "C holds the witnesses' messages")

	// 3. C crashes and restarts with empty memory.
	refs[C].set(nil)
	restartLocker(t, c, C, faultOptions(f)...)
	f.Delay(c.Nodes[C].Addr, lockertest.AnyAddress, 0, 0)
	f.Resume(c.Nodes[C].Addr)
	o := <-midDone
	midErr := o.err
	if midErr == nil {
		midErr = o.rs[0].Err
	}
	require.Equal(t, linearize.Unknown, linearize.OutcomeOf(midErr), "C's batch ends with its stop: %v", midErr)
	// C learns the configuration and copies A's and B's leases before it
	// coordinates: until then a write through it fails with ErrNotReady,
	// which would not show that the leases it copied refuse the thief.
	require.NoError(t, c.Peer(C).Ready(ctx), "the restarted C learns the configuration and catches up")
	refs[C].set(c.Peer(C))

	// No acknowledged lease is lost.
	thief := rec.client()
	for _, k := range witnesses {
		eventuallyValue(t, c.Peer(C), k, values[k]) // copied before C votes
		_, err := rec.write(ctx, c.Peer(C), thief, lockeractor.Op{Kind: lockeractor.OpLock, Key: k, Value: []byte("thief"), Lease: checkedLease})
		qe := requireNoQuorum(t, err)
		require.False(t, qe.Committing, "%v", qe)
		_, err = rec.write(ctx, c.Peer(B), witnessClient, lockeractor.Op{Kind: lockeractor.OpUpdate, Key: k, Value: []byte(values[k]), NewValue: []byte(values[k] + ".2")})
		require.NoError(t, err, "the holder of %s updates it after the restart", k)
		_, err = rec.write(ctx, c.Peer(C), witnessClient, lockeractor.Op{Kind: lockeractor.OpRelease, Key: k, Value: []byte(values[k] + ".2")})
		require.NoError(t, err, "the holder of %s releases it through the restarted C", k)
	}

	// The batch's keys: whatever the crash left, the model must allow
	// what follows (a release of C's value, then another client's Lock).
	var midHeld int
	after := rec.client()
	for _, k := range mids {
		if _, err := c.Peer(A).DirtyRead(k); err == nil {
			midHeld++
		}
		_, _ = rec.write(ctx, c.Peer(B), midClient, lockeractor.Op{Kind: lockeractor.OpRelease, Key: k, Value: []byte("mid.c")})
		_, _ = rec.write(ctx, c.Peer(A), after, lockeractor.Op{Kind: lockeractor.OpLock, Key: k, Value: []byte("after"), Lease: checkedLease})
	}

	// The checked clients, C's own included, carry on.
	base := load.succeeded()
	testcluster.Eventually(t, 10*time.Second, func() bool { return load.succeeded() >= base+20 }, "checked writes succeed after the restart")
	var cOK int64
	for _, cl := range load.clients {
		if cl.node == C {
			cOK += cl.ok.Load()
		}
	}
	clients.halt()

	checks := checkRun(h, res, &load, rec)
	violations, held, lin := checks.violations, checks.held, checks.lin
	s := f.Stats()
	t.Logf("batch of C: %v (A held %d of its %d keys after the crash); %d operations, %d checked writes on %d keys, %d grants, %d by C's clients; faults %+v; %d violations",
		midErr, midHeld, len(mids), rec.hist.Len(), lin.Operations, lin.Keys, held, cOK, s, len(violations))
	printSummary(t, seed, linearize.RunSummary(lin, rec.hist.Len(), int(s.Total()), len(violations)))
	require.Empty(t, violations, "violations:\n%s", strings.Join(violations, "\n"))
	require.NotZero(t, cOK, "C's checked clients made no progress")
}

// TestFaultReplicaCatchUp shows what a replica's DirtyRead guarantees:
// it may be stale (documented: a replica lags its masters), and it
// catches up once it processes the masters' pushes again. Three masters
// (W = 2) and a replica D; every write is on a checked key (long
// leases). D shows key "stale" = v0; then D is paused (a GC pause: what
// it receives is held, in order) while the masters write a burst (Lock,
// Update, Release on 30 keys, and "stale" -> v1) and push it: D still
// reads v0 and none of the burst, a stale read as documented, not a
// violation. After Resume D eventually reads exactly what the masters
// hold, every key; a second burst with D paused again, likewise. The
// writes' history is linearizable.
func TestFaultReplicaCatchUp(t *testing.T) {
	seeded(t, func(t *testing.T, seed uint64) { replicaCatchUp(t, seed, false) })
}

// TestFaultReplicaCatchUpAfterPartition is TestFaultReplicaCatchUp with D
// partitioned off instead of paused: the pushes it misses are lost, not
// held. D sees the gap in the masters' push sequence (from a later push or
// their gossip) and asks them for snapshots, so after healing it again
// reads exactly what the masters hold, released keys gone included.
func TestFaultReplicaCatchUpAfterPartition(t *testing.T) {
	seeded(t, func(t *testing.T, seed uint64) { replicaCatchUp(t, seed, true) })
}

// replicaCatchUp runs TestFaultReplicaCatchUp, cutting D off by a
// partition instead of a pause if partition.
func replicaCatchUp(t *testing.T, seed uint64, partition bool) {
	const D = 3
	f := lockertest.NewFaults(seed)
	c := startFaultCluster(t, 4, shared(f))
	c.SetNodes(t, []int{A, B, C}, []int{D})
	ctx := testCtx(t)
	masters := []int{A, B, C}
	keys := append(checkedKeys("burst", 30), "stale")
	rec := newRecorder(keys...)
	wrote := map[string]string{} // the masters' value of each key ("" if absent), as the writes' outcomes say

	write := func(by int, op lockeractor.Op) {
		t.Helper()
		_, err := rec.write(ctx, c.Peer(by), by+1, op)
		require.NoError(t, err, "%v %s on %d", op.Kind, op.Key, by)
		switch op.Kind {
		case lockeractor.OpLock:
			wrote[op.Key] = string(op.Value)
		case lockeractor.OpUpdate:
			wrote[op.Key] = string(op.NewValue)
		case lockeractor.OpRelease:
			wrote[op.Key] = ""
		}
	}
	// burst writes every burst key from the masters in turn: a Lock if
	// absent, else an Update, and a Release of every third key; and
	// "stale" -> its next value.
	burst := func(round int) {
		t.Helper()
		for i, k := range keys[:len(keys)-1] {
			by := masters[i%len(masters)]
			v := fmt.Sprintf("r%d.%s", round, k)
			if old := wrote[k]; old == "" {
				write(by, lockeractor.Op{Kind: lockeractor.OpLock, Key: k, Value: []byte(v), Lease: checkedLease})
			} else {
				write(by, lockeractor.Op{Kind: lockeractor.OpUpdate, Key: k, Value: []byte(old), NewValue: []byte(v)})
			}
			if i%3 == round%3 {
				write(by, lockeractor.Op{Kind: lockeractor.OpRelease, Key: k, Value: []byte(wrote[k])})
			}
		}
		write(B, lockeractor.Op{Kind: lockeractor.OpUpdate, Key: "stale", Value: []byte(wrote["stale"]), NewValue: []byte(fmt.Sprintf("v%d", round))})
	}
	// caughtUp waits until every peer reads what the writes left.
	caughtUp := func(what string) {
		t.Helper()
		eventually(t, func() error {
			for _, i := range append(masters, D) {
				for _, k := range keys {
					v, err := c.Peer(i).DirtyRead(k)
					if got := string(v); (err != nil) != (wrote[k] == "") || got != wrote[k] {
						return fmt.Errorf("%s: node %d reads %q = %q (%v), the writes left %q", what, i, k, got, err, wrote[k])
					}
				}
			}
			return nil
		})
	}
	cut, heal := func() { f.Pause(c.Nodes[D].Addr) }, func() { f.Resume(c.Nodes[D].Addr) }
	missed := func() uint64 { return f.Stats().Stashed }
	if partition {
		cut, heal = func() { f.Partition(c.Addrs(D), c.Addrs(masters...)) }, f.Heal
		missed = func() uint64 { return f.Stats().Partitioned }
	}

	write(A, lockeractor.Op{Kind: lockeractor.OpLock, Key: "stale", Value: []byte("v0"), Lease: checkedLease})
	caughtUp("before the burst")
	for round := 1; round <= 2; round++ {
		before := map[string]string{}
		for _, k := range keys {
			before[k] = wrote[k]
		}
		cut()
		base := missed()
		burst(round)
		testcluster.Eventually(t, settle, func() bool { return missed() >= base+3 }, "D misses the masters' pushes")
		for _, k := range keys { // D hears nothing: it reads what it read before
			v, err := c.Peer(D).DirtyRead(k)
			require.Equal(t, before[k] == "", err != nil, "cut-off D reads %q: %q, %v", k, v, err)
			require.Equal(t, before[k], string(v), "cut-off D reads %q", k)
		}
		t.Logf("round %d: cut-off replica D reads stale = %q while the masters hold %q (a documented stale read)", round, before["stale"], wrote["stale"])
		heal()
		caughtUp(fmt.Sprintf("round %d", round))
	}

	lin := rec.check()
	violations := failures(lin)
	s := f.Stats()
	t.Logf("%d writes on %d keys; faults %+v; %d violations", lin.Operations, lin.Keys, s, len(violations))
	printSummary(t, seed, linearize.RunSummary(lin, rec.hist.Len(), int(s.Total()), len(violations)))
	require.Empty(t, violations, "violations:\n%s", strings.Join(violations, "\n"))
}
