package core

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/protoactor-locker/locker/messages"
)

// fuzzKinds are the messages FuzzStep decodes, chosen by a record's
// first byte.
var fuzzKinds = []func() proto.Message{
	func() proto.Message { return &messages.Prepare{} },
	func() proto.Message { return &messages.Promise{} },
	func() proto.Message { return &messages.Commit{} },
	func() proto.Message { return &messages.Committed{} },
	func() proto.Message { return &messages.Replicate{} },
	func() proto.Message { return &messages.SetNodes{} },
	func() proto.Message { return &messages.SetW{} },
	func() proto.Message { return &messages.AdminReply{} },
	func() proto.Message { return &messages.Read{} },
	func() proto.Message { return &messages.ReadReply{} },
}

// Record kinds past the messages.
const (
	fuzzTick        = iota + 10 // advance the clock by the peer byte × 7 ms, then Tick
	fuzzUnreachable             // Unreachable(peer)
	fuzzSubmit                  // Submit an op built from the payload
	fuzzPush                    // PushNow
	fuzzKindCount
)

var fuzzPeers = []string{n1, n2, n3, n4, outsider, ""}

// fuzzRecord encodes one record of FuzzStep's input.
func fuzzRecord(kind int, peer int, msg proto.Message) []byte {
	var payload []byte
	if msg != nil {
		payload, _ = proto.Marshal(msg)
	}
	if len(payload) > 255 {
		panic("seed record too long")
	}
	return append([]byte{byte(kind), byte(peer), byte(len(payload))}, payload...)
}

func fuzzInput(records ...[]byte) []byte {
	var b []byte
	for _, r := range records {
		b = append(b, r...)
	}
	return b
}

// FuzzStep feeds a Core arbitrary messages from arbitrary peers, with
// ticks, unreachable peers, writes and pushes in between. Input: records
// of [kind][peer][length][payload]. The Core must never panic, its
// bookkeeping must stay consistent, and every write, read and admin call
// must get exactly one answer by Close.
func FuzzStep(f *testing.F) {
	g := uint64(1) // the first id the Core under test hands out (Seed 0)
	f.Add(fuzzInput(
		fuzzRecord(0, 1, &messages.Prepare{Txn: 9, Items: []*messages.PrepareItem{{Key: "k", Kind: kLock}}}),
		fuzzRecord(2, 1, &messages.Commit{Txn: 9, Items: []*messages.CommitItem{{Key: "k", Kind: kLock, Value: []byte("v"), LeaseMs: 50, Token: 7}}}),
		fuzzRecord(fuzzTick, 10, nil),
		fuzzRecord(0, 2, &messages.Prepare{Txn: 9, Items: []*messages.PrepareItem{{Key: "k", Kind: kRelease, Expected: []byte("v")}}}),
	))
	f.Add(fuzzInput(
		fuzzRecord(1, 1, &messages.Promise{Txn: g, Items: []*messages.PromiseItem{{Granted: true, Proposal: 50}, {Granted: true, Token: 3}}}),
		fuzzRecord(3, 1, &messages.Committed{Txn: g, Items: []*messages.CommittedItem{{Ok: true}, {Ok: true}}}),
		fuzzRecord(1, 2, &messages.Promise{Txn: g, Items: []*messages.PromiseItem{{Reason: rLocked}, {Reason: rNotFound}}}),
		fuzzRecord(fuzzUnreachable, 2, nil),
		fuzzRecord(fuzzTick, 255, nil),
	))
	f.Add(fuzzInput(
		fuzzRecord(4, 1, &messages.Replicate{Entries: []*messages.Entry{{Key: "a", Value: []byte("x"), LeaseMs: 30, Token: 4}, {Key: "b", Deleted: true, Token: 9, LeaseMs: 40}}}),
		fuzzRecord(fuzzTick, 5, nil),
		fuzzRecord(4, 2, &messages.Replicate{Entries: []*messages.Entry{{Key: "a", Deleted: true, Token: 4, LeaseMs: 10}, {Key: "b", Value: []byte("y"), LeaseMs: 90, Token: 9}}}),
		fuzzRecord(fuzzPush, 0, nil),
	))
	f.Add(fuzzInput(
		fuzzRecord(5, 4, &messages.SetNodes{Request: 1, Epoch: 9, Masters: []string{n1, n2}, Replicas: []string{n3}}),
		fuzzRecord(6, 4, &messages.SetW{Request: 2, W: 2}),
		fuzzRecord(7, 1, &messages.AdminReply{Request: g + 2}),
		fuzzRecord(7, 2, &messages.AdminReply{Request: g + 2, Reason: rInvalid}),
		fuzzRecord(8, 3, &messages.Read{Request: 5, Key: "k"}),
		fuzzRecord(9, 1, &messages.ReadReply{Request: g + 1, Found: true, Value: []byte("v")}),
		fuzzRecord(fuzzSubmit, 1, &messages.PrepareItem{Key: "k", Kind: kUpdate, Expected: []byte("v")}),
	))
	f.Add([]byte{})
	f.Add([]byte{0, 0, 3, 0x1a, 0x01, 0x0a}) // a truncated item
	f.Fuzz(func(t *testing.T, data []byte) {
		clock := &fakeClock{now: t0}
		cfg := testConfig()
		cfg.Self, cfg.Clock, cfg.MaxMessageBytes = n1, clock, 1024
		c := New(cfg)
		// Membership and pending work for the input to meet: a write of
		// two keys (txn g), a read (g+1) and an admin call (g+2).
		c.Step(outsider, &messages.SetNodes{Request: 1, Epoch: 1, Masters: []string{n1, n2, n3}, Replicas: []string{n4}})
		c.Step(outsider, &messages.SetW{Request: 2, W: 2})
		c.TakeOutput()
		type answer struct{ calls, outs int }
		var answers []*answer
		byID := map[RequestID]*answer{}
		asked := func(id RequestID, outs int) {
			a := &answer{outs: outs}
			answers = append(answers, a)
			byID[id] = a
		}
		// count checks and counts the answers c gave since it last ran.
		count := func() {
			for _, got := range checkOutput(t, c, n1) {
				a := byID[got.ID]
				if a == nil {
					t.Fatalf("an answer to request %d, which nobody made", got.ID)
				}
				a.calls++
				if got.Kind == KindWrite && len(got.Outcomes) != a.outs {
					t.Fatalf("%d outcomes for %d ops", len(got.Outcomes), a.outs)
				}
			}
		}
		submit := func(ops ...Op) { asked(c.Submit(ops), len(ops)) }
		submit(lockOp("k", "v", time.Second), extendOp("j", "v", time.Second))
		asked(c.ReadMaster("k"), 0)
		asked(c.SetW([]string{n2, n3}, 2), 0)

		for len(data) >= 3 {
			kind, pb, size := int(data[0])%fuzzKindCount, int(data[1]), int(data[2])
			peer := fuzzPeers[pb%len(fuzzPeers)]
			data = data[3:]
			payload := data[:min(size, len(data))]
			data = data[len(payload):]
			switch kind {
			case fuzzTick:
				clock.now = clock.now.Add(time.Duration(pb) * 7 * time.Millisecond)
				c.Tick()
			case fuzzUnreachable:
				c.Unreachable(peer)
			case fuzzPush:
				c.PushNow()
			case fuzzSubmit:
				var it messages.PrepareItem
				if proto.Unmarshal(payload, &it) != nil || it.GetKey() == "" {
					continue
				}
				submit(Op{Kind: it.GetKind(), Key: it.GetKey(), Value: it.GetExpected(), NewValue: []byte("n"), LeaseMs: 100})
			default:
				msg := fuzzKinds[kind]()
				if proto.Unmarshal(payload, msg) != nil {
					continue
				}
				c.Step(peer, msg)
			}
			count()
			if at, ok := c.NextWake(); ok && at.Before(t0) {
				t.Fatalf("NextWake %v before the Core was built", at)
			}
			if msg := coreInvariants(c); msg != "" {
				t.Fatal(msg)
			}
			for _, a := range answers {
				if a.calls > 1 {
					t.Fatalf("answered %d times", a.calls)
				}
			}
		}
		c.Close()
		count()
		for i, a := range answers {
			if a.calls != 1 {
				t.Fatalf("call %d answered %d times by Close", i, a.calls)
			}
		}
		if _, waiting := c.Store().Counts(); waiting != 0 {
			t.Fatalf("%d waiters after Close", waiting)
		}
	})
}

