package tests

// The soak run: a bounded run of mixed load on three nodes
// with faults injected throughout, checked like the partition scenario
// (history.check and the protected resource of fault_test.go, and the
// checked keys' histories for linearizability), that also watches
// goroutines and heap for growth.

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"runtime"
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

var (
	soakDuration = flag.Duration("soak.duration", 0, "how long TestSoak runs its load (0: TestSoak does not run)")
	soakSeedFlag = flag.Uint64("soak.seed", 0, "seed of TestSoak (0: -fault.seed, else from the clock)")
)

// Bounds of the soak's resource checks. A few of protoactor's goroutines
// come and go on timers (the dead-letter throttle, futures' timeouts)
// whatever the load did, hence the slack.
const (
	soakGoroutineSlack = 8
	soakHeapSlack      = 16 << 20
	soakBulkKeys       = 100 // keys each node's bulk client holds and renews in one Batch
	soakBulkLease      = time.Second
)

// extend records that g's holder restarted its lease at lease with an
// ExtendLease invoked at invoke, while the lease lasted by its count: it
// now holds until invoke+lease, earlier than before if lease is shorter
// than what was left (masters restart the lease when the commit arrives).
func (h *history) extend(g *grant, invoke time.Time, lease time.Duration) {
	h.mu.Lock()
	g.end = invoke.Add(lease)
	h.mu.Unlock()
}

// soakCounters counts what the soak's fault driver did.
type soakCounters struct {
	partitions, pauses, delays, duplicates int
}

