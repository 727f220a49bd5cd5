package multiproc

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/protoactor-locker/locker/internal/linearize"
	"github.com/protoactor-locker/locker/internal/nodeproc"
	"github.com/protoactor-locker/locker/internal/testcluster"
	"github.com/protoactor-locker/locker/messages"
)

const (
	lock    = messages.WriteKind_WRITE_KIND_LOCK
	update  = messages.WriteKind_WRITE_KIND_UPDATE
	extend  = messages.WriteKind_WRITE_KIND_EXTEND
	release = messages.WriteKind_WRITE_KIND_RELEASE
)

// The outcomes of the nodes' replies.
var (
	ok     = linearize.OK.String()
	failed = linearize.Failed.String()
)

const (
	longMs  = 3600_000
	waitMs  = 30_000 // WaitFor's bound
	clientB = 500    // client ids of this test start here
)

// TestMultiProcessPaths runs Locker's multi-node paths with one peer per
// OS process, so that under -race the race detector covers them (in one
// process, protoactor-go's own races make those tests skip): a replica
// coordinating a write, replication to a replica woken in WaitFor,
// Batch, and Reconfigure moving the masters under a held lease. Three
// masters (W = 2) and a replica; every answer is asserted, and the
// recorded history is checked for linearizability.
func TestMultiProcessPaths(t *testing.T) {
	h := newHarness(t, "m0", "m1", "m2", "r3")
	m0, m1, m2, r3 := h.slots[0], h.slots[1], h.slots[2], h.slots[3]
	h.startAll()
	h.connect(h.slots...)
	masters := addrs(m0, m1, m2)
	h.do(m0, nodeproc.Command{Op: nodeproc.OpSetNodes, Addrs: addrs(h.slots...), Masters: masters, Replicas: addrs(r3), W: 2})
	epoch := h.config(m0).Epoch
	require.NotZero(t, epoch)
	h.awaitConfig(epoch, masters, h.slots...)
	cfg := h.config(r3)
	require.Equal(t, addrs(r3), cfg.Replicas)
	require.Equal(t, 2, cfg.W)

	client := clientB
	write := func(s *slot, kind messages.WriteKind, key, value, newValue string) nodeproc.Event {
		t.Helper()
		client++
		var lease int64
		if kind == lock || kind == extend {
			lease = longMs
		}
		return h.write(s, nodeproc.Write{Client: client, Checked: true, Kind: kind, Key: key, Value: value, NewValue: newValue, LeaseMs: lease})
	}

	// A replica coordinates a write: the masters' quorum decides.
	held := write(r3, lock, "b/held", "r3", "")
	require.Equal(t, ok, held.Outcome, "Lock coordinated by the replica: %s", held.Err)
	require.NotZero(t, held.Token)
	again := write(m1, lock, "b/held", "m1", "")
	require.Equal(t, failed, again.Outcome, "a second holder: %+v", again)
	require.Contains(t, again.Err, "already locked")

	// Replication to the replica: a waiter blocked on the replica wakes
	// when a master's write reaches it.
	waited := make(chan nodeproc.Event, 1)
	go func() {
		ev, err := r3.p.call(nodeproc.Command{Op: nodeproc.OpWaitFor, Key: "b/later", TimeoutMs: waitMs})
		if err != nil {
			ev.Err = err.Error()
		}
		waited <- ev
	}()
	testcluster.Eventually(t, settle, func() bool {
		return h.do(r3, nodeproc.Command{Op: nodeproc.OpSummary}).Waiters == 1
	}, "the WaitFor on %s is blocked", r3.p.name)
	later := write(m2, lock, "b/later", "v-later", "")
	require.Equal(t, ok, later.Outcome, "%s", later.Err)
	ev := <-waited
	require.Empty(t, ev.Err, "WaitFor on the replica")
	require.Equal(t, "v-later", ev.Value)

	// Batch: many keys in one quorum round, each op answered on its own.
	keys := []string{"b/1", "b/2", "b/3", "b/4"}
	var locks []nodeproc.Write
	for _, k := range keys {
		client++
		locks = append(locks, nodeproc.Write{Client: client, Checked: true, Kind: lock, Key: k, Value: "x", LeaseMs: longMs})
	}
	first := h.do(m1, nodeproc.Command{Op: nodeproc.OpBatch, Batch: locks})
	require.Len(t, first.Results, len(keys))
	for i, r := range first.Results {
		require.Equal(t, ok, r.Outcome, "batch lock of %s: %s", keys[i], r.Err)
		require.NotZero(t, r.Token)
	}
	client++
	mixed := []nodeproc.Write{
		{Client: client, Checked: true, Kind: update, Key: "b/1", Value: "x", NewValue: "y"},
		{Client: client + 1, Checked: true, Kind: extend, Key: "b/2", Value: "x", LeaseMs: longMs},
		{Client: client + 2, Checked: true, Kind: release, Key: "b/3", Value: "x"},
		{Client: client + 3, Checked: true, Kind: update, Key: "b/4", Value: "wrong", NewValue: "z"},
	}
	client += 3
	second := h.do(m2, nodeproc.Command{Op: nodeproc.OpBatch, Batch: mixed})
	require.Len(t, second.Results, len(mixed))
	require.Equal(t, ok, second.Results[0].Outcome, "update: %s", second.Results[0].Err)
	require.Greater(t, second.Results[0].Token, first.Results[0].Token, "Update's token is fresh")
	require.Equal(t, ok, second.Results[1].Outcome, "extend: %s", second.Results[1].Err)
	require.Equal(t, first.Results[1].Token, second.Results[1].Token, "ExtendLease carries the holder's token")
	require.Equal(t, ok, second.Results[2].Outcome, "release: %s", second.Results[2].Err)
	require.Equal(t, failed, second.Results[3].Outcome, "an update with the wrong value")
	require.Contains(t, second.Results[3].Err, "value differs")
	testcluster.Eventually(t, settle, func() bool {
		ev, err := r3.p.call(nodeproc.Command{Op: nodeproc.OpRead, Key: "b/1"})
		return err == nil && ev.Err == "" && ev.Value == "y"
	}, "the replica reads the batch's update")

	// Reconfigure: the replica becomes a master and m0 a replica, under
	// the held lease of b/held.
	newMasters := addrs(m1, m2, r3)
	h.do(m0, nodeproc.Command{Op: nodeproc.OpReconfigure, Masters: newMasters, Replicas: addrs(m0)})
	after := h.config(m0)
	require.Greater(t, after.Epoch, epoch)
	h.awaitConfig(after.Epoch, newMasters, h.slots...)
	cfg = h.config(r3)
	require.Equal(t, addrs(m0), cfg.Replicas)
	require.Equal(t, 2, cfg.W)
	// The promoted replica may have to copy the masters' leases first
	// (it adopted the new configuration before the change's copy reached
	// it): wait until it coordinates with every master's vote.
	h.awaitVotes(r3, len(newMasters))
	stolen := write(m0, lock, "b/held", "m0", "")
	require.Equal(t, failed, stolen.Outcome, "the lease survives the change of masters: %+v", stolen)
	upd := write(r3, update, "b/held", "r3", "r3b")
	require.Equal(t, ok, upd.Outcome, "the holder updates under the new masters: %s", upd.Err)
	require.Greater(t, upd.Token, held.Token)
	rel := write(m0, release, "b/held", "r3b", "")
	require.Equal(t, ok, rel.Outcome, "a replica coordinates the release: %s", rel.Err)
	retake := write(m0, lock, "b/held", "m0", "")
	require.Equal(t, ok, retake.Outcome, "%s", retake.Err)
	require.Greater(t, retake.Token, upd.Token)

	h.stopAll()
	h.checkStderr()
	v := h.requireLinearizable()
	require.Zero(t, v.unknown, "every write here answered")
	t.Logf("multiproc paths: %d processes, %d operations, race detector %v, %d violations", len(h.procs), v.ops, testcluster.RaceEnabled, len(v.result.Violations))
}
