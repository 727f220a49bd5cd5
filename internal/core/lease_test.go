package core

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/protoactor-locker/locker/messages"
)

// TestFencingTokens checks that Lock and Update hand out tokens strictly
// greater than every token handed out before for the key, and that
// ExtendLease and Release return the holder's token.
func TestFencingTokens(t *testing.T) {
	// tokens runs ops and checks the token rules as they go.
	type tokens struct {
		t    *testing.T
		n    *network
		last uint64 // the largest token returned for "k"
		held uint64 // the holder's token
	}
	grant := func(tk *tokens, from string, op Op) {
		tk.t.Helper()
		o := tk.n.do1(from, op)
		if !o.OK {
			tk.t.Fatalf("%v from %s: %+v", op.Kind, from, o)
		}
		switch op.Kind {
		case kLock, kUpdate:
			if o.Token <= tk.last {
				tk.t.Fatalf("%v from %s: token %d, not above the earlier %d", op.Kind, from, o.Token, tk.last)
			}
			tk.last, tk.held = o.Token, o.Token
		default:
			if o.Token != tk.held {
				tk.t.Fatalf("%v from %s: token %d, want the holder's %d", op.Kind, from, o.Token, tk.held)
			}
		}
	}
	t.Run("lock and update tokens grow, extend and release return the holder's, also after release and expiry", func(t *testing.T) {
		n := masters(t, 2, n1, n2, n3)
		tk := &tokens{t: t, n: n}
		grant(tk, n1, lockOp("k", "a", time.Second))
		grant(tk, n2, updateOp("k", "a", "b"))
		grant(tk, n3, extendOp("k", "b", time.Second))
		grant(tk, n1, updateOp("k", "b", "c"))
		grant(tk, n2, releaseOp("k", "c"))
		grant(tk, n3, lockOp("k", "d", time.Second))
		n.sleep(time.Second) // expires
		if _, ok := n.read(n1, "k"); ok {
			t.Fatal("the lease did not run out")
		}
		grant(tk, n1, lockOp("k", "e", time.Second))
		n.checkInvariants()
	})
	t.Run("tokens grow while the clock stands still", func(t *testing.T) {
		n := masters(t, 2, n1, n2, n3)
		tk := &tokens{t: t, n: n}
		for i := range 50 {
			from := []string{n1, n2, n3}[i%3]
			grant(tk, from, lockOp("k", "v", time.Second))
			grant(tk, from, updateOp("k", "v", "w"))
			grant(tk, from, releaseOp("k", "w"))
		}
	})
	t.Run("tokens grow after a lone master restarts with empty memory", func(t *testing.T) {
		n := newNetwork(t, n1)
		tk := &tokens{t: t, n: n}
		for range 3 {
			grant(tk, n1, lockOp("k", "v", time.Second))
			n.stop(n1)
			n.clock.now = n.clock.now.Add(time.Millisecond)
			n.start(n1)
		}
	})
	t.Run("tokens grow after every master was replaced by a fresh Core", func(t *testing.T) {
		n := masters(t, 2, n1, n2, n3)
		tk := &tokens{t: t, n: n}
		grant(tk, n1, lockOp("k", "v", time.Second))
		for _, a := range []string{n1, n2, n3} {
			n.stop(a)
			n.clock.now = n.clock.now.Add(time.Millisecond)
			n.start(a)
		}
		n.configure(n1, []string{n1, n2, n3}, nil, 2)
		grant(tk, n2, lockOp("k", "w", time.Second))
	})
	t.Run("a master that missed the last write still yields a larger token", func(t *testing.T) {
		n := masters(t, 2, n1, n2, n3)
		tk := &tokens{t: t, n: n}
		n.drop[n3] = true
		grant(tk, n1, lockOp("k", "v", time.Second))
		grant(tk, n1, releaseOp("k", "v"))
		n.drop = map[string]bool{n1: true}
		grant(tk, n2, lockOp("k", "w", time.Second)) // promises of n2 (saw it) and n3 (did not)
	})
	t.Run("a replica promoted to master keeps the tokens it replicated", func(t *testing.T) {
		n := newNetwork(t, n1, n2)
		n.configure(n1, []string{n1}, []string{n2}, 1)
		tk := &tokens{t: t, n: n}
		grant(tk, n1, lockOp("k", "v", time.Second))
		n.sleep(n.cfg.ReplicationInterval)
		n.stop(n1)
		n.configure(n2, []string{n2}, nil, 1)
		n.clock.now = n.clock.now.Add(-time.Hour) // even with a clock that went back
		grant(tk, n2, releaseOp("k", "v"))
		grant(tk, n2, lockOp("k", "w", time.Second))
	})
	t.Run("extend from another coordinator returns the holder's token", func(t *testing.T) {
		n := masters(t, 1, n1, n2)
		tk := &tokens{t: t, n: n}
		grant(tk, n1, lockOp("k", "v", time.Second))
		grant(tk, n2, extendOp("k", "v", time.Second))
		grant(tk, n2, extendOp("k", "v", time.Second))
		grant(tk, n1, releaseOp("k", "v"))
	})
}

