package core

import (
	"slices"
	"testing"
	"time"

	"github.com/protoactor-locker/locker/messages"
)

// reconfigure runs Reconfigure from a peer until it answers (delivering
// messages and letting time pass, up to a bound).
func (n *network) reconfigure(from string, masters, replicas []string) ReconfigResult {
	n.t.Helper()
	var got *ReconfigResult
	n.onAnswer(from, n.core(from).Reconfigure(masters, replicas), func(a Answer) { got = &a.Reconfig })
	for i := 0; got == nil && i < 2000; i++ {
		n.run()
		if got == nil {
			n.sleep(10 * time.Millisecond)
		}
	}
	if got == nil {
		n.t.Fatal("Reconfigure did not answer")
	}
	return *got
}

// partition holds every message between the two groups (until healed).
func (n *network) partition(a, b []string) {
	n.holdIf = func(p packet) bool {
		return (slices.Contains(a, p.from) && slices.Contains(b, p.to)) || (slices.Contains(b, p.from) && slices.Contains(a, p.to))
	}
}

// heal delivers what the partition held and lets messages through.
func (n *network) heal() {
	n.holdIf = nil
	n.unholdAll()
	n.run()
}

func requireMembership(t *testing.T, c *Core, masters []string, w int) {
	t.Helper()
	m := c.Membership()
	if !slices.Equal(m.Masters, masters) || m.W != w || m.Joint() {
		t.Fatalf("%s has masters %v W=%d old %v, want %v W=%d", c.cfg.Self, m.Masters, m.W, m.OldMasters, masters, w)
	}
}

