package tests

// Tests of the fault-injection layer (lockertest.Faults) and, with it,
// of the guarantees under faults and the partition scenario: five
// members split 2/3 and 3/2 and reconfigured on each side during
// contended traffic.

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/protoactor-locker/locker/internal/linearize"
	"github.com/protoactor-locker/locker/internal/testcluster"
	"github.com/protoactor-locker/locker/lockeractor"
	"github.com/protoactor-locker/locker/lockeractor/lockertest"
)

var faultSeedFlag = flag.Uint64("fault.seed", 0, "seed of the fault tests (0: from the clock)")

// faultSeed returns the seed of a fault test (-fault.seed, else the
// clock) and logs it, with the command that replays it, when the test
// fails.
func faultSeed(t *testing.T) uint64 {
	t.Helper()
	return testcluster.Seed(t, *faultSeedFlag, "./tests/", "fault.seed")
}

// faultOptions are the options of the fault tests' peers: f's faults and
// the suite's timeouts (a silent peer costs half a second).
func faultOptions(f *lockertest.Faults) []lockeractor.Option {
	return []lockeractor.Option{
		lockertest.WithFaults(f),
		lockeractor.WithRequestTimeout(500 * time.Millisecond),
		lockeractor.WithWriteLockTimeout(time.Second),
		lockeractor.WithReplicationInterval(50 * time.Millisecond),
	}
}

// startFaultCluster starts n nodes, node i with opts(i), connects them,
// makes them all masters with W the majority, and stops them when t ends.
func startFaultCluster(t *testing.T, n int, opts func(i int) []lockeractor.Option) *testcluster.Cluster {
	t.Helper()
	testcluster.SkipUnderRace(t)
	c := &testcluster.Cluster{}
	t.Cleanup(func() { stopInTurn(c) })
	for i := 0; i < n; i++ {
		node, err := testcluster.StartNodeWith(remoteOptions(), opts(i)...)
		require.NoError(t, err, "starting node %d", i)
		c.Nodes = append(c.Nodes, node)
	}
	connect(t, c)
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	c.SetNodes(t, all, nil)
	return c
}

func shared(f *lockertest.Faults) func(int) []lockeractor.Option {
	return func(int) []lockeractor.Option { return faultOptions(f) }
}

// TestFaultsPartitionMinorityCannotLockAndHealRestores gives every node
// its own Faults (one per side) with the same partition {A} | {B, C}:
// A cannot lock, B and C can; after Heal A can again, and sees B's lock.
func TestFaultsPartitionMinorityCannotLockAndHealRestores(t *testing.T) {
	seeded(t, testFaultsPartitionMinorityCannotLockAndHealRestores)
}

func testFaultsPartitionMinorityCannotLockAndHealRestores(t *testing.T, seed uint64) {
	fs := []*lockertest.Faults{lockertest.NewFaults(seed), lockertest.NewFaults(seed + 1), lockertest.NewFaults(seed + 2)}
	c := startFaultCluster(t, 3, func(i int) []lockeractor.Option { return faultOptions(fs[i]) })
	ctx := testCtx(t)
	for _, f := range fs {
		f.Partition(c.Addrs(A), c.Addrs(B, C))
	}

	_, err := c.Peer(A).Lock(ctx, "p", []byte("a"), longLease)
	qe := requireNoQuorum(t, err)
	require.False(t, qe.Committing, "%v", qe)
	require.Equal(t, lockeractor.ReasonUnreachable, qe.Peers[c.Nodes[B].Addr], "%v", qe)
	res, err := c.Peer(B).Lock(ctx, "p", []byte("b"), longLease)
	require.NoError(t, err, "the majority side locks")
	requireQuorum(t, res, 2, 2)
	require.Equal(t, 2, res.Votes, "A is cut off")

	for _, f := range fs {
		f.Heal()
	}
	res, err = c.Peer(A).Lock(ctx, "q", []byte("a"), longLease)
	require.NoError(t, err, "healed")
	requireQuorum(t, res, 2, 3)
	_, err = c.Peer(A).Lock(ctx, "p", []byte("a"), longLease)
	qe = requireNoQuorum(t, err)
	require.Equal(t, lockeractor.ReasonAlreadyLocked, qe.Peers[c.Nodes[B].Addr], "B's lock stands: %v", qe)

	var partitioned uint64
	for _, f := range fs {
		partitioned += f.Stats().Partitioned
	}
	require.NotZero(t, partitioned)
	t.Logf("faults: %+v %+v %+v", fs[0].Stats(), fs[1].Stats(), fs[2].Stats())
}

