// Registry names under node loss: three nodes over real
// remote with one shared lockertest.Faults (random drops, delays and
// duplicates between the peers), a partition healed, a node crashed.

package registry_test

import (
	"flag"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/eventstream"
	"github.com/stretchr/testify/require"

	"github.com/protoactor-locker/locker/internal/linearize"
	"github.com/protoactor-locker/locker/internal/registrytest"
	"github.com/protoactor-locker/locker/internal/testcluster"
	"github.com/protoactor-locker/locker/lockeractor"
	"github.com/protoactor-locker/locker/lockeractor/lockertest"
	"github.com/protoactor-locker/locker/registry"
	"github.com/protoactor-locker/locker/server"
)

var registrySeedFlag = flag.Uint64("registry.seed", 0, "seed of the registry fault tests (0: from the clock)")

// registrySeed returns the seed of a fault test and logs it, with the
// command that replays it, when the test fails. Peers draw from one
// Faults concurrently, so a replay reproduces the run's distribution of
// faults, not its exact schedule.
func registrySeed(t *testing.T) uint64 {
	t.Helper()
	return testcluster.Seed(t, *registrySeedFlag, "./registry/", "registry.seed")
}

// holder is one registration of a name: a server actor and its tenure,
// from registration to its actor's stop or its NameLost.
type holder struct {
	name  string
	node  int
	pid   *actor.PID
	token uint64

	// guarded by world.mu
	ended bool      // stopped or lost
	lost  bool      // NameLost seen
	gone  time.Time // when its node crashed or was partitioned away (zero: never)
}

// world records holders, observations and violations.
type world struct {
	mu         sync.Mutex
	holders    map[string]*holder // by pid (address/id)
	byName     map[string][]*holder
	maxToken   map[string]uint64  // the fenced resource: largest token written per name
	lastWriter map[string]*holder // the holder whose write the resource accepted last, per name
	seenToken  map[[2]string]uint64
	refusedAt  map[*holder]time.Time
	violations []string

	observations, resolvedGone, writes, fenced, unknown int
}

func newWorld() *world {
	return &world{
		holders: map[string]*holder{}, byName: map[string][]*holder{}, maxToken: map[string]uint64{}, lastWriter: map[string]*holder{},
		seenToken: map[[2]string]uint64{}, refusedAt: map[*holder]time.Time{},
	}
}

func pidKey(p *actor.PID) string { return p.Address + "/" + p.Id }

func (w *world) violate(format string, args ...any) {
	w.violations = append(w.violations, fmt.Sprintf(format, args...))
}

func (w *world) add(h *holder) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.holders[pidKey(h.pid)] = h
	w.byName[h.name] = append(w.byName[h.name], h)
}

// end marks the tenure of pid's holder over (its actor stopped, or it
// lost its name).
func (w *world) end(pid *actor.PID, lost bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if h := w.holders[pidKey(pid)]; h != nil {
		h.ended = true
		h.lost = h.lost || lost
	}
}

// write is a holder acting as the name's owner: a write to the shared
// resource with its registration's fencing token, while its Registry
// says its lease runs until deadline. The resource refuses a token
// smaller than the largest it has seen. A refused write whose deadline
// is still ahead means two tenures overlap: the newer holder's
// registration needed a quorum that no longer held the older one, which
// happens only after the older one's deadline (leases count from the
// start of the call, masters from its arrival). So does a holder that
// renewed past a refusal, and a write with the token of another holder's
// accepted write (one token, two tenures).
func (w *world) write(h *holder, token uint64, deadline time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writeAt(h, token, deadline, time.Now())
}

// writeAt is write at time now (w.mu held).
func (w *world) writeAt(h *holder, token uint64, deadline, now time.Time) {
	if at, ok := w.refusedAt[h]; ok && deadline.After(at) {
		w.violate("%s (%s, token %d) renewed its lease to %v after a write of it was refused at %v",
			h.name, pidKey(h.pid), token, deadline, at)
	}
	if token < w.maxToken[h.name] {
		w.fenced++
		if _, ok := w.refusedAt[h]; !ok {
			w.refusedAt[h] = now
		}
		if deadline.After(now) {
			w.violate("%s: %s's write with token %d refused (largest %d) while its lease runs %v more",
				h.name, pidKey(h.pid), token, w.maxToken[h.name], deadline.Sub(now))
		}
		return
	}
	if last := w.lastWriter[h.name]; token == w.maxToken[h.name] && last != nil && last != h {
		w.violate("%s: %s and %s both wrote with token %d", h.name, pidKey(last.pid), pidKey(h.pid), token)
	}
	w.maxToken[h.name], w.lastWriter[h.name] = token, h
	w.writes++
}

