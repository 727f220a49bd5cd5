package lockeractor

import (
	"fmt"
	"sync"
	_ "unsafe" // for go:linkname

	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// UnknownMessage is what an actor receives, instead of its process
// crashing, when a remote sender sends a protobuf type this process does
// not link (a newer peer, another application). Locker peers ignore it.
// protoactor's own serializer panics on such a type; Locker replaces it,
// once per process, when RemoteOptions is first called or the first
// Locker starts, whichever comes first.
type UnknownMessage struct {
	TypeName string // the protobuf full name the sender gave
	Data     []byte // the encoded message
}

// remoteSerializers is protoactor remote's serializer table; index 0 is
// its protobuf serializer, which panics on a type name it does not know
// (remote/proto_serializer.go in the 2024-08-22 snapshot).
//
//go:linkname remoteSerializers github.com/asynkron/protoactor-go/remote.serializers
var remoteSerializers []remote.Serializer

// patchSerializer replaces protoactor's protobuf serializer (same id,
// same encoding) with one that turns an unknown type into an
// *UnknownMessage, so that a peer of a newer version cannot crash this
// process. Importing lockeractor changes nothing: the patch happens once,
// explicitly, the first time RemoteOptions is called or a Locker starts.
// protoactor's serializer table is process-wide, so the patch is too:
// from then on every actor system of the process decodes with it. Call
// RemoteOptions when configuring remote, before remote.Start, so that
// the patch precedes every message remote decodes.
var patchSerializer = sync.OnceFunc(func() {
	if len(remoteSerializers) > 0 {
		remoteSerializers[0] = safeProtoSerializer{}
	}
})

// safeProtoSerializer is protoactor's protobuf serializer without the panic.
type safeProtoSerializer struct{}

func (safeProtoSerializer) Serialize(msg any) ([]byte, error) {
	m, ok := msg.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("locker: %T is not a protobuf message", msg)
	}
	return proto.Marshal(m)
}

func (safeProtoSerializer) Deserialize(typeName string, data []byte) (any, error) {
	t, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(typeName))
	if err != nil || t == nil {
		return &UnknownMessage{TypeName: typeName, Data: data}, nil
	}
	m := t.New().Interface()
	if err := proto.Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("locker: decoding %s: %w", typeName, err)
	}
	return m, nil
}

func (safeProtoSerializer) GetTypeName(msg any) (string, error) {
	m, ok := msg.(proto.Message)
	if !ok {
		return "", fmt.Errorf("locker: %T is not a protobuf message", msg)
	}
	return string(proto.MessageName(m)), nil
}
