package multiproc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/protoactor-locker/locker/internal/linearize"
	"github.com/protoactor-locker/locker/internal/nodeproc"
	"github.com/protoactor-locker/locker/internal/testcluster"
	"github.com/protoactor-locker/locker/messages"
)

var (
	seedFlag   = flag.Uint64("multiproc.seed", 0, "seed of the multi-process tests (0: from the clock)")
	stderrFlag = flag.Bool("multiproc.stderr", false, "log every node process's stderr")
)

// Bounds of the harness. They only bound waiting: nothing passes or
// fails by elapsed time except by running out of one.
const (
	readyBound = 2 * time.Minute // a (race-built) node process starts and prints its ready line
	callBound  = 2 * time.Minute // a command's reply (nodes bound their Locker calls by 10 s)
	exitBound  = time.Minute     // a node exits after its stdin closed
	settle     = time.Minute     // every Eventually
	checkBound = 2 * time.Minute // porcupine, per key
)

// seed returns the seed of t and logs it, with the command that replays
// it, when t fails.
func seed(t *testing.T) uint64 {
	t.Helper()
	return testcluster.Seed(t, *seedFlag, "./tests/multiproc/", "multiproc.seed")
}

// syncBuffer is a bytes.Buffer safe for the exec package's copying
// goroutine and the test reading it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// rec is one recorded write of a node process: its invocation and, if it
// answered before the process ended, its answer.
type rec struct {
	proc string // the process incarnation, e.g. "m1#2"
	inv  nodeproc.Event
	ret  *nodeproc.Event
}

// proc is one node process (one incarnation of a slot).
type proc struct {
	name   string // slot name and incarnation, e.g. "m1#2"
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *syncBuffer
	ready  chan string   // the address, once
	eof    chan struct{} // stdout ended
	exited chan struct{} // Wait returned; waitErr is set
	// waitErr is Wait's result, set before exited closes.
	waitErr error
	killed  atomic.Bool
	returns *atomic.Int64 // the harness's count of answered writes

	inMu sync.Mutex // guards stdin writes

	mu      sync.Mutex // guards the fields below
	nextID  int
	pending map[int]chan nodeproc.Event
	recs    map[int64]*rec
	order   []int64 // seqs in order of invocation
	junk    []string
	names   []nodeproc.Event // EvOwned and EvLost, in order
}

// read routes the events of p's stdout until it ends.
func (p *proc) read(r io.Reader) {
	defer close(p.eof)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	readySent := false
	for sc.Scan() {
		var ev nodeproc.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			p.mu.Lock()
			p.junk = append(p.junk, sc.Text())
			p.mu.Unlock()
			continue
		}
		switch ev.Ev {
		case nodeproc.EvReady:
			if !readySent {
				readySent = true
				p.ready <- ev.Addr
			}
		case nodeproc.EvReply:
			p.mu.Lock()
			ch := p.pending[ev.ID]
			delete(p.pending, ev.ID)
			p.mu.Unlock()
			if ch != nil {
				ch <- ev
			}
		case nodeproc.EvInvoke:
			p.mu.Lock()
			p.recs[ev.Seq] = &rec{proc: p.name, inv: ev}
			p.order = append(p.order, ev.Seq)
			p.mu.Unlock()
		case nodeproc.EvReturn:
			p.mu.Lock()
			if r := p.recs[ev.Seq]; r != nil {
				r.ret = &ev
			} else {
				p.junk = append(p.junk, "answer without invocation: "+sc.Text())
			}
			p.mu.Unlock()
			p.returns.Add(1)
		case nodeproc.EvOwned, nodeproc.EvLost:
			p.mu.Lock()
			p.names = append(p.names, ev)
			p.mu.Unlock()
		default:
			p.mu.Lock()
			p.junk = append(p.junk, sc.Text())
			p.mu.Unlock()
		}
	}
	// A killed process's last line may be cut short: what was read is
	// what it wrote whole (each line is written with one write call).
}

// history returns p's recorded writes in order of invocation.
func (p *proc) history() []*rec {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*rec, 0, len(p.order))
	for _, s := range p.order {
		r := *p.recs[s]
		out = append(out, &r)
	}
	return out
}

// nameEvents returns p's EvOwned and EvLost events, in order.
func (p *proc) nameEvents() []nodeproc.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.names)
}

