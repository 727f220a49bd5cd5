// Command mutex is the distributed-mutex recipe: workers on three Locker
// peers (each its own actor system on 127.0.0.1) take turns on one
// mutex, and the resource they protect checks the fencing token of every
// write, so a worker that was paused past its lease cannot overwrite the
// work of the next holder.
//
//	go run ./examples/mutex
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"

	"github.com/protoactor-locker/locker/lockeractor"
)

// storage is the protected resource: it remembers the largest fencing
// token it has accepted and refuses writes with a smaller one.
type storage struct {
	mu   sync.Mutex
	last uint64
	data []string
}

var errStaleToken = errors.New("stale fencing token")

func (s *storage) write(token uint64, line string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if token < s.last {
		return fmt.Errorf("%w: %d < %d", errStaleToken, token, s.last)
	}
	s.last = token
	s.data = append(s.data, line)
	return nil
}

// acquire takes the mutex key for this worker: it tries Lock, and while
// someone else holds the key it waits for the release (or expiry) as
// seen on its own peer, then tries again.
func acquire(ctx context.Context, l *lockeractor.Locker, key, me string, lease time.Duration) (lockeractor.Result, error) {
	for {
		res, err := l.Lock(ctx, key, []byte(me), lease)
		if err == nil {
			return res, nil
		}
		if !errors.Is(err, lockeractor.ErrNoQuorum) {
			return res, err
		}
		// Held by someone else (or a write in progress): wait until this
		// peer sees it go, then try again.
		if err := l.WaitForRelease(ctx, key); err != nil && !errors.Is(err, lockeractor.ErrKeyNotLocked) {
			return res, err
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(5 * time.Millisecond): // replication may lag the masters a little
		}
	}
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "example failed:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	peers, stop, err := startPeers(ctx, 3)
	if err != nil {
		return err
	}
	defer stop()
	const key, lease = "mutex/report", time.Second
	store := &storage{}
	w1, w2 := peers[0], peers[1]

	res1, err := acquire(ctx, w1, key, "worker-1", lease)
	if err != nil {
		return err
	}
	fmt.Printf("worker-1 holds the mutex (lease %v, fencing token %d).\n", lease, res1.Token)
	if err := store.write(res1.Token, "worker-1: part 1"); err != nil {
		return err
	}
	fmt.Println("worker-1 wrote part 1; the storage accepted token", res1.Token)

	got := make(chan lockeractor.Result, 1)
	go func() {
		fmt.Println("worker-2 wants the mutex and waits...")
		res, err := acquire(ctx, w2, key, "worker-2", lease)
		if err != nil {
			fmt.Println("worker-2 failed:", err)
			close(got)
			return
		}
		got <- res
	}()

	fmt.Println("worker-1 pauses for 1.5 s (a long GC pause, say) and does not renew its lease...")
	time.Sleep(1500 * time.Millisecond) // the pause being demonstrated, not a wait for a condition
	res2, ok := <-got
	if !ok {
		return errors.New("worker-2 did not get the mutex")
	}
	fmt.Printf("worker-2 got the mutex when worker-1's lease ran out (fencing token %d).\n", res2.Token)
	if err := store.write(res2.Token, "worker-2: part 1"); err != nil {
		return err
	}
	fmt.Println("worker-2 wrote; the storage now accepts only tokens >=", res2.Token)

	fmt.Println("worker-1 wakes up, still believing it holds the mutex, and writes part 2...")
	if err := store.write(res1.Token, "worker-1: part 2"); errors.Is(err, errStaleToken) {
		fmt.Println("...and the storage refuses it:", err)
	} else {
		return fmt.Errorf("the stale write was not refused: %v", err)
	}
	if _, err := w1.ExtendLease(ctx, key, []byte("worker-1"), lease); err != nil {
		fmt.Println("worker-1 tries to renew and learns it lost the mutex:", err)
	}

	if _, err := w2.Release(ctx, key, []byte("worker-2")); err != nil {
		return err
	}
	fmt.Println("worker-2 released the mutex.")
	fmt.Printf("The storage holds %q.\n\nDone.\n", store.data)
	return nil
}

// startPeers starts n Locker peers, each on its own actor system with
// remote on 127.0.0.1, all masters with W their majority.
func startPeers(ctx context.Context, n int) ([]*lockeractor.Locker, func(), error) {
	quiet := actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) })
	var (
		peers []*lockeractor.Locker
		stops []func()
		addrs []string
	)
	stop := func() {
		for _, s := range stops {
			s()
		}
	}
	for range n {
		system := actor.NewActorSystem(quiet)
		r := remote.NewRemote(system, remote.Configure("127.0.0.1", 0, lockeractor.RemoteOptions()...))
		r.Start()
		l, err := lockeractor.Start(system)
		if err != nil {
			stop()
			return nil, nil, err
		}
		stops = append(stops, func() { l.Stop(); r.Shutdown(false); system.Shutdown() })
		peers = append(peers, l)
		addrs = append(addrs, l.Address())
	}
	if err := peers[0].SetNodes(ctx, addrs, addrs, nil); err != nil {
		stop()
		return nil, nil, err
	}
	if err := peers[0].SetW(ctx, addrs, n/2+1); err != nil {
		stop()
		return nil, nil, err
	}
	return peers, stop, nil
}