func TestReconfigure(t *testing.T) {
	t.Run("growing from one master to three copies the leases to the new masters", func(t *testing.T) {
		n := newNetwork(t, n1, n2, n3)
		lock := n.do1(n1, lockOp("k", "v", time.Minute))
		r := n.reconfigure(n1, []string{n1, n2, n3}, nil)
		if !r.OK {
			t.Fatalf("reconfigure: %+v", r)
		}
		for _, a := range []string{n1, n2, n3} {
			requireMembership(t, n.core(a), []string{n1, n2, n3}, 2)
			if v, ok := n.read(a, "k"); !ok || v != "v" {
				t.Fatalf("%s lacks the lease after the change", a)
			}
		}
		// The new masters know the token: the next one is larger.
		n.do1(n2, releaseOp("k", "v"))
		if o := n.do1(n3, lockOp("k", "w", time.Minute)); !o.OK || o.Token <= lock.Token {
			t.Fatalf("relock after the change: %+v (first token %d)", o, lock.Token)
		}
	})

	t.Run("a lease held by a bare quorum survives replacing most masters", func(t *testing.T) {
		n := masters(t, 2, n1, n2, n3)
		n.start(n4)
		n.start(n5)
		n.drop[n3] = true
		if o := n.do1(n1, lockOp("k", "holder", time.Minute)); !o.OK {
			t.Fatalf("lock: %+v", o)
		}
		delete(n.drop, n3)
		// Only n1 and n2 hold k. New masters: n3 (never had it), n4, n5.
		if r := n.reconfigure(n2, []string{n3, n4, n5}, nil); !r.OK {
			t.Fatalf("reconfigure: %+v", r)
		}
		for _, a := range []string{n3, n4, n5} {
			requireMembership(t, n.core(a), []string{n3, n4, n5}, 2)
		}
		o := n.do1(n4, lockOp("k", "thief", time.Minute))
		if o.OK {
			t.Fatal("a second holder got the key after the masters changed")
		}
		if o := n.do1(n5, extendOp("k", "holder", time.Minute)); !o.OK {
			t.Fatalf("the holder cannot extend under the new masters: %+v", o)
		}
	})

	t.Run("a write in flight survives a change of replicas only", func(t *testing.T) {
		n := newNetwork(t, n1, n2, n3, n4)
		n.configure(n1, []string{n1, n2, n3}, nil, 2)
		n.holdIf = func(p packet) bool { _, ok := p.msg.(*messages.Commit); return ok && p.from == n1 && p.to != n1 }
		c := n.submit(n1, lockOp("k", "v", time.Minute))
		n.run()
		if r := n.reconfigure(n2, []string{n1, n2, n3}, []string{n4}); !r.OK {
			t.Fatalf("reconfigure: %+v", r)
		}
		n.holdIf = nil
		n.unholdAll()
		n.run()
		n.sleep(10 * time.Millisecond)
		if o := c.one(); !o.OK {
			t.Fatalf("the write failed across a change that kept the masters: %+v", o)
		}
	})

	t.Run("changing only the replicas keeps the masters and bumps the epoch", func(t *testing.T) {
		n := masters(t, 2, n1, n2, n3)
		n.start(n4)
		before := n.core(n1).Membership().Epoch
		if r := n.reconfigure(n1, []string{n1, n2, n3}, []string{n4}); !r.OK {
			t.Fatalf("reconfigure: %+v", r)
		}
		m := n.core(n4).Membership()
		if m.Epoch != before+1 || !slices.Equal(m.Replicas, []string{n4}) {
			t.Fatalf("replica sees %+v", m)
		}
	})

	t.Run("the minority side of a partition cannot reconfigure, the majority can", func(t *testing.T) {
		all := []string{n1, n2, n3, n4, n5}
		n := masters(t, 3, all...)
		n.partition([]string{n1, n2}, []string{n3, n4, n5})
		if r := n.reconfigure(n1, []string{n1, n2}, nil); r.OK {
			t.Fatal("two of five masters changed the configuration")
		}
		if r := n.reconfigure(n3, []string{n3, n4, n5}, nil); !r.OK {
			t.Fatalf("three of five could not: %+v", r)
		}
		if o := n.do1(n1, lockOp("k", "minority", time.Minute)); o.OK {
			t.Fatal("the minority side granted a lock")
		}
		if o := n.do1(n4, lockOp("k", "majority", time.Minute)); !o.OK {
			t.Fatalf("the majority side cannot lock: %+v", o)
		}
		n.heal()
		// The minority learns the new configuration when it is refused.
		o := n.do1(n1, lockOp("k", "minority", time.Minute))
		if o.OK {
			t.Fatal("a stale peer granted a held key after healing")
		}
		n.run()
		requireMembership(t, n.core(n1), []string{n3, n4, n5}, 2)
		// n1 is in no configuration now: it coordinates nothing (see
		// ready.go) until a configuration names it again.
		if o := n.do1(n1, releaseOp("k", "majority")); !o.NotReady {
			t.Fatalf("n1, removed, coordinated a write: %+v", o)
		}
		if o := n.do1(n3, releaseOp("k", "majority")); !o.OK {
			t.Fatalf("the majority side cannot release: %+v", o)
		}
	})

	t.Run("two coordinators cannot both move away from one epoch", func(t *testing.T) {
		n := masters(t, 2, n1, n2, n3)
		n.start(n4)
		var a, b *ReconfigResult
		n.onAnswer(n1, n.core(n1).Reconfigure([]string{n1, n2, n4}, nil), func(r Answer) { a = &r.Reconfig })
		n.onAnswer(n3, n.core(n3).Reconfigure([]string{n2, n3, n4}, nil), func(r Answer) { b = &r.Reconfig })
		for i := 0; (a == nil || b == nil) && i < 2000; i++ {
			n.run()
			n.sleep(10 * time.Millisecond)
		}
		if a == nil || b == nil {
			t.Fatal("a reconfiguration did not answer")
		}
		// Both may end OK only if the second planned again from the first's
		// result; every peer must agree on one configuration in the end.
		want := n.core(n1).Membership()
		for _, x := range []string{n2, n3, n4} {
			m := n.core(x).Membership()
			if m.Epoch == want.Epoch && !slices.Equal(m.Masters, want.Masters) {
				t.Fatalf("two configurations with epoch %d: %v and %v", m.Epoch, want.Masters, m.Masters)
			}
		}
	})

	t.Run("a write prepared under the old epoch cannot commit after the move", func(t *testing.T) {
		n := newNetwork(t, n1, n2, n3, n4, n5)
		n.configure(n1, []string{n1, n2, n3}, []string{n4}, 2)
		// The replica n4 coordinates a lock; its commits are held.
		n.holdIf = func(p packet) bool { _, ok := p.msg.(*messages.Commit); return ok && p.from == n4 }
		c := n.submit(n4, lockOp("k", "old", time.Minute))
		n.run()
		if r := n.reconfigure(n2, []string{n1, n2, n5}, []string{n4}); !r.OK {
			t.Fatalf("reconfigure: %+v", r)
		}
		n.holdIf = nil
		n.unholdAll()
		n.run()
		n.sleep(time.Second)
		if o := c.one(); o.OK || o.Commits != 0 {
			t.Fatalf("a write of the old epoch committed after the masters moved on: %+v", o)
		}
		for _, a := range []string{n1, n2, n3, n5} {
			if _, ok := n.read(a, "k"); ok {
				t.Fatalf("%s applied a commit of the old epoch", a)
			}
		}
	})

	t.Run("a master restarted empty copies leases before it votes", func(t *testing.T) {
		n := masters(t, 2, n1, n2, n3)
		n.drop[n3] = true
		if o := n.do1(n1, lockOp("k", "holder", time.Minute)); !o.OK {
			t.Fatalf("lock: %+v", o)
		}
		delete(n.drop, n3)
		// n1 and n2 hold k; n2 restarts with empty memory.
		n.stop(n2)
		n.start(n2)
		first := n.do1(n3, lockOp("k", "thief", time.Minute))
		if first.OK {
			t.Fatal("the restarted master and the one that never had the key granted it twice")
		}
		n.run()
		n.sleep(time.Duration(n.core(n2).settleWait()) + 100*time.Millisecond)
		if n.core(n2).CatchingUp() {
			t.Fatal("n2 is still catching up")
		}
		if v, ok := n.read(n2, "k"); !ok || v != "holder" {
			t.Fatal("n2 did not copy the lease")
		}
		if o := n.do1(n3, lockOp("k", "thief", time.Minute)); o.OK {
			t.Fatal("a second holder after n2 caught up")
		}
	})

	t.Run("a reconfiguration left half-done resumes from the joint configuration", func(t *testing.T) {
		n := masters(t, 2, n1, n2, n3)
		n.start(n4)
		n.do1(n1, lockOp("k", "v", time.Minute))
		// Drop every Sync of the first coordinator, sent again or not: the
		// change stops in the joint configuration.
		n.holdIf = func(p packet) bool { _, ok := p.msg.(*messages.Sync); return ok && p.from == n1 }
		var r *ReconfigResult
		n.onAnswer(n1, n.core(n1).Reconfigure([]string{n2, n3, n4}, nil), func(a Answer) { r = &a.Reconfig })
		n.run()
		if !n.core(n2).Membership().Joint() {
			t.Fatal("n2 did not enter the joint configuration")
		}
		// Under the joint configuration the holder can still extend,
		// although n4 has not copied the lease yet.
		if o := n.do1(n2, extendOp("k", "v", time.Minute)); !o.OK {
			t.Fatalf("extend in the joint configuration: %+v", o)
		}
		for i := 0; r == nil && i < 200; i++ {
			n.sleep(100 * time.Millisecond)
		}
		n.holdIf = nil
		n.held = nil // the first coordinator's syncs are lost
		if r == nil || r.OK {
			t.Fatalf("the stalled reconfiguration answered %+v", r)
		}
		if res := n.reconfigure(n3, []string{n2, n3, n4}, nil); !res.OK {
			t.Fatalf("resume: %+v", res)
		}
		requireMembership(t, n.core(n4), []string{n2, n3, n4}, 2)
		if o := n.do1(n4, lockOp("k", "thief", time.Minute)); o.OK {
			t.Fatal("the lease was lost across the resumed change")
		}
	})
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
