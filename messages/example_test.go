package messages_test

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/protoactor-locker/locker/messages"
)

// Every message is a plain protobuf message of package locker.v1: it
// encodes and decodes with the protobuf library, and a reason code that
// crosses the wire prints its name.
func Example() {
	msg := &messages.Prepare{Txn: 1, Items: []*messages.PrepareItem{{Key: "k", Kind: messages.WriteKind_WRITE_KIND_LOCK}}}
	wire, err := proto.Marshal(msg)
	if err != nil {
		panic(err)
	}
	var back messages.Prepare
	if err := proto.Unmarshal(wire, &back); err != nil {
		panic(err)
	}
	fmt.Println(proto.MessageName(&back), back.GetItems()[0].GetKey(), back.GetItems()[0].GetKind())
	fmt.Println(messages.Reason_REASON_ALREADY_LOCKED)
	// Output:
	// locker.v1.Prepare k WRITE_KIND_LOCK
	// REASON_ALREADY_LOCKED
}