// open returns how many of p's writes have not answered (yet).
func (p *proc) open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, r := range p.recs {
		if r.ret == nil {
			n++
		}
	}
	return n
}

// call sends c to p and returns its reply.
func (p *proc) call(c nodeproc.Command) (nodeproc.Event, error) {
	ch := make(chan nodeproc.Event, 1)
	p.mu.Lock()
	p.nextID++
	c.ID = p.nextID
	p.pending[c.ID] = ch
	p.mu.Unlock()
	b, err := json.Marshal(c)
	if err != nil {
		return nodeproc.Event{}, err
	}
	p.inMu.Lock()
	_, err = p.stdin.Write(append(b, '\n'))
	p.inMu.Unlock()
	if err != nil {
		return nodeproc.Event{}, fmt.Errorf("%s: writing %s: %w", p.name, c.Op, err)
	}
	t := time.NewTimer(callBound)
	defer t.Stop()
	select {
	case ev := <-ch:
		return ev, nil
	case <-p.eof:
		return nodeproc.Event{}, fmt.Errorf("%s: exited before answering %s", p.name, c.Op)
	case <-t.C:
		return nodeproc.Event{}, fmt.Errorf("%s: no answer to %s within %v", p.name, c.Op, callBound)
	}
}

// kill kills p with SIGKILL and waits until it is gone.
func (p *proc) kill() {
	p.killed.Store(true)
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// exitedNow reports whether p has exited.
func (p *proc) exitedNow() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// slot is a node position: a fixed address, and the process running at
// it now (nil while down).
type slot struct {
	name string
	port int
	inc  int // incarnations started
	p    *proc
	env  []string // more environment of its processes ("NAME=value")
}

// harness runs node processes for one test and kills every one left
// when the test ends.
type harness struct {
	t       *testing.T
	exe     string
	slots   []*slot
	procs   []*proc // every incarnation, in order of start
	kills   int
	returns atomic.Int64
}

func newHarness(t *testing.T, names ...string) *harness {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("os.Executable: %v", err)
	}
	h := &harness{t: t, exe: exe}
	for _, n := range names {
		h.slots = append(h.slots, &slot{name: n})
	}
	t.Cleanup(h.cleanup)
	return h
}

// cleanup kills every process still running. It runs whether the test
// passed or not, so no node outlives its test.
func (h *harness) cleanup() {
	for _, p := range h.procs {
		if !p.exitedNow() {
			p.kill()
		}
	}
}

// start starts a process at s (a fresh one, with empty memory) without
// waiting for it.
func (h *harness) start(s *slot) *proc {
	h.t.Helper()
	s.inc++
	p := &proc{
		name: fmt.Sprintf("%s#%d", s.name, s.inc), stderr: &syncBuffer{}, ready: make(chan string, 1),
		eof: make(chan struct{}), exited: make(chan struct{}), returns: &h.returns,
		pending: map[int]chan nodeproc.Event{}, recs: map[int64]*rec{},
	}
	// The context kills the process should the test end without cleanup
	// (a panic): exec.CommandContext kills on cancel.
	ctx, cancel := context.WithCancel(context.Background())
	p.cmd = exec.CommandContext(ctx, h.exe)
	p.cmd.Env = append(os.Environ(), nodeproc.EnvNode+"=1", nodeproc.EnvPort+"="+strconv.Itoa(s.port), nodeproc.EnvName+"="+p.name)
	p.cmd.Env = append(p.cmd.Env, s.env...)
	p.cmd.Stderr = p.stderr
	p.cmd.WaitDelay = 10 * time.Second
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		h.t.Fatalf("%s: %v", p.name, err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		h.t.Fatalf("%s: %v", p.name, err)
	}
	if err := p.cmd.Start(); err != nil {
		cancel()
		h.t.Fatalf("starting %s: %v", p.name, err)
	}
	h.procs = append(h.procs, p)
	go p.read(stdout)
	go func() {
		<-p.eof // Wait closes stdout: read it all first
		p.waitErr = p.cmd.Wait()
		cancel()
		close(p.exited)
	}()
	s.p = p
	return p
}