// TestLeases checks lease deadlines on the local table.
func TestLeases(t *testing.T) {
	t.Run("Store.Read never returns an entry past its deadline", func(t *testing.T) {
		n := newNetwork(t, n1)
		n.do1(n1, lockOp("k", "v", time.Second))
		n.clock.now = n.clock.now.Add(time.Second - time.Nanosecond)
		if v, ok := n.read(n1, "k"); !ok || v != "v" {
			t.Fatal("gone before the deadline")
		}
		n.clock.now = n.clock.now.Add(time.Nanosecond) // no Tick yet
		if _, ok := n.read(n1, "k"); ok {
			t.Fatal("readable at its deadline")
		}
		if v, w := n.core(n1).Store().WaitPresent("k"); v != nil || w == nil {
			t.Fatal("WaitPresent found an expired entry")
		}
		if w := n.core(n1).Store().WaitAbsent("k"); w != nil {
			t.Fatal("WaitAbsent waits for an expired entry")
		}
	})
	t.Run("Tick removes the entry at its deadline", func(t *testing.T) {
		n := newNetwork(t, n1)
		n.do1(n1, lockOp("k", "v", time.Second))
		if at, ok := n.core(n1).NextWake(); !ok || at.After(t0.Add(time.Second)) {
			t.Fatalf("NextWake %v %v, want by the deadline", at, ok)
		}
		n.advance(time.Second)
		if n.core(n1).store.raw("k") != nil {
			t.Fatal("the entry is still kept")
		}
		if live, _ := n.core(n1).Store().Counts(); live != 0 {
			t.Fatalf("%d leases counted", live)
		}
		n.advance(n.cfg.WriteLockTimeout) // timers never removed early are spent
		for _, tm := range n.core(n1).timers {
			// The Lock's ballot is remembered for as long as its write could
			// leave state anywhere (grantBallot), longer than its lease.
			if r := n.core(n1).ballots["k"]; tm.kind == timerBallot && tm.at == r.until {
				continue
			}
			if tm.kind != timerGossip {
				t.Fatalf("something is still scheduled: %+v", tm)
			}
		}
	})
	t.Run("WaitAbsent waiters are woken when the lease runs out", func(t *testing.T) {
		n := newNetwork(t, n1)
		n.do1(n1, lockOp("k", "v", time.Second))
		w := n.core(n1).Store().WaitAbsent("k")
		n.advance(time.Second - time.Nanosecond)
		select {
		case <-w.Done():
			t.Fatal("woken before the deadline")
		default:
		}
		n.advance(time.Nanosecond)
		select {
		case <-w.Done():
		default:
			t.Fatal("not woken at the deadline")
		}
		n.checkInvariants()
	})
	t.Run("WaitAbsent waiters are woken by a release", func(t *testing.T) {
		n := masters(t, 2, n1, n2)
		n.do1(n1, lockOp("k", "v", time.Second))
		w1 := n.core(n1).Store().WaitAbsent("k")
		w2 := n.core(n2).Store().WaitAbsent("k")
		n.do1(n2, releaseOp("k", "v"))
		for _, w := range []*Waiter{w1, w2} {
			select {
			case <-w.Done():
			default:
				t.Fatal("not woken by the release")
			}
		}
		n.checkInvariants()
	})
	t.Run("WaitAbsent on an absent key does not wait", func(t *testing.T) {
		n := newNetwork(t, n1)
		if w := n.core(n1).Store().WaitAbsent("k"); w != nil {
			t.Fatal("waits for an absent key")
		}
	})
	t.Run("an extended lease runs to its new deadline", func(t *testing.T) {
		n := newNetwork(t, n1)
		n.do1(n1, lockOp("k", "v", time.Second))
		n.sleep(500 * time.Millisecond)
		n.do1(n1, extendOp("k", "v", time.Second))
		n.sleep(time.Second - time.Nanosecond)
		if _, ok := n.read(n1, "k"); !ok {
			t.Fatal("expired at the old deadline or early")
		}
		n.sleep(time.Nanosecond)
		if _, ok := n.read(n1, "k"); ok {
			t.Fatal("outlived the new deadline")
		}
		n.checkInvariants()
	})
	t.Run("an update keeps the lease", func(t *testing.T) {
		n := newNetwork(t, n1)
		n.do1(n1, lockOp("k", "v", time.Second))
		n.sleep(500 * time.Millisecond)
		n.do1(n1, updateOp("k", "v", "w"))
		n.sleep(500*time.Millisecond - time.Nanosecond)
		if v, _ := n.read(n1, "k"); v != "w" {
			t.Fatalf("holds %q", v)
		}
		n.sleep(time.Nanosecond)
		if _, ok := n.read(n1, "k"); ok {
			t.Fatal("the update extended the lease")
		}
	})
	t.Run("a lease starts on each master when its commit arrives", func(t *testing.T) {
		n := masters(t, 2, n1, n2)
		n.holdIf = is[*messages.Commit](n2)
		c := n.submit(n1, lockOp("k", "v", time.Second))
		n.run()
		n.advance(100 * time.Millisecond)
		n.unholdAll()
		n.run()
		checkOutcome(t, c.one(), true, PhaseCommit, 2, 2)
		if a, b := n.core(n1).store.raw("k").deadline, n.core(n2).store.raw("k").deadline; b-a != int64(100*time.Millisecond) {
			t.Fatalf("deadlines %d and %d", a, b)
		}
	})
	t.Run("a waiter that was canceled is neither woken nor counted", func(t *testing.T) {
		n := newNetwork(t, n1)
		_, w := n.core(n1).Store().WaitPresent("k")
		w.Cancel()
		w.Cancel()
		n.do1(n1, lockOp("k", "v", time.Second))
		select {
		case <-w.Done():
			t.Fatal("a canceled waiter was woken")
		default:
		}
		if _, waiting := n.core(n1).Store().Counts(); waiting != 0 {
			t.Fatalf("%d waiters", waiting)
		}
	})
}

