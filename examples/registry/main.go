// Command registry starts three actor systems in one process, talking
// protoactor remote over 127.0.0.1, each with a Locker and a name
// Registry. It spawns a named server on every member, calls every
// server by name from every member, stops one and shows its name go,
// and exits.
//
//	go run ./examples/registry
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/protoactor-locker/locker/lockeractor"
	"github.com/protoactor-locker/locker/registry"
	"github.com/protoactor-locker/locker/server"
)

type member struct {
	system *actor.ActorSystem
	remote *remote.Remote
	locker *lockeractor.Locker
	reg    *registry.Registry
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Three members, each an actor system with remote and a Locker.
	var members []*member
	defer func() {
		for _, m := range members {
			m.reg.Stop()
			m.locker.Stop()
			m.remote.Shutdown(true)
			m.system.Shutdown()
		}
	}()
	quiet := actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) })
	var addrs []string
	for range 3 {
		sys := actor.NewActorSystem(quiet)
		r := remote.NewRemote(sys, remote.Configure("127.0.0.1", 0, lockeractor.RemoteOptions()...))
		r.Start()
		l, err := lockeractor.Start(sys)
		if err != nil {
			return err
		}
		m := &member{system: sys, remote: r, locker: l}
		members = append(members, m)
		addrs = append(addrs, sys.Address())
	}
	// All three are masters; a write needs two of them.
	if err := members[0].locker.SetNodes(ctx, addrs, addrs, nil); err != nil {
		return err
	}
	if err := members[0].locker.SetW(ctx, addrs, 2); err != nil {
		return err
	}
	for _, m := range members {
		reg, err := registry.New(m.locker)
		if err != nil {
			return err
		}
		m.reg = reg
	}
	fmt.Printf("started three members: %v\n", addrs)

	// A greeter on every member, registered under a cluster-wide name.
	for i, m := range members {
		name := fmt.Sprintf("greeter-%d", i)
		props := actor.PropsFromFunc(func(c actor.Context) {
			if s, ok := c.Message().(*wrapperspb.StringValue); ok {
				c.Respond(wrapperspb.String(fmt.Sprintf("%s on %s says hello to %s", name, c.Self().Address, s.GetValue())))
			}
		})
		pid, err := server.Spawn(m.system.Root, name, props, server.WithLeaseLength(2*time.Second))
		if err != nil {
			return err
		}
		fmt.Printf("member %d spawned %q as %s/%s\n", i, name, pid.Address, pid.Id)
	}

	// The same name cannot be taken twice.
	_, err := server.Spawn(members[1].system.Root, "greeter-0", actor.PropsFromFunc(func(actor.Context) {}))
	var taken *registry.AlreadyRegisteredError
	if errors.As(err, &taken) {
		fmt.Printf("member 1 cannot spawn another %q: it is held by %s/%s\n", taken.Name, taken.Holder.Address, taken.Holder.Id)
	}

	// Every member calls every greeter by name.
	for i, m := range members {
		for j := range members {
			name := fmt.Sprintf("greeter-%d", j)
			res, err := m.reg.Request(ctx, name, wrapperspb.String(fmt.Sprintf("member %d", i)))
			if err != nil {
				return fmt.Errorf("member %d calling %q: %w", i, name, err)
			}
			fmt.Printf("member %d asked %q: %s\n", i, name, res.(*wrapperspb.StringValue).GetValue())
		}
	}

	// Stopping a greeter releases its name everywhere.
	pid := members[2].reg.WhereIs("greeter-2")
	if err := members[2].system.Root.StopFuture(pid).Wait(); err != nil {
		return err
	}
	for members[0].reg.WhereIs("greeter-2") != nil {
		select {
		case <-ctx.Done():
			return fmt.Errorf("greeter-2 was not released: %w", ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	err = members[0].reg.Send("greeter-2", wrapperspb.String("anyone?"))
	fmt.Printf("greeter-2 stopped; member 0 sending to it now gets: %v\n", err)
	fmt.Println("done")
	return nil
}
