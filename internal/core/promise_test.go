package core

import (
	"testing"
	"time"

	"github.com/protoactor-locker/locker/messages"
)

const (
	kLock    = messages.WriteKind_WRITE_KIND_LOCK
	kUpdate  = messages.WriteKind_WRITE_KIND_UPDATE
	kExtend  = messages.WriteKind_WRITE_KIND_EXTEND
	kRelease = messages.WriteKind_WRITE_KIND_RELEASE

	rNone         = messages.Reason_REASON_UNSPECIFIED
	rLocked       = messages.Reason_REASON_ALREADY_LOCKED
	rNotFound     = messages.Reason_REASON_NOT_FOUND
	rDiffers      = messages.Reason_REASON_VALUE_DIFFERS
	rWriteLocked  = messages.Reason_REASON_WRITE_LOCKED
	rNotMaster    = messages.Reason_REASON_NOT_MASTER
	rUnreachable  = messages.Reason_REASON_UNREACHABLE
	rExpired      = messages.Reason_REASON_PROMISE_EXPIRED
	rInvalid      = messages.Reason_REASON_INVALID_ARGUMENT
	leaseForTests = 10 * time.Second
)

func prepItem(kind messages.WriteKind, key, expected string) *messages.PrepareItem {
	it := &messages.PrepareItem{Key: key, Kind: kind}
	if expected != "" {
		it.Expected = []byte(expected)
	}
	return it
}

// prepare delivers a Prepare from a peer to c and returns c's Promise.
func prepare(t *testing.T, c *Core, from string, txn uint64, items ...*messages.PrepareItem) *messages.Promise {
	t.Helper()
	c.Step(from, &messages.Prepare{Txn: txn, Epoch: c.Membership().Epoch, Items: items, Ballot: c.hlc + 1})
	var got *messages.Promise
	for _, env := range c.TakeOutput().Messages {
		if p, ok := env.Msg.(*messages.Promise); ok && env.To == from && p.GetTxn() == txn {
			if got != nil {
				t.Fatal("two promises for one prepare")
			}
			got = p
		}
	}
	if got == nil {
		t.Fatalf("no promise from %s", c.cfg.Self)
	}
	if len(got.GetItems()) != len(items) {
		t.Fatalf("promise has %d items for %d asked", len(got.GetItems()), len(items))
	}
	return got
}

// commit delivers a Commit from a peer to c and returns c's Committed
// (nil when c sent none).
func commit(t *testing.T, c *Core, from string, txn uint64, items ...*messages.CommitItem) *messages.Committed {
	t.Helper()
	c.Step(from, &messages.Commit{Txn: txn, Items: items})
	var got *messages.Committed
	for _, env := range c.TakeOutput().Messages {
		if m, ok := env.Msg.(*messages.Committed); ok && env.To == from && m.GetTxn() == txn {
			got = m
		}
	}
	return got
}

// TestPromiseRefusesOtherEpochs checks that a master promises only to a
// coordinator of its own configuration epoch, older or newer.
func TestPromiseRefusesOtherEpochs(t *testing.T) {
	n := newNetwork(t, n1)
	n.core(n1).Step(outsider, &messages.SetNodes{Request: 1, Epoch: 5, Masters: []string{n1}})
	n.takeOutbox(n1)
	for _, epoch := range []uint64{4, 6} {
		n.core(n1).Step(n2, &messages.Prepare{Txn: epoch, Epoch: epoch, Items: []*messages.PrepareItem{prepItem(kLock, "k", "")}})
		for _, env := range n.takeOutbox(n1) {
			p := env.Msg.(*messages.Promise)
			if it := p.GetItems()[0]; it.GetGranted() || it.GetReason() != messages.Reason_REASON_STALE_EPOCH || p.GetEpoch() != 5 {
				t.Fatalf("epoch %d: granted=%v reason=%v epoch=%d", epoch, it.GetGranted(), it.GetReason(), p.GetEpoch())
			}
		}
	}
	if n.core(n1).WriteLocks() != 0 {
		t.Fatal("a refused prepare left a write lock")
	}
}