// TestWaitersUnderConcurrency checks that a wait registered while the
// peer writes is never lost between the check and the registration (run
// it with -race).
func TestWaitersUnderConcurrency(t *testing.T) {
	t.Run("waiters registered concurrently with writes are always woken", func(t *testing.T) {
		n := newNetwork(t, n1)
		s := n.core(n1).Store()
		const rounds = 200
		done := make(chan int)
		go func() {
			woken := 0
			for range rounds {
				if _, w := s.WaitPresent("k"); w != nil {
					<-w.Done()
				}
				if w := s.WaitAbsent("k"); w != nil {
					<-w.Done()
				}
				woken++
			}
			done <- woken
		}()
		for i := 0; ; i++ {
			select {
			case got := <-done:
				if got != rounds {
					t.Fatalf("%d of %d rounds", got, rounds)
				}
				return
			default:
			}
			if i > 1000000 {
				t.Fatal("a waiter was lost")
			}
			n.do1(n1, lockOp("k", "v", leaseForTests))
			n.do1(n1, releaseOp("k", "v"))
		}
	})
}

// TestWaitPresent checks that WaitFor's waiters are woken on masters and
// replicas alike.
func TestWaitPresent(t *testing.T) {
	wait := func(t *testing.T, n *network, addr string) *Waiter {
		t.Helper()
		v, w := n.core(addr).Store().WaitPresent("k")
		if v != nil || w == nil {
			t.Fatalf("%s: no wait for an absent key", addr)
		}
		return w
	}
	woken := func(t *testing.T, w *Waiter, want string) {
		t.Helper()
		select {
		case <-w.Done():
			if string(w.Value()) != want {
				t.Fatalf("woken with %q, want %q", w.Value(), want)
			}
		default:
			t.Fatal("not woken")
		}
	}
	t.Run("WaitPresent is woken by a local commit on every master", func(t *testing.T) {
		n := masters(t, 2, n1, n2, n3)
		ws := []*Waiter{wait(t, n, n1), wait(t, n, n2), wait(t, n, n3)}
		n.do1(n2, lockOp("k", "v", time.Second))
		for _, w := range ws {
			woken(t, w, "v")
		}
		n.checkInvariants()
	})
	t.Run("WaitPresent is woken by replication", func(t *testing.T) {
		n := newNetwork(t, n1, n2)
		n.configure(n1, []string{n1}, []string{n2}, 1)
		w := wait(t, n, n2)
		n.do1(n1, lockOp("k", "v", time.Second))
		select {
		case <-w.Done():
			t.Fatal("woken before the push")
		default:
		}
		n.sleep(n.cfg.ReplicationInterval)
		woken(t, w, "v")
		n.checkInvariants()
	})
	t.Run("WaitPresent is woken by a repair", func(t *testing.T) {
		n := masters(t, 2, n1, n2, n3)
		n.drop[n3] = true
		n.do1(n1, lockOp("k", "v", time.Second))
		delete(n.drop, n3)
		w := wait(t, n, n3)
		n.do1(n1, extendOp("k", "v", time.Second))
		woken(t, w, "v")
	})
	t.Run("WaitPresent returns the value at once when the key is held", func(t *testing.T) {
		n := newNetwork(t, n1)
		n.do1(n1, lockOp("k", "v", time.Second))
		if v, w := n.core(n1).Store().WaitPresent("k"); string(v) != "v" || w != nil {
			t.Fatalf("WaitPresent = %q, %v", v, w)
		}
	})
	t.Run("WaitPresent is not woken by a failed write", func(t *testing.T) {
		n := masters(t, 2, n1, n2)
		n.drop[n2] = true
		w := wait(t, n, n1)
		n.do1(n1, lockOp("k", "v", time.Second))
		select {
		case <-w.Done():
			t.Fatal("woken by an aborted lock")
		default:
		}
	})
}

