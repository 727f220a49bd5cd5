package tests

// A rolling restart over real remote: every master restarted in turn,
// repeatedly, with empty memory, under contended traffic, one
// coordinator's clock running ahead of the others'.

import (
	"context"
	"fmt"
	"math/rand/v2"
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

// The shape of the rolling restart: its masters (W is their majority),
// how often every one of them is restarted, and the leases of its
// contended keys.
const (
	rollingMasters = 5
	rollingRounds  = 4
	rollingShort   = 30 * time.Millisecond  // shortest short lease; up to 4 times as long
	rollingLong    = 500 * time.Millisecond // shortest long lease; up to twice as long
)

// TestFaultRollingRestart restarts every master in turn with empty
// memory, rollingRounds times over, under contended traffic. Five
// masters, W = 3; one of them, the fast coordinator F (drawn from the
// seed), runs its clock 50-99 ms ahead of the others' (its fencing
// tokens are the larger ones); messages between peers are delayed by up
// to 3 ms (reordered). Two clients per node lock four hot keys, half the
// time with a short lease (30-120 ms; released after a short while, or
// left to run out) and half the time with a long one (0.5-1 s; held for
// most of it, then released); one checked client per node writes two
// keys with leases longer than the run (Lock, Update, ExtendLease,
// Release; see checkedClient).
//
// A restart stops a master's Locker and starts a new one on the same
// address with empty memory; it catches up (copies the leases of three
// of the four others) before it votes again, which the test waits for
// before the next restart. Two restarts of another master in three are
// trapped, as in the residue scenario of a fast coordinator: F loses its
// messages to the next two masters to restart, the restarted master's
// messages to F are delayed a few milliseconds, F starts a Lock with a
// long lease, and F pauses (its inbound messages held) until the
// restarted master votes again. F's Lock is then promised by the
// restarted master's earlier life and one more master, and F decides it,
// with its larger token, after the new life caught up and may have
// promised another client's Lock of the key.
//
// Checked: holders of one key never overlap and their tokens grow in
// holding order (history.check: a holder holds from its Lock's answer
// until its lease ends, counted from its call, or until it calls
// Release); a holder's Release called well before its lease ends is not
// refused as not held; every holder's token is accepted by the protected
// resource; no lease a checked client surely holds is refused as not
// held; the checked keys' histories are linearizable (porcupine). Replay
// the schedule with -fault.seed=N (the interleaving is the machine's).
func TestFaultRollingRestart(t *testing.T) { seeded(t, testFaultRollingRestart) }

func testFaultRollingRestart(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x726f6c6c))
	fast := rng.IntN(rollingMasters)
	ahead := time.Duration(50+rng.IntN(50)) * time.Millisecond
	f := lockertest.NewFaults(seed)
	opts := func(i int) []lockeractor.Option {
		// Gossip every 30 ms: a restarted master learns the
		// configuration, and so catches up, within a few tens of
		// milliseconds of F's clock lead.
		o := append(faultOptions(f), lockeractor.WithReplicationInterval(3*time.Millisecond))
		if i == fast {
			o = append(o, lockeractor.WithClock(testcluster.AheadClock{By: ahead}))
		}
		return o
	}
	c := startFaultCluster(t, rollingMasters, opts)
	t.Cleanup(f.Reset) // before the nodes stop (cleanups run last first): a failed require may leave F paused
	f.Delay(lockertest.AnyAddress, lockertest.AnyAddress, 0, 3*time.Millisecond)
	t.Logf("seed %d: node %d (%s) runs %v ahead", seed, fast, c.Nodes[fast].Addr, ahead)

	hot := []string{"roll0", "roll1", "roll2", "roll3"}
	long := checkedKeys("rlong", 2)
	rec := newRecorder(long...)
	h := &history{byNode: make([]atomic.Int64, rollingMasters)}
	res := newResource()
	refs := make([]*lockerRef, rollingMasters)
	for i := range refs {
		refs[i] = fixedRef(c.Peer(i))
	}

	clients := newLoadGroup()
	var load checkedLoad
	for node := range rollingMasters {
		load.add(&clients.WaitGroup, refs[node], node, seed, long, rec, h, res, clients.stopped)
		for cl := range 2 {
			rc := &rollingClient{refs: refs, node: node, name: fmt.Sprintf("roll.n%d.%d", node, cl), id: rec.client(),
				rng: rand.New(rand.NewPCG(seed, uint64(100+node*2+cl))), keys: hot, rec: rec, h: h, res: res, lost: &load}
			clients.Add(1)
			go func() { defer clients.Done(); rc.run(clients.stopped) }()
		}
	}
	defer clients.halt() // also when a require fails: no client outlives the test

	all := make([]int, rollingMasters)
	for i := range all {
		all[i] = i
	}
	progress := func(what string) {
		t.Helper()
		grants, writes := h.count(all...), load.succeeded()
		testcluster.Eventually(t, 10*time.Second, func() bool {
			return h.count(all...) >= grants+3 && load.succeeded() >= writes+3
		}, "3 more grants and 3 more checked writes (%s)", what)
	}

	restarts, paused := 0, 0
	probes := 0
	progress("before the restarts")
	for round := range rollingRounds {
		for i := range rollingMasters {
			// Two restarts of another master in three are trapped: F
			// loses its messages to the next two masters to restart
			// (not i), i's messages to F are delayed by 4-8 ms, F starts
			// a Lock (a key free on F if it can, a long lease), and
			// about a millisecond later (before F promises much else
			// with larger tokens) F pauses until i votes again. So F's
			// Lock is promised by i and one more master only, i's
			// promise reaches F after i restarted, and F decides the
			// Lock (with its larger token) once i's new life caught up
			// and may have promised another client's Lock of the key.
			pause := i != fast && rng.IntN(3) > 0
			var cut []string
			if pause {
				paused++
				for k := 1; len(cut) < 2; k++ {
					if j := (i + k) % rollingMasters; j != fast {
						cut = append(cut, c.Nodes[j].Addr)
					}
				}
				for _, a := range cut {
					f.Drop(c.Nodes[fast].Addr, a, 1)
				}
				f.Delay(c.Nodes[i].Addr, c.Nodes[fast].Addr, 4*time.Millisecond, 8*time.Millisecond)
				key := hot[rng.IntN(len(hot))]
				for _, k := range hot {
					if _, err := c.Peer(fast).DirtyRead(k); err != nil {
						key = k
						break
					}
				}
				trap := &rollingClient{refs: refs, node: fast, name: fmt.Sprintf("trap.%d", paused), id: rec.client(),
					rng: rand.New(rand.NewPCG(seed, uint64(10_000+paused))), keys: hot, rec: rec, h: h, res: res, lost: &load}
				lease := rollingLong + time.Duration(rng.Int64N(int64(rollingLong)))
				clients.Add(1)
				go func(l *lockeractor.Locker) { defer clients.Done(); trap.cycle(l, trap.name, key, lease, false) }(c.Peer(fast))
				time.Sleep(time.Duration(500+rng.IntN(1000)) * time.Microsecond) // the fault's schedule, not a wait
				f.Pause(c.Nodes[fast].Addr)
				time.Sleep(10 * time.Millisecond) // i's delayed promise reaches F's stash (a restart would drop it)
				f.Delay(c.Nodes[i].Addr, c.Nodes[fast].Addr, 0, 0)
			}
			refs[i].set(nil)
			at := time.Now()
			restartLocker(t, c, i, opts(i)...)
			restarts++
			// It votes again once it caught up: a Lock it coordinates
			// then counts the votes of every master not paused.
			voters := rollingMasters - btoi(pause)
			eventually(t, func() error {
				probes++
				key := fmt.Sprintf("probe/%d/%d", i, probes)
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				defer cancel()
				r, err := c.Peer(i).Lock(ctx, key, []byte("probe"), time.Second)
				if err != nil {
					return fmt.Errorf("round %d, node %d restarted: probe: %w", round, i, err)
				}
				if r.Votes < voters {
					return fmt.Errorf("round %d, node %d restarted: probe %+v, want %d votes", round, i, r, voters)
				}
				return nil
			})
			if pause {
				f.Resume(c.Nodes[fast].Addr)
				for _, a := range cut {
					f.Drop(c.Nodes[fast].Addr, a, 0)
				}
			}
			t.Logf("round %d: node %d restarted at %s, votes again after %v (trapped: %v)", round, i, at.Format(time.StampMicro), time.Since(at).Round(time.Millisecond), pause)
			refs[i].set(c.Peer(i))
			progress(fmt.Sprintf("round %d, node %d restarted", round, i))
		}
	}
	clients.halt()

	checks := checkRun(h, res, &load, rec)
	violations, held, empty, lin := checks.violations, checks.held, checks.empty, checks.lin
	accepted, late := checks.accepted, checks.late
	s := f.Stats()
	t.Logf("%d restarts (%d trapped), %d probes; %d operations, %d grants (%d held, %d expired on arrival), %d resource writes accepted, %d late; "+
		"%d checked writes on %d keys (%d succeeded); faults %+v; %d violations",
		restarts, paused, probes, rec.hist.Len(), held+empty, held, empty, accepted, late, lin.Operations, lin.Keys, load.succeeded(), s, len(violations))
	printSummary(t, seed, linearize.RunSummary(lin, rec.hist.Len(), int(s.Total())+restarts, len(violations)))
	require.Empty(t, violations, "violations:\n%s", strings.Join(violations, "\n"))
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// rollingClient locks the hot keys of the rolling restart through its
// node's Locker (waiting while it is down), most often with a short
// lease, one Lock in three with a long one. A holder works a little,
// then releases (through any live node) or, with a short lease, lets it
// run out. Its grants are checked for overlap (history) and its tokens
// written to the protected resource.
type rollingClient struct {
	refs []*lockerRef
	node int
	name string
	id   int
	rng  *rand.Rand
	keys []string
	rec  *recorder
	h    *history
	res  *resource
	lost *checkedLoad // where a lease it surely held and lost is reported
}