// TestFaultsDropEverythingToOneMaster drops every message to C: W = 2 of
// 3 still succeeds from A, decided when A and B have answered, not at the
// request timeout (the peers share a manual clock that stands still until
// A and B have committed, then moves on by a short grace well below the
// timeout); C's own writes fail, their answers lost, once the clock passes
// the timeout.
func TestFaultsDropEverythingToOneMaster(t *testing.T) {
	seeded(t, testFaultsDropEverythingToOneMaster)
}

func testFaultsDropEverythingToOneMaster(t *testing.T, seed uint64) {
	f := lockertest.NewFaults(seed)
	clk := testcluster.NewManualClock(time.Now())
	c := startFaultCluster(t, 3, func(int) []lockeractor.Option {
		return append(faultOptions(f), lockeractor.WithClock(clk))
	})
	ctx := testCtx(t)
	f.Drop(lockertest.AnyAddress, c.Nodes[C].Addr, 1)

	for i := range 5 {
		key := fmt.Sprintf("k%d", i)
		done := make(chan error, 1)
		var res lockeractor.Result
		go func() {
			var err error
			res, err = c.Peer(A).Lock(ctx, key, []byte("a"), longLease)
			done <- err
		}()
		// Decided and committed on A and B with the clock standing
		// still: the request timeout cannot have passed.
		eventuallyValue(t, c.Peer(B), key, "a")
		// A waits a short grace for C's answer once decided; past it
		// (well before the request timeout) it answers. B's ack may
		// still be on its way to A, which then counts the grace from
		// the clock as it is: the clock moves on in small steps until A
		// answers, and must not have reached the request timeout.
		var advanced time.Duration
		testcluster.Eventually(t, settle, func() bool {
			select {
			case err := <-done:
				require.NoError(t, err)
				return true
			case <-time.After(20 * time.Millisecond): // time for the ack in flight to land
				clk.Advance(10 * time.Millisecond)
				advanced += 10 * time.Millisecond
				return false
			}
		}, "A answers once its grace for C has passed")
		require.Less(t, advanced, 500*time.Millisecond, "A answered only after the request timeout")
		requireResult(t, res, 2, 2, 2)
	}
	// advancing runs call while the clock moves on in steps of a tenth
	// of the request timeout, and returns its error.
	advancing := func(call func() error) error {
		done := make(chan error, 1)
		go func() { done <- call() }()
		var err error
		testcluster.Eventually(t, settle, func() bool {
			select {
			case err = <-done:
				return true
			default:
				clk.Advance(50 * time.Millisecond)
				return false
			}
		}, "the call returns as the clock moves on")
		return err
	}
	err := advancing(func() error {
		_, err := c.Peer(C).Lock(ctx, "c", []byte("c"), longLease)
		return err
	})
	qe := requireNoQuorum(t, err)
	require.Equal(t, lockeractor.ReasonUnreachable, qe.Peers[c.Nodes[A].Addr], "%v", qe)
	require.NotZero(t, f.Stats().Dropped)

	// Without the rule, C locks again once the promises A and B gave
	// its failed Lock (whose answers were lost) have expired.
	f.Drop(lockertest.AnyAddress, c.Nodes[C].Addr, 0)
	eventually(t, func() error {
		return advancing(func() error {
			_, err := c.Peer(C).Lock(ctx, "c", []byte("c"), longLease)
			return err
		})
	})
	t.Logf("faults: %+v", f.Stats())
}

// TestFaultsDelayAndDuplicate delays every message between peers, then
// also reorders and duplicates them.
//
// With delays in [5 ms, 9 ms], the messages of one write between two
// peers, each sent at least a delayed round trip (10 ms) after the one
// before, keep their order: every write succeeds, and takes at least a
// delayed round trip. With delays in [0, 30 ms] and half the messages
// sent twice they do not, which protoactor remote never does (one
// ordered stream per pair of actor systems, no duplicates): a Commit
// that overtakes its Prepare is refused (promise expired), and so is the
// second copy of a Commit, whose refusal may overtake the first copy's
// acknowledgement; the write then fails with ErrNoQuorum, flagged as of
// unknown outcome, though it may be applied. Tokens of the writes that
// succeed still grow.
func TestFaultsDelayAndDuplicate(t *testing.T) { seeded(t, testFaultsDelayAndDuplicate) }

