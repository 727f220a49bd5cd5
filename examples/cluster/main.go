// Command cluster runs four protoactor cluster members in one process,
// joined by protoactor's in-memory cluster provider, each with a Locker
// in cluster mode: the Lockers configure themselves from the cluster's
// topology (no addresses typed anywhere): three masters and a replica.
// It locks a key from one member, reads it on the others (the replica by
// replication), extends and updates it, locks and releases another, kills
// the holder's member, and watches the replica promoted, the lease run
// out and another member take the lock.
//
//	go run ./examples/cluster
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"

	"github.com/protoactor-locker/locker/lockeractor"
)

type member struct {
	name     string
	cluster  *cluster.Cluster
	provider *test.Provider
	locker   *lockeractor.Locker
}

func startMember(name string, agent *test.InMemAgent) (*member, error) {
	quiet := actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) })
	system := actor.NewActorSystem(quiet)
	provider := test.NewTestProvider(agent)
	cfg := cluster.Configure("example", provider, disthash.New(),
		remote.Configure("127.0.0.1", 0, lockeractor.RemoteOptions()...))
	c := cluster.New(system, cfg)
	c.StartMember() // starts remote too; takes about a second
	l, err := lockeractor.Start(system, lockeractor.WithCluster(c), lockeractor.WithBootstrapDelay(500*time.Millisecond))
	if err != nil {
		return nil, err
	}
	return &member{name: name, cluster: c, provider: provider, locker: l}, nil
}

func (m *member) addr() string { return m.locker.Address() }

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "example failed:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	agent := test.NewInMemAgent()
	var members []*member
	for _, name := range []string{"A", "B", "C", "D"} {
		m, err := startMember(name, agent)
		if err != nil {
			return err
		}
		defer lockeractor.LeaveCluster(m.cluster)
		members = append(members, m)
		fmt.Printf("Member %s joined the cluster at %s.\n", name, m.addr())
	}
	name := func(addrs []string) []string {
		var out []string
		for _, a := range addrs {
			for _, m := range members {
				if m.addr() == a {
					out = append(out, m.name)
				}
			}
		}
		return out
	}

	fmt.Println("Waiting for the Lockers to configure themselves from the topology...")
	if err := waitUntil(ctx, func() bool {
		for _, m := range members {
			if ms, rs, _ := m.locker.Nodes(); len(ms) != 3 || len(rs) != 1 || m.locker.Configuration().Joint() {
				return false
			}
		}
		return true
	}); err != nil {
		return err
	}
	masters, replicas, w := members[0].locker.Nodes()
	fmt.Printf("Every member agrees: masters %v, replicas %v, W = %d.\n\n", name(masters), name(replicas), w)

	a, b, c, d := members[0], members[1], members[2], members[3]
	byAddr := func(addr string) *member {
		for _, m := range members {
			if m.addr() == addr {
				return m
			}
		}
		return nil
	}
	if r := byAddr(replicas[0]); r != d {
		// Join order decides who is the replica; name it D for the story.
		r.name, d.name = d.name, r.name
		members[slices.Index(members, r)], members[3] = d, r
		a, b, c, d = members[0], members[1], members[2], members[3]
	}
	const lease = 2 * time.Second
	res, err := c.locker.Lock(ctx, "leader", []byte("C"), lease)
	if err != nil {
		return err
	}
	fmt.Printf("C locked \"leader\" for %v: %d votes (%d needed), fencing token %d.\n", lease, res.Votes, res.W, res.Token)
	for _, m := range []*member{a, b} {
		v, err := m.locker.WaitFor(ctx, "leader")
		if err != nil {
			return err
		}
		fmt.Printf("%s reads \"leader\" locally: %s.\n", m.name, v)
	}
	v, err := d.locker.WaitFor(ctx, "leader")
	if err != nil {
		return err
	}
	fmt.Printf("%s, the replica, reads it too once the masters' next replication batch arrives: %s.\n", d.name, v)
	if _, err := a.locker.Lock(ctx, "leader", []byte("A"), lease); errors.Is(err, lockeractor.ErrNoQuorum) {
		fmt.Println("A tries to take \"leader\" too and is refused: C holds it.")
	}
	if _, err := c.locker.ExtendLease(ctx, "leader", []byte("C"), lease); err != nil {
		return err
	}
	fmt.Printf("C extends its lease by another %v.\n", lease)
	up, err := c.locker.Update(ctx, "leader", []byte("C"), []byte("C, term 2"))
	if err != nil {
		return err
	}
	fmt.Printf("C updates the value to \"C, term 2\"; new fencing token %d.\n", up.Token)

	if _, err := b.locker.Lock(ctx, "job", []byte("B"), time.Minute); err != nil {
		return err
	}
	if _, err := d.locker.WaitFor(ctx, "job"); err != nil {
		return err
	}
	released := make(chan error, 1)
	go func() { released <- d.locker.WaitForRelease(ctx, "job") }()
	if _, err := b.locker.Release(ctx, "job", []byte("B")); err != nil {
		return err
	}
	if err := <-released; err != nil {
		return err
	}
	fmt.Printf("B locks \"job\" and releases it; %s sees the release arrive by replication.\n", d.name)
	res = up

	fmt.Println("\nKilling member C (its process dies; the cluster provider drops it)...")
	c.locker.Stop()
	c.cluster.Shutdown(false)
	_ = c.provider.Shutdown(false) // the in-memory provider forgets C, as a real one does when C's TTL runs out
	if err := waitUntil(ctx, func() bool {
		ms, _, _ := a.locker.Nodes()
		return !slices.Contains(ms, c.addr()) && !a.locker.Configuration().Joint()
	}); err != nil {
		return err
	}
	masters, _, w = a.locker.Nodes()
	fmt.Printf("The survivors reconfigured: masters %v, W = %d (the replica was promoted, after copying the leases).\n", name(masters), w)

	start := time.Now()
	for _, m := range []*member{a, b, d} {
		if err := m.locker.WaitForRelease(ctx, "leader"); err != nil && !errors.Is(err, lockeractor.ErrKeyNotLocked) {
			return err
		}
	}
	fmt.Printf("Nobody renewed C's lease: %v later it has expired on A, B and %s.\n", time.Since(start).Round(10*time.Millisecond), d.name)
	res2, err := a.locker.Lock(ctx, "leader", []byte("A"), lease)
	if err != nil {
		return err
	}
	fmt.Printf("A now holds \"leader\" with fencing token %d (> %d, C's).\n", res2.Token, res.Token)
	fmt.Println("\nDone.")
	return nil
}

// waitUntil polls cond every 10 ms until it holds or ctx ends.
func waitUntil(ctx context.Context, cond func() bool) error {
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}
