// Command node runs one protoactor cluster member with a Locker in
// cluster mode, in its own OS process, and campaigns for leadership of
// the key "leader": the member that locks it renews its lease; the others
// retry. The members find each other through a protoactor cluster
// provider: automanaged (each member serves its health on an HTTP port
// and polls the others' on loopback) or etcd.
//
// Three processes with one command (the parent starts three copies of
// itself, relays what they print, and the first leader crashes so that
// another takes over):
//
//	go run ./examples/node -spawn 3
//	go run ./examples/node -spawn 3 -provider etcd -etcd 127.0.0.1:2379
//
// Or one member per terminal (every member lists every member's health
// port in -seeds):
//
//	go run ./examples/node -name a -health 6330 -seeds 127.0.0.1:6330,127.0.0.1:6331,127.0.0.1:6332
//	go run ./examples/node -name b -health 6331 -seeds 127.0.0.1:6330,127.0.0.1:6331,127.0.0.1:6332
//	go run ./examples/node -name c -health 6332 -seeds 127.0.0.1:6330,127.0.0.1:6331,127.0.0.1:6332
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/automanaged"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/etcd"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/protoactor-locker/locker/lockeractor"
)

type options struct {
	name, provider, etcd, seeds string
	port, health, spawn, expect int
	runFor, crashAfter          time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.name, "name", "node", "this member's name, printed before every line")
	flag.IntVar(&o.port, "port", 0, "protoactor remote port on 127.0.0.1 (0: any free port)")
	flag.StringVar(&o.provider, "provider", "automanaged", "cluster provider: automanaged or etcd")
	flag.IntVar(&o.health, "health", 6330, "automanaged: this member's health port")
	flag.StringVar(&o.seeds, "seeds", "127.0.0.1:6330", "automanaged: every member's health host:port, comma-separated")
	flag.StringVar(&o.etcd, "etcd", "127.0.0.1:2379", "etcd: the server's client endpoint")
	flag.IntVar(&o.expect, "expect", 1, "members the cluster starts with: it is configured as soon as this many are seen (WithExpectedMembers)")
	flag.DurationVar(&o.runFor, "for", 15*time.Second, "how long to run before leaving the cluster")
	flag.DurationVar(&o.crashAfter, "crash-after", 0, "crash (exit without leaving) after leading this long while all -expect members are in (0: never)")
	flag.IntVar(&o.spawn, "spawn", 0, "start this many member processes of this program and wait for them")
	flag.Parse()
	var err error
	if o.spawn > 0 {
		err = spawn(o)
	} else {
		err = runMember(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, o.name+": failed:", err)
		os.Exit(1)
	}
}

// spawn starts o.spawn children, each a member on its own free health
// port, waits for them, and kills any still running after a bound.
func spawn(o options) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	var seeds []string
	for i := 0; i < o.spawn; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		seeds = append(seeds, l.Addr().String())
		l.Close()
	}
	fmt.Printf("Starting %d member processes (%s provider); the first leader will crash after leading 4 s.\n", o.spawn, o.provider)
	if o.provider == "automanaged" {
		fmt.Println("(The \"http server started\" lines are printed by protoactor's automanaged provider.)")
	}
	var cmds []*exec.Cmd
	for i := range o.spawn {
		_, port, _ := net.SplitHostPort(seeds[i])
		cmd := exec.Command(exe,
			"-name", fmt.Sprintf("node-%d", i+1), "-provider", o.provider, "-etcd", o.etcd,
			"-health", port, "-seeds", strings.Join(seeds, ","), "-expect", strconv.Itoa(o.spawn),
			"-for", o.runFor.String(), "-crash-after", "4s")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			return err
		}
		cmds = append(cmds, cmd)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	for _, cmd := range cmds {
		wg.Add(1)
		go func() { defer wg.Done(); _ = cmd.Wait() }()
	}
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(o.runFor + 30*time.Second):
		fmt.Println("Members still running after the bound; stopping them.")
		for _, cmd := range cmds {
			_ = cmd.Process.Kill()
		}
		<-done
	}
	fmt.Println("All member processes have ended.")
	return nil
}

func runMember(o options) error {
	say := func(format string, args ...any) {
		fmt.Printf("%-7s "+format+"\n", append([]any{o.name + ":"}, args...)...)
	}
	var provider cluster.ClusterProvider
	switch o.provider {
	case "automanaged":
		provider = automanaged.NewWithConfig(300*time.Millisecond, o.health, strings.Split(o.seeds, ",")...)
	case "etcd":
		p, err := etcd.NewWithConfig("/locker-example", clientv3.Config{Endpoints: []string{o.etcd}, DialTimeout: 5 * time.Second})
		if err != nil {
			return err
		}
		provider = p
	default:
		return fmt.Errorf("unknown provider %q (automanaged or etcd)", o.provider)
	}
	quiet := actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) })
	system := actor.NewActorSystem(quiet)
	c := cluster.New(system, cluster.Configure("locker-example", provider, disthash.New(),
		remote.Configure("127.0.0.1", o.port, lockeractor.RemoteOptions()...)))
	c.StartMember()
	l, err := lockeractor.Start(system, lockeractor.WithCluster(c), lockeractor.WithExpectedMembers(o.expect))
	if err != nil {
		return err
	}
	defer lockeractor.LeaveCluster(c)
	self := l.Address()
	say("joined the cluster at %s", self)

	ctx, cancel := context.WithTimeout(context.Background(), o.runFor)
	defer cancel()
	const lease = 1500 * time.Millisecond
	var (
		lastConfig string
		leading    bool
		since      time.Time
		token      uint64
		lastHolder string
	)
	tick := time.NewTicker(300 * time.Millisecond)
	defer tick.Stop()
	for {
		masters, replicas, w := l.Nodes()
		if cfg := fmt.Sprintf("masters %v, replicas %v, W = %d", masters, replicas, w); cfg != lastConfig {
			say("configuration: %s", cfg)
			lastConfig = cfg
		}
		members := len(masters) + len(replicas)
		// Campaign from the start: until the cluster configured this
		// member, its Lock fails at once with ErrNotReady (a member never
		// grants itself the lock on its own vote).
		if leading {
			if _, err := l.ExtendLease(ctx, "leader", []byte(o.name), lease); err != nil && ctx.Err() == nil {
				say("lost the leadership: %v", err)
				leading = false
			} else if o.crashAfter > 0 && time.Since(since) >= o.crashAfter && members == o.expect {
				say("has led for %v and now crashes (exits without leaving or releasing)", o.crashAfter)
				os.Exit(0)
			}
		} else if res, err := l.Lock(ctx, "leader", []byte(o.name), lease); err == nil {
			leading, since, token = true, time.Now(), res.Token
			say("is the leader now (fencing token %d)", token)
		} else if v, err := l.DirtyRead("leader"); err == nil && string(v) != lastHolder {
			lastHolder = string(v)
			say("sees %s as the leader", lastHolder)
		}
		select {
		case <-ctx.Done():
			if leading {
				_, _ = l.Release(context.Background(), "leader", []byte(o.name))
				say("releases the leadership")
			}
			say("leaves the cluster after %v", o.runFor)
			return nil
		case <-tick.C:
		}
	}
}