func testFaultsDelayAndDuplicate(t *testing.T, seed uint64) {
	f := lockertest.NewFaults(seed)
	c := startFaultCluster(t, 3, shared(f))
	ctx := testCtx(t)

	f.Delay(lockertest.AnyAddress, lockertest.AnyAddress, 5*time.Millisecond, 9*time.Millisecond)
	for i := range 10 {
		key, by := fmt.Sprintf("d%d", i), c.Peer(i%3)
		start := time.Now()
		res, err := by.Lock(ctx, key, []byte("v"), longLease)
		require.NoError(t, err, "lock %d", i)
		require.GreaterOrEqual(t, time.Since(start), 10*time.Millisecond, "a remote promise needs a delayed round trip")
		locked := res.Token
		res, err = by.Update(ctx, key, []byte("v"), []byte("w"))
		require.NoError(t, err, "update %d", i)
		require.Greater(t, res.Token, locked)
		_, err = by.Release(ctx, key, []byte("w"))
		require.NoError(t, err, "release %d", i)
	}
	require.NotZero(t, f.Stats().Delayed)
	t.Logf("ordered delays: faults %+v", f.Stats())

	f.Delay(lockertest.AnyAddress, lockertest.AnyAddress, 0, 30*time.Millisecond)
	f.Duplicate(lockertest.AnyAddress, lockertest.AnyAddress, 0.5)
	var ok, failed int
	last := map[string]uint64{}
	for i := range 15 {
		key, by := fmt.Sprintf("r%d", i%3), c.Peer(i%3)
		for _, op := range []lockeractor.Op{
			{Kind: lockeractor.OpLock, Key: key, Value: []byte("v"), Lease: 200 * time.Millisecond},
			{Kind: lockeractor.OpUpdate, Key: key, Value: []byte("v"), NewValue: []byte("w")},
			{Kind: lockeractor.OpRelease, Key: key, Value: []byte("w")},
		} {
			rs, err := by.Batch(ctx, []lockeractor.Op{op})
			require.NoError(t, err)
			if err := rs[0].Err; err != nil {
				require.ErrorIs(t, err, lockeractor.ErrNoQuorum)
				failed++
				continue
			}
			ok++
			if op.Kind != lockeractor.OpRelease {
				require.Greater(t, rs[0].Result.Token, last[key], "%v of %s", op.Kind, key)
				last[key] = rs[0].Result.Token
			}
		}
	}
	require.NotZero(t, ok)
	require.NotZero(t, f.Stats().Duplicated)
	t.Logf("reordering delays: %d writes succeeded, %d failed; faults %+v", ok, failed, f.Stats())
}

// TestFaultsPauseHoldsMessagesUntilResume pauses C with W = 3: A's Lock
// waits for C's promise, which comes only after Resume.
func TestFaultsPauseHoldsMessagesUntilResume(t *testing.T) {
	seeded(t, testFaultsPauseHoldsMessagesUntilResume)
}

func testFaultsPauseHoldsMessagesUntilResume(t *testing.T, seed uint64) {
	f := lockertest.NewFaults(seed)
	c := startFaultCluster(t, 3, func(int) []lockeractor.Option {
		return append(faultOptions(f), lockeractor.WithRequestTimeout(5*time.Second), lockeractor.WithWriteLockTimeout(10*time.Second))
	})
	ctx := testCtx(t)
	require.NoError(t, c.Peer(A).SetW(ctx, c.All(), 3))

	f.Pause(c.Nodes[C].Addr)
	type outcome struct {
		res lockeractor.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := c.Peer(A).Lock(ctx, "paused", []byte("a"), longLease)
		done <- outcome{res, err}
	}()
	testcluster.Eventually(t, settle, func() bool { return f.Stats().Stashed > 0 }, "C holds A's prepare")
	select {
	case o := <-done:
		t.Fatalf("Lock returned while C was paused: %+v, %v", o.res, o.err)
	default:
	}
	requireAbsent(t, c.Peer(C), "paused")
	f.Resume(c.Nodes[C].Addr)
	o := <-done
	require.NoError(t, o.err)
	requireResult(t, o.res, 3, 3, 3)
	eventuallyValue(t, c.Peer(C), "paused", "a")
	t.Logf("faults: %+v", f.Stats())
}