// TestRepair checks that ExtendLease repairs masters that lack the key.
func TestRepair(t *testing.T) {
	t.Run("extend repairs a master lacking the key", func(t *testing.T) {
		n := masters(t, 2, n1, n2, n3)
		n.drop[n3] = true
		lock := n.do1(n1, lockOp("k", "v", time.Second))
		delete(n.drop, n3)
		if _, ok := n.read(n3, "k"); ok {
			t.Fatal("setup: n3 has the key")
		}
		o := n.do1(n2, extendOp("k", "v", 3*time.Second))
		// The repair does not count: n3 did not promise.
		checkOutcome(t, o, true, PhaseCommit, 2, 2)
		checkReasons(t, o, map[string]messages.Reason{n3: rNotFound})
		if v, ok := n.read(n3, "k"); !ok || v != "v" {
			t.Fatal("n3 was not repaired")
		}
		e := n.core(n3).store.raw("k")
		if e.token != lock.Token || e.deadline != n.core(n1).store.raw("k").deadline {
			t.Fatalf("repaired entry %+v, want token %d and the others' deadline", e, lock.Token)
		}
		n.checkInvariants()
	})
	t.Run("extend repairs a master restarted with empty memory", func(t *testing.T) {
		n := masters(t, 2, n1, n2, n3)
		n.do1(n1, lockOp("k", "v", time.Second))
		n.stop(n2)
		n.start(n2)
		n.configure(n1, []string{n1, n2, n3}, nil, 2)
		n.do1(n3, extendOp("k", "v", time.Second))
		if v, ok := n.read(n2, "k"); !ok || v != "v" {
			t.Fatal("the fresh master was not repaired")
		}
	})
	t.Run("a failed extend repairs nothing", func(t *testing.T) {
		n := masters(t, 3, n1, n2, n3)
		n.drop[n3] = true
		n.setW(n1, []string{n1, n2}, 2)
		n.do1(n1, lockOp("k", "v", time.Second))
		delete(n.drop, n3)
		n.setW(n1, []string{n1, n2, n3}, 3)
		o := n.do1(n1, extendOp("k", "v", time.Second))
		checkOutcome(t, o, false, PhasePrepare, 2, 0)
		if _, ok := n.read(n3, "k"); ok {
			t.Fatal("a failed extend repaired n3")
		}
	})
	t.Run("no repair where the key holds another value under a newer token", func(t *testing.T) {
		n := newNetwork(t, n1)
		n.do1(n1, lockOp("k", "other", time.Second))
		ack := commit(t, n.core(n1), n2, 1, &messages.CommitItem{Key: "k", Kind: kExtend, Value: []byte("v"), LeaseMs: 1000, Token: 5, Repair: true})
		if ack.GetItems()[0].GetReason() != rDiffers {
			t.Fatalf("ack %v, want VALUE_DIFFERS", ack)
		}
	})
	t.Run("a repair drops the promise of a doomed write on the key", func(t *testing.T) {
		n := newNetwork(t, n1)
		prepare(t, n.core(n1), n3, 9, prepItem(kLock, "k", ""))
		ack := commit(t, n.core(n1), n2, 1, &messages.CommitItem{Key: "k", Kind: kExtend, Value: []byte("v"), LeaseMs: 1000, Token: 5, Repair: true})
		if !ack.GetItems()[0].GetOk() || n.core(n1).WriteLocks() != 0 {
			t.Fatalf("ack %v, write locks %d", ack, n.core(n1).WriteLocks())
		}
		if v, ok := n.read(n1, "k"); !ok || v != "v" {
			t.Fatal("not repaired")
		}
	})
	t.Run("a lock repairs a master holding a stale value", func(t *testing.T) {
		// n3, alone with W=1, took k; then it joins n1 and n2, which lock
		// k for themselves: the decision replaces n3's stale copy.
		n := newNetwork(t, n1, n2, n3)
		n.do1(n3, lockOp("k", "stale", time.Minute))
		n.configure(n1, []string{n1, n2, n3}, nil, 2)
		o := n.do1(n1, lockOp("k", "new", time.Minute))
		checkOutcome(t, o, true, PhaseCommit, 2, 2)
		if v, ok := n.read(n3, "k"); !ok || v != "new" {
			t.Fatalf("n3 holds %q, want the quorum's value", v)
		}
		// With n1 down, the holder still releases through n2 and n3.
		n.stop(n1)
		if o := n.do1(n2, releaseOp("k", "new")); !o.OK {
			t.Fatalf("release: %+v", o)
		}
	})
}

