package multiproc

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/protoactor-locker/locker/internal/linearize"
	"github.com/protoactor-locker/locker/internal/nodeproc"
	"github.com/protoactor-locker/locker/internal/testcluster"
	"github.com/protoactor-locker/locker/messages"
)

// The rolling kill test's shape: how often every master is killed, the
// short leases of its mixed keys and the long ones beside them.
const (
	rollingRounds       = 2
	rollingShortLeaseMs = 100
	rollingMixedLeaseMs = 2000
)

// TestMultiProcessRollingKill9 kills every master in turn with SIGKILL,
// rollingRounds times over, each in the middle of its clients' writes,
// and restarts it at its address with empty memory, under contended
// load. Three masters (W = 2), each in its own OS process; one of them
// (drawn from the seed) runs its Locker clock 40-90 ms ahead of the
// others' (nodeproc.EnvClockAhead): its fencing tokens are the larger
// ones. Every process runs two clients of Lock, Update, ExtendLease and
// Release on three hot keys (checked: hour-long leases) and two mixed
// keys: short leases of 100 ms, sometimes left to expire, and one Lock
// in three with a lease of 2 s (see nodeproc.Load). A restarted master
// catches up before it votes again, which the test waits for before the
// next kill; what the killed clients may have left held on hot keys is
// released by a survivor.
//
// Checked, over the merged history of every process: linearizability of
// the hot keys (porcupine: no violation, nothing inconclusive); holders
// of one key, hot or mixed, never overlap and their tokens grow in
// holding order (holderOverlaps); a fresh Lock succeeds at the end; clean
// exits and stderr. It prints the summary line "multiproc: ...".
func TestMultiProcessRollingKill9(t *testing.T) {
	s := seed(t)
	rng := rand.New(rand.NewPCG(s, 0x726f6c6c39))
	h := newHarness(t, "m0", "m1", "m2")
	fast := rng.IntN(len(h.slots))
	ahead := time.Duration(40+rng.IntN(51)) * time.Millisecond
	h.slots[fast].env = []string{nodeproc.EnvClockAhead + "=" + ahead.String()}
	h.startAll()
	h.connect(h.slots...)
	masters := addrs(h.slots...)
	h.do(h.slots[0], nodeproc.Command{Op: nodeproc.OpSetNodes, Addrs: masters, Masters: masters, W: 2})
	epoch := h.config(h.slots[0]).Epoch
	h.awaitConfig(epoch, masters, h.slots...)
	t.Logf("seed %d: %s runs %v ahead", s, h.slots[fast].p.name, ahead)
	load := func(i int, sl *slot) {
		h.do(sl, nodeproc.Command{Op: nodeproc.OpLoad, Load: &nodeproc.Load{
			Clients: 2, ClientBase: clientID(i, sl.inc, 0), Seed: rng.Uint64(),
			Hot: hotKeys, Short: shortKeys, HotLeaseMs: hotLeaseMs, ShortLeaseMs: rollingShortLeaseMs, MixedLeaseMs: rollingMixedLeaseMs,
		}})
	}
	for i, sl := range h.slots {
		load(i, sl)
	}

	recovery := recoveryBase
	catchingUp := 0
	for round := range rollingRounds {
		for vi, v := range h.slots {
			h.awaitReturns(h.returns.Load(), phase(rng)/2)
			dead := h.killMidWrite(v)
			h.restart(v, epoch, masters)
			catchingUp += h.awaitVotes(v, len(masters))
			t.Logf("round %d: %s killed and restarted as %s, votes again", round, dead.name, v.p.name)
			h.releaseLeft(dead, h.slots[(vi+1)%len(h.slots)], &recovery)
			load(vi, v)
		}
	}
	h.awaitReturns(h.returns.Load(), phase(rng)/2)
	h.each(h.slots, func(s *slot) error {
		_, err := callOK(s, nodeproc.Command{Op: nodeproc.OpStopLoad})
		return err
	})
	h.awaitFreshLock(h.slots[rng.IntN(len(h.slots))], shortKeys[0], rollingShortLeaseMs)

	h.stopAll()
	h.checkStderr()
	vd := h.requireLinearizable()
	all := h.allHistory()
	overlaps := holderOverlaps(all)
	for _, o := range overlaps {
		t.Error(o)
	}
	sum := linearize.RunSummary(vd.result, vd.ops, h.kills, len(vd.result.Violations)+len(overlaps))
	fmt.Printf("multiproc: %v (rolling: %d processes, %d kills, %s ahead by %v, %d unknown, %d checked, %d ok, %d left in flight by kills, %d holds checked for overlap, %d inconclusive, %d refusals and %d probes saw a restarted master catching up; seed %d)\n",
		sum, len(h.procs), h.kills, h.slots[fast].name, ahead, vd.unknown, vd.checked, vd.ok, vd.open, len(holds(all)), len(vd.result.Inconclusive), vd.catchingUp, catchingUp, s)
}