// TestDriftClock checks DriftClock's rate and bounds (no cluster). Each
// reading of the drift clock is bracketed by system readings, so the
// system time it was computed from is known to lie between them: over a
// span, the drift clock must have moved between (1+rate) times the
// shortest and (1+rate) times the longest system span the brackets
// allow. Nothing depends on how fast the machine runs; a measurement
// whose brackets are too wide to tell the rates apart is taken again.
func TestDriftClock(t *testing.T) {
	for _, rate := range []float64{0.01, -0.01} {
		clk := lockertest.NewDriftClock()
		require.NoError(t, clk.SetRate(rate))
		read := func() (before, d, after time.Time) { return time.Now(), clk.Now(), time.Now() }
		testcluster.Eventually(t, settle, func() bool {
			b0, d0, a0 := read()
			for time.Since(a0) < 20*time.Millisecond { // let time pass: pacing only
				time.Sleep(time.Millisecond)
			}
			b1, d1, a1 := read()
			shortest, longest := b1.Sub(a0), a1.Sub(b0)
			if float64(longest-shortest) > 0.004*float64(shortest) {
				return false // brackets too wide to tell 1 % apart: measure again
			}
			got := d1.Sub(d0)
			lo := time.Duration(float64(shortest)*(1+rate)) - time.Microsecond
			hi := time.Duration(float64(longest)*(1+rate)) + time.Microsecond
			require.True(t, got >= lo && got <= hi, "rate %v: the drift clock moved %v while the system clock moved between %v and %v", rate, got, shortest, longest)
			return true
		}, "a measurement of rate %v with tight brackets", rate)
		before := clk.Now()
		require.NoError(t, clk.SetRate(0))
		require.False(t, clk.Now().Before(before), "SetRate never turns the clock back")
	}
	require.ErrorIs(t, lockertest.NewDriftClock().SetRate(0.02), lockeractor.ErrInvalidArgument)
}

// resource is the protected resource of the fencing-token checks: per
// key, it accepts a write only with a token greater than every token it
// accepted before.
type resource struct {
	mu         sync.Mutex
	max        map[string]uint64
	accepted   int
	late       int      // writes skipped: the writer's lease had run out by its own count
	violations []string // timely writes refused
}

func newResource() *resource { return &resource{max: map[string]uint64{}} }

// write is a holder's write with token, made while its lease lasts (until
// end, by its own count); it reports whether the resource accepted it.
// A write the resource refuses although its writer's lease lasts is a
// violation: either another holder's lease overlapped, or an earlier
// holder had a larger token.
func (r *resource) write(key string, token uint64, end time.Time, who string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !time.Now().Before(end) {
		r.late++
		return false
	}
	if !r.fenceLocked(key, token) {
		r.violations = append(r.violations, fmt.Sprintf("%s: %s's token %d refused, %d seen", key, who, token, r.max[key]))
		return false
	}
	r.accepted++
	return true
}

// fence is the resource's own check, for a writer that believes its
// lease lasts (a paused one): it accepts token if greater than every
// token it accepted before.
func (r *resource) fence(key string, token uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fenceLocked(key, token)
}

func (r *resource) fenceLocked(key string, token uint64) bool {
	if token <= r.max[key] {
		return false
	}
	r.max[key] = token
	return true
}

// grant is one successful Lock.
type grant struct {
	key, who string
	node     int
	token    uint64
	invoke   time.Time // Lock called
	ok       time.Time // Lock returned
	end      time.Time // invoke+lease, or when Release was called if earlier
	events   []string  // what the holder did after its Lock, for a violation report
}

// note records what the holder of g did (under h.mu), for reports.
func (h *history) note(g *grant, format string, args ...any) {
	h.mu.Lock()
	g.events = append(g.events, time.Now().Format(time.StampMicro)+" "+fmt.Sprintf(format, args...))
	h.mu.Unlock()
}

// history records the grants of a run.
type history struct {
	mu     sync.Mutex
	grants []*grant
	byNode []atomic.Int64
	ops    atomic.Int64
}

func (h *history) add(g *grant) {
	h.mu.Lock()
	h.grants = append(h.grants, g)
	h.mu.Unlock()
	h.byNode[g.node].Add(1)
}

// setEnd records that g's holder called Release at t.
func (h *history) setEnd(g *grant, t time.Time) {
	h.mu.Lock()
	if t.Before(g.end) {
		g.end = t
	}
	h.mu.Unlock()
}

