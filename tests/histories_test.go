package tests

// Histories of the fault tests and the soak over real remote:
// every write is recorded in a linearize.History with the outcome its
// caller saw, and the histories of the checked keys, written with leases
// longer than any run, are checked for linearizability with porcupine at
// the end. Also: running each fault test for a list of seeds
// (-fault.seeds) and the summary lines.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/protoactor-locker/locker/internal/linearize"
	"github.com/protoactor-locker/locker/internal/testcluster"
	"github.com/protoactor-locker/locker/lockeractor"
	"github.com/protoactor-locker/locker/messages"
)

var faultSeedsFlag = flag.String("fault.seeds", "", "comma-separated seeds: run each seeded fault test once per seed, as subtests seed=N (overrides -fault.seed)")

// checkedLease is the lease of the checked keys' writes: longer than any
// run, as the model, which has no time, needs.
const checkedLease = time.Hour

// linearizeTimeout bounds porcupine's search per key. A key it cannot
// decide in time fails the test as inconclusive; the checked histories
// are kept small enough (a few hundred writes per key, with a handful of
// clients) to be decided in milliseconds.
const linearizeTimeout = time.Minute

// seeded runs a seeded fault test: once with the seed of faultSeed
// (-fault.seed, else the clock), or, given -fault.seeds=1,2,3, once per
// seed as subtests named seed=N. Either way a failure logs the seed and
// the command that replays it.
func seeded(t *testing.T, run func(t *testing.T, seed uint64)) {
	t.Helper()
	if *faultSeedsFlag == "" {
		run(t, faultSeed(t))
		return
	}
	for _, f := range strings.Split(*faultSeedsFlag, ",") {
		seed, err := strconv.ParseUint(strings.TrimSpace(f), 10, 64)
		if err != nil || seed == 0 {
			t.Fatalf("-fault.seeds=%q: %q is not a positive seed", *faultSeedsFlag, f)
		}
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			testcluster.LogSeedOnFailure(t, seed, "./tests/", "fault.seed")
			run(t, seed)
		})
	}
}

// faultTotals adds up the summaries of the fault tests of this run, for
// the line TestMain prints at the end.
var faultTotals struct {
	mu    sync.Mutex
	tests int
	sum   linearize.Summary
}

// printSummary prints the summary line of a fault test (its checked
// keys' histories, every write it recorded, the faults it injected and
// the violations every check found) and adds it to the totals.
func printSummary(t *testing.T, seed uint64, s linearize.Summary) {
	name, _, _ := strings.Cut(t.Name(), "/")
	fmt.Printf("faults: %v (%s, seed %d)\n", s, name, seed)
	faultTotals.mu.Lock()
	defer faultTotals.mu.Unlock()
	faultTotals.tests++
	faultTotals.sum.Histories += s.Histories
	faultTotals.sum.Operations += s.Operations
	faultTotals.sum.Faults += s.Faults
	faultTotals.sum.Violations += s.Violations
	faultTotals.sum.Runs += s.Runs
	faultTotals.sum.Judged += s.Judged
}

// printFaultTotals prints the totals of the fault tests that ran, if any.
func printFaultTotals() {
	faultTotals.mu.Lock()
	defer faultTotals.mu.Unlock()
	if faultTotals.tests > 0 {
		fmt.Printf("faults: %d runs: %v\n", faultTotals.tests, faultTotals.sum)
	}
}

// recorder records the writes of a run in a linearize.History on the real
// clock. Writes on the keys in checked are checked for linearizability;
// the others are recorded for counting only (their short leases may run
// out, which the model does not know).
type recorder struct {
	hist    linearize.History
	start   time.Time
	checked map[string]bool // read-only after newRecorder
	clients atomic.Int64    // ids handed out by client
}

func newRecorder(checked ...string) *recorder {
	r := &recorder{start: time.Now(), checked: map[string]bool{}}
	for _, k := range checked {
		r.checked[k] = true
	}
	return r
}

// client returns a fresh client id for the history.
func (r *recorder) client() int { return int(r.clients.Add(1)) }

