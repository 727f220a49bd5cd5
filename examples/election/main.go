// Command election is the leader-election recipe: three candidates, each
// on its own Locker peer (its own actor system on 127.0.0.1), campaign
// for the key "leader". The winner renews its lease every third of it;
// the others wait for the key to go and try again. The first leader
// crashes (stops renewing; its peer goes away) and another takes over
// once the lease runs out; the second steps down (releases), and the
// third takes over at once.
//
//	go run ./examples/election
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

const (
	key   = "leader"
	lease = 1200 * time.Millisecond
)

// won is a term won: by whom, with which fencing token.
type won struct {
	c     *candidate
	token uint64
}

// candidate campaigns for key on its peer until ctx ends or quit closes.
type candidate struct {
	name   string
	locker *lockeractor.Locker
	stop   func()        // stops the candidate's peer (a crash)
	events chan<- string // what happens, in plain words
	term   chan<- won    // each term won
	resign chan struct{} // closed to step down gracefully
	crash  chan struct{} // closed to crash (stop renewing, peer gone)
	done   sync.WaitGroup
}

func (c *candidate) campaign(ctx context.Context) {
	defer c.done.Done()
	me := []byte(c.name)
	for ctx.Err() == nil {
		res, err := c.locker.Lock(ctx, key, me, lease)
		if err != nil {
			// Someone leads: wait until this peer sees the key go.
			if err := c.locker.WaitForRelease(ctx, key); err != nil && !errors.Is(err, lockeractor.ErrKeyNotLocked) {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(5 * time.Millisecond): // replication may lag the masters a little
			}
			continue
		}
		c.term <- won{c, res.Token}
		// Lead: renew every third of the lease until told otherwise.
		renew := time.NewTicker(lease / 3)
		for leading := true; leading; {
			select {
			case <-ctx.Done():
				renew.Stop()
				return
			case <-c.crash:
				renew.Stop()
				c.events <- c.name + " crashes: its peer is gone and nobody renews its lease"
				c.stop()
				return
			case <-c.resign:
				renew.Stop()
				_, _ = c.locker.Release(ctx, key, me)
				c.events <- c.name + " steps down and releases the leadership"
				return
			case <-renew.C:
				if _, err := c.locker.ExtendLease(ctx, key, me, lease); err != nil {
					c.events <- c.name + " could not renew and stops leading: " + err.Error()
					leading = false
				}
			}
		}
		renew.Stop()
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
	names := []string{"A", "B", "C"}
	peers, stops, err := startPeers(ctx, len(names))
	if err != nil {
		return err
	}
	defer func() {
		for _, s := range stops {
			s()
		}
	}()
	events := make(chan string, 16)
	term := make(chan won, 1)
	var cands []*candidate
	for i, name := range names {
		var once sync.Once
		stopPeer := stops[i]
		c := &candidate{name: name, locker: peers[i], events: events, term: term,
			stop:   func() { once.Do(stopPeer) },
			resign: make(chan struct{}), crash: make(chan struct{})}
		stops[i] = c.stop
		cands = append(cands, c)
	}
	fmt.Printf("Three candidates campaign for %q with a %v lease, renewed every %v.\n", key, lease, lease/3)
	campaignCtx, stopCampaigns := context.WithCancel(ctx)
	defer stopCampaigns()
	for _, c := range cands {
		c.done.Add(1)
		go c.campaign(campaignCtx)
	}
	leader := func() (*candidate, uint64, error) {
		select {
		case w := <-term:
			return w.c, w.token, nil
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	}
	print := func() {
		for {
			select {
			case e := <-events:
				fmt.Println(e + ".")
			default:
				return
			}
		}
	}

	first, tok, err := leader()
	if err != nil {
		return err
	}
	fmt.Printf("%s is elected (term token %d).\n", first.name, tok)
	start := time.Now()
	for time.Since(start) < 2*lease { // let it lead for two lease periods
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Printf("%s has renewed its lease through %v.\n", first.name, time.Since(start).Round(100*time.Millisecond))

	close(first.crash)
	crashedAt := time.Now()
	second, tok2, err := leader()
	if err != nil {
		return err
	}
	print()
	fmt.Printf("%s is elected %v after the crash, when the lease ran out (term token %d > %d).\n",
		second.name, time.Since(crashedAt).Round(10*time.Millisecond), tok2, tok)

	close(second.resign)
	resignedAt := time.Now()
	third, tok3, err := leader()
	if err != nil {
		return err
	}
	print()
	fmt.Printf("%s is elected %v after the release, without waiting for a lease (term token %d).\n",
		third.name, time.Since(resignedAt).Round(time.Millisecond), tok3)

	stopCampaigns()
	for _, c := range cands {
		c.done.Wait()
	}
	print()
	fmt.Println("\nDone.")
	return nil
}

// startPeers starts n Locker peers, each on its own actor system with
// remote on 127.0.0.1, all masters with W their majority.
func startPeers(ctx context.Context, n int) ([]*lockeractor.Locker, []func(), error) {
	quiet := actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) })
	var (
		peers []*lockeractor.Locker
		stops []func()
		addrs []string
	)
	fail := func(err error) ([]*lockeractor.Locker, []func(), error) {
		for _, s := range stops {
			s()
		}
		return nil, nil, err
	}
	for range n {
		system := actor.NewActorSystem(quiet)
		r := remote.NewRemote(system, remote.Configure("127.0.0.1", 0, lockeractor.RemoteOptions()...))
		r.Start()
		l, err := lockeractor.Start(system)
		if err != nil {
			return fail(err)
		}
		stops = append(stops, func() { l.Stop(); r.Shutdown(false); system.Shutdown() })
		peers = append(peers, l)
		addrs = append(addrs, l.Address())
	}
	if err := peers[0].SetNodes(ctx, addrs, addrs, nil); err != nil {
		return fail(err)
	}
	if err := peers[0].SetW(ctx, addrs, n/2+1); err != nil {
		return fail(err)
	}
	return peers, stops, nil
}