func (h *history) count(nodes ...int) int64 {
	var n int64
	for _, i := range nodes {
		n += h.byNode[i].Load()
	}
	return n
}

// check returns the violations of the history:
//
//   - Mutual exclusion: a holder holds key from the moment its Lock
//     returned (ok) until invoke+lease or until it called Release,
//     whichever is first (end). The holding intervals [ok, end) of the
//     successful Locks of one key must not overlap. (Counting from
//     invoke instead would flag a Lock invoked while another client held
//     the key and granted after its release, which is correct.) Grants
//     whose reply came after their own lease ran out (ok >= end) hold
//     nothing and are left out.
//   - Fencing: ordered by ok, the tokens of the remaining grants of one
//     key strictly increase (what the protected resource needs to accept
//     every holder's first write).
func (h *history) check() (violations []string, held, empty int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	byKey := map[string][]*grant{}
	for _, g := range h.grants {
		if !g.ok.Before(g.end) {
			empty++
			continue
		}
		held++
		byKey[g.key] = append(byKey[g.key], g)
	}
	for key, gs := range byKey {
		sort.Slice(gs, func(i, j int) bool { return gs[i].ok.Before(gs[j].ok) })
		var prev *grant // the earlier grant with the latest end
		for i, g := range gs {
			if prev != nil && g.ok.Before(prev.end) {
				violations = append(violations, fmt.Sprintf("%s: double grant: %s (node %d, token %d, invoked %v) holds [%v, %v) while %s (node %d, token %d, invoked %v) holds until %v; their steps: %q and %q",
					key, g.who, g.node, g.token, g.invoke.Format(time.StampMicro), g.ok.Format(time.StampMicro), g.end.Format(time.StampMicro),
					prev.who, prev.node, prev.token, prev.invoke.Format(time.StampMicro), prev.end.Format(time.StampMicro), g.events, prev.events))
			}
			if i > 0 && g.token <= gs[i-1].token {
				violations = append(violations, fmt.Sprintf("%s: token %d of %s (granted %v) not above %d of the earlier holder %s",
					key, g.token, g.who, g.ok.Format(time.StampMicro), gs[i-1].token, gs[i-1].who))
			}
			if prev == nil || g.end.After(prev.end) {
				prev = g
			}
		}
	}
	return violations, held, empty
}

// TestFaultPartitionScenario is the partition scenario on five
// members over real remote: all masters, W = 3, two clients per member
// locking and releasing three hot keys with random short leases, with
// random delays (reordering) and duplicates throughout. The cluster is
// split {0,1} | {2,3,4}, and each side reconfigures to its own members at
// once: the minority's Reconfigure fails, the majority's succeeds. Then
// heal and reconfigure back to all five; split {0,1,2} | {3,4} and
// reconfigure both sides again (now the other way round); heal. Every
// successful Lock writes to a protected resource with its token; the
// history is checked for overlapping holders and fencing order (see
// history.check). Meanwhile one checked client per member writes two
// long-lease keys (checkedClient: Lock, Update, ExtendLease, Release),
// so the reconfigurations run under writes whose histories are checked
// for linearizability, and a lease a client surely holds must never be
// refused as absent by a write quorum (no committed lease is lost across
// the changes of masters). Every write is recorded. Replay with
// -fault.seed=N.
func TestFaultPartitionScenario(t *testing.T) { seeded(t, testFaultPartitionScenario) }

