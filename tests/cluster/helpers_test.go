package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/stretchr/testify/require"

	"github.com/protoactor-locker/locker/internal/testcluster"
	"github.com/protoactor-locker/locker/lockeractor"
)

// Bounds. They only bound waiting; nothing passes or fails by elapsed
// time.
const (
	settle      = time.Minute      // bound of every Eventually on the configuration: generous, it decides nothing when things work
	callTimeout = 10 * time.Second // ctx of every call that should succeed
)

// fastOptions make cluster mode quick in tests: a short bootstrap delay
// and a short request timeout (a dead member costs one timeout per
// reconfiguration attempt).
func fastOptions(extra ...lockeractor.Option) []lockeractor.Option {
	return append([]lockeractor.Option{
		lockeractor.WithBootstrapDelay(time.Second),
		lockeractor.WithRequestTimeout(300 * time.Millisecond),
		lockeractor.WithWriteLockTimeout(time.Second),
	}, extra...)
}

// member is one protoactor cluster member with a Locker in cluster mode.
type member struct {
	name     string
	system   *actor.ActorSystem
	cluster  *cluster.Cluster
	provider cluster.ClusterProvider
	locker   *lockeractor.Locker
	addr     string
	once     sync.Once
}

// startMember starts a cluster member on 127.0.0.1 with the provider,
// then its Locker in cluster mode. It is stopped when t ends.
func startMember(t *testing.T, name string, provider cluster.ClusterProvider, opts ...lockeractor.Option) *member {
	t.Helper()
	return startMemberOn(t, 0, name, provider, opts...)
}

// startMemberOn is startMember on the given port (0: any free port).
func startMemberOn(t *testing.T, port int, name string, provider cluster.ClusterProvider, opts ...lockeractor.Option) *member {
	t.Helper()
	sysOpts := testcluster.Quiet()
	if os.Getenv("LOCKER_TEST_LOG") != "" { // protoactor's and Locker's logs, printed if the test fails
		sysOpts = []actor.ConfigOption{actor.WithLoggerFactory(func(s *actor.ActorSystem) *slog.Logger {
			return slog.New(slog.NewTextHandler(testLog(t), nil)).With(slog.String("member", name))
		})}
	}
	m, err := newMember(name, port, provider, sysOpts, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.leave)
	return m
}

// newMember is startMemberOn for any goroutine: it returns the error
// instead of failing the test, and the caller arranges its leave.
func newMember(name string, port int, provider cluster.ClusterProvider, sysOpts []actor.ConfigOption, opts ...lockeractor.Option) (*member, error) {
	system := actor.NewActorSystem(sysOpts...)
	cfg := cluster.Configure("locker-test", provider, disthash.New(),
		remote.Configure("127.0.0.1", port, lockeractor.RemoteOptions()...))
	c := cluster.New(system, cfg)
	c.StartMember() // starts remote; about 1 s (a fixed sleep inside protoactor)
	l, err := lockeractor.Start(system, append(fastOptions(lockeractor.WithCluster(c)), opts...)...)
	if err != nil {
		c.Shutdown(false)
		return nil, fmt.Errorf("starting the Locker of %s: %w", name, err)
	}
	return &member{name: name, system: system, cluster: c, provider: provider, locker: l, addr: system.Address()}, nil
}

// leave stops the member the way a well-behaved process does, with
// lockeractor.LeaveCluster (protoactor's graceful shutdown without its
// 2 s sleep, once only). Nothing after crash.
func (m *member) leave() {
	m.once.Do(func() { lockeractor.LeaveCluster(m.cluster) })
}

// crash stops the member as if its process died: its Locker and actor
// system go away without telling anyone (protoactor's Shutdown(false),
// no gossip "left"); then the provider drops it, as a provider does when
// a member's TTL runs out: the provider's Shutdown stands for that here
// (the in-memory provider never expires members by itself).
func (m *member) crash() {
	m.once.Do(func() {
		m.locker.Stop()
		m.cluster.Shutdown(false)
		_ = m.provider.Shutdown(false)
	})
}

// inMemCluster is members sharing one in-memory agent.
type inMemCluster struct {
	agent   *test.InMemAgent
	members []*member
}

func newInMem(t *testing.T, n int, opts ...lockeractor.Option) *inMemCluster {
	t.Helper()
	testcluster.SkipUnderRace(t)
	ic := &inMemCluster{agent: test.NewInMemAgent()}
	for i := 0; i < n; i++ {
		ic.add(t, opts...)
	}
	return ic
}

func (ic *inMemCluster) add(t *testing.T, opts ...lockeractor.Option) *member {
	t.Helper()
	m := startMember(t, string(rune('A'+len(ic.members))), test.NewTestProvider(ic.agent), opts...)
	ic.members = append(ic.members, m)
	return m
}

// config is a configuration as one member sees it.
type config struct {
	masters, replicas []string
	w                 int
	epoch             uint64
	joint             bool
}

func nodes(l *lockeractor.Locker) config {
	c := l.Configuration()
	return config{masters: c.Masters, replicas: c.Replicas, w: c.W, epoch: c.Epoch, joint: c.Joint()}
}