// awaitReady waits for s's process's ready line and fixes s's port.
func (h *harness) awaitReady(s *slot) {
	h.t.Helper()
	p := s.p
	t := time.NewTimer(readyBound)
	defer t.Stop()
	select {
	case addr := <-p.ready:
		_, port, err := splitPort(addr)
		if err != nil {
			h.t.Fatalf("%s: ready at %q: %v", p.name, addr, err)
		}
		if s.port != 0 && port != s.port {
			h.t.Fatalf("%s: ready at %s, want port %d", p.name, addr, s.port)
		}
		s.port = port
	case <-p.exited:
		h.t.Fatalf("%s exited before it was ready: %v\nstderr:\n%s", p.name, p.waitErr, tail(p.stderr.String()))
	case <-t.C:
		h.t.Fatalf("%s: not ready within %v\nstderr:\n%s", p.name, readyBound, tail(p.stderr.String()))
	}
}

func splitPort(addr string) (string, int, error) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return "", 0, errors.New("no port")
	}
	port, err := strconv.Atoi(addr[i+1:])
	return addr[:i], port, err
}

// startAll starts a process at every slot and waits until all are ready.
func (h *harness) startAll() {
	h.t.Helper()
	for _, s := range h.slots {
		h.start(s)
	}
	for _, s := range h.slots {
		h.awaitReady(s)
	}
}

func (s *slot) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

func addrs(ss ...*slot) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.addr()
	}
	sort.Strings(out)
	return out
}

// do sends c to s's process and fails the test if it cannot answer or
// answers with an error.
func (h *harness) do(s *slot, c nodeproc.Command) nodeproc.Event {
	h.t.Helper()
	ev, err := s.p.call(c)
	if err != nil {
		h.t.Fatalf("%v", err)
	}
	if ev.Err != "" {
		h.t.Fatalf("%s: %s: %s", s.p.name, c.Op, ev.Err)
	}
	return ev
}

// each runs f for every slot in ss at once and waits for all.
func (h *harness) each(ss []*slot, f func(s *slot) error) {
	h.t.Helper()
	errs := make([]error, len(ss))
	var wg sync.WaitGroup
	for i, s := range ss {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = f(s) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		h.t.Fatal(err)
	}
}

// callOK is do for goroutines: errors are returned, not fatal.
func callOK(s *slot, c nodeproc.Command) (nodeproc.Event, error) {
	ev, err := s.p.call(c)
	if err == nil && ev.Err != "" {
		err = fmt.Errorf("%s: %s: %s", s.p.name, c.Op, ev.Err)
	}
	return ev, err
}

// connect makes every slot in ss open its endpoints to every other.
func (h *harness) connect(ss ...*slot) {
	h.t.Helper()
	all := addrs(h.slots...)
	h.each(ss, func(s *slot) error {
		_, err := callOK(s, nodeproc.Command{Op: nodeproc.OpConnect, Addrs: all})
		return err
	})
}

// config returns s's configuration.
func (h *harness) config(s *slot) nodeproc.Event {
	h.t.Helper()
	return h.do(s, nodeproc.Command{Op: nodeproc.OpConfig})
}

// awaitConfig waits (bounded) until every slot in ss is at epoch with
// the given masters.
func (h *harness) awaitConfig(epoch uint64, masters []string, ss ...*slot) {
	h.t.Helper()
	for _, s := range ss {
		var last nodeproc.Event
		testcluster.Eventually(h.t, settle, func() bool {
			last = h.config(s)
			return last.Epoch == epoch && slices.Equal(last.Masters, masters)
		}, "%s at epoch %d with masters %v (last: epoch %v, masters %v)", s.p.name, epoch, masters, lastEpoch{&last}, lastMasters{&last})
	}
}

// lastEpoch and lastMasters print the last poll of awaitConfig.
type lastEpoch struct{ ev *nodeproc.Event }

func (l lastEpoch) String() string { return strconv.FormatUint(l.ev.Epoch, 10) }

type lastMasters struct{ ev *nodeproc.Event }

func (l lastMasters) String() string { return fmt.Sprint(l.ev.Masters) }

// write makes s perform w (recorded in its history) and returns its
// reply.
func (h *harness) write(s *slot, w nodeproc.Write) nodeproc.Event {
	h.t.Helper()
	ev, err := s.p.call(nodeproc.Command{Op: nodeproc.OpWrite, Write: &w})
	if err != nil {
		h.t.Fatalf("%v", err)
	}
	return ev
}