func testFaultPartitionScenario(t *testing.T, seed uint64) {
	t.Logf("seed %d", seed)
	f := lockertest.NewFaults(seed)
	c := startFaultCluster(t, 5, shared(f))
	f.Delay(lockertest.AnyAddress, lockertest.AnyAddress, 0, 3*time.Millisecond)
	f.Duplicate(lockertest.AnyAddress, lockertest.AnyAddress, 0.05)

	keys := []string{"hot0", "hot1", "hot2"}
	long := checkedKeys("long", 2)
	rec := newRecorder(long...)
	h := &history{byNode: make([]atomic.Int64, 5)}
	res := newResource()
	var refused atomic.Int64 // resource writes refused to a timely holder
	clients := newLoadGroup()
	stopped := clients.stopped
	var load checkedLoad
	for node := range 5 {
		load.add(&clients.WaitGroup, fixedRef(c.Peer(node)), node, seed, long, rec, h, res, stopped)
		for cl := range 2 {
			clients.Add(1)
			go func() {
				defer clients.Done()
				rng := rand.New(rand.NewPCG(seed, uint64(node*2+cl+1)))
				l := c.Peer(node)
				id := rec.client()
				for seq := 0; ; seq++ {
					if stopped() {
						return
					}
					key := keys[rng.IntN(len(keys))]
					lease := time.Duration(50+rng.IntN(250)) * time.Millisecond
					who := fmt.Sprintf("n%d.c%d.%d", node, cl, seq)
					ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
					invoke := time.Now()
					r, err := rec.write(ctx, l, id, lockeractor.Op{Kind: lockeractor.OpLock, Key: key, Value: []byte(who), Lease: lease})
					ok := time.Now()
					h.ops.Add(1)
					if err != nil {
						cancel()
						time.Sleep(time.Duration(1+rng.IntN(20)) * time.Millisecond) // pacing only
						continue
					}
					g := &grant{key: key, who: who, node: node, token: r.Token, invoke: invoke, ok: ok, end: invoke.Add(lease)}
					h.add(g)
					if !res.write(key, r.Token, g.end, who) && time.Now().Before(g.end) {
						refused.Add(1)
					}
					time.Sleep(time.Duration(rng.Int64N(int64(lease / 2)))) // pacing: the holder works
					if rng.IntN(5) > 0 {                                    // else let the lease run out
						h.setEnd(g, time.Now())
						_, _ = rec.write(ctx, l, id, lockeractor.Op{Kind: lockeractor.OpRelease, Key: key, Value: []byte(who)})
						h.ops.Add(1)
					}
					cancel()
				}
			}()
		}
	}
	defer clients.halt() // also when a require fails: no client outlives the test

	progress := func(what string, n int64, nodes ...int) {
		t.Helper()
		base := h.count(nodes...)
		testcluster.Eventually(t, 10*time.Second, func() bool { return h.count(nodes...) >= base+n }, "%d more grants on nodes %v (%s)", n, nodes, what)
	}
	// reconfigure runs Reconfigure on the majority side's node maj to
	// the addresses majority and on the minority side's node min to
	// minority (if any), at once: the minority's must fail, the
	// majority's must succeed (retried: a change may fail under traffic,
	// e.g. when the write it waits for keeps the epoch changing, and is
	// safe to retry).
	reconfigure := func(maj int, majority []int, min int, minority []int) {
		t.Helper()
		var wg sync.WaitGroup
		var minErr error
		if minority != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
				defer cancel()
				minErr = c.Peer(min).Reconfigure(ctx, c.Addrs(minority...), nil)
			}()
		}
		var majErr error
		tries := 0
		testcluster.Eventually(t, 10*time.Second, func() bool {
			tries++
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			majErr = c.Peer(maj).Reconfigure(ctx, c.Addrs(majority...), nil)
			return majErr == nil
		}, "Reconfigure to %v on node %d: %v", majority, maj, lastError{&majErr})
		wg.Wait()
		if minority != nil {
			require.Error(t, minErr, "the minority %v reconfigured itself", minority)
			t.Logf("minority %v: %v", minority, minErr)
		}
		t.Logf("reconfigured to %v in %d tries; epoch %d", majority, tries, c.Peer(maj).Epoch())
	}
	partition := func(a, b []int) {
		f.Partition(c.Addrs(a...), c.Addrs(b...))
	}

	progress("all connected", 20, 0, 1, 2, 3, 4)
	testcluster.Eventually(t, 10*time.Second, func() bool { return load.succeeded() >= 10 }, "checked writes succeed")

	// Locks in flight at a split may still land on the minority side;
	// none invoked after it: its messages to the majority are dropped.
	invokedAfter := func(since time.Time, nodes ...int) []string {
		h.mu.Lock()
		defer h.mu.Unlock()
		var out []string
		for _, g := range h.grants {
			if slices.Contains(nodes, g.node) && g.invoke.After(since) {
				out = append(out, g.who)
			}
		}
		return out
	}

	partition([]int{0, 1}, []int{2, 3, 4})
	split1 := time.Now()
	minorityBefore := h.count(0, 1)
	reconfigure(2, []int{2, 3, 4}, 0, []int{0, 1})
	progress("majority {2,3,4}", 20, 2, 3, 4)
	late1 := invokedAfter(split1, 0, 1)
	f.Heal()
	t.Logf("minority {0,1}: %d grants during the split", h.count(0, 1)-minorityBefore)
	reconfigure(2, []int{0, 1, 2, 3, 4}, 0, nil)
	progress("healed", 5, 0, 1)

	partition([]int{0, 1, 2}, []int{3, 4})
	split2 := time.Now()
	reconfigure(0, []int{0, 1, 2}, 3, []int{3, 4})
	progress("majority {0,1,2}", 20, 0, 1, 2)
	late2 := invokedAfter(split2, 3, 4)
	f.Heal()
	reconfigure(0, []int{0, 1, 2, 3, 4}, 0, nil)
	progress("healed again", 5, 3, 4)

	clients.halt()

	checkStart := time.Now()
	checks := checkRun(h, res, &load, rec)
	violations, held, empty, lin := checks.violations, checks.held, checks.empty, checks.lin
	accepted, lateWrites := checks.accepted, checks.late
	require.Empty(t, late1, "nodes 0, 1 granted locks invoked during the split")
	require.Empty(t, late2, "nodes 3, 4 granted locks invoked during the split")
	s := f.Stats()
	t.Logf("%d operations, %d grants (%d held, %d expired on arrival), %d resource writes accepted, %d late; "+
		"%d checked writes on %d keys (%d succeeded), linearizability checked in %v; faults %+v (total %d); %d violations",
		rec.hist.Len(), held+empty, held, empty, accepted, lateWrites,
		lin.Operations, lin.Keys, load.succeeded(), time.Since(checkStart).Round(time.Millisecond), s, s.Total(), len(violations))
	printSummary(t, seed, linearize.RunSummary(lin, rec.hist.Len(), int(s.Total()), len(violations)))
	require.Empty(t, violations, "violations:\n%s", strings.Join(violations, "\n"))
	require.Zero(t, refused.Load())
}