// believes reports whether node's own view says name's lease for pid
// runs: its Registry holds it with a deadline ahead, or its store holds
// pid's value (the store never returns a value past its lease).
func believes(r *registry.Registry, name string, pid *actor.PID) bool {
	if l, ok := r.Owned(name); ok && l.PID.Equal(pid) && l.Deadline.After(time.Now()) {
		return true
	}
	v, err := r.Locker().DirtyRead(r.Key(name))
	return err == nil && string(v) == "\x01"+pid.Address+"\x00"+pid.Id
}

// observe records one WhereIs on node and checks it against what the
// node believes just before and just after, and against what the node
// resolved the name to before.
func (w *world) observe(node int, r *registry.Registry, name string) {
	var seen *actor.PID
	w.mu.Lock()
	hs := w.byName[name]
	w.mu.Unlock()
	// What the node believes of each known holder before the lookup.
	pre := make([]bool, len(hs))
	for i, h := range hs {
		pre[i] = believes(r, name, h.pid)
	}
	seen = r.WhereIs(name)
	at := time.Now()
	post := seen != nil && believes(r, name, seen)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.judge(node, name, hs, pre, seen, post, at)
}

// judge checks one lookup (w.mu held): node resolved name to seen at
// time at; pre says whether the node believed each of hs (name's known
// holders) held the name before the lookup, post whether it believed
// seen held it after.
func (w *world) judge(node int, name string, hs []*holder, pre []bool, seen *actor.PID, post bool, at time.Time) {
	w.observations++
	if seen == nil {
		return
	}
	h := w.holders[pidKey(seen)]
	if h == nil {
		w.unknown++ // registered, Spawn not returned yet
		return
	}
	if !h.gone.IsZero() && at.After(h.gone) {
		w.resolvedGone++
	}
	// (i) Never a holder whose lease ended on this node: neither the
	// Registry nor the store held it before the lookup nor after it.
	idx := -1
	for i, x := range hs {
		if x == h {
			idx = i
		}
	}
	if idx >= 0 && !pre[idx] && !post {
		w.violate("node %d resolved %s to %s (gone %v) past its own lease for it", node, name, pidKey(seen), !h.gone.IsZero())
	}
	// (iii) No resurrection: never back to an older holder.
	k := [2]string{fmt.Sprint(node), name}
	if h.token < w.seenToken[k] {
		w.violate("node %d resolved %s back to %s (token %d) after a holder with token %d", node, name, pidKey(seen), h.token, w.seenToken[k])
	}
	w.seenToken[k] = max(w.seenToken[k], h.token)
}

func (w *world) markGone(node int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	for _, h := range w.holders {
		if h.node == node && !h.ended && h.gone.IsZero() {
			h.gone = now
		}
	}
}

// live returns the holders of node whose tenure runs.
func (w *world) live(node int) []*holder {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []*holder
	for _, h := range w.holders {
		if h.node == node && !h.ended {
			out = append(out, h)
		}
	}
	return out
}

// loop runs fn every period on its own goroutine until stop closes.
func loop(wg *sync.WaitGroup, stop <-chan struct{}, period time.Duration, fn func()) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				fn()
			}
		}
	}()
}

