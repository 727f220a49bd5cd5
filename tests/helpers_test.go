package tests

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/stretchr/testify/require"

	"github.com/protoactor-locker/locker/internal/testcluster"
	"github.com/protoactor-locker/locker/lockeractor"
)

// Node indices of the three-node clusters, named as in locker_SUITE.erl.
const (
	A = 0
	B = 1
	C = 2
)

// Bounds used by the helpers. They only bound waiting: nothing passes or
// fails by elapsed time except where a test says so.
const (
	callTimeout = 10 * time.Second // ctx of every call that should succeed
	settle      = time.Minute      // bound of every Eventually: generous, it decides nothing when things work
	longLease   = time.Minute      // a lease that never runs out in a test
)

// suiteOptions are the Locker options of locker_SUITE.erl's setup: W = 2
// (start_link(2)) and no periodic replication (the suite cancels the
// push timer and calls push_trans_log by hand). A silent peer costs
// half a second.
func suiteOptions(extra ...lockeractor.Option) []lockeractor.Option {
	return append([]lockeractor.Option{
		lockeractor.WithW(2),
		lockeractor.WithReplicationInterval(time.Hour),
		lockeractor.WithRequestTimeout(500 * time.Millisecond),
		lockeractor.WithWriteLockTimeout(time.Second),
	}, extra...)
}

// startCluster starts three actor systems with remote on 127.0.0.1 and a
// Locker on each, started with suiteOptions(extra...), and stops them
// when t ends. It skips t under the race detector (see
// testcluster.SkipUnderRace).
func startCluster(t *testing.T, extra ...lockeractor.Option) *testcluster.Cluster {
	t.Helper()
	testcluster.SkipUnderRace(t)
	opts := suiteOptions(extra...)
	c := &testcluster.Cluster{}
	t.Cleanup(func() { stopInTurn(c) })
	for i := 0; i < 3; i++ {
		n, err := testcluster.StartNodeWith(remoteOptions(), opts...)
		require.NoError(t, err, "starting node %d", i)
		c.Nodes = append(c.Nodes, n)
	}
	connect(t, c)
	return c
}

// connect makes every node talk to every other once, so that the tests
// do not time the connection setup: protoactor opens an endpoint (a gRPC
// stream) per pair of actor systems on first use, which on this machine
// takes from a few to several hundred milliseconds, longer than the
// suite's request timeout.
func connect(t *testing.T, c *testcluster.Cluster) {
	t.Helper()
	for _, err := range roundTrips(c) {
		require.NoError(t, err, "connecting the nodes")
	}
}

// roundTrips sends a Touch from every node to every other node's Locker
// and waits for the answers: protoactor answers Touch itself (the Locker
// peer ignores it), or with a dead letter when the Locker is stopped.
// Either way, everything a node sent another before has been delivered
// when the answer comes (one stream per pair of actor systems, in order).
func roundTrips(c *testcluster.Cluster) []error {
	var wg sync.WaitGroup
	errs := make(chan error, len(c.Nodes)*len(c.Nodes))
	for _, from := range c.Nodes {
		for _, to := range c.Nodes {
			if from == to {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				target := actor.NewPID(to.Addr, lockeractor.ActorName)
				_, err := from.System.Root.RequestFuture(target, &actor.Touch{}, callTimeout).Result()
				errs <- err
			}()
		}
	}
	wg.Wait()
	close(errs)
	var out []error
	for err := range errs {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}

// remoteOptions are lockeractor.RemoteOptions with protoactor's connect
// retries cut from 5 to 1. A protoactor endpoint writer that cannot
// connect (its peer's actor system was shut down by the test) sleeps 2 s
// after every failed attempt inside its actor, and Remote.Shutdown waits
// for it: with 5 attempts every test that shuts a node down would spend
// 10 s in its cleanup. Connections on 127.0.0.1 to a live node succeed
// at the first attempt.
func remoteOptions() []remote.ConfigOption {
	return append(lockeractor.RemoteOptions(), func(cfg *remote.Config) { cfg.MaxRetryCount = 1 })
}

// stopInTurn stops every Locker first, lets the messages between the
// nodes drain, then stops the nodes one after another.
//
// Anything that reaches a node for an actor system already shut down
// (a Locker's write or watch, protoactor's Terminated for a stopped
// Locker's watchers) makes protoactor open a new endpoint to the dead
// address, whose writer sleeps 2 s inside its failed connect, and the
// next Remote.Shutdown waits for it. So the Lockers stop first, and a
// round trip between every pair of live nodes makes sure their last
// messages (the Terminated of each stopped Locker) have arrived while
// every node still runs. Nodes the test shut down already cost their
// 2 s anyway.
//
// One node after another: stopping protoactor remotes at the same moment
// makes each graceful gRPC stop wait for the others' streams, up to
// protoactor's 10 s fallback; one after another they stop in about a
// millisecond each.
//
// With a pause between them: when a node stops, each other node's
// endpoint writer to it sees its stream fail and publishes an
// EndpointTerminatedEvent from a goroutine of its own. protoactor's
// EventStream.Publish takes its list of subscribers first and calls them
// later, so if that node's own Remote.Shutdown runs in between (it
// unsubscribes, then sets its endpoint map to nil), the late call
// dereferences the nil map and crashes the test binary
// (remote/endpoint_manager.go, removeEndpoint). The pause lets those
// goroutines finish; it decides nothing.
func stopInTurn(c *testcluster.Cluster) {
	live := &testcluster.Cluster{}
	for _, n := range c.Nodes {
		n.Locker.Stop()
		if !n.System.IsStopped() { // not shut down by the test
			live.Nodes = append(live.Nodes, n)
		}
	}
	_ = roundTrips(live) // dead letters answer: the Lockers are stopped
	for i, n := range c.Nodes {
		if i > 0 {
			time.Sleep(shutdownPause)
		}
		n.Stop() // survives protoactor's shutdown panic (see testcluster)
	}
}

// shutdownPause is how long stopInTurn waits between two nodes.
const shutdownPause = 20 * time.Millisecond

// shutsNodesDown marks t, a test that leaves an address dead (an actor
// system shut down, or a blackhole closed), to run in parallel with the
// other tests like it, after all the others. The protoactor endpoint
// writers to that address sleep 2 s in a failed connect, which the
// test's cleanup waits for; in parallel, those waits overlap. Such tests
// assert nothing about timing beyond generous bounds.
func shutsNodesDown(t *testing.T) { t.Parallel() }

// testCtx returns a context that ends after callTimeout or with the test.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	t.Cleanup(cancel)
	return ctx
}