// TestPromiseRules checks when a master grants a promise (a short write
// lock on a key) and why it refuses.
func TestPromiseRules(t *testing.T) {
	lockKV := func(n *network) {
		if o := n.do1(n1, lockOp("k", "v", leaseForTests)); !o.OK {
			n.t.Fatalf("setup lock: %+v", o)
		}
	}
	cases := []struct {
		name    string
		setup   func(n *network)
		item    *messages.PrepareItem
		reason  messages.Reason // rNone: granted
		granted bool
	}{
		{name: "lock is granted only where the key is absent", item: prepItem(kLock, "k", ""), granted: true},
		{name: "lock is refused where the key is held", setup: lockKV, item: prepItem(kLock, "k", ""), reason: rLocked},
		{name: "lock of another key is granted beside a held one", setup: lockKV, item: prepItem(kLock, "other", ""), granted: true},
		{name: "lock is granted again once the key was released", setup: func(n *network) {
			lockKV(n)
			if o := n.do1(n1, releaseOp("k", "v")); !o.OK {
				n.t.Fatalf("setup release: %+v", o)
			}
		}, item: prepItem(kLock, "k", ""), granted: true},
		{name: "lock is granted again once the lease ran out", setup: func(n *network) {
			lockKV(n)
			n.advance(leaseForTests) // exactly at the deadline: gone, Tick or not
		}, item: prepItem(kLock, "k", ""), granted: true},
		{name: "lock is granted at the deadline even before Tick removed the key", setup: func(n *network) {
			lockKV(n)
			n.clock.now = n.clock.now.Add(leaseForTests)
		}, item: prepItem(kLock, "k", ""), granted: true},
		{name: "lock is refused a nanosecond before the deadline", setup: func(n *network) {
			lockKV(n)
			n.advance(leaseForTests - time.Nanosecond)
		}, item: prepItem(kLock, "k", ""), reason: rLocked},

		{name: "update is granted where the value equals the expected one", setup: lockKV, item: prepItem(kUpdate, "k", "v"), granted: true},
		{name: "extend is granted where the value equals the expected one", setup: lockKV, item: prepItem(kExtend, "k", "v"), granted: true},
		{name: "release is granted where the value equals the expected one", setup: lockKV, item: prepItem(kRelease, "k", "v"), granted: true},
		{name: "update is refused where the value differs", setup: lockKV, item: prepItem(kUpdate, "k", "x"), reason: rDiffers},
		{name: "extend is refused where the value differs", setup: lockKV, item: prepItem(kExtend, "k", "x"), reason: rDiffers},
		{name: "release is refused where the value differs", setup: lockKV, item: prepItem(kRelease, "k", "x"), reason: rDiffers},
		{name: "release expecting the empty value is refused where the value differs", setup: lockKV, item: prepItem(kRelease, "k", ""), reason: rDiffers},
		{name: "update is refused where the key is absent", item: prepItem(kUpdate, "k", "v"), reason: rNotFound},
		{name: "extend is refused where the key is absent", item: prepItem(kExtend, "k", "v"), reason: rNotFound},
		{name: "release is refused where the key is absent", item: prepItem(kRelease, "k", "v"), reason: rNotFound},
		{name: "release is refused where the lease ran out", setup: func(n *network) {
			lockKV(n)
			n.advance(leaseForTests)
		}, item: prepItem(kRelease, "k", "v"), reason: rNotFound},
		{name: "extend is refused where the key was released", setup: func(n *network) {
			lockKV(n)
			n.do1(n1, releaseOp("k", "v"))
		}, item: prepItem(kExtend, "k", "v"), reason: rNotFound},

		{name: "a key write-locked by another transaction is refused", setup: func(n *network) {
			prepare(n.t.(*testing.T), n.core(n1), n2, 77, prepItem(kLock, "k", ""))
		}, item: prepItem(kLock, "k", ""), reason: rWriteLocked},
		{name: "a key write-locked by the same txn id of another coordinator is refused", setup: func(n *network) {
			prepare(n.t.(*testing.T), n.core(n1), n2, 1, prepItem(kLock, "k", ""))
		}, item: prepItem(kLock, "k", ""), reason: rWriteLocked},
		{name: "a held and write-locked key is refused as write-locked", setup: func(n *network) {
			lockKV(n)
			prepare(n.t.(*testing.T), n.core(n1), n2, 77, prepItem(kExtend, "k", "v"))
		}, item: prepItem(kRelease, "k", "v"), reason: rWriteLocked},
		{name: "a write lock is free again once WriteLockTimeout passed", setup: func(n *network) {
			prepare(n.t.(*testing.T), n.core(n1), n2, 77, prepItem(kLock, "k", ""))
			n.advance(n.cfg.WriteLockTimeout)
		}, item: prepItem(kLock, "k", ""), granted: true},
		{name: "a write lock is free once WriteLockTimeout passed even before Tick", setup: func(n *network) {
			prepare(n.t.(*testing.T), n.core(n1), n2, 77, prepItem(kLock, "k", ""))
			n.clock.now = n.clock.now.Add(n.cfg.WriteLockTimeout)
		}, item: prepItem(kLock, "k", ""), granted: true},
		{name: "a write lock still holds a nanosecond before WriteLockTimeout", setup: func(n *network) {
			prepare(n.t.(*testing.T), n.core(n1), n2, 77, prepItem(kLock, "k", ""))
			n.advance(n.cfg.WriteLockTimeout - time.Nanosecond)
		}, item: prepItem(kLock, "k", ""), reason: rWriteLocked},
		{name: "an aborted write lock is free again", setup: func(n *network) {
			prepare(n.t.(*testing.T), n.core(n1), n2, 77, prepItem(kLock, "k", ""))
			commit(n.t.(*testing.T), n.core(n1), n2, 77, &messages.CommitItem{Key: "k", Kind: kLock, Abort: true})
		}, item: prepItem(kLock, "k", ""), granted: true},

		{name: "a peer that is not a master refuses", setup: func(n *network) {
			n.core(n1).Step(outsider, &messages.SetNodes{Request: 1, Epoch: 1, Masters: []string{n2}, Replicas: []string{n1}})
			n.takeOutbox(n1)
		}, item: prepItem(kLock, "k", ""), reason: rNotMaster},
		{name: "a replica holding the value still refuses as not master", setup: func(n *network) {
			lockKV(n)
			n.core(n1).Step(outsider, &messages.SetNodes{Request: 1, Epoch: 1, Masters: []string{n2}, Replicas: []string{n1}})
			n.takeOutbox(n1)
		}, item: prepItem(kRelease, "k", "v"), reason: rNotMaster},
		{name: "an empty key is refused as invalid", item: prepItem(kLock, "", ""), reason: rInvalid},
		{name: "a peer catching up after a restart refuses", setup: func(n *network) {
			n.core(n1).catchingUp = true
		}, item: prepItem(kLock, "k", ""), reason: messages.Reason_REASON_CATCHING_UP},
		{name: "an unspecified kind is refused as invalid", item: prepItem(messages.WriteKind_WRITE_KIND_UNSPECIFIED, "k", ""), reason: rInvalid},
		{name: "an unknown kind is refused as invalid", item: prepItem(messages.WriteKind(42), "k", ""), reason: rInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := newNetwork(t, n1)
			if tc.setup != nil {
				tc.setup(n)
			}
			locksBefore := n.core(n1).WriteLocks()
			p := prepare(t, n.core(n1), outsider, 1, tc.item)
			it := p.GetItems()[0]
			if it.GetGranted() != tc.granted || it.GetReason() != tc.reason {
				t.Fatalf("promise: granted=%v reason=%v, want granted=%v reason=%v", it.GetGranted(), it.GetReason(), tc.granted, tc.reason)
			}
			wantLocks := locksBefore
			if tc.granted {
				wantLocks = len(n.core(n1).locks)
				if wl, ok := n.core(n1).locks[tc.item.GetKey()]; !ok || wl.from != outsider || wl.txn != 1 {
					t.Fatalf("granted without taking the write lock: %+v", wl)
				}
				if r, ok := n.core(n1).ballots[tc.item.GetKey()]; ordered(tc.item.GetKind()) && (!ok || r.b == 0) {
					t.Fatal("granted a Lock or Update without remembering its ballot")
				}
			}
			if got := n.core(n1).WriteLocks(); got != wantLocks {
				t.Fatalf("WriteLocks() = %d, want %d", got, wantLocks)
			}
			n.checkInvariants()
		})
	}
}