func kindOf(k lockeractor.OpKind) messages.WriteKind {
	switch k {
	case lockeractor.OpLock:
		return messages.WriteKind_WRITE_KIND_LOCK
	case lockeractor.OpUpdate:
		return messages.WriteKind_WRITE_KIND_UPDATE
	case lockeractor.OpExtendLease:
		return messages.WriteKind_WRITE_KIND_EXTEND
	}
	return messages.WriteKind_WRITE_KIND_RELEASE
}

// batch performs ops with one l.Batch and records each as a write of
// client, with the outcome its caller must assume (linearize.OutcomeOf).
func (r *recorder) batch(ctx context.Context, l *lockeractor.Locker, client int, ops []lockeractor.Op) ([]lockeractor.OpResult, error) {
	recs := make([]*linearize.Op, len(ops))
	now := linearize.Since(r.start)
	for i, op := range ops {
		recs[i] = r.hist.Invoke(client, r.checked[op.Key], op.Key, kindOf(op.Kind), string(op.Value), string(op.NewValue), op.Lease.Milliseconds(), now)
	}
	rs, err := l.Batch(ctx, ops)
	now = linearize.Since(r.start)
	for i, rec := range recs {
		if err != nil {
			r.hist.Finish(rec, linearize.OutcomeOf(err), 0, now)
			continue
		}
		r.hist.Finish(rec, linearize.OutcomeOf(rs[i].Err), rs[i].Result.Token, now)
	}
	return rs, err
}

// write performs op through l and records it as a write of client.
func (r *recorder) write(ctx context.Context, l *lockeractor.Locker, client int, op lockeractor.Op) (lockeractor.Result, error) {
	rs, err := r.batch(ctx, l, client, []lockeractor.Op{op})
	if err != nil {
		return lockeractor.Result{}, err
	}
	return rs[0].Result, rs[0].Err
}

// check closes the writes still open (unknown outcome), checks the
// checked keys' histories and returns what porcupine found.
func (r *recorder) check() linearize.Result {
	r.hist.CloseOpen()
	return linearize.Check(r.hist.Operations(), linearizeTimeout)
}

// failures returns the linearizability violations and inconclusive keys
// of res as messages.
func failures(res linearize.Result) []string {
	var out []string
	for _, v := range res.Violations {
		out = append(out, v.Error())
	}
	for _, k := range res.Inconclusive {
		out = append(out, fmt.Sprintf("%q: linearizability undecided within %v", k, linearizeTimeout))
	}
	return out
}

