package core

import (
	"testing"
	"time"

	"github.com/protoactor-locker/locker/messages"
)

// TestCatchUpByWaiting checks the rule that a master restarted with
// empty memory that cannot copy the leases it needs (W or more masters
// restarted at once: the others catch up too and serve no copies) votes
// again once catchUpWait has passed since it started, when every lease
// and promise of its earlier life has ended; and not a moment before.
func TestCatchUpByWaiting(t *testing.T) {
	cfg := testConfig()
	cfg.MaxLease = time.Minute
	n := mastersWith(t, cfg, 2, n1, n2, n3)
	if o := n.do1(n1, lockOp("held", "v", time.Minute)); !o.OK {
		t.Fatalf("lock: %+v", o)
	}
	// Two of the three masters restart at once, with empty memory.
	n.stop(n2)
	n.stop(n3)
	n.pending()
	restart, sent := n.clock.now, len(n.sent)
	n.start(n2)
	n.start(n3)
	wait := time.Duration(n.core(n2).catchUpWait())
	if min := cfg.MaxLease + cfg.WriteLockTimeout; wait < min {
		t.Fatalf("catchUpWait %v, want at least MaxLease + WriteLockTimeout = %v", wait, min)
	}
	n.sleep(2 * time.Second) // n1's gossip: they learn the configuration
	for _, a := range []string{n2, n3} {
		if !n.core(a).CatchingUp() {
			t.Fatalf("%s votes without copying right after its restart", a)
		}
	}
	// Until the wait ends every write fails, refused for catching up,
	// and neither restarted master promises anything.
	for n.clock.now.Add(10 * time.Second).Before(restart.Add(wait)) {
		o := n.do1(n1, lockOp("new", "v", time.Second))
		if o.OK || o.Reasons[n2] != messages.Reason_REASON_CATCHING_UP || o.Reasons[n3] != messages.Reason_REASON_CATCHING_UP {
			t.Fatalf("at %v after the restart: %+v, want refused by both for catching up", n.clock.now.Sub(restart), o)
		}
		n.sleep(10 * time.Second)
	}
	n.sleep(restart.Add(wait - time.Millisecond).Sub(n.clock.now))
	for _, a := range []string{n2, n3} {
		if !n.core(a).CatchingUp() {
			t.Fatalf("%s stopped catching up %v after its restart, before catchUpWait %v", a, n.clock.now.Sub(restart), wait)
		}
	}
	for _, p := range n.sent[sent:] {
		if pr, ok := p.msg.(*messages.Promise); ok && (p.from == n2 || p.from == n3) {
			for _, it := range pr.GetItems() {
				if it.GetGranted() {
					t.Fatalf("a restarted master promised while catching up: %v", p)
				}
			}
		}
	}
	n.sleep(time.Millisecond)
	for _, a := range []string{n2, n3} {
		if n.core(a).CatchingUp() {
			t.Fatalf("%s still catching up at catchUpWait after its restart", a)
		}
		if len(n.core(a).syncs) != 0 {
			t.Fatalf("%s still runs its copy: %v", a, n.core(a).syncs)
		}
	}
	if o := n.do1(n1, lockOp("new", "v", time.Second)); !o.OK {
		t.Fatalf("a write after the wait: %+v", o)
	}
	if o := n.do1(n2, lockOp("other", "v", time.Second)); !o.OK {
		t.Fatalf("a write coordinated by a restarted master after the wait: %+v", o)
	}
	n.checkInvariants()
}

// TestCatchUpAfterTheWaitCopiesNothing checks that a master whose Core
// has run longer than catchUpWait when it first learns a configuration
// votes at once: whatever its earlier life granted has ended.
func TestCatchUpAfterTheWaitCopiesNothing(t *testing.T) {
	cfg := testConfig()
	cfg.MaxLease = time.Second
	n := mastersWith(t, cfg, 2, n1, n2, n3)
	n.stop(n3)
	n.start(n3)
	n.advance(time.Duration(n.core(n3).catchUpWait()))
	n.core(n3).Step(n1, &messages.ConfigCommit{Next: toProto(n.core(n1).Membership())})
	n.pending()
	if n.core(n3).CatchingUp() || countSent[*messages.SnapshotRequest](n, n3, "") != 0 {
		t.Fatal("n3 catches up although its earlier life's leases have all ended")
	}
	n.run()
	if o := n.do1(n1, lockOp("k", "v", time.Second)); !o.OK || o.Votes != 3 {
		t.Fatalf("lock: %+v, want the votes of all three masters", o)
	}
}

// TestCatchUpWaitCoversDrift checks that catchUpWait covers MaxLease, the
// write-lock timeout and the request timeout as another clock may
// measure them, with rates off by 1 % each way (a factor 1.01/0.99), and
// that a MaxLease above MaxLeaseLimit counts as the limit, not as the
// default.
func TestCatchUpWaitCoversDrift(t *testing.T) {
	for _, lease := range []time.Duration{time.Second, time.Minute, time.Hour, MaxLeaseLimit, 2 * MaxLeaseLimit} {
		cfg := testConfig()
		cfg.MaxLease = lease
		cfg.Clock = &fakeClock{now: t0}
		c := New(cfg)
		want := min(lease, MaxLeaseLimit)
		if got := c.maxLease(); got != want {
			t.Errorf("MaxLease %v: maxLease() = %v, want %v", lease, got, want)
		}
		d := float64(want + cfg.WriteLockTimeout + cfg.RequestTimeout)
		if got := float64(c.catchUpWait()); got < d*1.01/0.99 {
			t.Errorf("MaxLease %v: catchUpWait %v, less than %v", lease, time.Duration(got), time.Duration(d*1.01/0.99))
		}
	}
}
