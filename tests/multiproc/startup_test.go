package multiproc

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/protoactor-locker/locker/internal/linearize"
	"github.com/protoactor-locker/locker/internal/nodeproc"
	"github.com/protoactor-locker/locker/internal/testcluster"
)

// TestMultiProcessClientsBeforeConfiguration starts three masters, each
// its own OS process, and starts every process's clients the moment it
// runs, before anyone configured the cluster, the way users start
// services: a peer that is not configured must refuse their writes
// (ErrNotReady, a failed write) rather than grant them on its own vote.
// The cluster is then configured under that load (W = 2). A master is
// killed with SIGKILL in the middle of a write and restarted on its
// address with empty memory, its clients again started at once, before
// it heard from the others. At the end the merged history of every
// process must be linearizable, and the holders' intervals on each key,
// merged across processes on the machine's monotonic clock, must never
// overlap, with fencing tokens increasing in holding order.
func TestMultiProcessClientsBeforeConfiguration(t *testing.T) {
	s := seed(t)
	rng := rand.New(rand.NewPCG(s, 0x7265616479))
	h := newHarness(t, "m0", "m1", "m2")
	h.startAll()
	for i, sl := range h.slots {
		h.startLoad(i, sl, rng.Uint64())
	}
	h.connect(h.slots...)
	all := addrs(h.slots...)
	h.do(h.slots[0], nodeproc.Command{Op: nodeproc.OpSetNodes, Addrs: all, Masters: all, W: 2})
	epoch := h.config(h.slots[0]).Epoch
	h.awaitConfig(epoch, all, h.slots...)
	h.awaitReturns(h.returns.Load(), phase(rng))

	vi := rng.IntN(len(h.slots))
	v := h.slots[vi]
	testcluster.Eventually(t, settle, func() bool { return v.p.open() > 0 }, "%s has a write in flight", v.p.name)
	dead := v.p
	dead.kill()
	h.kills++
	h.start(v)
	h.awaitReady(v)
	h.startLoad(vi, v, rng.Uint64()) // at once: it knows nobody yet
	h.connect(h.slots...)
	h.awaitConfig(epoch, all, v)
	h.awaitVotes(v, 3)
	recovery := recoveryBase
	h.releaseLeft(dead, h.slots[(vi+1)%len(h.slots)], &recovery)
	h.awaitReturns(h.returns.Load(), phase(rng))
	h.each(h.slots, func(s *slot) error {
		_, err := callOK(s, nodeproc.Command{Op: nodeproc.OpStopLoad})
		return err
	})
	h.stopAll()
	h.checkStderr()

	vd := h.requireLinearizable()
	hist, err := merge(h.allHistory())
	if err != nil {
		t.Fatal(err)
	}
	hs := linearize.HoldingsOf(hist.Ops())
	for _, err := range linearize.CheckHoldings(hs) {
		t.Error(err)
	}
	notReady := 0
	for _, r := range h.allHistory() {
		if r.ret != nil && strings.Contains(r.ret.Err, "locker: not ready") {
			notReady++
		}
	}
	if notReady == 0 {
		t.Error("no write was refused as not ready: the clients did not start before the configuration")
	}
	t.Logf("%d writes (%d ok, %d unknown), %d refused as not ready, %d holdings checked, %d kills; seed %d",
		vd.ops, vd.ok, vd.unknown, notReady, len(hs), h.kills, s)
}