// TestPromiseItemsAreIndependent checks that the items of one Prepare are
// answered one by one, in order.
func TestPromiseItemsAreIndependent(t *testing.T) {
	n := newNetwork(t, n1)
	n.do1(n1, lockOp("held", "v", leaseForTests))
	p := prepare(t, n.core(n1), outsider, 5,
		prepItem(kLock, "free", ""), prepItem(kLock, "held", ""), prepItem(kRelease, "held", "v"), prepItem(kUpdate, "gone", "v"))
	want := []messages.Reason{rNone, rLocked, rNone, rNotFound}
	for i, it := range p.GetItems() {
		if it.GetReason() != want[i] || it.GetGranted() != (want[i] == rNone) {
			t.Errorf("item %d: granted=%v reason=%v, want %v", i, it.GetGranted(), it.GetReason(), want[i])
		}
	}
	if got := n.core(n1).WriteLocks(); got != 2 {
		t.Fatalf("WriteLocks() = %d, want 2", got)
	}
	// The held key's token is reported.
	if held := p.GetItems()[2]; held.GetToken() == 0 {
		t.Fatalf("token %d: want the held key's token", held.GetToken())
	}
}

// TestWriteLockCount checks that WriteLocks counts the write locks held,
// also when an expired one is taken over before Tick removed it.
func TestWriteLockCount(t *testing.T) {
	t.Run("write locks are counted once when an expired one is taken over before Tick", func(t *testing.T) {
		n := newNetwork(t, n1)
		c := n.core(n1)
		prepare(t, c, n2, 1, prepItem(kLock, "k", ""))
		n.clock.now = n.clock.now.Add(n.cfg.WriteLockTimeout) // expired, not ticked
		prepare(t, c, n3, 1, prepItem(kLock, "k", ""))
		if got := c.WriteLocks(); got != 1 {
			t.Fatalf("WriteLocks() = %d, want 1", got)
		}
		n.advance(2 * n.cfg.WriteLockTimeout)
		if got := c.WriteLocks(); got != 0 {
			t.Fatalf("after expiry WriteLocks() = %d, want 0", got)
		}
		n.checkInvariants()
	})
	t.Run("a repeated prepare of the same transaction keeps one write lock", func(t *testing.T) {
		n := newNetwork(t, n1)
		c := n.core(n1)
		prepare(t, c, n2, 1, prepItem(kLock, "k", ""))
		p := prepare(t, c, n2, 1, prepItem(kLock, "k", ""))
		if !p.GetItems()[0].GetGranted() {
			t.Fatal("a repeated prepare of the lock holder was refused")
		}
		if got := c.WriteLocks(); got != 1 {
			t.Fatalf("WriteLocks() = %d, want 1", got)
		}
		commit(t, c, n2, 1, &messages.CommitItem{Key: "k", Kind: kLock, Abort: true})
		if got := c.WriteLocks(); got != 0 {
			t.Fatalf("after abort WriteLocks() = %d, want 0", got)
		}
	})
	t.Run("an abort of everything frees only that transaction's write locks", func(t *testing.T) {
		n := newNetwork(t, n1)
		c := n.core(n1)
		prepare(t, c, n2, 1, prepItem(kLock, "a", ""), prepItem(kLock, "b", ""))
		prepare(t, c, n2, 2, prepItem(kLock, "c", ""))
		prepare(t, c, n3, 1, prepItem(kLock, "d", ""))
		commit(t, c, n2, 1)
		if got := c.WriteLocks(); got != 2 {
			t.Fatalf("WriteLocks() = %d, want 2 (c and d)", got)
		}
		if _, ok := c.locks["c"]; !ok {
			t.Fatal("another transaction's write lock was freed")
		}
		if _, ok := c.locks["d"]; !ok {
			t.Fatal("another coordinator's write lock was freed")
		}
	})
}