// live returns the client's node's Locker, or another live one while it
// is down.
func (c *rollingClient) live() *lockeractor.Locker {
	for i := range c.refs {
		if l := c.refs[(c.node+i)%len(c.refs)].get(); l != nil {
			return l
		}
	}
	return nil
}

func (c *rollingClient) run(stopped func() bool) {
	for seq := 0; !stopped(); seq++ {
		l := c.refs[c.node].get()
		if l == nil || l.Epoch() == 0 { // down, or restarted and not configured yet
			time.Sleep(5 * time.Millisecond) // pacing only
			continue
		}
		key := c.keys[c.rng.IntN(len(c.keys))]
		lease, short := rollingShort+time.Duration(c.rng.Int64N(int64(3*rollingShort))), true
		if c.rng.IntN(2) == 0 {
			lease, short = rollingLong+time.Duration(c.rng.Int64N(int64(rollingLong))), false
		}
		c.cycle(l, fmt.Sprintf("%s.%d", c.name, seq), key, lease, short)
	}
}

// cycle locks key through l with value who and lease, holds it for a
// while and releases it (a short lease it may let run out).
func (c *rollingClient) cycle(l *lockeractor.Locker, who, key string, lease time.Duration, short bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	invoke := time.Now()
	r, err := c.rec.write(ctx, l, c.id, lockeractor.Op{Kind: lockeractor.OpLock, Key: key, Value: []byte(who), Lease: lease})
	ok := time.Now()
	c.h.ops.Add(1)
	switch linearize.OutcomeOf(err) {
	case linearize.OK:
		g := &grant{key: key, who: who, node: c.node, token: r.Token, invoke: invoke, ok: ok, end: invoke.Add(lease)}
		c.h.add(g)
		c.h.note(g, "locked through node %d: %+v, lease %v", c.node, r, lease)
		c.res.write(key, r.Token, g.end, who)
		// The holder works: a short while with a short lease, most
		// of a long one (pacing only).
		work := time.Duration(c.rng.Int64N(int64(min(lease/2, 50*time.Millisecond))))
		if !short {
			work = lease*7/10 + time.Duration(c.rng.Int64N(int64(lease*15/100)))
		}
		time.Sleep(work)
		// A short lease is left to run out one time in four.
		if !short || c.rng.IntN(4) > 0 {
			at, leaseEnd := time.Now(), g.end // g.end before setEnd moves it to at
			c.h.setEnd(g, at)
			err := c.release(ctx, key, who)
			// The masters refused it before it returned; a lease ends on
			// them no earlier than leaseEnd (counted from the Lock's call,
			// theirs from its commit). A refusal returned before leaseEnd
			// refused a lease that still lived there: lost. A Release
			// that waited out a paused peer past leaseEnd may be refused.
			if done := time.Now(); refusedAsNotHeld(err) && done.Before(leaseEnd) {
				c.lost.mu.Lock()
				c.lost.lost = append(c.lost.lost, fmt.Sprintf("%s: %s's Release, refused as not held %v before its lease ended (called %v before): %v",
					key, who, leaseEnd.Sub(done).Round(time.Millisecond), leaseEnd.Sub(at).Round(time.Millisecond), err))
				c.lost.mu.Unlock()
			}
		}
	case linearize.Unknown: // it may hold the key: free it
		_ = c.release(ctx, key, who)
	default:
		time.Sleep(time.Duration(1+c.rng.IntN(10)) * time.Millisecond) // pacing only
	}
}

// release releases key's value through a live node and returns the
// error of the Release.
func (c *rollingClient) release(ctx context.Context, key, value string) error {
	l := c.live()
	if l == nil {
		return lockeractor.ErrStopped
	}
	_, err := c.rec.write(ctx, l, c.id, lockeractor.Op{Kind: lockeractor.OpRelease, Key: key, Value: []byte(value)})
	c.h.ops.Add(1)
	return err
}