// replicas returns a network with one master n1 and replicas n2 and n3.
func replicas(t *testing.T, cfg Config) *network {
	t.Helper()
	n := newNetworkWith(t, cfg, n1, n2, n3)
	n.configure(n1, []string{n1}, []string{n2, n3}, 1)
	return n
}

func replicate(c *Core, from string, entries ...*messages.Entry) {
	c.Step(from, &messages.Replicate{Entries: entries})
	c.TakeOutput()
}

// TestReplication checks how masters push changes to replicas.
func TestReplication(t *testing.T) {
	t.Run("changes are pushed to replicas at ReplicationInterval, not before", func(t *testing.T) {
		n := replicas(t, testConfig())
		n.do1(n1, lockOp("k", "v", time.Second))
		n.sleep(n.cfg.ReplicationInterval - time.Nanosecond)
		if _, ok := n.read(n2, "k"); ok {
			t.Fatal("pushed before the interval")
		}
		n.sleep(time.Nanosecond)
		for _, a := range []string{n2, n3} {
			if v, ok := n.read(a, "k"); !ok || v != "v" {
				t.Fatalf("%s lacks the key after the interval", a)
			}
		}
		n.checkInvariants()
	})
	t.Run("a state that ended before its push still replaces the older one on replicas", func(t *testing.T) {
		// The replicas hold an hour-long lease; it is released and the key
		// locked again for less than the interval, so that the new state
		// has ended when the push goes. Left out of the push, the older
		// lease would live on the replicas for the hour (sim seed 13187:
		// a master's repair that expired before its push).
		n := replicas(t, testConfig())
		n.do1(n1, lockOp("k", "old", time.Hour))
		n.sleep(n.cfg.ReplicationInterval)
		n.do1(n1, releaseOp("k", "old"))
		if o := n.do1(n1, lockOp("k", "new", n.cfg.ReplicationInterval/2)); !o.OK {
			t.Fatalf("relock: %+v", o)
		}
		n.sleep(n.cfg.ReplicationInterval)
		for _, a := range []string{n2, n3} {
			if v, ok := n.read(a, "k"); ok {
				t.Fatalf("%s holds k = %q after the master's lease ended", a, v)
			}
		}
		n.checkInvariants()
	})
	t.Run("an ended state does not end the same lease extended through another master", func(t *testing.T) {
		n := replicas(t, testConfig())
		o := n.do1(n1, lockOp("k", "v", time.Hour))
		n.sleep(n.cfg.ReplicationInterval)
		replicate(n.core(n2), outsider, &messages.Entry{Key: "k", Token: o.Token})
		if v, ok := n.read(n2, "k"); !ok || v != "v" {
			t.Fatalf("k = %q, %v; want the lease kept", v, ok)
		}
	})
	t.Run("changes within one interval go in one message per replica", func(t *testing.T) {
		n := replicas(t, testConfig())
		for i := range 10 {
			n.do1(n1, lockOp(fmt.Sprint("k", i), "v", time.Second))
			n.sleep(time.Millisecond)
		}
		n.do1(n1, releaseOp("k3", "v"))
		n.sleep(n.cfg.ReplicationInterval)
		if got := countSent[*messages.Replicate](n, n1, n2); got != 1 {
			t.Fatalf("%d replicate messages, want 1", got)
		}
		if got := countSent[*messages.Replicate](n, n2, ""); got != 0 {
			t.Fatalf("a replica pushed %d messages", got)
		}
		live, _ := n.core(n2).Store().Counts()
		if live != 9 {
			t.Fatalf("replica holds %d leases, want 9", live)
		}
	})
	t.Run("every master pushes its changes", func(t *testing.T) {
		n := newNetwork(t, n1, n2, n3)
		n.configure(n1, []string{n1, n2}, []string{n3}, 2)
		n.do1(n1, lockOp("k", "v", time.Second))
		n.sleep(n.cfg.ReplicationInterval)
		if a, b := countSent[*messages.Replicate](n, n1, n3), countSent[*messages.Replicate](n, n2, n3); a != 1 || b != 1 {
			t.Fatalf("pushes %d and %d, want one from each master", a, b)
		}
	})
	t.Run("a large batch is chunked under MaxMessageBytes and nothing is lost", func(t *testing.T) {
		cfg := testConfig()
		cfg.MaxMessageBytes = 1024
		n := replicas(t, cfg)
		var ops []Op
		for i := range 60 {
			ops = append(ops, lockOp(fmt.Sprintf("key-%03d", i), strings.Repeat("x", 100+i), time.Second))
		}
		n.do(n1, ops...)
		n.sleep(n.cfg.ReplicationInterval) // the harness fails any message over 1 KiB
		if got := countSent[*messages.Replicate](n, n1, n2); got < 7 {
			t.Fatalf("%d messages for ~9 KiB", got)
		}
		if live, _ := n.core(n2).Store().Counts(); live != 60 {
			t.Fatalf("replica holds %d of 60 leases", live)
		}
	})
	t.Run("PushNow sends the pending batch at once", func(t *testing.T) {
		n := replicas(t, testConfig())
		n.do1(n1, lockOp("k", "v", time.Second))
		n.core(n1).PushNow()
		n.run()
		if _, ok := n.read(n2, "k"); !ok {
			t.Fatal("PushNow did not push")
		}
		n.sleep(n.cfg.ReplicationInterval)
		if got := countSent[*messages.Replicate](n, n1, n2); got != 1 {
			t.Fatalf("%d pushes, want 1 (nothing changed since)", got)
		}
	})
	t.Run("nothing is pushed without replicas", func(t *testing.T) {
		n := masters(t, 1, n1, n2)
		n.do1(n1, lockOp("k", "v", time.Second))
		n.sleep(n.cfg.ReplicationInterval)
		if got := countSent[*messages.Replicate](n, "", ""); got != 0 {
			t.Fatalf("%d pushes", got)
		}
	})
	t.Run("a replicated entry keeps the master's deadline", func(t *testing.T) {
		n := replicas(t, testConfig())
		n.do1(n1, lockOp("k", "v", time.Second))
		n.sleep(n.cfg.ReplicationInterval)
		if a, b := n.core(n1).store.raw("k").deadline, n.core(n2).store.raw("k").deadline; a != b {
			t.Fatalf("deadlines %d and %d", a, b)
		}
		n.sleep(time.Second - n.cfg.ReplicationInterval)
		if _, ok := n.read(n2, "k"); ok {
			t.Fatal("the replica outlived the master's deadline")
		}
		n.checkInvariants()
	})
	t.Run("an extend reaches replicas", func(t *testing.T) {
		n := replicas(t, testConfig())
		n.do1(n1, lockOp("k", "v", time.Second))
		n.sleep(n.cfg.ReplicationInterval)
		n.do1(n1, extendOp("k", "v", 5*time.Second))
		n.sleep(n.cfg.ReplicationInterval)
		if a, b := n.core(n1).store.raw("k").deadline, n.core(n2).store.raw("k").deadline; a != b {
			t.Fatalf("deadlines %d and %d", a, b)
		}
	})
	t.Run("a release reaches replicas as a tombstone and wakes WaitAbsent", func(t *testing.T) {
		n := replicas(t, testConfig())
		n.do1(n1, lockOp("k", "v", time.Second))
		n.sleep(n.cfg.ReplicationInterval)
		w := n.core(n2).Store().WaitAbsent("k")
		n.do1(n1, releaseOp("k", "v"))
		n.sleep(n.cfg.ReplicationInterval)
		if _, ok := n.read(n2, "k"); ok {
			t.Fatal("the replica still holds a released key")
		}
		select {
		case <-w.Done():
		default:
			t.Fatal("WaitAbsent not woken on the replica")
		}
		n.checkInvariants()
	})
	t.Run("a tombstone prevents resurrection by a stale replicate", func(t *testing.T) {
		n := newNetwork(t, n2)
		c := n.core(n2)
		replicate(c, n1, &messages.Entry{Key: "k", Value: []byte("v"), LeaseMs: 1000, Token: 10})
		replicate(c, n1, &messages.Entry{Key: "k", Deleted: true, Token: 10, LeaseMs: 1000})
		replicate(c, n3, &messages.Entry{Key: "k", Value: []byte("v"), LeaseMs: 1000, Token: 10})
		if _, ok := n.read(n2, "k"); ok {
			t.Fatal("a stale replicate brought a released key back")
		}
		n.checkInvariants()
	})
	t.Run("a tombstone for a key the replica never had blocks a stale replicate", func(t *testing.T) {
		n := newNetwork(t, n2)
		c := n.core(n2)
		replicate(c, n1, &messages.Entry{Key: "k", Deleted: true, Token: 10, LeaseMs: 1000})
		replicate(c, n3, &messages.Entry{Key: "k", Value: []byte("v"), LeaseMs: 900, Token: 10})
		if _, ok := n.read(n2, "k"); ok {
			t.Fatal("a stale replicate brought a released key back")
		}
		n.advance(time.Second)
		if c.store.raw("k") != nil {
			t.Fatal("the tombstone outlived its lease")
		}
		n.checkInvariants()
	})
	t.Run("a tombstone pushed by a master carries its lease", func(t *testing.T) {
		n := replicas(t, testConfig())
		n.do1(n1, lockOp("k", "v", time.Second))
		n.do1(n1, releaseOp("k", "v"))
		n.sleep(n.cfg.ReplicationInterval)
		var got *messages.Entry
		for _, p := range n.sent {
			if r, ok := p.msg.(*messages.Replicate); ok && p.to == n2 {
				got = r.GetEntries()[0]
			}
		}
		if got == nil || !got.GetDeleted() || got.GetLeaseMs() <= 0 || len(got.GetValue()) != 0 {
			t.Fatalf("pushed %v, want a tombstone with the lease left", got)
		}
	})
	t.Run("a replica applies only newer tokens", func(t *testing.T) {
		n := newNetwork(t, n2)
		c := n.core(n2)
		replicate(c, n1, &messages.Entry{Key: "k", Value: []byte("new"), LeaseMs: 1000, Token: 20})
		replicate(c, n1, &messages.Entry{Key: "k", Value: []byte("old"), LeaseMs: 5000, Token: 10})
		if v, _ := n.read(n2, "k"); v != "new" {
			t.Fatalf("holds %q after an older token", v)
		}
		replicate(c, n1, &messages.Entry{Key: "k", Deleted: true, Token: 10, LeaseMs: 1000})
		if v, _ := n.read(n2, "k"); v != "new" {
			t.Fatal("an older tombstone released a newer lease")
		}
		replicate(c, n1, &messages.Entry{Key: "k", Value: []byte("newer"), LeaseMs: 1000, Token: 30})
		if v, _ := n.read(n2, "k"); v != "newer" {
			t.Fatalf("holds %q after a newer token", v)
		}
		n.checkInvariants()
	})
	t.Run("an equal token never shortens a replicated lease", func(t *testing.T) {
		n := newNetwork(t, n2)
		c := n.core(n2)
		replicate(c, n1, &messages.Entry{Key: "k", Value: []byte("v"), LeaseMs: 5000, Token: 20}) // the extend
		replicate(c, n3, &messages.Entry{Key: "k", Value: []byte("v"), LeaseMs: 1000, Token: 20}) // a stale push
		n.advance(time.Second)
		if _, ok := n.read(n2, "k"); !ok {
			t.Fatal("a stale push shortened the lease")
		}
		replicate(c, n1, &messages.Entry{Key: "k", Value: []byte("v"), LeaseMs: 9000, Token: 20}) // a later extend
		if e := c.store.raw("k"); e.deadline != int64(10*time.Second) {
			t.Fatalf("deadline %v, want 10s", time.Duration(e.deadline))
		}
		n.checkInvariants()
	})
	t.Run("a replicate lands on a key write-locked here", func(t *testing.T) {
		// A new master copying leases must not skip one because a write
		// (doomed: the old masters hold the key) locked it here.
		n := newNetwork(t, n1)
		prepare(t, n.core(n1), n2, 1, prepItem(kLock, "k", ""))
		replicate(n.core(n1), n3, &messages.Entry{Key: "k", Value: []byte("v"), LeaseMs: 1000, Token: 20})
		if v, ok := n.read(n1, "k"); !ok || v != "v" {
			t.Fatal("the replicate was skipped because of a write in progress")
		}
	})
	t.Run("entries without a key or a lease are ignored", func(t *testing.T) {
		n := newNetwork(t, n2)
		c := n.core(n2)
		replicate(c, n1, &messages.Entry{Value: []byte("v"), LeaseMs: 1000, Token: 20}, &messages.Entry{Key: "k", Value: []byte("v"), Token: 20})
		if live, _ := c.Store().Counts(); live != 0 {
			t.Fatalf("%d leases", live)
		}
	})
}