// TestSoak runs -soak.duration (it runs only when given, e.g.
// `-soak.duration=2m`; .ci/run gives 15 s) of mixed load on three nodes over real remote, all
// masters, W = 2: on every node two clients Lock, ExtendLease, Update and
// Release four hot keys with short leases, writing each token to the
// protected resource, and one client holds 100 keys renewed by Batch;
// one checked client per node writes two long-lease keys (checkedClient)
// whose histories are checked for linearizability at the end. Every
// write is recorded (linearize.History).
// One shared Faults partitions a random node off for a moment, pauses a
// node now and then, and changes random delays (reordering) and
// duplicates throughout. At the end the faults are healed, the load
// stops, the write locks must drain, and the history must have no
// violation (history.check, resource refusals of a timely holder, lost
// leases of the checked clients, linearizability of the checked keys).
// Goroutines and heap (after GC) are compared with the cluster still
// running, before the load and after it drained. The seed is logged;
// replay with -soak.seed=N (the run is reproducible in distribution
// only: the clients and peers draw concurrently).
func TestSoak(t *testing.T) {
	if *soakDuration <= 0 {
		t.Skip("the soak runs with -soak.duration=D (see README, Fault injection)")
	}
	seed := *soakSeedFlag
	if seed == 0 {
		seed = faultSeed(t)
	}
	t.Logf("seed %d: go test ./tests/ -run '^TestSoak$' -count=1 -soak.seed=%d", seed, seed)
	f := lockertest.NewFaults(seed)
	c := startFaultCluster(t, 3, shared(f))
	rng := rand.New(rand.NewPCG(seed, 0))

	goroutinesBefore, heapBefore := soakResources()

	keys := []string{"hot0", "hot1", "hot2", "hot3"}
	long := checkedKeys("long", 2)
	rec := newRecorder(long...)
	h := &history{byNode: make([]atomic.Int64, 3)}
	res := newResource()
	clients := newLoadGroup()
	stopped := clients.stopped
	var load checkedLoad
	for node := range 3 {
		for cl := range 2 {
			clients.Add(1)
			go func() {
				defer clients.Done()
				soakHotClient(c.Peer(node), node, cl, rand.New(rand.NewPCG(seed, uint64(node*3+cl+1))), keys, h, res, rec, stopped)
			}()
		}
		clients.Add(1)
		go func() {
			defer clients.Done()
			soakBulkClient(c.Peer(node), node, rand.New(rand.NewPCG(seed, uint64(node*3+3))), h, rec, stopped)
		}()
		load.add(&clients.WaitGroup, fixedRef(c.Peer(node)), node, seed, long, rec, h, res, stopped)
	}
	defer clients.halt() // also when a require fails: no client outlives the test

	// The fault driver. Its waits pace the faults; nothing is decided
	// by them.
	var n soakCounters
	start := time.Now()
	for time.Since(start) < *soakDuration {
		node := rng.IntN(3)
		hold := time.Duration(50+rng.IntN(350)) * time.Millisecond
		switch r := rng.IntN(10); {
		case r < 3:
			var others []int
			for i := range 3 {
				if i != node {
					others = append(others, i)
				}
			}
			f.Partition(c.Addrs(node), c.Addrs(others...))
			n.partitions++
			time.Sleep(hold)
			f.Heal()
		case r < 5:
			hi := time.Duration(rng.IntN(10)) * time.Millisecond
			f.Delay(lockertest.AnyAddress, lockertest.AnyAddress, 0, hi)
			n.delays++
		case r < 6:
			f.Duplicate(lockertest.AnyAddress, lockertest.AnyAddress, []float64{0, 0.02, 0.1}[rng.IntN(3)])
			n.duplicates++
		case r < 7:
			f.Pause(c.Nodes[node].Addr)
			n.pauses++
			time.Sleep(hold)
			f.Resume(c.Nodes[node].Addr)
		default:
			time.Sleep(hold / 2)
		}
	}
	f.Reset()
	clients.halt()
	elapsed := time.Since(start)

	for _, node := range c.Nodes {
		testcluster.Eventually(t, settle, func() bool { return node.Locker.Summary().WriteLocks == 0 },
			"%s: write locks drain after the load", node.Addr)
	}
	// Goroutines settle: timers of the last faults and calls run out.
	var goroutinesAfter int
	var growth error
	testcluster.Eventually(t, settle, func() bool {
		goroutinesAfter = runtime.NumGoroutine()
		growth = fmt.Errorf("goroutines %d before the load, %d after (slack %d)", goroutinesBefore, goroutinesAfter, soakGoroutineSlack)
		return goroutinesAfter <= goroutinesBefore+soakGoroutineSlack
	}, "%v", lastError{&growth})
	_, heapAfter := soakResources()

	checkStart := time.Now()
	checks := checkRun(h, res, &load, rec)
	violations, held, empty, lin := checks.violations, checks.held, checks.empty, checks.lin
	accepted, lateWrites := checks.accepted, checks.late
	checkTime := time.Since(checkStart)
	s := f.Stats()
	mib := func(b uint64) float64 { return float64(b) / (1 << 20) }
	t.Logf("%v of load: %d operations, %d grants (%d held, %d expired on arrival), %d resource writes accepted, %d late; "+
		"%d checked writes on %d keys (%d succeeded), linearizability checked in %v; "+
		"%d partitions, %d pauses, %d delay and %d duplicate changes; faults %+v (total %d); %d violations; "+
		"goroutines %d/%d, heap %.1f/%.1f MiB",
		elapsed.Round(time.Millisecond), rec.hist.Len(), held+empty, held, empty, accepted, lateWrites,
		lin.Operations, lin.Keys, load.succeeded(), checkTime.Round(time.Millisecond),
		n.partitions, n.pauses, n.delays, n.duplicates, s, s.Total(), len(violations),
		goroutinesBefore, goroutinesAfter, mib(heapBefore), mib(heapAfter))
	sum := linearize.RunSummary(lin, rec.hist.Len(), int(s.Total()), len(violations))
	fmt.Printf("soak: %v, goroutines before/after %d/%d, heap before/after %.1f/%.1f MiB\n",
		sum, goroutinesBefore, goroutinesAfter, mib(heapBefore), mib(heapAfter))

	require.Empty(t, violations, "violations:\n%s", strings.Join(violations, "\n"))
	require.NotZero(t, held, "no lock was held: the load made no progress")
	require.NotZero(t, load.succeeded(), "no checked write succeeded: the checked load made no progress")
	require.LessOrEqual(t, heapAfter, 2*heapBefore+soakHeapSlack, "heap grew: %.1f MiB before, %.1f after", mib(heapBefore), mib(heapAfter))
}

// soakResources returns the number of goroutines and the live heap after
// a GC.
func soakResources() (goroutines int, heap uint64) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return runtime.NumGoroutine(), m.HeapAlloc
}

