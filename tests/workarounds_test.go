package tests

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/protoactor-locker/locker/internal/testcluster"
	"github.com/protoactor-locker/locker/lockeractor"
)

// unknownMessage builds a protobuf message whose type no process links:
// protoactor's own serializer panics when it receives one.
func unknownMessage(t *testing.T) proto.Message {
	t.Helper()
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name:    proto.String("unknown_for_test.proto"),
		Package: proto.String("lockertest.v9"),
		Syntax:  proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{{
			Name: proto.String("FromTheFuture"),
			Field: []*descriptorpb.FieldDescriptorProto{{
				Name: proto.String("note"), Number: proto.Int32(1), JsonName: proto.String("note"),
				Type:  descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum(),
				Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
			}},
		}},
	}, nil)
	require.NoError(t, err)
	md := fd.Messages().Get(0)
	m := dynamicpb.NewMessage(md)
	m.Set(md.Fields().Get(0), protoreflect.ValueOfString("hello"))
	return m
}

// TestUnknownProtobufTypeDoesNotCrashTheReceiver checks the workaround for
// protoactor's serializer panicking on a type the receiver does not link:
// the receiver gets an *UnknownMessage, and its Locker peer keeps working.
func TestUnknownProtobufTypeDoesNotCrashTheReceiver(t *testing.T) {
	c := testcluster.New(t, 2)
	c.SetNodes(t, []int{0, 1}, nil) // W = 2: every write needs node 1's vote
	got := make(chan any, 4)
	probe, err := c.Nodes[1].System.Root.SpawnNamed(actor.PropsFromFunc(func(ctx actor.Context) {
		if _, ok := ctx.Message().(actor.SystemMessage); !ok {
			if _, ok := ctx.Message().(*actor.Started); !ok {
				got <- ctx.Message()
			}
		}
	}), "probe")
	require.NoError(t, err)
	remoteProbe := actor.NewPID(c.Nodes[1].Addr, probe.Id)
	remotePeer := actor.NewPID(c.Nodes[1].Addr, lockeractor.ActorName)

	c.Nodes[0].System.Root.Send(remoteProbe, unknownMessage(t))
	c.Nodes[0].System.Root.Send(remotePeer, unknownMessage(t))

	select {
	case m := <-got:
		u, ok := m.(*lockeractor.UnknownMessage)
		require.True(t, ok, "probe got %T", m)
		require.Equal(t, "lockertest.v9.FromTheFuture", u.TypeName)
	case <-time.After(10 * time.Second):
		t.Fatal("the probe never received the unknown message")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.Peer(0).Lock(ctx, "after-unknown", []byte("v"), time.Minute)
	require.NoError(t, err, "node 1 must still vote after receiving unknown types")
	require.Equal(t, 2, res.Votes)
}

// TestLargeBurstWithDefaultRemoteIsNotDropped checks the workaround for
// gRPC's 4 MiB frame limit silently dropping protoactor's message batches:
// with protoactor's default remote settings (no RemoteOptions), a burst
// of ~12 MiB of replication arrives whole, because every message stays
// under the default 3 KiB bound.
func TestLargeBurstWithDefaultRemoteIsNotDropped(t *testing.T) {
	testcluster.SkipUnderRace(t)
	var nodes []*testcluster.Node
	for i := 0; i < 2; i++ {
		n, err := testcluster.StartNodeWith(nil, lockeractor.WithReplicationInterval(time.Hour))
		require.NoError(t, err)
		t.Cleanup(n.Stop)
		nodes = append(nodes, n)
	}
	master, replica := nodes[0], nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	all := []string{master.Addr, replica.Addr}
	require.NoError(t, master.Locker.SetNodes(ctx, all, []string{master.Addr}, []string{replica.Addr}))

	const keys = 6000
	value := bytes.Repeat([]byte("x"), 2000)
	ops := make([]lockeractor.Op, keys)
	for i := range ops {
		ops[i] = lockeractor.Op{Kind: lockeractor.OpLock, Key: fmt.Sprintf("burst/%05d", i), Value: value, Lease: 10 * time.Minute}
	}
	res, err := master.Locker.Batch(ctx, ops)
	require.NoError(t, err)
	for i, r := range res {
		require.NoError(t, r.Err, "op %d", i)
	}
	master.Locker.PushTransLog() // one push of ~12 MiB, as ~4000 messages
	last := ops[keys-1].Key
	_, err = replica.Locker.WaitFor(ctx, last)
	require.NoError(t, err)
	testcluster.Eventually(t, 30*time.Second, func() bool { return replica.Locker.Summary().Leases == keys },
		"replica holds %d of %d keys", replica.Locker.Summary().Leases, keys)
}