// TestReadMaster checks reads on a master.
func TestReadMaster(t *testing.T) {
	read := func(n *network, from string) *ReadResult {
		var got *ReadResult
		n.onAnswer(from, n.core(from).ReadMaster("k"), func(a Answer) { got = &a.Read })
		n.run()
		return got
	}
	t.Run("a master reads its own table at once", func(t *testing.T) {
		n := newNetwork(t, n1)
		lock := n.do1(n1, lockOp("k", "v", time.Second))
		r := read(n, n1)
		if r == nil || !r.Found || string(r.Value) != "v" || r.Token != lock.Token || r.Master != n1 {
			t.Fatalf("read %+v", r)
		}
	})
	t.Run("a replica asks a master", func(t *testing.T) {
		n := newNetwork(t, n1, n2)
		n.configure(n1, []string{n1}, []string{n2}, 1)
		n.do1(n1, lockOp("k", "v", time.Second))
		r := read(n, n2)
		if r == nil || !r.Found || string(r.Value) != "v" || r.Master != n1 {
			t.Fatalf("read %+v", r)
		}
	})
	t.Run("a read of an absent key is not found", func(t *testing.T) {
		n := newNetwork(t, n1)
		if r := read(n, n1); r == nil || r.Found || r.Failure != rNone {
			t.Fatalf("read %+v", r)
		}
	})
	t.Run("a silent master fails the read at RequestTimeout", func(t *testing.T) {
		n := newNetwork(t, n1, n2)
		n.configure(n1, []string{n1}, []string{n2}, 1)
		n.drop[n1] = true
		var got *ReadResult
		n.onAnswer(n2, n.core(n2).ReadMaster("k"), func(a Answer) { got = &a.Read })
		n.sleep(n.cfg.RequestTimeout - time.Nanosecond)
		if got != nil {
			t.Fatal("failed before RequestTimeout")
		}
		n.sleep(time.Nanosecond)
		if got == nil || got.Failure != rUnreachable || got.Master != n1 {
			t.Fatalf("read %+v", got)
		}
	})
	t.Run("an unreachable master fails the read at once", func(t *testing.T) {
		n := newNetwork(t, n1, n2)
		n.configure(n1, []string{n1}, []string{n2}, 1)
		n.stop(n1)
		r := read(n, n2)
		if r == nil || r.Failure != rUnreachable {
			t.Fatalf("read %+v", r)
		}
	})
}

