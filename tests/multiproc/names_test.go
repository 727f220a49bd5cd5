package multiproc

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/protoactor-locker/locker/internal/linearize"
	"github.com/protoactor-locker/locker/internal/nodeproc"
	"github.com/protoactor-locker/locker/internal/testcluster"
)

// nameLeaseMs is the lease of the named actors: a killed holder's names
// move within about that long.
const nameLeaseMs = 2000

// tenure is one holder of a name, from the reports of its node process.
type tenure struct {
	name, pid, proc string
	token           uint64
	gain            int64 // when the node reported it held the name (monotonic ns)
	deadline        int64 // the latest deadline it reported
	lost            int64 // when it reported the end (0: never, e.g. killed)
}

// end is when the holder stopped acting as the name's owner at the
// latest: its loss, or its last reported deadline if earlier (or if it
// never reported a loss, as a killed process cannot).
func (x *tenure) end() int64 {
	if x.lost != 0 && x.lost < x.deadline {
		return x.lost
	}
	return x.deadline
}

// tenures collects the holders of every name from the reports of procs.
func tenures(procs []*proc) map[string][]*tenure {
	out := map[string][]*tenure{}
	byPID := map[string]*tenure{}
	for _, p := range procs {
		for _, ev := range p.nameEvents() {
			x := byPID[ev.PID]
			if x == nil {
				x = &tenure{name: ev.Name, pid: ev.PID, proc: p.name, token: ev.Token, gain: ev.T}
				byPID[ev.PID] = x
				out[ev.Name] = append(out[ev.Name], x)
			}
			switch ev.Ev {
			case nodeproc.EvOwned:
				x.deadline = max(x.deadline, ev.Deadline)
			case nodeproc.EvLost:
				x.lost = ev.T
			}
		}
	}
	return out
}

// overlaps returns the violations among the holders of each name: a
// holder that gained the name before an earlier one's tenure ended (two
// holders alive at once), or with a token not above the earlier's.
func overlaps(all map[string][]*tenure) []string {
	var out []string
	for name, xs := range all {
		sort.Slice(xs, func(i, j int) bool { return xs[i].gain < xs[j].gain })
		for i := 1; i < len(xs); i++ {
			for _, prev := range xs[:i] {
				if xs[i].gain < prev.end() {
					out = append(out, fmt.Sprintf("%s: %s (%s, token %d) gained it %v before %s (%s, token %d) stopped owning it",
						name, xs[i].pid, xs[i].proc, xs[i].token, time.Duration(prev.end()-xs[i].gain), prev.pid, prev.proc, prev.token))
				}
			}
			if xs[i].token <= xs[i-1].token {
				out = append(out, fmt.Sprintf("%s: token %d of %s not above %d of the earlier %s", name, xs[i].token, xs[i].pid, xs[i-1].token, xs[i-1].pid))
			}
		}
	}
	sort.Strings(out)
	return out
}

// TestOverlapsFindsTwoHolders feeds overlaps known-bad tenures.
func TestOverlapsFindsTwoHolders(t *testing.T) {
	x := func(pid string, token uint64, gain, deadline, lost int64) *tenure {
		return &tenure{name: "n", pid: pid, token: token, gain: gain, deadline: deadline, lost: lost}
	}
	for _, tc := range []struct {
		name   string
		xs     []*tenure
		broken int
	}{
		{"in turn", []*tenure{x("a", 1, 0, 100, 0), x("b", 2, 100, 300, 0)}, 0},
		{"lost before its deadline, taken after it", []*tenure{x("a", 1, 0, 100, 50), x("b", 2, 120, 300, 0)}, 0},
		{"taken before a killed holder's deadline", []*tenure{x("a", 1, 0, 100, 0), x("b", 2, 90, 300, 0)}, 1},
		{"taken before a holder reported its loss", []*tenure{x("a", 1, 0, 100, 80), x("b", 2, 70, 300, 0)}, 1},
		{"a later holder with a smaller token", []*tenure{x("a", 2, 0, 100, 0), x("b", 1, 100, 300, 0)}, 1},
	} {
		if got := overlaps(map[string][]*tenure{"n": tc.xs}); len(got) != tc.broken {
			t.Errorf("%s: %d violations %q, want %d", tc.name, len(got), got, tc.broken)
		}
	}
}

