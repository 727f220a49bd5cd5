// Command demo runs three Locker peers in one process, each on its own
// protoactor actor system talking over real protoactor remote on
// 127.0.0.1, and walks through a lock's life: lock, read everywhere,
// a refused second lock, extend, update, replicate, release, expire.
//
//	go run ./examples/demo
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

	"github.com/protoactor-locker/locker/lockeractor"
)

type node struct {
	name   string
	system *actor.ActorSystem
	remote *remote.Remote
	locker *lockeractor.Locker
}

func startNode(name string) (*node, error) {
	quiet := actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) })
	system := actor.NewActorSystem(quiet)
	r := remote.NewRemote(system, remote.Configure("127.0.0.1", 0, lockeractor.RemoteOptions()...))
	r.Start() // before lockeractor.Start: the peer's address is the system's address
	l, err := lockeractor.Start(system)
	if err != nil {
		return nil, err
	}
	return &node{name: name, system: system, remote: r, locker: l}, nil
}

func (n *node) stop() {
	n.locker.Stop()
	n.remote.Shutdown(false)
	n.system.Shutdown()
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var nodes []*node
	for _, name := range []string{"A", "B", "C"} {
		n, err := startNode(name)
		if err != nil {
			return err
		}
		defer n.stop()
		nodes = append(nodes, n)
	}
	a, b, c := nodes[0], nodes[1], nodes[2]
	addr := func(n *node) string { return n.system.Address() }
	fmt.Printf("Started three peers: A at %s, B at %s, C at %s.\n", addr(a), addr(b), addr(c))

	// A and B are masters (they vote), C is a replica (it follows).
	all := []string{addr(a), addr(b), addr(c)}
	if err := a.locker.SetNodes(ctx, all, []string{addr(a), addr(b)}, []string{addr(c)}); err != nil {
		return err
	}
	if err := a.locker.SetW(ctx, all, 2); err != nil {
		return err
	}
	masters, replicas, w := c.locker.Nodes()
	fmt.Printf("Configured: masters %v, replicas %v, W = %d (every write needs both masters).\n\n", masters, replicas, w)

	res, err := a.locker.Lock(ctx, "leader", []byte("A"), 2*time.Second)
	if err != nil {
		return err
	}
	fmt.Printf("A locked \"leader\" with value A for 2 s: %d of %d votes needed, %d commits, fencing token %d.\n",
		res.Votes, res.W, res.Commits, res.Token)
	v, _ := b.locker.DirtyRead("leader")
	fmt.Printf("B (a master) reads \"leader\" locally at once: %s.\n", v)
	_, err = c.locker.DirtyRead("leader")
	fmt.Printf("C (a replica) has not got it yet: %v.\n", err)
	v, err = c.locker.WaitFor(ctx, "leader")
	if err != nil {
		return err
	}
	fmt.Printf("C waited for replication (every 100 ms) and now reads: %s.\n", v)

	_, err = b.locker.Lock(ctx, "leader", []byte("B"), 2*time.Second)
	var qe *lockeractor.QuorumError
	if errors.As(err, &qe) {
		fmt.Printf("B tries to lock \"leader\" too and is refused: %v.\n", err)
	}

	if _, err := a.locker.ExtendLease(ctx, "leader", []byte("A"), 2*time.Second); err != nil {
		return err
	}
	fmt.Println("A extended its lease by another 2 s.")
	res, err = a.locker.Update(ctx, "leader", []byte("A"), []byte("A, term 2"))
	if err != nil {
		return err
	}
	fmt.Printf("A updated the value to %q; new fencing token %d.\n", "A, term 2", res.Token)

	released := make(chan error, 1)
	go func() { released <- c.locker.WaitForRelease(ctx, "leader") }()
	if _, err := a.locker.Release(ctx, "leader", []byte("A, term 2")); err != nil {
		return err
	}
	fmt.Println("A released \"leader\".")
	if err := <-released; err != nil {
		return err
	}
	fmt.Println("C saw the release arrive by replication.")

	res, err = b.locker.Lock(ctx, "leader", []byte("B"), 500*time.Millisecond)
	if err != nil {
		return err
	}
	fmt.Printf("B locked \"leader\" for 500 ms; its token %d is larger than every earlier one.\n", res.Token)
	fmt.Println("B stops extending its lease (as if it crashed)...")
	start := time.Now()
	for _, n := range nodes {
		if err := n.locker.WaitForRelease(ctx, "leader"); err != nil && !errors.Is(err, lockeractor.ErrKeyNotLocked) {
			return err
		}
	}
	fmt.Printf("...and after %v the lease has expired on A, B and C.\n", time.Since(start).Round(10*time.Millisecond))
	res, err = c.locker.Lock(ctx, "leader", []byte("C"), time.Second)
	if err != nil {
		return err
	}
	fmt.Printf("C (a replica can coordinate writes too) now holds \"leader\" with token %d.\n", res.Token)
	fmt.Println("\nDone.")
	return nil
}
