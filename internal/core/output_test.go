package core

import (
	"slices"
	"testing"

	"github.com/protoactor-locker/locker/messages"
)

// TestAnswers checks how a Core answers the requests it is asked: a new
// handle per call, one answer per request in its output, carrying the
// handle and the kind of the call, in the order the requests finished.
func TestAnswers(t *testing.T) {
	t.Run("each call gets a new handle, and its answer carries it and its kind", func(t *testing.T) {
		n := newNetwork(t, n1)
		c := n.core(n1)
		c.Close() // every call is answered at once, as stopped
		ids := []RequestID{
			c.Submit([]Op{lockOp("k", "v", leaseForTests)}),
			c.ReadMaster("k"),
			c.SetW([]string{n1}, 1),
			c.SetNodes([]string{n1}, []string{n1}, nil),
			c.Reconfigure([]string{n1}, nil),
		}
		kinds := []RequestKind{KindWrite, KindRead, KindAdmin, KindAdmin, KindReconfig}
		out := c.TakeOutput()
		if len(out.Messages) != 0 || len(out.Answers) != len(ids) {
			t.Fatalf("output %+v, want %d answers and no message", out, len(ids))
		}
		for i, a := range out.Answers {
			if a.ID == 0 || a.ID != ids[i] || a.Kind != kinds[i] || slices.Contains(ids[:i], a.ID) {
				t.Fatalf("answer %d: request %d of kind %v, want request %d of kind %v, handles %v", i, a.ID, a.Kind, ids[i], kinds[i], ids)
			}
		}
		stopped := out.Answers[0].Outcomes[0].Stopped && out.Answers[1].Read.Stopped &&
			out.Answers[2].Admin[n1].Reason == rUnreachable && out.Answers[3].Admin[n1].Reason == rUnreachable &&
			out.Answers[4].Reconfig.Stopped
		if !stopped {
			t.Fatalf("answers %+v, want each stopped", out.Answers)
		}
		if again := c.TakeOutput(); len(again.Messages) != 0 || len(again.Answers) != 0 {
			t.Fatalf("output taken twice: %+v", again)
		}
	})
	t.Run("answers come in the order the requests finished, not the order they were made", func(t *testing.T) {
		n := masters(t, 2, n1, n2)
		n.holdTo(n2)
		var order []string
		for _, key := range []string{"first", "second"} {
			n.onAnswer(n1, n.core(n1).Submit([]Op{lockOp(key, "v", leaseForTests)}), func(a Answer) {
				if !a.Outcomes[0].OK {
					t.Errorf("%s: %+v", key, a.Outcomes[0])
				}
				order = append(order, key)
			})
		}
		n.run()
		slices.Reverse(n.held) // n2 promises the second write first
		n.unhold(n2)
		n.run()
		if !slices.Equal(order, []string{"second", "first"}) {
			t.Fatalf("answered %v, want the second write first", order)
		}
	})
	t.Run("a request refused at once is answered in the output of the call", func(t *testing.T) {
		n := newNetworkWith(t, memberConfig(), n1)
		c := n.core(n1)
		id := c.Submit([]Op{lockOp("k", "v", leaseForTests)})
		out := c.TakeOutput()
		if len(out.Answers) != 1 || out.Answers[0].ID != id || !out.Answers[0].Outcomes[0].NotReady {
			t.Fatalf("answers %+v, want request %d refused as not ready", out.Answers, id)
		}
		if len(out.Messages) != 0 {
			t.Fatalf("a refused write sent %v", out.Messages)
		}
	})
	t.Run("request handles draw no transaction id", func(t *testing.T) {
		n := newNetwork(t, n1)
		c := n.core(n1)
		before := c.nextID
		c.Submit(nil)
		c.Close()
		c.ReadMaster("k")
		c.SetW([]string{n1}, 1)
		c.Reconfigure([]string{n1}, nil)
		if c.nextID != before {
			t.Fatalf("the transaction ids moved from %d to %d", before, c.nextID)
		}
		if out := c.TakeOutput(); len(out.Answers) != 4 || out.Answers[0].Outcomes != nil {
			t.Fatalf("answers %+v, want 4, the first with no outcomes", out.Answers)
		}
	})
}

// TestRequestKindString checks the names of the kinds of request.
func TestRequestKindString(t *testing.T) {
	for k, want := range map[RequestKind]string{KindWrite: "write", KindAdmin: "admin", KindRead: "read", KindReconfig: "reconfigure", 0: "unknown"} {
		if got := k.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", k, got, want)
		}
	}
}

// TestRecycle checks Recycle: the arrays of an output handed back carry
// the Core's next output, with nothing of the old one in them, and an
// output handed back while newer output waits leaves the newer alone.
func TestRecycle(t *testing.T) {
	// lock submits a Lock of key to n1 of three masters and returns the
	// Core's output and the write's transaction.
	lock := func(c *Core, key string) (Output, uint64) {
		c.Submit([]Op{lockOp(key, "v", leaseForTests)})
		return c.TakeOutput(), c.nextID
	}
	prepares := func(t *testing.T, out Output, txn uint64) {
		t.Helper()
		if len(out.Messages) != 2 {
			t.Fatalf("messages %v, want a Prepare to each other master", out.Messages)
		}
		for _, env := range out.Messages {
			p, ok := env.Msg.(*messages.Prepare)
			if !ok || p.GetTxn() != txn {
				t.Fatalf("message %v to %s, want the Prepare of transaction %d", env.Msg, env.To, txn)
			}
		}
	}
	t.Run("the next output reuses the array, cleared", func(t *testing.T) {
		c := masters(t, 2, n1, n2, n3).core(n1)
		first, txn := lock(c, "a")
		prepares(t, first, txn)
		c.Recycle(Output{Messages: first.Messages[:1]}) // shortened by its owner: cleared whole all the same
		for i, env := range first.Messages {
			if env.Msg != nil || env.To != "" {
				t.Fatalf("message %d still in the recycled array: %+v", i, env)
			}
		}
		second, txn := lock(c, "b")
		prepares(t, second, txn)
		if &second.Messages[0] != &first.Messages[0] {
			t.Fatal("the second output did not reuse the recycled array")
		}
	})
	t.Run("newer output waiting is kept", func(t *testing.T) {
		c := masters(t, 2, n1, n2, n3).core(n1)
		first, _ := lock(c, "a")
		c.Submit([]Op{lockOp("b", "v", leaseForTests)})
		c.Recycle(first)
		second := c.TakeOutput()
		prepares(t, second, c.nextID)
		if &second.Messages[0] == &first.Messages[0] {
			t.Fatal("the recycled array replaced output that was waiting")
		}
	})
}
