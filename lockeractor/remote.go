package lockeractor

import (
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
)

// RemoteMaxRecvMsgSize is the gRPC receive limit RemoteOptions sets:
// room for protoactor's batches of up to 1000 messages of 64 KiB.
const RemoteMaxRecvMsgSize = 64 << 20

// RemoteOptions returns the protoactor remote options Locker recommends
// for every member: a gRPC receive limit large enough for a full batch
// of the largest messages WithMaxMessageBytes allows up to 64 KiB, and
// an endpoint writer queue that starts small instead of preallocated.
// Without them, keep the default message bound (3 KiB), which keeps a
// full batch under gRPC's default 4 MiB limit.
//
// The first call also replaces protoactor's protobuf serializer with
// one that delivers an *UnknownMessage for a type this process does not
// link, instead of panicking (see UnknownMessage); Start does it too.
func RemoteOptions() []remote.ConfigOption {
	patchSerializer()
	return []remote.ConfigOption{
		remote.WithServerOptions(grpc.MaxRecvMsgSize(RemoteMaxRecvMsgSize)),
		// protoactor preallocates its endpoint writer queue (16 MB per
		// connection at the default 1,000,000); it grows when needed.
		remote.WithEndpointWriterQueueSize(1024),
	}
}
