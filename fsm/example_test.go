package fsm_test

import (
	"context"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/protoactor-locker/locker/fsm"
	"github.com/protoactor-locker/locker/internal/testcluster"
	"github.com/protoactor-locker/locker/lockeractor"
	"github.com/protoactor-locker/locker/registry"
)

// Messages of the door.
type (
	// Button is a pressed digit.
	Button struct{ Digit byte }
	// Close closes an open door.
	Close struct{}
	// Status asks the door for its state; it answers from every state.
	Status struct{}
)

// door is gen_statem's code lock: enter the code to open the door; it
// locks itself again after a while, or when closed.
func door(code string, openFor time.Duration) fsm.Producer {
	return func() *fsm.Machine {
		var entered []byte
		return &fsm.Machine{
			Initial: "locked",
			States: map[fsm.State]fsm.StateSpec{
				"locked": {
					Enter: func(*fsm.Context) { entered = entered[:0] },
					Handle: func(c *fsm.Context, msg any) fsm.State {
						b, ok := msg.(Button)
						if !ok {
							return fsm.Unhandled
						}
						entered = append(entered, b.Digit)
						switch {
						case string(entered) == code:
							return "open"
						case len(entered) >= len(code):
							entered = entered[:0] // wrong code: start over
						}
						return fsm.Keep
					},
				},
				"open": {
					Timeout:   openFor, // locks itself after openFor
					TimeoutTo: "locked",
					Handle: func(c *fsm.Context, msg any) fsm.State {
						if _, ok := msg.(Close); ok {
							return "locked"
						}
						return fsm.Unhandled
					},
				},
			},
			AnyState: func(c *fsm.Context, msg any) fsm.State {
				if _, ok := msg.(Status); ok {
					c.Respond(c.State())
					return fsm.Keep
				}
				return fsm.Unhandled
			},
		}
	}
}

// A code-lock door registered under a name; the state is observed with
// fsm.StateOf.
func Example() {
	system := actor.NewActorSystem(testcluster.Quiet()...)
	defer system.Shutdown()
	l, _ := lockeractor.Start(system)
	defer l.Stop()
	r, _ := registry.New(l)
	defer r.Stop()

	pid, err := fsm.Spawn(system.Root, "front-door", door("42", 50*time.Millisecond))
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	state := func() fsm.State { s, _ := fsm.StateOf(ctx, system, pid); return s }
	fmt.Println(state())

	_ = r.Send("front-door", Button{'4'})
	_ = r.Send("front-door", Button{'2'})
	fmt.Println(state())

	// The state timeout locks the door again.
	for deadline := time.Now().Add(5 * time.Second); state() != "locked" && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	res, _ := r.Request(ctx, "front-door", Status{})
	fmt.Println(res)
	// Output:
	// locked
	// open
	// locked
}