// TestFaultRegistryNodeLoss spawns named servers on three nodes (all
// masters, W=2) with short leases under random drops, delays and
// duplicates between the peers; partitions node 1 away and heals it,
// pauses node 0's peer and resumes it, then crashes node 2. Liveness
// (bounded waits): the partitioned or paused node's servers lose their
// names and stop, the lost names stop resolving on the others and are
// taken over, the healed or resumed node sees the new holders, the
// paused node stops resolving names its store's leases no longer cover,
// the crashed node's names expire and are taken over. Safety (checked
// at every observation): see world.observe and world.write.
func TestFaultRegistryNodeLoss(t *testing.T) {
	testcluster.SkipUnderRace(t)
	seed := registrySeed(t)
	f := lockertest.NewFaults(seed)
	c := registrytest.NewWith(t, 3, []lockeractor.Option{
		lockertest.WithFaults(f),
		lockeractor.WithRequestTimeout(500 * time.Millisecond),
		lockeractor.WithWriteLockTimeout(time.Second),
		lockeractor.WithReplicationInterval(50 * time.Millisecond),
	})
	const (
		perNode   = 4
		lease     = 2 * time.Second
		threshold = time.Second
		bound     = time.Minute // liveness waits: generous, a loaded CI machine stalls for seconds
	)
	w := newWorld()
	props := actor.PropsFromFunc(func(ctx actor.Context) {
		if _, ok := ctx.Message().(*actor.Stopped); ok {
			w.end(ctx.Self(), false)
		}
	})
	var subs []*eventstream.Subscription
	for i := range c.Nodes {
		sys := c.System(i)
		subs = append(subs, sys.EventStream.Subscribe(func(evt any) {
			if nl, ok := evt.(registry.NameLost); ok {
				w.end(nl.PID, true)
			}
		}))
	}
	var names []string
	spawn := func(node int, name string) *holder {
		t.Helper()
		var h *holder
		testcluster.Eventually(t, bound, func() bool {
			pid, err := server.Spawn(c.System(node).Root, name, props,
				server.WithLeaseLength(lease), server.WithLeaseThreshold(threshold), server.WithRequestTimeout(3*time.Second))
			if err != nil {
				t.Logf("spawning %s on node %d: %v (again)", name, node, err)
				return false
			}
			l, ok := c.Registry(node).Owned(name)
			if !ok || !l.PID.Equal(pid) {
				return false // lost already; the actor stops
			}
			h = &holder{name: name, node: node, pid: pid, token: l.Token}
			w.add(h)
			return true
		}, "%s spawned on node %d", name, node)
		return h
	}
	for node := range c.Nodes {
		for i := range perNode {
			name := fmt.Sprintf("svc-%d-%d", node, i)
			names = append(names, name)
			spawn(node, name)
		}
	}
	f.Drop(lockertest.AnyAddress, lockertest.AnyAddress, 0.01)
	f.Duplicate(lockertest.AnyAddress, lockertest.AnyAddress, 0.02)
	f.Delay(lockertest.AnyAddress, lockertest.AnyAddress, 0, 3*time.Millisecond)

	// One observer and one writer per node, each stoppable on its own.
	var wg sync.WaitGroup
	stops := make([]chan struct{}, len(c.Nodes))
	for node := range c.Nodes {
		stops[node] = make(chan struct{})
		r := c.Registry(node)
		loop(&wg, stops[node], 5*time.Millisecond, func() {
			for _, name := range names {
				w.observe(node, r, name)
			}
		})
		loop(&wg, stops[node], 10*time.Millisecond, func() {
			for _, h := range w.live(node) {
				if l, ok := r.Owned(h.name); ok && l.PID.Equal(h.pid) && l.Deadline.After(time.Now()) {
					w.write(h, l.Token, l.Deadline)
				}
			}
		})
	}
	stopAll := func() {
		for _, s := range stops {
			select {
			case <-s:
			default:
				close(s)
			}
		}
		wg.Wait()
	}
	// report stops the observers and writers, then logs the summary and
	// every violation; it runs also when a liveness wait gives up.
	var reportOnce sync.Once
	report := func() {
		reportOnce.Do(func() {
			stopAll()
			for i, sub := range subs {
				c.System(i).EventStream.Unsubscribe(sub)
			}
			st := f.Stats()
			w.mu.Lock()
			defer w.mu.Unlock()
			// The summary line CI adds up: a history per name; operations
			// are WhereIs observations and fenced writes.
			sum := linearize.Summary{Histories: len(names), Operations: w.observations + w.writes, Faults: int(st.Total()), Violations: len(w.violations), Runs: 1}
			if w.observations > 0 && w.writes > 0 && st.Total() > 0 {
				sum.Judged = 1 // it checked lookups and writes under faults
			}
			fmt.Printf("registry faults: %v (%d holders, %d observations, %d of gone holders, %d writes, %d fenced; %d dropped, %d partitioned, %d delayed, %d duplicated, %d stashed)\n",
				sum,
				len(w.holders), w.observations, w.resolvedGone, w.writes, w.fenced,
				st.Dropped, st.Partitioned, st.Delayed, st.Duplicated, st.Stashed)
			for i, v := range w.violations {
				if i == 20 {
					t.Errorf("... and %d more", len(w.violations)-i)
					break
				}
				t.Error(v)
			}
		})
	}
	defer report()

	resolves := func(node int, name string, want *actor.PID) bool {
		got := c.Registry(node).WhereIs(name)
		if want == nil {
			return got == nil
		}
		return want.Equal(got)
	}
	// takeOver waits until the survivors forget the names of lost, then
	// spawns each on a survivor in turn and waits until every survivor
	// resolves it to the new holder.
	takeOver := func(lost []*holder, survivors []int) {
		t.Helper()
		for i, h := range lost {
			for _, s := range survivors {
				testcluster.Eventually(t, bound, func() bool { return resolves(s, h.name, nil) },
					"node %d forgets %s of node %d", s, h.name, h.node)
			}
			n := spawn(survivors[i%len(survivors)], h.name)
			for _, s := range survivors {
				testcluster.Eventually(t, bound, func() bool { return resolves(s, h.name, n.pid) },
					"node %d resolves %s to its new holder", s, h.name)
			}
		}
	}

	// Let the random faults fire before the scenario goes on: at these
	// rates a run of a few hundred messages may see no drop at all (at 1 %,
	// 250 messages pass untouched 8 % of the time), and a run that never
	// dropped a message judged nothing about drops. The renewals keep
	// messages flowing, so this wait ends within seconds.
	testcluster.Eventually(t, bound, func() bool {
		st := f.Stats()
		return st.Dropped > 0 && st.Duplicated > 0 && st.Delayed > 0
	}, "the renewals meet a drop, a duplicate and a delay")

	// (a) Partition node 1 away from nodes 0 and 2.
	lost := w.live(1)
	require.NotEmpty(t, lost, "node 1 holds no name to lose")
	w.markGone(1)
	f.Partition(c.Addrs(1), c.Addrs(0, 2))
	for _, h := range lost {
		testcluster.Eventually(t, bound, func() bool {
			w.mu.Lock()
			defer w.mu.Unlock()
			return h.ended && h.lost
		}, "%s on the partitioned node loses its name and stops", h.name)
		testcluster.Eventually(t, bound, func() bool { return resolves(1, h.name, nil) },
			"the partitioned node forgets %s", h.name)
	}
	takeOver(lost, []int{0, 2})
	f.Heal()
	for _, h := range lost {
		w.mu.Lock()
		n := w.byName[h.name][len(w.byName[h.name])-1]
		w.mu.Unlock()
		testcluster.Eventually(t, bound, func() bool { return resolves(1, h.name, n.pid) },
			"the healed node resolves %s to its new holder", h.name)
	}
	back := spawn(1, "svc-1-back")
	names = append(names, back.name)

	// (b) Pause node 0's peer, as a long GC pause would: its store
	// applies nothing and fires no expiry timer, so its watch reports
	// nothing either; its Registry runs on. Node 0 must stop resolving
	// every name once its own store's lease for it has passed, and its
	// own holders lose their names.
	lost = w.live(0)
	require.NotEmpty(t, lost, "node 0 holds no name to lose")
	w.markGone(0)
	f.Pause(c.Nodes[0].Addr)
	for _, name := range names {
		testcluster.Eventually(t, bound, func() bool { return resolves(0, name, nil) },
			"the paused node stops resolving %s", name)
	}
	for _, h := range lost {
		testcluster.Eventually(t, bound, func() bool {
			w.mu.Lock()
			defer w.mu.Unlock()
			return h.ended && h.lost
		}, "%s on the paused node loses its name and stops", h.name)
	}
	takeOver(lost, []int{1, 2})
	f.Resume(c.Nodes[0].Addr)
	for _, h := range lost {
		w.mu.Lock()
		n := w.byName[h.name][len(w.byName[h.name])-1]
		w.mu.Unlock()
		testcluster.Eventually(t, bound, func() bool { return resolves(0, h.name, n.pid) },
			"the resumed node resolves %s to its new holder", h.name)
	}

	// (c) Crash node 2: its actors never release their names.
	lost = w.live(2)
	require.NotEmpty(t, lost, "node 2 holds no name to lose")
	close(stops[2])
	w.markGone(2)
	c.Nodes[2].Stop()
	c.Registry(2).Stop()
	takeOver(lost, []int{0, 1})

	report()
	// The run judged something: every fault it configures fired, and
	// the checks above ran on writes and lookups.
	st := f.Stats()
	require.NotZero(t, st.Partitioned, "no message was partitioned away")
	require.NotZero(t, st.Dropped, "no message was dropped")
	require.NotZero(t, st.Duplicated, "no message was duplicated")
	require.NotZero(t, st.Delayed, "no message was delayed")
	require.NotZero(t, st.Stashed, "no message waited for a paused peer")
	w.mu.Lock()
	defer w.mu.Unlock()
	require.NotZero(t, w.writes, "no holder wrote to the fenced resource")
	require.NotZero(t, w.observations, "no lookup was checked")
}
