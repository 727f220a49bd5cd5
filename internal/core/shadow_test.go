package core

import (
	"testing"
	"time"

	"github.com/protoactor-locker/locker/messages"
)

// TestShadowDeadline checks that an entry does not forget, when its
// lease runs out, a later deadline of a state it replaced: a short lease
// taken over the tombstone of a long one ends as a tombstone kept until
// the long one's deadline, so that a stale copy of the released lease
// cannot come back (sim seed 4396: a ghost lease of a released key on a
// quorum of masters, copied from masters that missed the Release).
func TestShadowDeadline(t *testing.T) {
	t.Run("a stale copy of a released lease does not come back after a short relock expired", func(t *testing.T) {
		n := newNetwork(t, n1)
		c := n.core(n1)
		var changes []Change
		c.Store().OnChange = func(ch Change) { changes = append(changes, ch) }
		old := n.do1(n1, lockOp("k", "old", time.Hour))
		if o := n.do1(n1, releaseOp("k", "old")); !o.OK {
			t.Fatalf("release: %+v", o)
		}
		short := n.do1(n1, lockOp("k", "new", 100*time.Millisecond))
		if !short.OK || short.Token <= old.Token {
			t.Fatalf("relock: %+v", short)
		}
		n.sleep(time.Second) // the short lease ran out
		if _, ok := n.read(n1, "k"); ok {
			t.Fatal("k held after its lease ran out")
		}
		l, ok := c.Store().Lookup("k")
		if !ok || !l.Released || l.Token != old.Token || l.Left <= 50*time.Minute {
			t.Fatalf("k after expiry: %+v, %v; want a tombstone with token %d (the released lease's) for the hour's rest", l, ok, old.Token)
		}
		expired := 0
		for _, ch := range changes {
			if ch.Key == "k" && ch.Kind == Expired {
				expired++
			}
		}
		if last := changes[len(changes)-1]; expired != 1 || last.Kind != Expired || string(last.Value) != "new" {
			t.Fatalf("changes %+v, want the short lease expired once, last", changes)
		}
		// A master that missed the Release copies the hour-long lease here.
		replicate(c, outsider, &messages.Entry{Key: "k", Value: []byte("old"), LeaseMs: (58 * time.Minute).Milliseconds(), Token: old.Token})
		if v, ok := n.read(n1, "k"); ok {
			t.Fatalf("k = %q: the released lease came back", v)
		}
		if o := n.do1(n1, lockOp("k", "next", time.Second)); !o.OK {
			t.Fatalf("lock after the short lease: %+v", o)
		}
		n.checkInvariants()
		// The tombstone goes at the hour's end.
		n.sleep(time.Hour)
		if _, ok := c.Store().Lookup("k"); ok {
			t.Fatal("k kept past the released lease's deadline")
		}
		n.checkInvariants()
	})
	t.Run("a copy replacing a longer lease keeps its deadline", func(t *testing.T) {
		n := newNetwork(t, n2)
		c := n.core(n2)
		replicate(c, n1, &messages.Entry{Key: "k", Value: []byte("old"), LeaseMs: (time.Hour).Milliseconds(), Token: 10})
		replicate(c, n1, &messages.Entry{Key: "k", Value: []byte("new"), LeaseMs: 100, Token: 20})
		n.sleep(time.Second)
		replicate(c, n3, &messages.Entry{Key: "k", Value: []byte("old"), LeaseMs: (50 * time.Minute).Milliseconds(), Token: 10})
		if v, ok := n.read(n2, "k"); ok {
			t.Fatalf("k = %q: the replaced lease came back", v)
		}
		replicate(c, n1, &messages.Entry{Key: "k", Value: []byte("newer"), LeaseMs: 1000, Token: 30})
		if v, ok := n.read(n2, "k"); !ok || v != "newer" {
			t.Fatalf("k = %q, %v; want the newer state", v, ok)
		}
		n.checkInvariants()
	})
	t.Run("the tombstone left by an expiry does not block the same lease extended elsewhere", func(t *testing.T) {
		// The tombstone takes the replaced lease's token: the short lease
		// itself may live on at masters that saw an Extend this one missed,
		// and a copy of it still lands here.
		n := newNetwork(t, n1)
		c := n.core(n1)
		n.do1(n1, lockOp("k", "old", time.Hour))
		n.do1(n1, releaseOp("k", "old"))
		short := n.do1(n1, lockOp("k", "new", 100*time.Millisecond))
		n.sleep(time.Second)
		replicate(c, outsider, &messages.Entry{Key: "k", Value: []byte("new"), LeaseMs: 5000, Token: short.Token})
		if v, ok := n.read(n1, "k"); !ok || v != "new" {
			t.Fatalf("k = %q, %v; want the extended lease", v, ok)
		}
		n.checkInvariants()
	})
}
