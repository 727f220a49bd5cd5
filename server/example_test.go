package server_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/protoactor-locker/locker/internal/testcluster"
	"github.com/protoactor-locker/locker/lockeractor"
	"github.com/protoactor-locker/locker/registry"
	"github.com/protoactor-locker/locker/server"
)

// A named actor: Spawn registers the name with a quorum of masters before
// the actor runs and renews it while it runs; any member reaches it by
// name; a second Spawn under the same name is refused with the holder.
func Example() {
	system := actor.NewActorSystem(testcluster.Quiet()...)
	defer system.Shutdown()
	l, err := lockeractor.Start(system) // start protoactor remote first to span members
	if err != nil {
		panic(err)
	}
	defer l.Stop()
	r, err := registry.New(l) // once per actor system
	if err != nil {
		panic(err)
	}
	defer r.Stop()

	billing := actor.PropsFromFunc(func(c actor.Context) {
		if amount, ok := c.Message().(int); ok {
			c.Respond(fmt.Sprintf("charged %d", amount))
		}
	})
	pid, err := server.Spawn(system.Root, "billing", billing, server.WithLeaseLength(10*time.Second))
	if err != nil {
		panic(err)
	}
	reply, err := r.Request(context.Background(), "billing", 42)
	fmt.Println(reply, err)

	_, err = server.Spawn(system.Root, "billing", billing)
	var taken *registry.AlreadyRegisteredError
	fmt.Println(errors.As(err, &taken) && taken.Holder.Equal(pid))

	_ = system.Root.StopFuture(pid).Wait() // stopping the actor releases its name
	for deadline := time.Now().Add(5 * time.Second); r.WhereIs("billing") != nil && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	fmt.Println(errors.Is(r.Send("billing", 1), registry.ErrNotRegistered))
	// Output:
	// charged 42 <nil>
	// true
	// true
}