// TestCommitRules checks what a master does with a Commit.
func TestCommitRules(t *testing.T) {
	t.Run("commit after the promise expired is refused as PROMISE_EXPIRED", func(t *testing.T) {
		n := newNetwork(t, n1)
		c := n.core(n1)
		prepare(t, c, n2, 1, prepItem(kLock, "k", ""))
		n.advance(n.cfg.WriteLockTimeout)
		ack := commit(t, c, n2, 1, &messages.CommitItem{Key: "k", Kind: kLock, Value: []byte("v"), LeaseMs: 1000, Token: c.hlc})
		if ack == nil || ack.GetItems()[0].GetOk() || ack.GetItems()[0].GetReason() != rExpired {
			t.Fatalf("ack %v, want PROMISE_EXPIRED", ack)
		}
		if _, ok := n.read(n1, "k"); ok {
			t.Fatal("the expired promise was applied")
		}
	})
	t.Run("commit after the promise expired is refused even before Tick", func(t *testing.T) {
		n := newNetwork(t, n1)
		c := n.core(n1)
		prepare(t, c, n2, 1, prepItem(kLock, "k", ""))
		n.clock.now = n.clock.now.Add(n.cfg.WriteLockTimeout)
		ack := commit(t, c, n2, 1, &messages.CommitItem{Key: "k", Kind: kLock, Value: []byte("v"), LeaseMs: 1000, Token: 9})
		if ack.GetItems()[0].GetReason() != rExpired {
			t.Fatalf("ack %v, want PROMISE_EXPIRED", ack)
		}
	})
	t.Run("commit after another transaction took the expired promise over is refused", func(t *testing.T) {
		n := newNetwork(t, n1)
		c := n.core(n1)
		prepare(t, c, n2, 1, prepItem(kLock, "k", ""))
		n.advance(n.cfg.WriteLockTimeout)
		prepare(t, c, n3, 8, prepItem(kLock, "k", ""))
		ack := commit(t, c, n2, 1, &messages.CommitItem{Key: "k", Kind: kLock, Value: []byte("v"), LeaseMs: 1000, Token: 9})
		if ack.GetItems()[0].GetReason() != rExpired {
			t.Fatalf("ack %v, want PROMISE_EXPIRED", ack)
		}
		if wl := c.locks["k"]; wl.from != n3 || wl.txn != 8 {
			t.Fatalf("the new holder lost its write lock: %+v", wl)
		}
	})
	t.Run("commit without any promise is refused", func(t *testing.T) {
		n := newNetwork(t, n1)
		ack := commit(t, n.core(n1), n2, 3, &messages.CommitItem{Key: "k", Kind: kLock, Value: []byte("v"), LeaseMs: 1000, Token: 9})
		if ack.GetItems()[0].GetReason() != rExpired {
			t.Fatalf("ack %v, want PROMISE_EXPIRED", ack)
		}
	})
	t.Run("commit of a lock without a lease is refused as invalid", func(t *testing.T) {
		n := newNetwork(t, n1)
		c := n.core(n1)
		prepare(t, c, n2, 1, prepItem(kLock, "k", ""))
		ack := commit(t, c, n2, 1, &messages.CommitItem{Key: "k", Kind: kLock, Value: []byte("v"), Token: 9})
		if ack.GetItems()[0].GetReason() != rInvalid {
			t.Fatalf("ack %v, want INVALID_ARGUMENT", ack)
		}
	})
	t.Run("an abort is not acknowledged and frees the write lock", func(t *testing.T) {
		n := newNetwork(t, n1)
		c := n.core(n1)
		prepare(t, c, n2, 1, prepItem(kLock, "k", ""))
		if ack := commit(t, c, n2, 1, &messages.CommitItem{Key: "k", Kind: kLock, Abort: true}); ack != nil {
			t.Fatalf("an abort was acknowledged: %v", ack)
		}
		if c.WriteLocks() != 0 {
			t.Fatal("the abort kept the write lock")
		}
	})
	t.Run("an abort from another coordinator leaves the write lock", func(t *testing.T) {
		n := newNetwork(t, n1)
		c := n.core(n1)
		prepare(t, c, n2, 1, prepItem(kLock, "k", ""))
		commit(t, c, n3, 1, &messages.CommitItem{Key: "k", Kind: kLock, Abort: true})
		if c.WriteLocks() != 1 {
			t.Fatal("a stranger's abort freed the write lock")
		}
	})
	t.Run("update committed after the lease ran out is refused as NOT_FOUND", func(t *testing.T) {
		cfg := testConfig()
		n := newNetworkWith(t, cfg, n1)
		c := n.core(n1)
		n.do1(n1, lockOp("k", "v", 500*time.Millisecond))
		prepare(t, c, n2, 1, prepItem(kUpdate, "k", "v"))
		n.advance(500 * time.Millisecond)
		ack := commit(t, c, n2, 1, &messages.CommitItem{Key: "k", Kind: kUpdate, Value: []byte("w"), Token: 99})
		if ack.GetItems()[0].GetReason() != rNotFound {
			t.Fatalf("ack %v, want NOT_FOUND", ack)
		}
		if c.WriteLocks() != 0 {
			t.Fatal("the refused commit kept the write lock")
		}
	})
}
