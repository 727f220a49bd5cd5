package core

import (
	"math"
	"testing"
	"time"

	"github.com/protoactor-locker/locker/messages"
)

// TestLeaseBounds checks the rules on lease lengths: a write asks for a
// lease of at least a millisecond and at most the configured MaxLease
// (DefaultMaxLease unless set), and a lease arriving from a peer,
// however long, never overflows a deadline.
func TestLeaseBounds(t *testing.T) {
	maxMs := DefaultMaxLease.Milliseconds()
	limitMs := MaxLeaseLimit.Milliseconds()
	t.Run("Submit refuses a Lock or Extend outside [1ms, MaxLease] without sending anything, and runs the rest", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			op   Op
			ok   bool
		}{
			{"lock of MaxLease", lockOp("k", "v", DefaultMaxLease), true},
			{"lock of MaxLease + 1ms", Op{Kind: kLock, Key: "k", Value: []byte("v"), LeaseMs: maxMs + 1}, false},
			{"lock of math.MaxInt64 ms", Op{Kind: kLock, Key: "k", Value: []byte("v"), LeaseMs: math.MaxInt64}, false},
			{"lock of math.MaxInt64 ns in ms", Op{Kind: kLock, Key: "k", Value: []byte("v"), LeaseMs: math.MaxInt64 / int64(time.Millisecond)}, false},
			{"lock of 0", Op{Kind: kLock, Key: "k", Value: []byte("v")}, false},
			{"extend of -1ms", Op{Kind: kExtend, Key: "held", Value: []byte("v"), LeaseMs: -1}, false},
			{"extend of MaxLease + 1ms", Op{Kind: kExtend, Key: "held", Value: []byte("v"), LeaseMs: maxMs + 1}, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				n := masters(t, 2, n1, n2, n3)
				n.do1(n1, lockOp("held", "v", time.Minute))
				before := len(n.sent)
				outs := n.do(n1, tc.op, lockOp("other", "v", time.Minute))
				if outs[0].OK != tc.ok {
					t.Fatalf("outcome %+v, want OK=%v", outs[0], tc.ok)
				}
				if !outs[1].OK {
					t.Fatalf("the valid op of the batch: %+v", outs[1])
				}
				if !tc.ok {
					if r := outs[0].Reasons[n1]; r != rInvalid || outs[0].Phase != PhasePrepare {
						t.Fatalf("outcome %+v, want refused before any commit with %v", outs[0], rInvalid)
					}
					for _, p := range n.sent[before:] {
						if c, ok := p.msg.(*messages.Commit); ok {
							for _, it := range c.GetItems() {
								if it.GetKey() == tc.op.Key && !it.GetAbort() {
									t.Fatalf("the invalid op was committed: %v", p)
								}
							}
						}
					}
				}
				if tc.ok {
					if _, ok := n.read(n2, tc.op.Key); !ok {
						t.Fatal("the lease of MaxLease vanished")
					}
					n.sleep(DefaultMaxLease - time.Second)
					if _, ok := n.read(n2, tc.op.Key); !ok {
						t.Fatal("the lease of MaxLease did not last its length")
					}
				}
				n.checkInvariants()
			})
		}
	})
	t.Run("a Submit over a configured MaxLease is refused, one within it runs", func(t *testing.T) {
		cfg := testConfig()
		cfg.MaxLease = time.Minute
		n := mastersWith(t, cfg, 2, n1, n2, n3)
		if o := n.do1(n1, lockOp("k", "v", time.Minute+time.Millisecond)); o.OK || o.Reasons[n1] != rInvalid {
			t.Fatalf("a lock over the configured MaxLease: %+v", o)
		}
		if o := n.do1(n1, lockOp("k", "v", time.Minute)); !o.OK {
			t.Fatalf("a lock of the configured MaxLease: %+v", o)
		}
	})
	t.Run("a master refuses a Commit whose lease is over its own MaxLease", func(t *testing.T) {
		cfg := testConfig()
		cfg.MaxLease = time.Minute
		n := newNetworkWith(t, cfg, n1)
		c := n.core(n1)
		prepare(t, c, n2, 1, prepItem(kLock, "k", ""))
		got := commit(t, c, n2, 1, &messages.CommitItem{Key: "k", Kind: kLock, Value: []byte("v"), LeaseMs: time.Minute.Milliseconds() + 1, Token: 5})
		if it := got.GetItems()[0]; it.GetOk() || it.GetReason() != rInvalid {
			t.Fatalf("committed %v, want refused with %v", it, rInvalid)
		}
	})
	t.Run("a master refuses a Commit whose lease is over MaxLease", func(t *testing.T) {
		for _, ms := range []int64{maxMs + 1, math.MaxInt64} {
			n := newNetwork(t, n1)
			c := n.core(n1)
			prepare(t, c, n2, 1, prepItem(kLock, "k", ""))
			got := commit(t, c, n2, 1, &messages.CommitItem{Key: "k", Kind: kLock, Value: []byte("v"), LeaseMs: ms, Token: 5})
			if it := got.GetItems()[0]; it.GetOk() || it.GetReason() != rInvalid {
				t.Fatalf("lease %d ms: committed %v, want refused with %v", ms, it, rInvalid)
			}
			if _, ok := n.read(n1, "k"); ok {
				t.Fatal("the key is held")
			}
		}
	})
	t.Run("a replicated lease of any length saturates: the key is held, never expired at once", func(t *testing.T) {
		for _, ms := range []int64{limitMs, limitMs + 1, math.MaxInt64 / int64(time.Millisecond), math.MaxInt64} {
			n := newNetwork(t, n2)
			c := n.core(n2)
			n.advance(time.Hour) // a later now makes an overflow likelier
			replicate(c, n1, &messages.Entry{Key: "k", Value: []byte("v"), LeaseMs: ms, Token: 10})
			replicate(c, n1, &messages.Entry{Key: "gone", Deleted: true, LeaseMs: ms, Token: 10})
			if _, ok := n.read(n2, "k"); !ok {
				t.Fatalf("lease %d ms: the replicated key vanished", ms)
			}
			if e := c.store.raw("k"); e.deadline <= c.now() || e.deadline-c.now() > int64(MaxLeaseLimit) {
				t.Fatalf("lease %d ms: deadline %d at now %d, want within MaxLeaseLimit", ms, e.deadline, c.now())
			}
			if e := c.store.raw("gone"); e == nil || !e.deleted || e.deadline <= c.now() {
				t.Fatalf("lease %d ms: tombstone %+v", ms, e)
			}
			n.advance(24 * time.Hour)
			if _, ok := n.read(n2, "k"); !ok {
				t.Fatalf("lease %d ms: the key expired within a day", ms)
			}
			n.checkInvariants()
		}
	})
	t.Run("leaseEnd saturates at math.MaxInt64", func(t *testing.T) {
		for _, tc := range []struct {
			now, ms, want int64
		}{
			{0, 1, int64(time.Millisecond)},
			{0, -5, 0},
			{0, math.MaxInt64, int64(MaxLeaseLimit)},
			{math.MaxInt64 - 1, 1, math.MaxInt64},
			{math.MaxInt64 - int64(MaxLeaseLimit), limitMs, math.MaxInt64},
		} {
			if got := leaseEnd(tc.now, tc.ms); got != tc.want {
				t.Errorf("leaseEnd(%d, %d) = %d, want %d", tc.now, tc.ms, got, tc.want)
			}
		}
	})
}

