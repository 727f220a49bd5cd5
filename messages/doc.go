// Package messages holds the protobuf messages Locker peers exchange over
// protoactor remote (proto package locker.v1).
//
// The code in locker.pb.go is generated from locker.proto; regenerate it
// with `go generate ./...` and commit the result. Users never build these
// messages themselves: the lockeractor package does. A process that runs a
// Locker peer must link this package (importing lockeractor does), because
// protoactor remote finds message types by their full protobuf names.
//
//	msg := &messages.Prepare{Txn: 1, Items: []*messages.PrepareItem{{Key: "k", Kind: messages.WriteKind_WRITE_KIND_LOCK}}}
//	_ = msg.GetItems()[0].GetKey() // "k"
package messages

//go:generate go run ../internal/protogen locker.proto
