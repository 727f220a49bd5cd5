package core

import (
	"testing"
	"time"

	"github.com/protoactor-locker/locker/messages"
)

// TestCopiedLeaseEndsPromises checks the rule that a promise given for a
// key's state does not outlive that state: when a newer lease lands by
// copy (a snapshot or a replication batch) on a key a write was promised
// against, the promise goes, so that a late Release or Extend of the
// replaced lease cannot end or overwrite the new one. Seed 151 of the
// simulation found it: a master paused during a change of masters
// promised the Release of a lease already released and relocked
// elsewhere, copied the new lease by snapshot, then applied the Release's
// commit over it; its tombstone spread through the next syncs and the key
// was granted twice.
func TestCopiedLeaseEndsPromises(t *testing.T) {
	minute := time.Minute.Milliseconds()
	for _, kind := range []messages.WriteKind{messages.WriteKind_WRITE_KIND_RELEASE, messages.WriteKind_WRITE_KIND_EXTEND, messages.WriteKind_WRITE_KIND_UPDATE} {
		t.Run(kind.String()+" promised against the old lease does not land on the copied one", func(t *testing.T) {
			n := newNetwork(t, n1)
			c := n.core(n1)
			replicate(c, outsider, &messages.Entry{Key: "b", Value: []byte("old"), LeaseMs: minute, Token: 10})
			c.Step(outsider, &messages.Prepare{Txn: 7, Ballot: c.hlc + 1, Items: []*messages.PrepareItem{{Key: "b", Kind: kind, Expected: []byte("old")}}})
			if p := c.TakeOutput().Messages[0].Msg.(*messages.Promise); !p.GetItems()[0].GetGranted() {
				t.Fatalf("the promise was refused: %v", p)
			}
			// The old lease was released and relocked elsewhere; the new
			// lease arrives by copy.
			replicate(c, outsider, &messages.Entry{Key: "b", Value: []byte("new"), LeaseMs: minute, Token: 20})
			if c.WriteLocks() != 0 {
				t.Fatal("the promise for the replaced lease is still held")
			}
			value := []byte("old")
			if kind == messages.WriteKind_WRITE_KIND_UPDATE {
				value = []byte("updated")
			}
			c.Step(outsider, &messages.Commit{Txn: 7, Items: []*messages.CommitItem{{Key: "b", Kind: kind, Value: value, Token: 10, LeaseMs: minute}}})
			ack := c.TakeOutput().Messages[0].Msg.(*messages.Committed)
			if ack.GetItems()[0].GetOk() {
				t.Fatalf("the late commit was applied: %v", ack)
			}
			if v, ok := n.read(n1, "b"); !ok || v != "new" {
				t.Fatalf("b = %q, %v after the late commit; want the copied lease \"new\"", v, ok)
			}
			n.checkInvariants()
		})
	}
	t.Run("the commit of the write that made the copied state is still acknowledged", func(t *testing.T) {
		n := newNetwork(t, n1)
		c := n.core(n1)
		c.Step(outsider, &messages.Prepare{Txn: 7, Ballot: c.hlc + 1, Items: []*messages.PrepareItem{{Key: "b", Kind: messages.WriteKind_WRITE_KIND_LOCK}}})
		c.TakeOutput()
		// The lock committed elsewhere first and reached this master by copy.
		replicate(c, outsider, &messages.Entry{Key: "b", Value: []byte("v"), LeaseMs: minute, Token: 20})
		c.Step(outsider, &messages.Commit{Txn: 7, Items: []*messages.CommitItem{{Key: "b", Kind: messages.WriteKind_WRITE_KIND_LOCK, Value: []byte("v"), Token: 20, LeaseMs: minute}}})
		if ack := c.TakeOutput().Messages[0].Msg.(*messages.Committed); !ack.GetItems()[0].GetOk() {
			t.Fatalf("the commit of the copied write was refused: %v", ack)
		}
		if v, ok := n.read(n1, "b"); !ok || v != "v" {
			t.Fatalf("b = %q, %v", v, ok)
		}
	})
}

// TestPushMirroredByAMasterThatMissedAChange checks that a push never
// gets the merge a voter gives the copies it asks for (keep the later
// deadline). Pushes go to the replicas of the sender's configuration,
// so a push reaching a master comes from a configuration it has not
// heard of yet, in which it is a replica. Sim seed 11145 found it: a
// master paused through two changes of masters merged a push of a newer
// short lease over the hour-long lease it held, kept the hour, and, a
// replica once it learnt the change, held the value for an hour after
// every master had let it go.
func TestPushMirroredByAMasterThatMissedAChange(t *testing.T) {
	n := newNetwork(t, n1, n2, n3)
	n.configure(n1, []string{n1, n2, n3}, nil, 2)
	lock := n.do1(n1, lockOp("k", "old", time.Hour))
	if !lock.OK {
		t.Fatalf("lock: %+v", lock)
	}
	c := n.core(n1)
	c.Step(outsider, &messages.Replicate{
		Epoch: c.member.Load().Epoch + 2, Incarnation: 1, Sequence: 1,
		Entries: []*messages.Entry{{Key: "k", Value: []byte("new"), LeaseMs: 1000, Token: lock.Token + 1000}},
	})
	c.TakeOutput()
	e := c.store.raw("k")
	if e == nil || string(e.value) != "new" {
		t.Fatalf("k = %+v, want the pushed state", e)
	}
	if left := time.Duration(e.deadline - c.now()); left != time.Second {
		t.Fatalf("k's lease has %v left, want the pushed lease's 1s", left)
	}
}