// addrs returns the sorted addresses of the nodes with the given indices.
func addrs(c *testcluster.Cluster, idx ...int) []string {
	return slices.Sorted(slices.Values(c.Addrs(idx...)))
}

// setNodes is locker:set_nodes(Cluster, Masters, Replicas) called on node
// by; it must succeed.
func setNodes(t *testing.T, c *testcluster.Cluster, by int, cluster, masters, replicas []int) {
	t.Helper()
	err := c.Peer(by).SetNodes(testCtx(t), c.Addrs(cluster...), c.Addrs(masters...), c.Addrs(replicas...))
	require.NoError(t, err, "SetNodes")
}

// requireNodes checks what Nodes() returns on l (nil and empty lists are
// the same).
func requireNodes(t *testing.T, l *lockeractor.Locker, masters, replicas []string, w int) {
	t.Helper()
	gm, gr, gw := l.Nodes()
	require.True(t, slices.Equal(masters, gm), "masters: want %v, got %v", masters, gm)
	require.True(t, slices.Equal(replicas, gr), "replicas: want %v, got %v", replicas, gr)
	require.Equal(t, w, gw, "W")
}

// requireResult checks every count of a Result whose outcome is
// deterministic (all masters that can answer must answer).
func requireResult(t *testing.T, res lockeractor.Result, w, votes, commits int) {
	t.Helper()
	require.Equal(t, w, res.W, "W in %+v", res)
	require.Equal(t, votes, res.Votes, "Votes in %+v", res)
	require.Equal(t, commits, res.Commits, "Commits in %+v", res)
}

// requireQuorum checks a Result where a further master may answer after
// the reply: at least W votes and commits, at most masters, and
// commits never more than votes.
func requireQuorum(t *testing.T, res lockeractor.Result, w, masters int) {
	t.Helper()
	require.Equal(t, w, res.W, "W in %+v", res)
	require.GreaterOrEqual(t, res.Votes, w, "Votes in %+v", res)
	require.LessOrEqual(t, res.Votes, masters, "Votes in %+v", res)
	require.GreaterOrEqual(t, res.Commits, w, "Commits in %+v", res)
	require.LessOrEqual(t, res.Commits, res.Votes, "Commits in %+v", res)
}

// requireNoQuorum checks that err is ErrNoQuorum and returns its
// *QuorumError.
func requireNoQuorum(t *testing.T, err error) *lockeractor.QuorumError {
	t.Helper()
	require.ErrorIs(t, err, lockeractor.ErrNoQuorum)
	var qe *lockeractor.QuorumError
	require.ErrorAs(t, err, &qe)
	return qe
}

// requireReasons checks the peers qe names: every peer in must, with the
// reason given there; peers in may only if they gave the reason given
// there (they may have answered after the reply); no other peer.
func requireReasons(t *testing.T, qe *lockeractor.QuorumError, must map[string]lockeractor.Reason, may map[string]lockeractor.Reason) {
	t.Helper()
	for addr, want := range must {
		got, ok := qe.Peers[addr]
		require.True(t, ok, "peer %s missing from %v", addr, qe)
		require.Equal(t, want, got, "reason of %s in %v", addr, qe)
	}
	for addr, got := range qe.Peers {
		if _, ok := must[addr]; ok {
			continue
		}
		want, ok := may[addr]
		require.True(t, ok, "unexpected peer %s in %v", addr, qe)
		require.Equal(t, want, got, "reason of %s in %v", addr, qe)
	}
}

