package lockeractor_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"

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

// Cluster mode: every member of a protoactor cluster starts a Locker with
// WithCluster after StartMember, and the Lockers configure themselves from
// the cluster's topology (no addresses typed anywhere). Here one member on
// protoactor's in-memory provider; start more the same way.
func ExampleWithCluster() {
	system := quietSystem()
	provider := test.NewTestProvider(test.NewInMemAgent())
	c := cluster.New(system, cluster.Configure("example", provider, disthash.New(),
		remote.Configure("127.0.0.1", 0, lockeractor.RemoteOptions()...)))
	c.StartMember()
	defer lockeractor.LeaveCluster(c) // instead of c.Shutdown: stops the Locker, then the member

	// WithExpectedMembers: configure as soon as this many members are seen.
	l, err := lockeractor.Start(system, lockeractor.WithCluster(c), lockeractor.WithExpectedMembers(1))
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A member grants nothing before it holds a configuration naming it
	// (writes fail with ErrNotReady): wait for it.
	if err := l.Ready(ctx); err != nil {
		panic(err)
	}
	masters, _, w := l.Nodes()
	fmt.Println("masters:", len(masters), "W:", w)

	res, err := l.Lock(ctx, "leader", []byte(l.Address()), 10*time.Second)
	fmt.Println("locked:", err == nil && res.Token > 0)
	// Output:
	// masters: 1 W: 1
	// locked: true
}
