// Several protoactor remotes in one process race inside protoactor-go
// (see docs/protoactor.md), so this example is left out under -race.

//go:build !race

package lockeractor_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/remote"

	"github.com/protoactor-locker/locker/lockeractor"
)

// Three peers, each on its own actor system over protoactor remote on
// loopback: configure them once from any peer, then lock from one and
// read on the others.
func ExampleLocker_SetNodes() {
	var lockers []*lockeractor.Locker
	var addrs []string
	for range 3 {
		system := quietSystem()
		r := remote.NewRemote(system, remote.Configure("127.0.0.1", 0, lockeractor.RemoteOptions()...))
		r.Start() // before lockeractor.Start: the peer's address is the system's
		defer func() { r.Shutdown(false); system.Shutdown() }()
		l, err := lockeractor.Start(system)
		if err != nil {
			panic(err)
		}
		defer l.Stop()
		lockers = append(lockers, l)
		addrs = append(addrs, system.Address())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Once, from any peer: who votes (masters), who follows (replicas), W.
	a, b, c := lockers[0], lockers[1], lockers[2]
	if err := a.SetNodes(ctx, addrs, addrs, nil); err != nil {
		panic(err)
	}
	if err := a.SetW(ctx, addrs, len(addrs)/2+1); err != nil {
		panic(err)
	}

	res, err := a.Lock(ctx, "leader", []byte("a"), 10*time.Second)
	if err != nil {
		panic(err)
	}
	fmt.Println("a holds leader; fencing token issued:", res.Token > 0)

	v, _ := b.WaitFor(ctx, "leader") // until the commit reached b
	fmt.Println("b waited for:", string(v))
	v, _ = b.DirtyRead("leader") // local, tens of ns
	fmt.Println("b reads:", string(v))

	_, err = c.Lock(ctx, "leader", []byte("c"), 10*time.Second)
	var qe *lockeractor.QuorumError
	fmt.Println("c refused:", errors.Is(err, lockeractor.ErrNoQuorum) && errors.As(err, &qe))

	_, err = a.ExtendLease(ctx, "leader", []byte("a"), 10*time.Second) // before the lease runs out
	fmt.Println("a extended:", err)

	_, err = a.Release(ctx, "leader", []byte("a"))
	fmt.Println("a released:", err)
	// Output:
	// a holds leader; fencing token issued: true
	// b waited for: a
	// b reads: a
	// c refused: true
	// a extended: <nil>
	// a released: <nil>
}
