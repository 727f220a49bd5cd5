package lockeractor_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/protoactor-locker/locker/lockeractor"
)

func quietSystem() *actor.ActorSystem {
	return actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
}

// A single peer is a complete store: lock a key, read it, release it.
func Example() {
	system := quietSystem()
	defer system.Shutdown()
	l, err := lockeractor.Start(system)
	if err != nil {
		panic(err)
	}
	defer l.Stop()
	ctx := context.Background()

	res, err := l.Lock(ctx, "leader", []byte("me"), time.Minute)
	fmt.Println("lock:", err, res.W, res.Votes, res.Commits, res.Token > 0)
	v, _ := l.DirtyRead("leader")
	fmt.Println("read:", string(v))
	_, err = l.Lock(ctx, "leader", []byte("you"), time.Minute)
	fmt.Println("second lock refused:", err)
	_, err = l.Release(ctx, "leader", []byte("me"))
	fmt.Println("release:", err)
	// Output:
	// lock: <nil> 1 1 1 true
	// read: me
	// second lock refused: locker: no quorum for "leader": W=1 votes=0: nonhost already locked
	// release: <nil>
}

// WaitForRelease blocks until the holder releases the key or its lease
// runs out.
func ExampleLocker_WaitForRelease() {
	system := quietSystem()
	defer system.Shutdown()
	l, _ := lockeractor.Start(system)
	defer l.Stop()
	ctx := context.Background()

	_, _ = l.Lock(ctx, "job", []byte("worker-1"), 50*time.Millisecond)
	err := l.WaitForRelease(ctx, "job")
	fmt.Println("released or expired:", err)
	_, err = l.DirtyRead("job")
	fmt.Println("read after expiry:", err)
	// Output:
	// released or expired: <nil>
	// read after expiry: locker: not found
}
