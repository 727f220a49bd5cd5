package core

import (
	"testing"
	"time"

	"github.com/protoactor-locker/locker/messages"
)

// TestCountingRules checks what a peer counts, or does again, when a
// message is repeated on the way or comes from another life of its
// sender.
func TestCountingRules(t *testing.T) {
	t.Run("a promise of a master's earlier life never counts", func(t *testing.T) {
		n := masters(t, 2, n1, n2, n3)
		n.drop[n3] = true
		n.holdIf = func(p packet) bool { return p.to == n1 && p.from == n2 }
		c := n.submit(n1, lockOp("k", "v", time.Minute))
		n.run()
		old := n.held
		n.held, n.holdIf = nil, nil
		if len(old) != 1 {
			t.Fatalf("held %d messages, want n2's promise", len(old))
		}
		// n2 restarts and gossips its configuration: n1 hears of its new
		// life before the old promise arrives, within the Lock's deadline.
		n.stop(n2)
		n.start(n2)
		n.core(n2).Step(n1, &messages.ConfigCommit{Next: toProto(n.core(n1).Membership())})
		n.core(n2).gossip()
		n.run()
		if known := n.core(n1).peerInc[n2]; known != n.core(n2).incarnation {
			t.Fatalf("n1 knows n2 as incarnation %d, want its new life %d", known, n.core(n2).incarnation)
		}
		n.core(n1).Step(old[0].from, old[0].msg)
		n.sleep(n.cfg.RequestTimeout)
		if !c.done() {
			t.Fatal("the Lock did not reply")
		}
		if o := c.one(); o.OK || o.Votes != 1 {
			t.Fatalf("the Lock counted the earlier life's promise: %+v", o)
		}
		if _, ok := n.read(n1, "k"); ok {
			t.Fatal("n1 applied the Lock on the earlier life's promise")
		}
	})
	t.Run("a Prepare repeated after its write was decided is not granted again", func(t *testing.T) {
		n := masters(t, 2, n1, n2, n3)
		var prepares []packet
		n.holdIf = func(p packet) bool {
			if _, ok := p.msg.(*messages.Prepare); ok && p.to == n2 {
				prepares = append(prepares, p)
			}
			return false
		}
		if o := n.do1(n1, lockOp("k", "v", time.Minute)); !o.OK {
			t.Fatalf("lock: %+v", o)
		}
		prepares = nil
		// An Extend: its Prepare would be granted again (the key still
		// holds the value it expects). n3's acknowledgement is held, so the
		// coordinator still knows the write when the repeat is answered.
		hold := n.holdIf
		n.holdIf = func(p packet) bool {
			_, ack := p.msg.(*messages.Committed)
			return hold(p) || ack && p.from == n3
		}
		if o := n.do1(n1, Op{Kind: messages.WriteKind_WRITE_KIND_EXTEND, Key: "k", Value: []byte("v"), LeaseMs: time.Minute.Milliseconds()}); !o.OK {
			t.Fatalf("extend: %+v", o)
		}
		if len(prepares) != 1 || len(n.held) != 1 {
			t.Fatalf("saw %d Prepares to n2 and held %d messages", len(prepares), len(n.held))
		}
		n.core(n2).Step(prepares[0].from, prepares[0].msg) // the repeat
		n.run()
		n.unholdAll()
		n.run()
		if got := n.core(n2).WriteLocks(); got != 0 {
			t.Fatalf("n2 holds %d write locks after the repeated Prepare", got)
		}
		if o := n.do1(n1, releaseOp("k", "v")); !o.OK || o.Commits != 3 {
			t.Fatalf("the Release after the repeat: %+v, want committed on every master", o)
		}
	})
	t.Run("a Sync repeated after its copy ended starts no second copy", func(t *testing.T) {
		n := masters(t, 2, n1, n2, n3)
		if o := n.do1(n1, lockOp("k", "v", time.Minute)); !o.OK {
			t.Fatalf("lock: %+v", o)
		}
		answers, asks := 0, 0
		n.holdIf = func(p packet) bool {
			switch m := p.msg.(type) {
			case *messages.AdminReply:
				if p.to == outsider && m.GetRequest() == 4 && m.GetReason() == messages.Reason_REASON_UNSPECIFIED {
					answers++
				}
			case *messages.SnapshotRequest:
				asks++
			}
			return p.to == outsider // the coordinator is not in the network
		}
		sync := &messages.Sync{Request: 4, Epoch: n.core(n3).Membership().Epoch, Sources: []string{n1, n2}, Need: 2}
		n.core(n3).Step(outsider, sync)
		n.run()
		if answers != 1 || asks != 2 {
			t.Fatalf("the Sync: %d answers, %d snapshot requests; want one answer after copying from n1 and n2", answers, asks)
		}
		n.core(n3).Step(outsider, sync)
		n.run()
		if answers != 2 || asks != 2 {
			t.Fatalf("the repeated Sync: %d answers, %d snapshot requests; want the answer again and no copy", answers, asks)
		}
	})
}
