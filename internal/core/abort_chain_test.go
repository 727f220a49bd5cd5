package core

import (
	"slices"
	"testing"
	"time"

	"github.com/protoactor-locker/locker/messages"
)

// TestAbortsOfTwoLaterWritesKeepTheBallotBeforeThem checks that a master
// whose bound on a key came from a write it promised (c0) keeps that
// bound when two later writes it promised on the key (D, then F) are both
// aborted, F's abort arriving first and D's after it.
//
// Masters n1, n2, n3 (W=2), n1's clock far ahead. n1 locks k for c0 with
// n2's promise; the commit to n2 is lost, so c0 fails with one commit
// (n1's own: the residue, token r). n2's write lock for c0 runs out. n1
// then tries two Locks of k, D and F, which n2 grants (their ballots are
// above r) and which fail (n1 holds the residue, n3 never answers): F's
// abort reaches n2 at once, D's only after D's write lock ran out there
// and F was granted and aborted. n3, whose clock never saw r, then locks
// k for c1 on n2 and n3. n2 promised c0 before c1, so c1's token must be
// above r; otherwise n3's catch-up keeps the residue over c1 and, once
// the residue's short lease ends, a third client locks k while c1 holds
// it.
func TestAbortsOfTwoLaterWritesKeepTheBallotBeforeThem(t *testing.T) {
	n := rollingNetwork(t, 30*time.Second)
	// 1. The residue: c0 committed on n1 alone, n2 promised it.
	residue := residueOnN1(t, n)
	n.holdTo(n3) // n3 hears nothing from now until c1 (its clock stays behind r)
	n.advance(n.cfg.WriteLockTimeout)
	// 2. D: granted by n2, refused by n1 (the residue), n3 silent; its
	// abort to n2 is held.
	n.holdIf = func(p packet) bool {
		_, commit := p.msg.(*messages.Commit)
		return p.to == n2 && p.from == n1 && commit
	}
	d := n.submit(n1, lockOp("k", "D", time.Second))
	n.sleep(n.cfg.RequestTimeout + 10*time.Millisecond)
	if !d.done() || d.one().OK {
		t.Fatalf("D: %+v, want a failure", d.outs)
	}
	var abortD []packet
	n.held = slices.DeleteFunc(n.held, func(p packet) bool {
		if p.to == n2 && p.from == n1 {
			abortD = append(abortD, p)
			return true
		}
		return false
	})
	if len(abortD) != 1 {
		t.Fatalf("D's abort to n2 was not held: %d messages", len(abortD))
	}
	n.holdIf = nil
	rD := n.core(n2).ballots["k"]
	if rD.b <= residue.Token {
		t.Fatalf("n2's bound %d after D is not above the residue's token %d", rD.b, residue.Token)
	}
	// 3. D's write lock at n2 runs out; F is granted by n2 and aborted.
	n.advance(n.cfg.WriteLockTimeout)
	f := n.submit(n1, lockOp("k", "F", time.Second))
	n.sleep(n.cfg.RequestTimeout + 10*time.Millisecond)
	if !f.done() || f.one().OK {
		t.Fatalf("F: %+v, want a failure", f.outs)
	}
	// 4. D's abort reaches n2 late.
	for _, p := range abortD {
		n.core(n2).Step(p.from, p.msg)
	}
	n.run()
	if b := n.core(n2).ballotBound("k"); b < residue.Token {
		t.Errorf("n2's bound on k is %d after the aborts of D and F, below c0's ballot %d that it promised", b, residue.Token)
	}
	// 5. c1 from n3 (n1 held off: its refusal would not matter).
	n.hold = map[string]bool{}
	n.held = nil
	n.holdIf = func(p packet) bool { return p.to == n3 && p.from == n1 || p.to == n1 }
	c1 := n.do1(n3, lockOp("k", "c1", time.Hour))
	if !c1.OK {
		t.Fatalf("c1: %+v", c1)
	}
	n.held, n.holdIf = nil, nil
	if c1.Token <= residue.Token {
		t.Errorf("c1's token %d is not above the residue's %d: n2 promised c0 before c1", c1.Token, residue.Token)
	}
	// 6. n3 restarts and catches up; the residue's lease ends; nobody
	// else may lock k while c1 holds it.
	restartAndCatchUp(t, n, n3, n1)
	n.sleep(11 * time.Second)
	for _, from := range []string{n1, n2, n3} {
		if o := n.do1(from, lockOp("k", "c2", time.Hour)); o.OK {
			t.Fatalf("a second holder: c2 locked k from %s (token %d) while c1 holds it (token %d)", from, o.Token, c1.Token)
		}
	}
	n.checkInvariants()
}

// TestRepeatedPrepareAndAbortKeepTheBallotBefore checks the same rule on
// a network that repeats messages: a master promised Lock R on k (its
// write lock then ran out, R undecided), then Lock X, whose Prepare and
// abort both arrive twice. Its bound on k must stay at least R's ballot:
// R may still commit elsewhere, above any ballot granted here later.
func TestRepeatedPrepareAndAbortKeepTheBallotBefore(t *testing.T) {
	n := newNetwork(t, n1)
	c := n.core(n1)
	ballotR := c.hlc + 1_000_000
	c.Step(n2, &messages.Prepare{Txn: 1, Epoch: c.Membership().Epoch, Items: []*messages.PrepareItem{prepItem(kLock, "k", "")}, Ballot: ballotR})
	c.TakeOutput()
	if r := c.ballots["k"]; r.b != ballotR {
		t.Fatalf("R not granted: bound record %+v", r)
	}
	n.advance(n.cfg.WriteLockTimeout + time.Millisecond) // R's write lock runs out here
	px := &messages.Prepare{Txn: 7, Epoch: c.Membership().Epoch, Items: []*messages.PrepareItem{prepItem(kLock, "k", "")}, Ballot: ballotR + 1}
	for range 2 {
		if p := deliverPrepare(t, c, n3, px); !p.GetItems()[0].GetGranted() {
			t.Fatalf("X: %v", p)
		}
	}
	for range 2 {
		commit(t, c, n3, 7, &messages.CommitItem{Key: "k", Kind: kLock, Abort: true})
	}
	if b := c.ballotBound("k"); b < ballotR {
		t.Fatalf("bound on k is %d after X's repeated abort, below R's ballot %d promised before X", b, ballotR)
	}
}

// deliverPrepare delivers p from a peer to c and returns c's Promise.
func deliverPrepare(t *testing.T, c *Core, from string, p *messages.Prepare) *messages.Promise {
	t.Helper()
	c.Step(from, p)
	for _, env := range c.TakeOutput().Messages {
		if got, ok := env.Msg.(*messages.Promise); ok && env.To == from && got.GetTxn() == p.GetTxn() {
			return got
		}
	}
	t.Fatalf("no promise from %s", c.cfg.Self)
	return nil
}
