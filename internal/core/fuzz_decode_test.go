package core

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/protoactor-locker/locker/messages"
)

// wireTypes are every message type of the locker.v1 package, nested ones
// included, enumerated from its file descriptor: a message added to the
// wire is fuzzed without a change here.
func wireTypes() []protoreflect.MessageType {
	var out []protoreflect.MessageType
	var walk func(protoreflect.MessageDescriptors)
	walk = func(ms protoreflect.MessageDescriptors) {
		for i := range ms.Len() {
			md := ms.Get(i)
			if md.IsMapEntry() {
				continue
			}
			mt, err := protoregistry.GlobalTypes.FindMessageByName(md.FullName())
			if err != nil {
				panic(err)
			}
			out = append(out, mt)
			walk(md.Messages())
		}
	}
	walk(messages.File_locker_proto.Messages())
	return out
}

// FuzzDecode decodes arbitrary bytes as each message type of the wire
// and hands what decodes to a Core in the middle of everything: writes,
// a read and an admin call waiting for answers, a reconfiguration it
// coordinates and a sync it carries out. Input: records of
// [type][peer][length][payload], type 255 a tick of peer × 7 ms. The Core
// must never panic, keep its bookkeeping consistent, send only
// encodable messages, and answer every call exactly once by Close.
func FuzzDecode(f *testing.F) {
	types := wireTypes()
	index := map[protoreflect.FullName]byte{}
	for i, mt := range types {
		index[mt.Descriptor().FullName()] = byte(i)
	}
	rec := func(peer int, m proto.Message) []byte {
		b, _ := proto.Marshal(m)
		return append([]byte{index[m.ProtoReflect().Descriptor().FullName()], byte(peer), byte(len(b))}, b...)
	}
	g := uint64(1)
	cfgNext := &messages.Configuration{Epoch: 2, Masters: []string{n1, n2, n4}, W: 2, OldMasters: []string{n1, n2, n3}, OldW: 2}
	f.Add(fuzzInput(
		rec(1, &messages.ConfigPromise{Request: g + 3, Granted: true}),
		rec(2, &messages.ConfigPromise{Request: g + 3, Granted: true}),
		rec(1, &messages.AdminReply{Request: g + 3, Configuration: cfgNext}),
		rec(1, &messages.Sync{Request: 4, Epoch: 1, Sources: []string{n2, n3}, Need: 2}),
		rec(1, &messages.Replicate{Snapshot: g + 5, Entries: []*messages.Entry{{Key: "a", Value: []byte("x"), LeaseMs: 30, Token: 4}}}),
		rec(1, &messages.SnapshotDone{Request: g + 5, Entries: 1}),
		[]byte{255, 40, 0},
	))
	f.Add(fuzzInput(
		rec(3, &messages.ConfigPrepare{Request: 7, FromEpoch: 1, Next: cfgNext}),
		rec(3, &messages.ConfigCommit{Request: 7, Next: cfgNext}),
		rec(2, &messages.ConfigQuery{}),
		rec(2, &messages.SnapshotRequest{Request: 8, Epoch: 1}),
		rec(2, &messages.SnapshotDone{Request: g + 6, Reason: messages.Reason_REASON_STALE_EPOCH}),
		[]byte{255, 255, 0},
	))
	f.Add([]byte{})
	f.Add([]byte{0, 0, 3, 0x1a, 0x01, 0x0a})
	f.Fuzz(func(t *testing.T, data []byte) {
		clock := &fakeClock{now: t0}
		cfg := testConfig()
		cfg.Self, cfg.Clock, cfg.MaxMessageBytes = n1, clock, 1024
		c := New(cfg)
		c.Step(outsider, &messages.SetNodes{Request: 1, Epoch: 1, Masters: []string{n1, n2, n3}, Replicas: []string{n4}})
		c.Step(outsider, &messages.SetW{Request: 2, W: 2})
		c.TakeOutput()
		answers := map[string]int{}
		// The request of each handle (and the transaction ids it draws).
		names := map[RequestID]string{}
		names[c.Submit([]Op{lockOp("k", "v", time.Second), extendOp("j", "v", time.Second)})] = "write" // g
		names[c.ReadMaster("k")] = "read"                                                               // g+1
		names[c.SetW([]string{n2, n3}, 2)] = "setw"                                                     // g+2
		names[c.Reconfigure([]string{n1, n2, n4}, []string{n3})] = "reconfigure"                        // g+3...
		// count counts the answers c gave since it last ran.
		count := func() {
			for _, a := range checkOutput(t, c, n1) {
				answers[names[a.ID]]++
			}
		}
		count()
		for len(data) >= 3 {
			kind, pb, size := int(data[0]), int(data[1]), int(data[2])
			peer := fuzzPeers[pb%len(fuzzPeers)]
			data = data[3:]
			payload := data[:min(size, len(data))]
			data = data[len(payload):]
			if kind == 255 {
				clock.now = clock.now.Add(time.Duration(pb) * 7 * time.Millisecond)
				c.Tick()
			} else {
				msg := types[kind%len(types)].New().Interface()
				if proto.Unmarshal(payload, msg) != nil {
					continue
				}
				c.Step(peer, msg)
			}
			count()
			if msg := coreInvariants(c); msg != "" {
				t.Fatal(msg)
			}
			for name, n := range answers {
				if n > 1 {
					t.Fatalf("%s answered %d times", name, n)
				}
			}
		}
		c.Close()
		count()
		for _, name := range []string{"write", "read", "setw", "reconfigure"} {
			if answers[name] != 1 {
				t.Fatalf("%s answered %d times by Close", name, answers[name])
			}
		}
	})
}