// TestExtendNeverShortens checks that an ExtendLease with a shorter lease
// than the one left keeps the longer lease, so that a holder whose extend
// failed with an unknown outcome may keep counting from its last lease.
func TestExtendNeverShortens(t *testing.T) {
	n := masters(t, 2, n1, n2, n3)
	n.do1(n1, lockOp("k", "v", 10*time.Second))
	before := n.core(n2).store.raw("k").deadline
	if o := n.do1(n1, extendOp("k", "v", time.Second)); !o.OK {
		t.Fatalf("extend: %+v", o)
	}
	for _, a := range []string{n1, n2, n3} {
		if d := n.core(a).store.raw("k").deadline; d < before {
			t.Fatalf("%s: the extend cut the lease from %v to %v", a, time.Duration(before), time.Duration(d))
		}
	}
	n.sleep(5 * time.Second)
	if _, ok := n.read(n2, "k"); !ok {
		t.Fatal("the lease ended at the shorter extension")
	}
	// A longer extension does extend it.
	if o := n.do1(n1, extendOp("k", "v", 20*time.Second)); !o.OK {
		t.Fatalf("extend: %+v", o)
	}
	n.sleep(10 * time.Second)
	if _, ok := n.read(n2, "k"); !ok {
		t.Fatal("the longer extension did not hold")
	}
}
