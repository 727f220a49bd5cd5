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
			if p := c.TakeOutbox()[0].Msg.(*messages.Promise); !p.GetItems()[0].GetGranted() {
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
			ack := c.TakeOutbox()[0].Msg.(*messages.Committed)
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
		c.TakeOutbox()
		// The lock committed elsewhere first and reached this master by copy.
		replicate(c, outsider, &messages.Entry{Key: "b", Value: []byte("v"), LeaseMs: minute, Token: 20})
		c.Step(outsider, &messages.Commit{Txn: 7, Items: []*messages.CommitItem{{Key: "b", Kind: messages.WriteKind_WRITE_KIND_LOCK, Value: []byte("v"), Token: 20, LeaseMs: minute}}})
		if ack := c.TakeOutbox()[0].Msg.(*messages.Committed); !ack.GetItems()[0].GetOk() {
			t.Fatalf("the commit of the copied write was refused: %v", ack)
		}
		if v, ok := n.read(n1, "b"); !ok || v != "v" {
			t.Fatalf("b = %q, %v", v, ok)
		}
	})
}