// hold is what a successful Lock of the merged history held: from its
// answer (from) until its lease ended, counted from its call, or until a
// Release of its value, or of a value an Update of it gave the key, was
// called, by any client (the harness releases what killed clients left).
type hold struct {
	key, value string
	proc       string
	token      uint64
	from, to   int64 // machine-wide monotonic nanoseconds
}

// holds returns the holds of recs, the writes of every process. Their
// times are comparable across processes: the nodes read CLOCK_MONOTONIC,
// one clock for the whole machine on Linux (and the wall clock where
// there is none, see nodeproc), whatever a node's Locker clock says (an
// offset Locker clock moves its tokens, not these times). A lease is
// counted from the Lock's call, before any master started counting it,
// so a hold never ends later than the masters' lease does.
func holds(recs []*rec) []hold {
	sorted := slices.Clone(recs)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].inv.T < sorted[j].inv.T })
	var out []hold
	for i, r := range sorted {
		w := r.inv.Write
		if w == nil || w.Kind != messages.WriteKind_WRITE_KIND_LOCK || r.ret == nil || r.ret.Outcome != linearize.OK.String() {
			continue
		}
		hd := hold{key: w.Key, value: w.Value, proc: r.proc, token: r.ret.Token, from: r.ret.T, to: r.inv.T + w.LeaseMs*int64(time.Millisecond)}
		values := map[string]bool{w.Value: true}
		for _, later := range sorted[i+1:] {
			lw := later.inv.Write
			if lw == nil || lw.Key != w.Key || !values[lw.Value] || later.inv.T >= hd.to {
				continue
			}
			switch lw.Kind {
			case messages.WriteKind_WRITE_KIND_UPDATE:
				if later.ret == nil || later.ret.Outcome != linearize.Failed.String() {
					values[lw.NewValue] = true
				}
			case messages.WriteKind_WRITE_KIND_RELEASE:
				hd.to = later.inv.T
			}
		}
		if hd.from < hd.to {
			out = append(out, hd)
		}
	}
	return out
}

// holderOverlaps returns the violations of mutual exclusion and fencing
// in recs: two holds of one key that overlap, and tokens of one key that
// do not grow in the order of the holds' starts.
func holderOverlaps(recs []*rec) []string {
	byKey := map[string][]hold{}
	for _, hd := range holds(recs) {
		byKey[hd.key] = append(byKey[hd.key], hd)
	}
	var out []string
	for key, hs := range byKey {
		sort.Slice(hs, func(i, j int) bool { return hs[i].from < hs[j].from })
		var prev *hold // the earlier hold that ends last
		for i := range hs {
			hd := &hs[i]
			if prev != nil && hd.from < prev.to {
				out = append(out, fmt.Sprintf("%s: %q (%s, token %d) held from %d while %q (%s, token %d) held until %d",
					key, hd.value, hd.proc, hd.token, hd.from, prev.value, prev.proc, prev.token, prev.to))
			}
			if i > 0 && hd.token <= hs[i-1].token {
				out = append(out, fmt.Sprintf("%s: token %d of %q (%s) not above %d of the earlier holder %q (%s)",
					key, hd.token, hd.value, hd.proc, hs[i-1].token, hs[i-1].value, hs[i-1].proc))
			}
			if prev == nil || hd.to > prev.to {
				prev = hd
			}
		}
	}
	sort.Strings(out)
	return out
}

// killMidWrite kills s's process with SIGKILL while it has a write in
// flight (as the harness sees it: the answer may be in the pipe already)
// and returns it.
func (h *harness) killMidWrite(s *slot) *proc {
	h.t.Helper()
	testcluster.Eventually(h.t, settle, func() bool { return s.p.open() > 0 }, "%s has a write in flight", s.p.name)
	dead := s.p
	dead.kill()
	h.kills++
	h.t.Logf("killed %s (%d writes in flight)", dead.name, dead.open())
	return dead
}

// restart starts a fresh process at s and waits until it is ready,
// connected, and at epoch with masters (learnt from the others' gossip).
func (h *harness) restart(s *slot, epoch uint64, masters []string) {
	h.t.Helper()
	h.start(s)
	h.awaitReady(s)
	h.connect(h.slots...)
	h.awaitConfig(epoch, masters, s)
}