// equal compares the membership; a configuration in the middle of a
// change of masters (joint) equals none.
func (c config) equal(o config) bool {
	return !c.joint && !o.joint && c.w == o.w && slices.Equal(c.masters, o.masters) && slices.Equal(c.replicas, o.replicas)
}

// awaitConfig waits until every member in ms holds the configuration
// masters/replicas (by member), W their majority.
func awaitConfig(t *testing.T, ms []*member, masters, replicas []*member) config {
	t.Helper()
	want := config{masters: sortedAddrs(masters), replicas: sortedAddrs(replicas), w: len(masters)/2 + 1}
	testcluster.Eventually(t, settle, func() bool {
		epoch := nodes(ms[0].locker).epoch
		for _, m := range ms {
			if got := nodes(m.locker); !got.equal(want) || got.epoch != epoch {
				return false
			}
		}
		return true
	}, "configuration %+v on every member; now %v", want, lazy(func() string { return describe(ms) }))
	return want
}

// awaitReady waits until every member in ms is ready (IsReady): a
// master still catching up after start-up needs every other voter of a
// change of masters, so a member leaving before then leaves the change
// waiting out the leases (docs/guarantees.md, "Not guaranteed").
func awaitReady(t *testing.T, ms []*member) {
	t.Helper()
	testcluster.Eventually(t, settle, func() bool {
		for _, m := range ms {
			if !m.locker.IsReady() {
				return false
			}
		}
		return true
	}, "every member ready; now %v", lazy(func() string { return describe(ms) }))
}

// awaitAgreement waits until every member in ms holds the same
// configuration with n masters, W their majority, masters and replicas
// together exactly ms, and returns it.
func awaitAgreement(t *testing.T, ms []*member, n int) config {
	t.Helper()
	var got config
	testcluster.Eventually(t, settle, func() bool {
		got = nodes(ms[0].locker)
		for _, m := range ms[1:] {
			if n := nodes(m.locker); !n.equal(got) || n.epoch != got.epoch {
				return false
			}
		}
		all := slices.Sorted(slices.Values(append(slices.Clone(got.masters), got.replicas...)))
		return len(got.masters) == n && got.w == n/2+1 && slices.Equal(all, sortedAddrs(ms))
	}, "agreement on %d masters among %d members; now %v", n, len(ms), lazy(func() string { return describe(ms) }))
	return got
}

// lazy is a fmt.Stringer evaluated when printed: Eventually formats its
// message only when it gives up, so the state shown is the final one.
type lazy func() string

func (f lazy) String() string { return f() }

func describe(ms []*member) string {
	s := ""
	for _, m := range ms {
		c := nodes(m.locker)
		s += fmt.Sprintf("\n  %s %s: epoch %d masters %s replicas %s w %d joint %v ready %v", m.name, m.addr, c.epoch, join(c.masters), join(c.replicas), c.w, c.joint, m.locker.IsReady())
	}
	return s
}

func join(a []string) string { return "[" + strings.Join(a, " ") + "]" }

func sortedAddrs(ms []*member) []string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.addr)
	}
	slices.Sort(out)
	return out
}

func byAddr(ms []*member, addr string) *member {
	for _, m := range ms {
		if m.addr == addr {
			return m
		}
	}
	return nil
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	t.Cleanup(cancel)
	return ctx
}

var (
	logMu   sync.Mutex
	logBufs = map[*testing.T]*lockedBuffer{}
)

type lockedBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// testLog returns t's log buffer, printed to stderr when t fails.
func testLog(t *testing.T) *lockedBuffer {
	logMu.Lock()
	defer logMu.Unlock()
	b := logBufs[t]
	if b == nil {
		b = &lockedBuffer{}
		logBufs[t] = b
		t.Cleanup(func() {
			if t.Failed() {
				b.mu.Lock()
				os.Stderr.Write(b.buf)
				b.mu.Unlock()
			}
		})
	}
	return b
}

// requireStillHeld checks that a lock of key taken before is still held:
// Lock(key) by l fails, refused as already locked by at least W masters.
// Any other refusal proves nothing (an unreachable or catching-up peer
// refuses too), so such a Lock is tried again until W masters answer
// already locked; a Lock that succeeds, or may have (committing), fails
// t at once.
func requireStillHeld(t *testing.T, ctx context.Context, l *lockeractor.Locker, key string, value []byte) {
	t.Helper()
	var last error
	testcluster.Eventually(t, settle, func() bool {
		_, err := l.Lock(ctx, key, value, time.Minute)
		require.Error(t, err, "%s locked %q, which another holds", l.Address(), key)
		last = err
		var qe *lockeractor.QuorumError
		if !errors.As(err, &qe) {
			return false
		}
		require.False(t, qe.Committing, "a Lock of a held key was committed somewhere: %v", qe)
		n := 0
		for _, r := range qe.Peers {
			if r == lockeractor.ReasonAlreadyLocked {
				n++
			}
		}
		return n >= qe.W
	}, "W masters refuse a Lock of %q as already locked; last answer %v", key, lazy(func() string { return fmt.Sprint(last) }))
}