// TestMultiProcessNames runs the registry, server and fsm across three
// node processes (all masters, W = 2), under -race when the test is: each
// node spawns named actors (server.Spawn and fsm.Spawn, leases of 2 s)
// and resolves every name with its Registry meanwhile. In an order drawn
// from the seed it kills with SIGKILL two nodes, one after the other,
// each holding names: every name of the killed node moves (a survivor
// spawns it once its lease ran out, and every survivor resolves it to the
// new holder), and the killed node restarts empty. Safety, from every
// process's reports of the leases it held (renewals included): no name
// ever has two holders alive at once, and each holder's fencing token is
// above the one before. Every process must exit cleanly with a clean
// stderr (no data race, no panic).
func TestMultiProcessNames(t *testing.T) {
	s := seed(t)
	rng := rand.New(rand.NewPCG(s, 0x6e616d6573))
	h := newHarness(t, "m0", "m1", "m2")
	h.startAll()
	h.connect(h.slots...)
	masters := addrs(h.slots...)
	h.do(h.slots[0], nodeproc.Command{Op: nodeproc.OpSetNodes, Addrs: masters, Masters: masters, W: 2})
	epoch := h.config(h.slots[0]).Epoch
	h.awaitConfig(epoch, masters, h.slots...)

	const perNode = 3
	var names []string
	holder := map[string]string{} // name -> the pid it resolves to now
	spawns := 0
	spawn := func(s *slot, name string) string {
		t.Helper()
		actor := []string{"server", "fsm"}[spawns%2]
		var ev nodeproc.Event
		testcluster.Eventually(t, settle, func() bool {
			var err error
			ev, err = s.p.call(nodeproc.Command{Op: nodeproc.OpSpawn, Key: name, Actor: actor, LeaseMs: nameLeaseMs})
			if err != nil {
				t.Fatal(err)
			}
			return ev.Err == "" // taken (the old lease still runs): again
		}, "%s spawns %s (%s); last answer %+v", s.p.name, name, actor, &ev)
		spawns++
		return ev.PID
	}
	for i, sl := range h.slots {
		for j := range perNode {
			name := fmt.Sprintf("svc-%d-%d", i, j)
			names = append(names, name)
			holder[name] = spawn(sl, name)
		}
	}

	// Observers: every node resolves every name, until stopped. live
	// holds each slot's process for them (nil while it is down): the
	// slots themselves belong to the test's goroutine.
	live := make([]atomic.Pointer[proc], len(h.slots))
	for i, sl := range h.slots {
		live[i].Store(sl.p)
	}
	var obsMu sync.Mutex // guards observations
	observations := 0
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range h.slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				p := live[i].Load()
				if p == nil {
					time.Sleep(5 * time.Millisecond) // pacing while down
					continue
				}
				for _, name := range names {
					if _, err := p.call(nodeproc.Command{Op: nodeproc.OpWhereIs, Key: name}); err == nil {
						obsMu.Lock()
						observations++
						obsMu.Unlock()
					}
				}
			}
		}()
	}
	stopObservers := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}
	defer stopObservers()

	resolves := func(s *slot, name, want string) bool {
		ev, err := s.p.call(nodeproc.Command{Op: nodeproc.OpWhereIs, Key: name})
		return err == nil && ev.PID == want
	}
	moved := 0
	order := rng.Perm(len(h.slots))[:2]
	for _, vi := range order {
		v := h.slots[vi]
		var survivors []*slot
		for i, sl := range h.slots {
			if i != vi {
				survivors = append(survivors, sl)
			}
		}
		var lost []string
		for _, name := range names {
			if strings.HasPrefix(holder[name], v.addr()+"/") {
				lost = append(lost, name)
			}
		}
		if len(lost) == 0 {
			t.Fatalf("%s holds no name to lose", v.p.name)
		}
		live[vi].Store(nil)
		v.p.kill()
		h.kills++
		t.Logf("killed %s holding %v", v.p.name, lost)
		for k, name := range lost {
			holder[name] = spawn(survivors[k%len(survivors)], name)
			for _, sl := range survivors {
				testcluster.Eventually(t, settle, func() bool { return resolves(sl, name, holder[name]) },
					"%s resolves %s to its new holder %s", sl.p.name, name, holder[name])
			}
			moved++
		}
		h.start(v)
		h.awaitReady(v)
		h.connect(h.slots...)
		h.awaitConfig(epoch, masters, v)
		live[vi].Store(v.p)
		h.awaitVotes(v, 3)
		for _, name := range names {
			testcluster.Eventually(t, settle, func() bool { return resolves(v, name, holder[name]) },
				"the restarted %s resolves %s to %s", v.p.name, name, holder[name])
		}
	}
	stopObservers()

	h.stopAll()
	h.checkStderr()
	all := tenures(h.procs)
	violations := overlaps(all)
	for _, v := range violations {
		t.Error(v)
	}
	holders := 0
	gap := time.Duration(-1) // the closest a holder came to its predecessor's end
	for _, xs := range all {
		holders += len(xs)
		for i := 1; i < len(xs); i++ {
			if d := time.Duration(xs[i].gain - xs[i-1].end()); gap < 0 || d < gap {
				gap = d
			}
		}
	}
	t.Logf("the closest takeover came %v after its predecessor stopped owning the name", gap)
	obsMu.Lock()
	ops := observations + spawns
	obsMu.Unlock()
	// The summary line CI adds up: a history per name, operations are
	// spawns and lookups, faults the kills.
	sum := linearize.Summary{Histories: len(names), Operations: ops, Faults: h.kills, Violations: len(violations), Runs: 1}
	if moved > 0 && observations > 0 && h.kills > 0 && holders == len(names)+moved {
		sum.Judged = 1
	}
	fmt.Printf("multiproc names: %v (%d processes, %d kills, %d names moved, %d holders reported, %d lookups, race detector %v; seed %d)\n",
		sum, len(h.procs), h.kills, moved, holders, observations, testcluster.RaceEnabled, s)
	if holders != len(names)+moved {
		t.Errorf("the processes reported %d holders, want %d (every spawn)", holders, len(names)+moved)
	}
}
