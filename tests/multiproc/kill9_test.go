package multiproc

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/protoactor-locker/locker/internal/linearize"
	"github.com/protoactor-locker/locker/internal/nodeproc"
	"github.com/protoactor-locker/locker/internal/testcluster"
	"github.com/protoactor-locker/locker/messages"
)

// The keys of the load. Hot keys are checked: their leases (an hour)
// outlast the run, so the model without time applies. Short keys have
// leases of 300 ms, sometimes left to expire; they are recorded, not
// checked.
var (
	hotKeys   = []string{"hot-0", "hot-1", "hot-2"}
	shortKeys = []string{"short-0", "short-1"}
)

const (
	hotLeaseMs   = 3600_000
	shortLeaseMs = 300
)

// phase is how many writes (over all processes) a phase of the kill test
// lets answer: between lo and hi, drawn from the seed. The race-built
// nodes are several times slower, so their phases are shorter.
func phase(rng *rand.Rand) int64 {
	lo, hi := int64(300), int64(600)
	if testcluster.RaceEnabled {
		lo, hi = 80, 160
	}
	return lo + rng.Int64N(hi-lo+1)
}

// clientID numbers the load clients of the history: unique over slots
// and incarnations, and below firstOwnClient.
func clientID(slot, inc, i int) int { return slot*10_000 + inc*100 + i }

// Client ids of the harness's own writes.
const (
	firstOwnClient = 800_000
	anchorClient   = firstOwnClient // the lease held through the run
	recoveryBase   = 900_000        // releases after a kill
	livenessBase   = 990_000        // the final Locks
)

// startLoad starts two clients on s's current process.
func (h *harness) startLoad(i int, s *slot, seed uint64) {
	h.t.Helper()
	h.do(s, nodeproc.Command{Op: nodeproc.OpLoad, Load: &nodeproc.Load{
		Clients: 2, ClientBase: clientID(i, s.inc, 0), Seed: seed,
		Hot: hotKeys, Short: shortKeys, HotLeaseMs: hotLeaseMs, ShortLeaseMs: shortLeaseMs,
	}})
}

// TestMultiProcessKill9 runs three masters (W = 2) and a replica, each in
// its own OS process, every one running two clients of contended Lock,
// Update, ExtendLease and Release on three hot keys (checked) and two
// short-lease keys (the replica coordinates its writes like the masters).
// In an order drawn from the seed, it kills with SIGKILL two of the
// masters, one after the other, and the replica, each in the middle of
// its clients' writes, and restarts each at its address with empty
// memory: a restarted master learns the configuration from the others'
// gossip and copies their leases before it votes again (it answers
// REASON_CATCHING_UP meanwhile); the harness waits until it votes before
// the next kill (two masters without memory at once is outside what a
// quorum of three tolerates). The values a killed process's clients may
// have left held on hot keys are released by a survivor (recorded like
// every write). At the end a fresh Lock of a hot short-lease key must
// succeed (liveness), every process must exit cleanly with a clean
// stderr (no data race under -race, no panic), and the merged history
// of every process, with the killed processes' writes in flight kept as
// unknown, must be linearizable (porcupine: no violation, nothing
// inconclusive).
func TestMultiProcessKill9(t *testing.T) {
	s := seed(t)
	rng := rand.New(rand.NewPCG(s, 0x6b696c6c39))
	h := newHarness(t, "m0", "m1", "m2", "r3")
	m, r3 := h.slots[:3], h.slots[3]
	h.startAll()
	h.connect(h.slots...)
	masters := addrs(m...)
	h.do(m[0], nodeproc.Command{Op: nodeproc.OpSetNodes, Addrs: addrs(h.slots...), Masters: masters, Replicas: addrs(r3), W: 2})
	epoch := h.config(m[0]).Epoch
	h.awaitConfig(epoch, masters, h.slots...)
	// A lease held through the whole run: every restarted master must
	// have it once it votes again (it copied the others' leases).
	anchor := nodeproc.Write{Client: anchorClient, Checked: true, Kind: messages.WriteKind_WRITE_KIND_LOCK, Key: "anchor", Value: "held", LeaseMs: hotLeaseMs}
	if ev := h.write(m[0], anchor); ev.Outcome != linearize.OK.String() {
		t.Fatalf("locking %q: %+v", anchor.Key, ev)
	}
	for i, sl := range h.slots {
		h.startLoad(i, sl, rng.Uint64())
	}

	// Victims: two masters and the replica, in an order from the seed.
	perm := rng.Perm(3)
	victims := []int{perm[0], perm[1], 3}
	rng.Shuffle(len(victims), func(i, j int) { victims[i], victims[j] = victims[j], victims[i] })
	recovery := recoveryBase // client ids of the releases after a kill
	catchingUp := 0          // probes refused because the restarted master was catching up
	for _, vi := range victims {
		v := h.slots[vi]
		h.awaitReturns(h.returns.Load(), phase(rng))
		// Kill it in the middle of a write when the harness sees one
		// in flight.
		dead := h.killMidWrite(v)
		h.awaitReturns(h.returns.Load(), phase(rng)) // the others go on
		h.restart(v, epoch, masters)
		if vi < 3 {
			// It votes again once it caught up, holding the lease taken
			// before its restart.
			catchingUp += h.awaitVotes(v, len(masters))
			if ev := h.do(v, nodeproc.Command{Op: nodeproc.OpRead, Key: anchor.Key}); ev.Value != anchor.Value {
				t.Fatalf("%s votes again without the lease of %q taken before its restart: read %+v", v.p.name, anchor.Key, ev)
			}
		}
		// Free what the killed clients may hold.
		h.releaseLeft(dead, h.slots[(vi+1)%3], &recovery)
		h.startLoad(vi, v, rng.Uint64())
	}
	h.awaitReturns(h.returns.Load(), phase(rng))
	h.each(h.slots, func(s *slot) error {
		_, err := callOK(s, nodeproc.Command{Op: nodeproc.OpStopLoad})
		return err
	})

	// Liveness: the cluster healed, a fresh Lock of a hot key succeeds
	// (a short-lease key: whatever a killed client left there expires).
	h.awaitFreshLock(h.slots[rng.IntN(len(h.slots))], shortKeys[0], shortLeaseMs)

	for _, sl := range m {
		if ev := h.do(sl, nodeproc.Command{Op: nodeproc.OpRead, Key: anchor.Key}); ev.Value != anchor.Value {
			t.Errorf("%s lost the lease of %q held through the run: read %+v", sl.p.name, anchor.Key, ev)
		}
	}

	h.stopAll()
	h.checkStderr()
	vd := h.requireLinearizable()
	// The summary line CI adds up (faults: the kills).
	sum := linearize.RunSummary(vd.result, vd.ops, h.kills, len(vd.result.Violations))
	fmt.Printf("multiproc: %v (%d processes, %d kills, %d unknown, %d checked, %d ok, %d left in flight by kills, %d inconclusive, %d refusals and %d probes saw a restarted master catching up; seed %d)\n",
		sum, len(h.procs), h.kills, vd.unknown, vd.checked, vd.ok, vd.open, len(vd.result.Inconclusive), vd.catchingUp, catchingUp, s)
}