// checkedKeys returns n checked key names with prefix.
func checkedKeys(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

// refusedAsNotHeld reports whether err is a refusal, before any commit,
// by at least W masters because the key is absent or holds another value
// (the value written cannot be the key's on a write quorum).
func refusedAsNotHeld(err error) bool {
	var qe *lockeractor.QuorumError
	if !errors.As(err, &qe) || qe.Committing {
		return false
	}
	n := 0
	for _, r := range qe.Peers {
		if r == lockeractor.ReasonNotFound || r == lockeractor.ReasonValueDiffers {
			n++
		}
	}
	return n >= qe.W
}

// lockerRef is the Locker a client calls on a node whose Locker the test
// restarts: nil while it is down.
type lockerRef struct {
	mu sync.Mutex // guards l
	l  *lockeractor.Locker
}

func (r *lockerRef) get() *lockeractor.Locker {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.l
}

func (r *lockerRef) set(l *lockeractor.Locker) {
	r.mu.Lock()
	r.l = l
	r.mu.Unlock()
}

// checkedClient writes the checked keys with leases longer than the run:
// Lock, then a few Update, ExtendLease, and Release. Its protocol under
// unknown outcomes keeps the keys live (a lease never runs out here, so
// a value nobody releases blocks its key for good):
//
//   - mine lists the values the key may hold by this client's writes:
//     empty when it surely does not hold the key. sure means mine has
//     one value and every write of it since the Lock is known.
//   - Lock: OK makes it sure of its value; Unknown makes it possibly
//     the holder (mine = its value, not sure); Failed changes nothing.
//   - While sure: Update OK replaces the value (and the token, written
//     to the protected resource); Update Unknown leaves the old or the
//     new value (not sure); ExtendLease changes no value whatever its
//     outcome; Release OK ends the hold, Release Unknown leaves it
//     possibly holding (not sure). A Failed write while sure changes
//     nothing: the lease cannot have run out. A refusal as absent or
//     another value by a write quorum while sure is a lost committed
//     lease, recorded as a violation.
//   - While not sure: Release with each value of mine, retrying until it
//     succeeds (then it holds nothing) or a write quorum refuses it as
//     not held (that value is dropped from mine); the model allows such
//     releases (an unknown write may have taken effect or not).
//
// Each write uses a fresh value, so a value names one Lock or Update.
type checkedClient struct {
	ref   *lockerRef
	node  int
	name  string // prefix of its values
	id    int    // client id in the history
	rng   *rand.Rand
	keys  []string
	rec   *recorder
	h     *history  // its successful Locks are grants (nil: not recorded)
	res   *resource // its tokens are written there (nil: none)
	lost  *[]string // violations: a lease it surely held refused as not held
	lostM *sync.Mutex

	key  string
	mine []string
	sure bool
	g    *grant
	seq  int
	ok   atomic.Int64 // writes that succeeded
}

// run steps c until stopped, pausing between writes (pacing only).
func (c *checkedClient) run(stopped func() bool) {
	for !stopped() {
		l := c.ref.get()
		if l == nil || l.Epoch() == 0 { // down, or restarted and not configured yet
			time.Sleep(5 * time.Millisecond) // pacing only
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		c.step(ctx, l)
		cancel()
		time.Sleep(time.Duration(2+c.rng.IntN(15)) * time.Millisecond) // pacing only
	}
}

func (c *checkedClient) fresh() string {
	c.seq++
	return fmt.Sprintf("%s.%d", c.name, c.seq)
}

func (c *checkedClient) write(ctx context.Context, l *lockeractor.Locker, op lockeractor.Op) (lockeractor.Result, linearize.Outcome, error) {
	r, err := c.rec.write(ctx, l, c.id, op)
	o := linearize.OutcomeOf(err)
	if o == linearize.OK {
		c.ok.Add(1)
	}
	return r, o, err
}

// lostLease records a refusal, as not held, of a lease c surely holds.
func (c *checkedClient) lostLease(op string, err error) {
	c.lostM.Lock()
	*c.lost = append(*c.lost, fmt.Sprintf("%s: %s's %s of %q (surely held) refused as not held: %v", c.key, c.name, op, c.mine[0], err))
	c.lostM.Unlock()
}

// endGrant ends the holding window of c's grant (its Release is called).
func (c *checkedClient) endGrant() {
	if c.g != nil && c.h != nil {
		c.h.setEnd(c.g, time.Now())
	}
	c.g = nil
}

func (c *checkedClient) step(ctx context.Context, l *lockeractor.Locker) {
	switch {
	case len(c.mine) == 0:
		c.key = c.keys[c.rng.IntN(len(c.keys))]
		v := c.fresh()
		invoke := time.Now()
		r, o, _ := c.write(ctx, l, lockeractor.Op{Kind: lockeractor.OpLock, Key: c.key, Value: []byte(v), Lease: checkedLease})
		switch o {
		case linearize.OK:
			c.mine, c.sure = []string{v}, true
			if c.h != nil {
				c.g = &grant{key: c.key, who: v, node: c.node, token: r.Token, invoke: invoke, ok: time.Now(), end: invoke.Add(checkedLease)}
				c.h.add(c.g)
			}
			if c.res != nil {
				c.res.write(c.key, r.Token, invoke.Add(checkedLease), v)
			}
		case linearize.Unknown:
			c.mine, c.sure = []string{v}, false
		}
	case c.sure:
		v := c.mine[0]
		switch c.rng.IntN(4) {
		case 0:
			next := c.fresh()
			r, o, err := c.write(ctx, l, lockeractor.Op{Kind: lockeractor.OpUpdate, Key: c.key, Value: []byte(v), NewValue: []byte(next)})
			switch o {
			case linearize.OK:
				c.mine = []string{next}
				if c.res != nil {
					c.res.write(c.key, r.Token, time.Now().Add(checkedLease), next)
				}
			case linearize.Unknown:
				c.mine, c.sure = []string{v, next}, false
			default:
				if refusedAsNotHeld(err) {
					c.lostLease("Update", err)
				}
			}
		case 1:
			_, _, err := c.write(ctx, l, lockeractor.Op{Kind: lockeractor.OpExtendLease, Key: c.key, Value: []byte(v), Lease: checkedLease})
			if refusedAsNotHeld(err) {
				c.lostLease("ExtendLease", err)
			}
		default:
			c.endGrant()
			_, o, err := c.write(ctx, l, lockeractor.Op{Kind: lockeractor.OpRelease, Key: c.key, Value: []byte(v)})
			switch o {
			case linearize.OK:
				c.mine, c.sure = nil, false
			case linearize.Unknown:
				c.sure = false
			default:
				if refusedAsNotHeld(err) {
					c.lostLease("Release", err)
				}
			}
		}
	default:
		c.endGrant()
		for i := 0; i < len(c.mine); {
			_, o, err := c.write(ctx, l, lockeractor.Op{Kind: lockeractor.OpRelease, Key: c.key, Value: []byte(c.mine[i])})
			switch {
			case o == linearize.OK:
				c.mine = nil
				return
			case refusedAsNotHeld(err):
				c.mine = append(c.mine[:i], c.mine[i+1:]...)
			default:
				i++ // retried at the next step
			}
		}
	}
}

// checkedLoad is the checked clients of a test and what they found.
type checkedLoad struct {
	clients []*checkedClient
	mu      sync.Mutex // guards lost
	lost    []string
}

// add starts a checked client on the Locker ref (on node) writing keys;
// wg tracks it, stopped ends it.
func (cl *checkedLoad) add(wg *sync.WaitGroup, ref *lockerRef, node int, seed uint64, keys []string, rec *recorder, h *history, res *resource, stopped func() bool) {
	n := len(cl.clients)
	c := &checkedClient{
		ref: ref, node: node, name: fmt.Sprintf("chk.n%d.%d", node, n), id: rec.client(),
		rng: rand.New(rand.NewPCG(seed, 1000+uint64(n))), keys: keys, rec: rec, h: h, res: res,
		lost: &cl.lost, lostM: &cl.mu,
	}
	cl.clients = append(cl.clients, c)
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.run(stopped)
	}()
}

// succeeded returns how many checked writes succeeded so far.
func (cl *checkedLoad) succeeded() int64 {
	var n int64
	for _, c := range cl.clients {
		n += c.ok.Load()
	}
	return n
}

// violations returns the lost leases found.
func (cl *checkedLoad) violations() []string {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return append([]string(nil), cl.lost...)
}

// fixedRef returns a lockerRef that always holds l.
func fixedRef(l *lockeractor.Locker) *lockerRef { return &lockerRef{l: l} }

// runChecks is what the checks of a fault run found once its load
// stopped: every violation of the grants' history, of the protected
// resource, of the checked clients and of the linearizability check, and
// the counts the run's log reports.
type runChecks struct {
	violations     []string
	held, empty    int // grants held, and expired on arrival
	accepted, late int // resource writes accepted, and skipped as late
	lin            linearize.Result
}

// checkRun runs every check of a fault run (see runChecks).
func checkRun(h *history, res *resource, load *checkedLoad, rec *recorder) runChecks {
	var c runChecks
	c.violations, c.held, c.empty = h.check()
	res.mu.Lock()
	c.violations = append(c.violations, res.violations...)
	c.accepted, c.late = res.accepted, res.late
	res.mu.Unlock()
	c.violations = append(c.violations, load.violations()...)
	c.lin = rec.check()
	c.violations = append(c.violations, failures(c.lin)...)
	return c
}