// TestPrepareCarriesTheLease checks the rule that a master refuses at
// prepare (INVALID_ARGUMENT) a Lock or Extend whose lease is longer than
// its own MaxLease, when peers' MaxLease differ: no master commits it,
// so the write fails with a known outcome and leaves no residue. A
// Prepare without a lease (a coordinator older than the field) is
// checked at commit only, as before.
func TestPrepareCarriesTheLease(t *testing.T) {
	t.Run("a lease over the masters' MaxLease is refused at prepare", func(t *testing.T) {
		n := masters(t, 2, n1, n2, n3)
		n.core(n2).cfg.MaxLease = time.Minute
		n.core(n3).cfg.MaxLease = time.Minute
		before := len(n.sent)
		o := n.do1(n1, lockOp("k", "v", 10*time.Minute))
		if o.OK || o.Phase != PhasePrepare || o.Reasons[n2] != rInvalid || o.Reasons[n3] != rInvalid {
			t.Fatalf("outcome %+v, want refused at prepare by n2 and n3 with %v", o, rInvalid)
		}
		for _, p := range n.sent[before:] {
			if c, ok := p.msg.(*messages.Commit); ok {
				for _, it := range c.GetItems() {
					if !it.GetAbort() {
						t.Fatalf("committed: %v", p)
					}
				}
			}
		}
		for _, a := range []string{n1, n2, n3} {
			wantRead(t, n, a, "k", "", "after the refused lock")
		}
		if o := n.do1(n1, lockOp("k", "v", time.Minute)); !o.OK {
			t.Fatalf("a lock within every MaxLease: %+v", o)
		}
		n.checkInvariants()
	})
	t.Run("a prepare without a lease is promised", func(t *testing.T) {
		n := masters(t, 1, n1)
		c := n.core(n1)
		c.cfg.MaxLease = time.Minute
		c.Step(outsider, &messages.Prepare{Txn: 7, Epoch: c.Membership().Epoch, Ballot: c.hlc + 1,
			Items: []*messages.PrepareItem{{Key: "k", Kind: kLock}}})
		out := c.TakeOutput().Messages
		if len(out) != 1 {
			t.Fatalf("answers %v", out)
		}
		if p := out[0].Msg.(*messages.Promise); !p.GetItems()[0].GetGranted() {
			t.Fatalf("promise %v, want granted", p)
		}
	})
}