// TestFaultsPausedHolderPastItsLease pauses the member of a holder past
// its lease: another client takes the key meanwhile; after Resume the
// paused holder's Update and Release are refused, and the protected
// resource refuses its stale token.
func TestFaultsPausedHolderPastItsLease(t *testing.T) { seeded(t, testFaultsPausedHolderPastItsLease) }

func testFaultsPausedHolderPastItsLease(t *testing.T, seed uint64) {
	f := lockertest.NewFaults(seed)
	c := startFaultCluster(t, 3, shared(f))
	ctx := testCtx(t)
	r := newResource()
	const key = "resource"

	const lease = 300 * time.Millisecond
	invoke := time.Now()
	old, err := c.Peer(C).Lock(ctx, key, []byte("c"), lease)
	require.NoError(t, err)
	require.True(t, r.write(key, old.Token, invoke.Add(lease), "c"))
	f.Pause(c.Nodes[C].Addr) // C's peer, the holder's, stops: a GC pause

	// Another client takes the key once the lease has run out on A and B.
	var taken lockeractor.Result
	eventually(t, func() error {
		taken, err = c.Peer(A).Lock(ctx, key, []byte("a"), longLease)
		return err
	})
	require.Greater(t, taken.Token, old.Token)
	require.True(t, r.write(key, taken.Token, time.Now().Add(longLease), "a"))

	// The paused holder carries on where it stopped: its calls wait for
	// its peer, then are refused.
	stashed := f.Stats().Stashed
	updated := make(chan error, 1)
	go func() { _, err := c.Peer(C).Update(ctx, key, []byte("c"), []byte("c2")); updated <- err }()
	testcluster.Eventually(t, settle, func() bool { return f.Stats().Stashed > stashed }, "C holds messages")
	select {
	case err := <-updated:
		t.Fatalf("Update returned while its peer was paused: %v", err)
	default:
	}
	f.Resume(c.Nodes[C].Addr)
	qe := requireNoQuorum(t, <-updated)
	require.False(t, qe.Committing)
	_, err = c.Peer(C).Release(ctx, key, []byte("c"))
	requireNoQuorum(t, err)
	// Its stale token, written as if its lease still lasted, is refused.
	require.False(t, r.fence(key, old.Token), "stale token %d accepted after %d", old.Token, taken.Token)
	require.Empty(t, r.violations)
	eventuallyValue(t, c.Peer(C), key, "a")
	v, err := c.Peer(A).DirtyRead(key)
	require.NoError(t, err)
	require.Equal(t, "a", string(v))
	t.Logf("faults: %+v", f.Stats())
}