// awaitReturns waits (bounded) until, over all processes, n writes
// have answered since base answers had.
func (h *harness) awaitReturns(base, n int64) {
	h.t.Helper()
	testcluster.Eventually(h.t, settle, func() bool { return h.returns.Load() >= base+n },
		"%d writes answered after the %d before", n, base)
}

// stopAll closes every running process's stdin (a graceful stop), waits
// for all to exit, and requires each to exit with status 0.
func (h *harness) stopAll() {
	h.t.Helper()
	for _, s := range h.slots {
		if s.p != nil && !s.p.exitedNow() {
			s.p.inMu.Lock()
			_ = s.p.stdin.Close()
			s.p.inMu.Unlock()
		}
	}
	for _, s := range h.slots {
		if s.p == nil {
			continue
		}
		t := time.NewTimer(exitBound)
		select {
		case <-s.p.exited:
		case <-t.C:
			h.t.Errorf("%s did not exit within %v of its stdin closing", s.p.name, exitBound)
			s.p.kill()
		}
		t.Stop()
		if s.p.waitErr != nil && !s.p.killed.Load() {
			h.t.Errorf("%s exited with %v\nstderr:\n%s", s.p.name, s.p.waitErr, tail(s.p.stderr.String()))
		}
	}
}

// checkStderr fails the test for every process whose stderr reports a
// data race, a panic or a fatal runtime error.
func (h *harness) checkStderr() {
	h.t.Helper()
	for _, p := range h.procs {
		e := p.stderr.String()
		if *stderrFlag {
			h.t.Logf("%s stderr (%d bytes):\n%s", p.name, len(e), tail(e))
		}
		if bad := stderrProblem(e); bad != "" {
			h.t.Errorf("%s: stderr reports %q:\n%s", p.name, bad, tail(e))
		}
		p.mu.Lock()
		junk := slices.Clone(p.junk)
		p.mu.Unlock()
		if len(junk) > 0 {
			h.t.Logf("%s: %d lines on stdout that are not events, the first: %q", p.name, len(junk), junk[0])
		}
	}
}

// stderrProblem returns what in a node's stderr fails the test: the race
// detector's report, a panic or a fatal runtime error ("" if none).
func stderrProblem(stderr string) string {
	for _, bad := range []string{"WARNING: DATA RACE", "panic:", "fatal error:"} {
		if strings.Contains(stderr, bad) {
			return bad
		}
	}
	return ""
}

// tail returns the end of s, for failure messages.
func tail(s string) string {
	const n = 8000
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// allHistory returns every process's recorded writes.
func (h *harness) allHistory() []*rec {
	var out []*rec
	for _, p := range h.procs {
		out = append(out, p.history()...)
	}
	return out
}

// outcomeOf parses an EvReturn's outcome.
func outcomeOf(s string) (linearize.Outcome, error) {
	for _, o := range []linearize.Outcome{linearize.OK, linearize.Failed, linearize.Unknown, linearize.Pending} {
		if o.String() == s {
			return o, nil
		}
	}
	return linearize.Pending, fmt.Errorf("unknown outcome %q", s)
}

// merge builds one History from the writes of all processes, in order
// of invocation on the machine's wall clock, times relative to the
// first invocation. A write without an answer (its process was killed
// first) stays pending, and CloseOpen makes it unknown: it is kept,
// open-ended, never dropped.
func merge(recs []*rec) (*linearize.History, error) {
	sorted := slices.Clone(recs)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].inv.T < sorted[j].inv.T })
	h := &linearize.History{}
	if len(sorted) == 0 {
		return h, nil
	}
	t0 := sorted[0].inv.T
	for _, r := range sorted {
		w := r.inv.Write
		if w == nil {
			return nil, fmt.Errorf("%s: invocation %d without a write", r.proc, r.inv.Seq)
		}
		op := h.Invoke(w.Client, w.Checked, w.Key, w.Kind, w.Value, w.NewValue, w.LeaseMs, r.inv.T-t0)
		if r.ret == nil {
			continue
		}
		out, err := outcomeOf(r.ret.Outcome)
		if err != nil {
			return nil, fmt.Errorf("%s: write %d: %w", r.proc, r.inv.Seq, err)
		}
		if r.ret.T < r.inv.T {
			return nil, fmt.Errorf("%s: write %d answered before it was invoked (%d < %d)", r.proc, r.inv.Seq, r.ret.T, r.inv.T)
		}
		h.Finish(op, out, r.ret.Token, r.ret.T-t0)
	}
	h.CloseOpen()
	return h, nil
}

