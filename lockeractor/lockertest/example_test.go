package lockertest_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/protoactor-locker/locker/lockeractor"
	"github.com/protoactor-locker/locker/lockeractor/lockertest"
)

// A paused peer holds every message, its own callers' requests included,
// until it is resumed; then it handles them in order.
func Example() {
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	defer system.Shutdown()
	f := lockertest.NewFaults(1)
	l, err := lockeractor.Start(system, lockertest.WithFaults(f))
	if err != nil {
		panic(err)
	}
	defer l.Stop()

	f.Pause(lockertest.AnyAddress)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, err = l.Lock(ctx, "k", []byte("v"), time.Minute)
	cancel()
	fmt.Println("while paused:", errors.Is(err, context.DeadlineExceeded))

	f.Resume(lockertest.AnyAddress)
	_, err = l.Lock(context.Background(), "k2", []byte("v"), time.Minute)
	fmt.Println("resumed:", err, f.Stats().Stashed > 0)
	// Output:
	// while paused: true
	// resumed: <nil> true
}

// A DriftClock runs 1 % fast; more than MaxDrift is refused.
func ExampleDriftClock() {
	c := lockertest.NewDriftClock()
	fmt.Println(c.SetRate(0.01), c.Rate())
	fmt.Println(errors.Is(c.SetRate(0.02), lockeractor.ErrInvalidArgument))
	// Output:
	// <nil> 0.01
	// true
}