// soakHotClient locks random hot keys with short leases until stopped;
// while it holds one (by its own count) it writes its token to res, then
// extends the lease, updates the value (writing the new token) or does
// nothing, a few times, and releases the key or lets the lease run out.
// A failed ExtendLease or Update ends its hold: it releases with the
// values the key may have.
func soakHotClient(l *lockeractor.Locker, node, cl int, rng *rand.Rand, keys []string, h *history, res *resource, rec *recorder, stopped func() bool) {
	pace := func(max time.Duration) { time.Sleep(time.Duration(rng.Int64N(int64(max)) + 1)) } // pacing only
	id := rec.client()
	for seq := 0; !stopped(); seq++ {
		key := keys[rng.IntN(len(keys))]
		lease := time.Duration(100+rng.IntN(300)) * time.Millisecond
		who := fmt.Sprintf("n%d.c%d.%d", node, cl, seq)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		invoke := time.Now()
		r, err := rec.write(ctx, l, id, lockeractor.Op{Kind: lockeractor.OpLock, Key: key, Value: []byte(who), Lease: lease})
		h.ops.Add(1)
		if err != nil {
			cancel()
			pace(20 * time.Millisecond)
			continue
		}
		g := &grant{key: key, who: who, node: node, token: r.Token, invoke: invoke, ok: time.Now(), end: invoke.Add(lease)}
		h.add(g)
		h.note(g, "locked for %v: %+v", lease, r)
		res.write(key, r.Token, g.end, who)
		values := [][]byte{[]byte(who)} // what the key may hold; the last one if every write succeeded
		holding := true
		for step := rng.IntN(4); holding && step > 0; step-- {
			pace(lease / 3)
			invoke := time.Now()
			if !invoke.Before(g.end) {
				holding = false
				break
			}
			value := values[len(values)-1]
			switch rng.IntN(3) {
			case 0:
				extended := time.Duration(100+rng.IntN(300)) * time.Millisecond
				_, err = rec.write(ctx, l, id, lockeractor.Op{Kind: lockeractor.OpExtendLease, Key: key, Value: value, Lease: extended})
				h.note(g, "extend %v invoked %v: %v", extended, invoke.Format(time.StampMicro), err)
				if err == nil {
					h.extend(g, invoke, extended)
				}
			case 1:
				next := []byte(fmt.Sprintf("%s.u%d", who, step))
				r, err = rec.write(ctx, l, id, lockeractor.Op{Kind: lockeractor.OpUpdate, Key: key, Value: value, NewValue: next})
				h.note(g, "update invoked %v: %v", invoke.Format(time.StampMicro), err)
				values = append(values, next)
				if err == nil {
					values = values[len(values)-1:]
					res.write(key, r.Token, g.end, who)
				}
			default:
				continue
			}
			h.ops.Add(1)
			holding = err == nil
		}
		if holding && rng.IntN(5) == 0 { // let the lease run out
			h.note(g, "lets the lease run out")
			cancel()
			continue
		}
		h.setEnd(g, time.Now())
		for _, v := range values {
			_, err := rec.write(ctx, l, id, lockeractor.Op{Kind: lockeractor.OpRelease, Key: key, Value: v})
			h.note(g, "release %q: %v", v, err)
			if err == nil {
				h.ops.Add(1)
				break
			}
			h.ops.Add(1)
		}
		cancel()
	}
}

// soakBulkClient holds soakBulkKeys keys of its own and renews them all
// with one Batch until stopped: keys it holds are extended, keys it lost
// (a failed renewal, whatever its outcome) are locked again under a new
// value.
func soakBulkClient(l *lockeractor.Locker, node int, rng *rand.Rand, h *history, rec *recorder, stopped func() bool) {
	id := rec.client()
	type bulk struct {
		key, value string
		g          *grant // nil: not held
	}
	ks := make([]bulk, soakBulkKeys)
	for i := range ks {
		ks[i].key = fmt.Sprintf("bulk.n%d.%03d", node, i)
	}
	for round := 0; !stopped(); round++ {
		invoke := time.Now()
		ops := make([]lockeractor.Op, len(ks))
		for i := range ks {
			k := &ks[i]
			if k.g != nil && !invoke.Before(k.g.end) {
				k.g = nil // ran out by its count
			}
			if k.g != nil {
				ops[i] = lockeractor.Op{Kind: lockeractor.OpExtendLease, Key: k.key, Value: []byte(k.value), Lease: soakBulkLease}
				continue
			}
			k.value = fmt.Sprintf("n%d.bulk.%d", node, round)
			ops[i] = lockeractor.Op{Kind: lockeractor.OpLock, Key: k.key, Value: []byte(k.value), Lease: soakBulkLease}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		rs, err := rec.batch(ctx, l, id, ops)
		cancel()
		ok := time.Now()
		h.ops.Add(int64(len(ops)))
		for i := range ks {
			k := &ks[i]
			switch {
			case err != nil || rs[i].Err != nil:
				if k.g != nil {
					h.setEnd(k.g, ok)
					k.g = nil
				}
			case ops[i].Kind == lockeractor.OpLock:
				k.g = &grant{key: k.key, who: k.value, node: node, token: rs[i].Result.Token, invoke: invoke, ok: ok, end: invoke.Add(soakBulkLease)}
				h.add(k.g)
			default:
				h.extend(k.g, invoke, soakBulkLease)
			}
		}
		time.Sleep(time.Duration(100+rng.IntN(200)) * time.Millisecond) // pacing only
	}
}
