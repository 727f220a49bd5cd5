package registry_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/protoactor-locker/locker/internal/testcluster"
	"github.com/protoactor-locker/locker/lockeractor"
	"github.com/protoactor-locker/locker/registry"
)

// Register a running actor under a name, find it, call it, and see the
// name refused to another actor.
func ExampleRegistry_Register() {
	system := actor.NewActorSystem(testcluster.Quiet()...)
	defer system.Shutdown()
	l, _ := lockeractor.Start(system) // start protoactor remote first to span members
	defer l.Stop()
	r, _ := registry.New(l)
	defer r.Stop()

	ctx := context.Background()
	echo := system.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if s, ok := c.Message().(string); ok {
			c.Respond("echo " + s)
		}
	}))
	if err := r.Register(ctx, "echo", echo, 10*time.Second); err != nil {
		panic(err)
	}
	fmt.Println(r.WhereIs("echo").Equal(echo))

	res, _ := r.Request(ctx, "echo", "hi")
	fmt.Println(res)

	other := system.Root.Spawn(actor.PropsFromFunc(func(actor.Context) {}))
	err := r.Register(ctx, "echo", other, 10*time.Second)
	var taken *registry.AlreadyRegisteredError
	fmt.Println(errors.As(err, &taken), taken.Holder.Equal(echo))

	fmt.Println(errors.Is(r.Send("nobody", "hi"), registry.ErrNotRegistered))
	// Output:
	// true
	// echo hi
	// true true
	// true
}