// requireValue checks that l holds key with value want now.
func requireValue(t *testing.T, l *lockeractor.Locker, key, want string) {
	t.Helper()
	v, err := l.DirtyRead(key)
	require.NoError(t, err, "DirtyRead(%q) on %s", key, l.Address())
	require.Equal(t, want, string(v), "DirtyRead(%q) on %s", key, l.Address())
}

// requireAbsent checks that l does not hold key now.
func requireAbsent(t *testing.T, l *lockeractor.Locker, key string) {
	t.Helper()
	v, err := l.DirtyRead(key)
	require.ErrorIs(t, err, lockeractor.ErrNotFound, "DirtyRead(%q) on %s returned %q", key, l.Address(), v)
}

// eventually polls check until it returns nil, and fails t with check's
// last error if that does not happen within settle.
func eventually(t *testing.T, check func() error) {
	t.Helper()
	var last error
	testcluster.Eventually(t, settle, func() bool { last = check(); return last == nil }, "%v", lastError{&last})
}

// lastError prints the error it points to when formatted, so that a
// failure message shows the last poll, not the first.
type lastError struct{ err *error }

// String returns the text of the error.
func (l lastError) String() string {
	if *l.err == nil {
		return "<nil>"
	}
	return (*l.err).Error()
}

// eventuallyValue waits (bounded) until l holds key with value want.
func eventuallyValue(t *testing.T, l *lockeractor.Locker, key, want string) {
	t.Helper()
	eventually(t, func() error {
		v, err := l.DirtyRead(key)
		if err != nil || string(v) != want {
			return fmt.Errorf("%s: DirtyRead(%q) = %q, %v; want %q", l.Address(), key, v, err, want)
		}
		return nil
	})
}

// eventuallyAbsent waits (bounded) until l does not hold key.
func eventuallyAbsent(t *testing.T, l *lockeractor.Locker, key string) {
	t.Helper()
	eventually(t, func() error {
		if v, err := l.DirtyRead(key); err == nil {
			return fmt.Errorf("%s still holds %q = %q", l.Address(), key, v)
		}
		return nil
	})
}

// eventuallySummary waits (bounded) until l's Summary has the given
// write locks and leases (locker's get_debug_state checks).
func eventuallySummary(t *testing.T, l *lockeractor.Locker, writeLocks, leases int) {
	t.Helper()
	eventually(t, func() error {
		if s := l.Summary(); s.WriteLocks != writeLocks || s.Leases != leases {
			return fmt.Errorf("%s: summary %+v, want %d write locks and %d leases", l.Address(), s, writeLocks, leases)
		}
		return nil
	})
}

// eventuallyWaiters waits (bounded) until l has n blocked waiters.
func eventuallyWaiters(t *testing.T, l *lockeractor.Locker, n int) {
	t.Helper()
	eventually(t, func() error {
		if got := l.Summary().Waiters; got != n {
			return fmt.Errorf("%s: %d waiters, want %d", l.Address(), got, n)
		}
		return nil
	})
}

// pushAll is rpc:sbcast(Nodes, locker, push_trans_log).
func pushAll(c *testcluster.Cluster) {
	for _, n := range c.Nodes {
		n.Locker.PushTransLog()
	}
}

// restartLocker stops node i's Locker and starts a new one, with empty
// memory, on the same actor system (so at the same address).
func restartLocker(t *testing.T, c *testcluster.Cluster, i int, opts ...lockeractor.Option) {
	t.Helper()
	n := c.Nodes[i]
	n.Locker.Stop()
	require.Nil(t, lockeractor.Get(n.System), "Get after Stop")
	l, err := lockeractor.Start(n.System, opts...)
	require.NoError(t, err, "restarting node %d", i)
	n.Locker = l
	require.Equal(t, n.Addr, l.Address())
	require.Same(t, l, lockeractor.Get(n.System))
}

// lockBoth calls a.Lock and b.Lock at the same moment, as the suite's two
// spawned processes do, and returns both outcomes.
func lockBoth(ctx context.Context, a, b *lockeractor.Locker, key string, va, vb []byte, lease time.Duration) (ra, rb lockeractor.Result, ea, eb error) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); <-start; ra, ea = a.Lock(ctx, key, va, lease) }()
	go func() { defer wg.Done(); <-start; rb, eb = b.Lock(ctx, key, vb, lease) }()
	close(start)
	wg.Wait()
	return
}

// loadGroup runs a test's load goroutines: each returns once stopped()
// reports true; halt stops them all and waits for them (idempotent, so it
// can be deferred and called early).
type loadGroup struct {
	sync.WaitGroup
	once sync.Once
	stop chan struct{}
}

func newLoadGroup() *loadGroup { return &loadGroup{stop: make(chan struct{})} }

func (g *loadGroup) stopped() bool {
	select {
	case <-g.stop:
		return true
	default:
		return false
	}
}

func (g *loadGroup) halt() {
	g.once.Do(func() { close(g.stop) })
	g.Wait()
}
