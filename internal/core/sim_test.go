package core

import (
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRandomSchedules runs random writes on three masters (W=2) or five
// (W=3) and a replica, under message reordering between peers, lost
// messages, false unreachable reports and passing time, and checks after
// every step:
//
//   - a lock is never granted while another holder's lease (counted from
//     when it called Lock or ExtendLease) runs, unless that holder asked
//     for a release;
//   - Lock and Update tokens are strictly greater than every token
//     returned before for the key, unless the answer came so late that
//     the holder's lease had run out; ExtendLease and Release return the
//     holder's;
//   - every write answers exactly once, within RequestTimeout;
//   - every Core's bookkeeping is consistent.
//
// The schedules come from fixed seeds, so a failure replays exactly.
func TestRandomSchedules(t *testing.T) {
	seeds := 80
	if testing.Short() {
		seeds = 10
	}
	for seed := range seeds {
		t.Run(fmt.Sprintf("seed %d keeps leases exclusive, tokens fenced and answers single", seed), func(t *testing.T) {
			if seed%2 == 0 {
				runSchedule(t, int64(seed), 1000, 3, 2)
			} else {
				runSchedule(t, int64(seed), 1000, 5, 3)
			}
		})
	}
}

// simCall is one write of a schedule.
type simCall struct {
	op      Op
	from    string
	start   time.Time
	lineage string // the lock this write belongs to
	c       *call
}

// simKey is what the schedule knows about one key.
type simKey struct {
	lineages  int
	holder    string               // the lineage that last locked it successfully
	value     string               // the holder's value as last written successfully
	leaseEnd  map[string]time.Time // per lineage: the end of the lease it can count on
	released  map[string]bool      // per lineage: a release was asked for
	maxToken  uint64               // the largest token returned
	holderTok uint64               // the token of the holder's lock
	tokens    map[string][]uint64  // per lineage: the tokens its locks and updates may have stored
	asked     map[string]time.Time // per lineage: the latest lease end asked for
}

// simTrace is how many steps a failure shows (raise it to debug a seed).
var simTrace = 40

// runSchedule runs a random schedule of steps on the first m of n1..n5 as
// masters under W = w, and the next peer as a replica.
func runSchedule(t testing.TB, seed int64, steps, m, w int) {
	rng := rand.New(rand.NewSource(seed))
	all := []string{n1, n2, n3, n4, n5, "10.0.0.6:1"}
	peers := all[:m+1]
	n := newNetwork(t, peers...)
	n.configure(n1, peers[:m], peers[m:], w)
	n.sent = nil
	keys := map[string]*simKey{}
	for _, k := range []string{"a", "b"} {
		keys[k] = &simKey{leaseEnd: map[string]time.Time{}, released: map[string]bool{}, tokens: map[string][]uint64{}, asked: map[string]time.Time{}}
	}
	var calls []*simCall
	trace := []string{}
	fail := func(format string, args ...any) {
		t.Helper()
		tail := trace[max(0, len(trace)-simTrace):]
		t.Fatalf("seed %d: %s\nlast steps:\n  %s", seed, fmt.Sprintf(format, args...), strings.Join(tail, "\n  "))
	}

	// check runs when a call answered.
	check := func(sc *simCall) {
		o := sc.c.outs[0]
		k := keys[sc.op.Key]
		trace = append(trace, fmt.Sprintf("%v answered %v %s: ok=%v phase=%v votes=%d commits=%d token=%d reasons=%v",
			n.clock.now.Sub(t0), sc.op.Kind, sc.lineage, o.OK, o.Phase, o.Votes, o.Commits, o.Token, o.Reasons))
		if (sc.op.Kind == kLock || sc.op.Kind == kUpdate) && o.Phase == PhaseCommit {
			// Stored on some masters, even if it failed.
			k.tokens[sc.lineage] = append(k.tokens[sc.lineage], o.Token)
		}
		if !o.OK {
			return
		}
		switch sc.op.Kind {
		case kLock:
			// The holder has the key from the answer to the end of its
			// lease, counted from its call: those spans must not overlap.
			own := sc.start.Add(time.Duration(sc.op.LeaseMs) * time.Millisecond)
			for l, end := range k.leaseEnd {
				if l != sc.lineage && !k.released[l] && n.clock.now.Before(end) && n.clock.now.Before(own) {
					fail("lock %s of %q granted at %v while %s holds it until %v", sc.lineage, sc.op.Key, n.clock.now.Sub(t0), l, end.Sub(t0))
				}
			}
			fallthrough
		case kUpdate:
			// A token not above one returned before may come only to a
			// holder whose lease already ran out (an answer that came
			// late); fencing then refuses it, as it should.
			end := k.leaseEnd[sc.lineage]
			if sc.op.Kind == kLock {
				end = sc.start.Add(time.Duration(sc.op.LeaseMs) * time.Millisecond)
			}
			if o.Token <= k.maxToken && n.clock.now.Before(end) {
				fail("%v token %d not above the earlier %d, with the lease running until %v", sc.op.Kind, o.Token, k.maxToken, end.Sub(t0))
			}
			k.maxToken = max(k.maxToken, o.Token)
			if sc.op.Kind == kUpdate {
				if k.holder == sc.lineage { // not a late answer to an old holder
					k.value = string(sc.op.NewValue)
				}
			} else if o.Token > k.holderTok { // not a late answer to an old lock
				k.holder, k.value, k.holderTok = sc.lineage, string(sc.op.Value), o.Token
			}
		case kExtend, kRelease:
			// The holder's token: that of its lock or of one of its
			// updates (which one depends on how they interleaved).
			if !slices.Contains(k.tokens[sc.lineage], o.Token) {
				fail("%v token %d is none of the holder's %v", sc.op.Kind, o.Token, k.tokens[sc.lineage])
			}
		}
		if sc.op.Kind == kLock || sc.op.Kind == kExtend {
			// Extends never shorten in these schedules, so the lease
			// the holder can count on is the latest end it was granted.
			end := sc.start.Add(time.Duration(sc.op.LeaseMs) * time.Millisecond)
			if end.After(k.leaseEnd[sc.lineage]) {
				k.leaseEnd[sc.lineage] = end
			}
		}
	}

	for step := 0; step < steps; step++ {
		switch r := rng.Intn(100); {
		case r < 14 && len(calls) < 6: // a write
			key := []string{"a", "b"}[rng.Intn(2)]
			k := keys[key]
			from := peers[rng.Intn(len(peers))]
			var op Op
			lineage, _, _ := strings.Cut(k.value, ".") // values are lineage[.update]
			lease := time.Duration(100+rng.Intn(1400)) * time.Millisecond
			switch x := rng.Intn(10); {
			case x < 4 || k.holder == "":
				k.lineages++
				lineage = fmt.Sprintf("%s%d", key, k.lineages)
				op = lockOp(key, lineage, lease)
			case x < 6:
				// Never shorter than a lease asked for before: ExtendLease
				// sets the lease from now, so a shorter one gives up time
				// the holder was granted.
				if end := n.clock.now.Add(lease); end.Before(k.asked[lineage]) {
					lease = k.asked[lineage].Sub(n.clock.now) + lease
				}
				op = extendOp(key, k.value, lease)
			case x < 8:
				op = updateOp(key, k.value, fmt.Sprintf("%s.%d", lineage, step))
			default:
				op = releaseOp(key, k.value)
				k.released[lineage] = true
			}
			if end := n.clock.now.Add(time.Duration(op.LeaseMs) * time.Millisecond); op.LeaseMs > 0 && end.After(k.asked[lineage]) {
				k.asked[lineage] = end
			}
			sc := &simCall{op: op, from: from, start: n.clock.now, lineage: lineage, c: n.submit(from, op)}
			calls = append(calls, sc)
			trace = append(trace, fmt.Sprintf("%v %s submits %v %q %q->%q lease %dms (%s)", n.clock.now.Sub(t0), from, op.Kind, op.Key, op.Value, op.NewValue, op.LeaseMs, lineage))
		case r < 75: // deliver one message, any pair's oldest
			q := n.pending()
			if len(q) == 0 {
				continue
			}
			pick := q[rng.Intn(len(q))]
			for i, p := range n.queue {
				if p.from == pick.from && p.to == pick.to {
					n.queue = append(n.queue[:i:i], n.queue[i+1:]...)
					if rng.Intn(40) == 0 {
						trace = append(trace, fmt.Sprintf("%v lost %s", n.clock.now.Sub(t0), p))
					} else {
						trace = append(trace, fmt.Sprintf("%v deliver %s", n.clock.now.Sub(t0), p))
						n.deliver(p)
					}
					break
				}
			}
		case r < 77: // a false alarm
			a, b := peers[rng.Intn(len(peers))], peers[rng.Intn(len(peers))]
			trace = append(trace, fmt.Sprintf("%v %s told %s is unreachable", n.clock.now.Sub(t0), a, b))
			n.unreachable(a, b)
		default: // time passes
			d := time.Duration(rng.Intn(60)) * time.Millisecond
			n.advance(d)
			trace = append(trace, fmt.Sprintf("%v (+%v)", n.clock.now.Sub(t0), d))
		}
		// Answers (several in one step are checked in call order).
		keep := calls[:0]
		for _, sc := range calls {
			switch {
			case sc.c.calls > 1:
				fail("a write answered %d times", sc.c.calls)
			case sc.c.calls == 1:
				check(sc)
			case !n.clock.now.Before(sc.start.Add(n.cfg.RequestTimeout)):
				fail("%v from %s started at %v has no answer after RequestTimeout", sc.op.Kind, sc.from, sc.start.Sub(t0))
			default:
				keep = append(keep, sc)
			}
		}
		calls = keep
		n.checkInvariants()
	}
}