// verdict is what checking a merged history found.
type verdict struct {
	ops, checked, ok, unknown, open int
	catchingUp                      int // refusals of a restarted master that was catching up
	result                          linearize.Result
	errs                            []error
}

// judge merges recs and checks the merged history with porcupine. Every
// violation, inconclusive key or malformed record is one of errs.
func judge(recs []*rec, timeout time.Duration) verdict {
	var v verdict
	h, err := merge(recs)
	if err != nil {
		v.errs = append(v.errs, err)
		return v
	}
	for _, r := range recs {
		if r.ret == nil {
			v.open++
		} else if strings.Contains(r.ret.Err, "catching up") {
			v.catchingUp++
		}
	}
	for _, o := range h.Ops() {
		v.ops++
		if o.Checked {
			v.checked++
		}
		switch o.Result {
		case linearize.OK:
			v.ok++
		case linearize.Unknown:
			v.unknown++
		}
		if o.Result == linearize.Unknown && o.Return != math.MaxInt64 {
			v.errs = append(v.errs, fmt.Errorf("unknown write with a return time: %v", &o))
		}
	}
	if v.ops != len(recs) {
		v.errs = append(v.errs, fmt.Errorf("merged %d writes of %d recorded", v.ops, len(recs)))
	}
	if v.unknown < v.open {
		v.errs = append(v.errs, fmt.Errorf("%d writes without an answer but only %d unknown", v.open, v.unknown))
	}
	v.result = linearize.Check(h.Operations(), timeout)
	for _, viol := range v.result.Violations {
		v.errs = append(v.errs, viol)
	}
	for _, k := range v.result.Inconclusive {
		v.errs = append(v.errs, fmt.Errorf("the check of %q ran out of time (%v): inconclusive", k, timeout))
	}
	return v
}

// requireLinearizable checks the merged history of every process of h
// and fails the test for every error judge finds.
func (h *harness) requireLinearizable() verdict {
	h.t.Helper()
	v := judge(h.allHistory(), checkBound)
	for _, err := range v.errs {
		h.t.Error(err)
	}
	if v.checked == 0 {
		h.t.Error("no checked write was recorded")
	}
	return v
}

// heldBy returns, key by key, the values a process may have left held
// on checked keys by its load clients' doing (clients numbered below
// firstOwnClient; the harness's own writes are left alone), judging
// from its history: a Lock or Update that did not fail, and no Release
// after it that answered (a failed Release means the value was not held
// then).
func heldBy(recs []*rec) map[string][]string {
	type kv struct{ key, value string }
	held, seen := map[kv]bool{}, map[kv]bool{}
	var order []kv
	add := func(k kv) {
		if !seen[k] {
			seen[k] = true
			order = append(order, k)
		}
		held[k] = true
	}
	for _, r := range recs {
		w := r.inv.Write
		if w == nil || !w.Checked || w.Client >= firstOwnClient {
			continue
		}
		out := linearize.Pending
		if r.ret != nil {
			out, _ = outcomeOf(r.ret.Outcome)
		}
		switch w.Kind {
		case messages.WriteKind_WRITE_KIND_LOCK:
			if out != linearize.Failed {
				add(kv{w.Key, w.Value})
			}
		case messages.WriteKind_WRITE_KIND_UPDATE:
			if out == linearize.OK {
				held[kv{w.Key, w.Value}] = false
			}
			if out != linearize.Failed {
				add(kv{w.Key, w.NewValue})
			}
		case messages.WriteKind_WRITE_KIND_RELEASE:
			if out == linearize.OK || out == linearize.Failed {
				held[kv{w.Key, w.Value}] = false
			}
		}
	}
	out := map[string][]string{}
	for _, k := range order {
		if held[k] {
			out[k.key] = append(out[k.key], k.value)
		}
	}
	return out
}