// awaitVotes waits (bounded) until the restarted master s votes again: it
// caught up, so a Lock it coordinates counts all masters' votes. It
// returns how many probes found it catching up.
func (h *harness) awaitVotes(s *slot, masters int) (catchingUp int) {
	h.t.Helper()
	testcluster.Eventually(h.t, settle, func() bool {
		ev, err := s.p.call(nodeproc.Command{Op: nodeproc.OpProbe})
		if err != nil {
			h.t.Fatal(err)
		}
		if strings.Contains(ev.Err, "catching up") {
			catchingUp++
		}
		return ev.Err == "" && ev.Votes == masters
	}, "%s votes again after its restart", s.p.name)
	return catchingUp
}

// releaseLeft releases, through survivor, every value dead's clients may
// have left held on checked keys (a release that fails changes nothing),
// as clients numbered from *recovery on.
func (h *harness) releaseLeft(dead *proc, survivor *slot, recovery *int) {
	h.t.Helper()
	for key, values := range heldBy(dead.history()) {
		for _, val := range values {
			*recovery++
			h.write(survivor, nodeproc.Write{Client: *recovery, Checked: true, Kind: messages.WriteKind_WRITE_KIND_RELEASE, Key: key, Value: val})
		}
	}
}

// awaitFreshLock waits (bounded) until a fresh Lock of key through by
// succeeds: the cluster healed (liveness). The key should have short
// leases, so that whatever a killed client left there runs out.
func (h *harness) awaitFreshLock(by *slot, key string, leaseMs int64) {
	h.t.Helper()
	tries := 0
	testcluster.Eventually(h.t, settle, func() bool {
		tries++
		w := nodeproc.Write{Client: livenessBase + tries, Kind: messages.WriteKind_WRITE_KIND_LOCK, Key: key, Value: fmt.Sprintf("live-%d", tries), LeaseMs: leaseMs}
		return h.write(by, w).Outcome == linearize.OK.String()
	}, "a fresh Lock of %q on %s succeeds", key, by.p.name)
}

// TestHolderOverlapsFindsInjectedOverlap proves the overlap check of the
// rolling kill test can fail: a Lock answered on one process inside a
// short lease granted on another, or with a smaller token than the
// holder before it, is found; a Lock after the earlier holder's Release
// was called, or after its lease ran out (counted from its call), or
// after a Release of the value its Update gave the key, is not.
func TestHolderOverlapsFindsInjectedOverlap(t *testing.T) {
	const ms = int64(1_000_000)
	base := int64(1_000_000) * ms
	short := func(proc string, client int, value string, call, answer int64, token uint64) *rec {
		return inv(proc, int64(client), base+call*ms, nodeproc.Write{Client: client, Kind: lock, Key: "k", Value: value, LeaseMs: 100}).answered(base+answer*ms, ok, token)
	}
	rel := func(proc string, client int, value string, call int64) *rec {
		return inv(proc, int64(client)+100, base+call*ms, nodeproc.Write{Client: client, Kind: release, Key: "k", Value: value}).answered(base+(call+1)*ms, ok, 0)
	}
	upd := inv("m0#1", 50, base+20*ms, nodeproc.Write{Client: 1, Kind: update, Key: "k", Value: "a", NewValue: "a2"}).answered(base+21*ms, ok, 11)

	for _, tc := range []struct {
		rule string
		recs []*rec
		want int
	}{
		{"a Lock inside another process's lease overlaps", []*rec{short("m0#1", 1, "a", 0, 5, 10), short("m1#1", 2, "b", 50, 60, 20)}, 1},
		{"a Lock after the lease ran out does not", []*rec{short("m0#1", 1, "a", 0, 5, 10), short("m1#1", 2, "b", 101, 110, 20)}, 0},
		{"a Lock after the holder's Release was called does not", []*rec{short("m0#1", 1, "a", 0, 5, 10), rel("m0#1", 1, "a", 40), short("m1#1", 2, "b", 41, 45, 20)}, 0},
		{"a Release of the updated value ends the hold", []*rec{short("m0#1", 1, "a", 0, 5, 10), upd, rel("m2#1", 3, "a2", 40), short("m1#1", 2, "b", 41, 45, 20)}, 0},
		{"a Release of another value does not", []*rec{short("m0#1", 1, "a", 0, 5, 10), rel("m2#1", 3, "x", 40), short("m1#1", 2, "b", 41, 45, 20)}, 1},
		{"a later holder's smaller token is a fencing violation", []*rec{short("m0#1", 1, "a", 0, 5, 30), short("m1#1", 2, "b", 101, 110, 20)}, 1},
		{"a Lock answered after its own lease ran out holds nothing", []*rec{short("m0#1", 1, "a", 0, 5, 10), short("m1#1", 2, "b", 10, 120, 5)}, 0},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			require.Len(t, holderOverlaps(tc.recs), tc.want, "%q", holderOverlaps(tc.recs))
		})
	}
}