// FuzzCheckAddress checks that CheckAddress accepts exactly host:port
// with a host and a port from 1 to 65535, names the address when it
// refuses it, and agrees with CheckNodes.
func FuzzCheckAddress(f *testing.F) {
	for _, s := range []string{"10.0.0.1:1", "localhost:65535", "[::1]:80", "h:0", ":1", "h", "", "a:b:c", "h:+1", "h:0x10", "[::1:80", "h:١٢"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		msg := CheckAddress(addr)
		host, port, err := net.SplitHostPort(addr)
		p, perr := strconv.Atoi(port)
		valid := err == nil && host != "" && perr == nil && p >= 1 && p <= 65535
		if valid != (msg == "") {
			t.Fatalf("CheckAddress(%q) = %q, want valid=%v", addr, msg, valid)
		}
		if msg != "" && !strings.Contains(msg, strconv.Quote(addr)) {
			t.Fatalf("CheckAddress(%q) = %q does not name the address", addr, msg)
		}
		if got := CheckNodes([]string{addr}, nil, 1); got != msg {
			t.Fatalf("CheckNodes([%q]) = %q, CheckAddress = %q", addr, got, msg)
		}
	})
}

// checkOutput takes c's output, fails t if it holds a message to self or
// one that does not encode, and returns its answers.
func checkOutput(t *testing.T, c *Core, self string) []Answer {
	t.Helper()
	out := c.TakeOutput()
	for _, env := range out.Messages {
		if env.To == self {
			t.Fatalf("a message to itself in the outbox: %v", env.Msg)
		}
		if _, err := proto.Marshal(env.Msg); err != nil {
			t.Fatalf("unencodable %T: %v", env.Msg, err)
		}
	}
	return out.Answers
}
