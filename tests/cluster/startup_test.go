package cluster_test

import (
	"context"
	"errors"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"github.com/stretchr/testify/require"

	"github.com/protoactor-locker/locker/internal/linearize"
	"github.com/protoactor-locker/locker/internal/testcluster"
	"github.com/protoactor-locker/locker/lockeractor"
	"github.com/protoactor-locker/locker/registry"
	"github.com/protoactor-locker/locker/server"
)

// holdings records who held what when, on this process's monotonic
// clock, for linearize.CheckHoldings.
type holdings struct {
	base time.Time
	mu   sync.Mutex
	list []linearize.Holding
	open map[string]int // actor id -> index in list while it runs
}

func newHoldings() *holdings { return &holdings{base: time.Now(), open: map[string]int{}} }

func (h *holdings) now() int64 { return int64(time.Since(h.base)) }

// add records a holding and returns its index.
func (h *holdings) add(x linearize.Holding) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.list = append(h.list, x)
	return len(h.list) - 1
}

func (h *holdings) end(i int, at int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.list[i].End = min(h.list[i].End, at)
}

// left ends the holdings of member's actors still open: its actor
// system was shut down (the actors ran no longer, Stopping or not).
func (h *holdings) left(member string) {
	at := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range h.list {
		if strings.HasPrefix(h.list[i].Holder, member+"/") {
			h.list[i].End = min(h.list[i].End, at)
		}
	}
}

func (h *holdings) check(t *testing.T) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, err := range linearize.CheckHoldings(h.list) {
		t.Error(err)
	}
	t.Logf("%d holdings checked", len(h.list))
}

// namedProps is an actor that records the time it runs under name (from
// Started, when it holds the name, to Stopping) with the name's token.
func (h *holdings) namedProps(name, member string) *actor.Props {
	return actor.PropsFromFunc(func(ctx actor.Context) {
		switch ctx.Message().(type) {
		case *actor.Started:
			var tok uint64
			if lease, ok := registry.Get(ctx.ActorSystem()).Owned(name); ok {
				tok = lease.Token
			}
			i := h.add(linearize.Holding{Resource: "name " + name, Holder: member + "/" + ctx.Self().Id, Token: tok, Start: h.now(), End: math.MaxInt64})
			h.mu.Lock()
			h.open[ctx.Self().Id] = i
			h.mu.Unlock()
		case *actor.Stopping:
			h.mu.Lock()
			i, ok := h.open[ctx.Self().Id]
			h.mu.Unlock()
			if ok {
				h.end(i, h.now())
			}
		}
	})
}

// user is what a member does the moment its Locker started, the way the
// README shows: a Registry, server.Spawn of the shared names, and a Lock
// of the shared key.
type user struct {
	m      *member
	reg    *registry.Registry
	spawns map[string]error
	lockAt int64 // when the first Lock was called
	locked error // the first Lock's error (ErrNotReady until the member is configured)
}

// names and key every member of the start-up tests takes at once.
var (
	sharedNames = []string{"billing", "ledger"}
	sharedKey   = "leader"
)

const (
	nameLease = 2 * time.Second
	keyLease  = 3 * time.Second
)

// act registers the member's Registry, spawns the shared names and
// locks the shared key at once, then (once ready) again, recording what
// it got.
func (u *user) act(t *testing.T, h *holdings) {
	l := u.m.locker
	reg, err := registry.New(l)
	require.NoError(t, err)
	u.reg = reg
	// A Lock at once: a member that is not configured yet refuses it.
	u.lockAt = h.now()
	res, err := l.Lock(context.Background(), sharedKey, []byte(u.m.name), keyLease)
	u.locked = err
	if err == nil {
		h.add(linearize.Holding{Resource: "key " + sharedKey, Holder: u.m.name, Token: res.Token, Start: h.now(), End: u.lockAt + int64(keyLease)})
	}
	u.spawns = map[string]error{}
	for _, name := range sharedNames {
		_, err := server.Spawn(u.m.system.Root, name, h.namedProps(name, u.m.name),
			server.WithLeaseLength(nameLease), server.WithLeaseThreshold(nameLease/4), server.WithTimeout(settle))
		u.spawns[name] = err
	}
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	if err := l.Ready(ctx); err != nil {
		u.locked = err
		return
	}
	at := h.now()
	if res, err := l.Lock(ctx, sharedKey, []byte(u.m.name+"-ready"), keyLease); err == nil {
		h.add(linearize.Holding{Resource: "key " + sharedKey, Holder: u.m.name + "-ready", Token: res.Token, Start: h.now(), End: at + int64(keyLease)})
	}
}

// startTogether starts members named names at once, each acting as a
// user the moment its Locker runs (no waiting for the cluster), and
// returns them when all have acted.
func startTogether(t *testing.T, agent *test.InMemAgent, h *holdings, names []string, opts ...lockeractor.Option) []*user {
	t.Helper()
	users := make([]*user, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := newMember(name, 0, test.NewTestProvider(agent), testcluster.Quiet(), opts...)
			if err != nil {
				errs[i] = err
				return
			}
			users[i] = &user{m: m}
			users[i].act(t, h)
		}()
	}
	wg.Wait()
	for i, u := range users {
		if u != nil {
			t.Cleanup(u.m.leave)
			t.Cleanup(u.reg.Stop) // before the member leaves
		}
		require.NoError(t, errs[i])
	}
	return users
}

// requireOneHolder checks that of users, exactly one spawned each shared
// name and the others were told who holds it, and that every first Lock
// either failed as not ready or as refused.
func requireOneHolder(t *testing.T, users []*user) map[string]*user {
	t.Helper()
	holders := map[string]*user{}
	for _, name := range sharedNames {
		for _, u := range users {
			err := u.spawns[name]
			var taken *registry.AlreadyRegisteredError
			switch {
			case err == nil:
				if holders[name] != nil {
					t.Errorf("%q spawned on %s and on %s", name, holders[name].m.name, u.m.name)
				}
				holders[name] = u
			case errors.As(err, &taken):
			default:
				t.Errorf("%s: spawning %q: %v", u.m.name, name, err)
			}
		}
		require.NotNil(t, holders[name], "nobody spawned %q", name)
	}
	for _, u := range users {
		if u.locked != nil && !errors.Is(u.locked, lockeractor.ErrNotReady) && !errors.Is(u.locked, lockeractor.ErrNoQuorum) {
			t.Errorf("%s: the first Lock failed with %v", u.m.name, u.locked)
		}
	}
	return holders
}

// TestInMemStartTogetherTakeNamesAtOnce starts three members at once,
// the way users start a cluster: each spawns the same names and locks
// the same key the moment its Locker runs. A name is spawned once, the
// others are told who holds it; a Lock before the member is configured
// fails with ErrNotReady; no two holders of a name or the key ever
// overlap and their tokens increase. The bootstrap delay is set far
// beyond the spawns' timeout: the cluster is configured because it saw
// its expected members, not after the delay. Then a member joins and at
// once spawns and locks the same; the holder of a name leaves and its
// name is taken over; and it comes back on its address, spawning and
// locking at once too.
func TestInMemStartTogetherTakeNamesAtOnce(t *testing.T) {
	testcluster.SkipUnderRace(t)
	agent := test.NewInMemAgent()
	h := newHoldings()
	opts := []lockeractor.Option{lockeractor.WithExpectedMembers(3), lockeractor.WithBootstrapDelay(time.Hour)}
	users := startTogether(t, agent, h, []string{"A", "B", "C"}, opts...)
	holders := requireOneHolder(t, users)

	// A member joins and does the same at once.
	users = append(users, startTogether(t, agent, h, []string{"D"}, opts...)...)
	requireOneHolder(t, users)

	// The holder of the first name leaves; another member takes it over
	// once the name's lease ran out, and nobody overlaps.
	gone := holders[sharedNames[0]]
	gone.reg.Stop()
	gone.m.leave()
	h.left(gone.m.name)
	var rest []*user
	for _, u := range users {
		if u != gone {
			rest = append(rest, u)
		}
	}
	testcluster.Eventually(t, settle, func() bool {
		for _, u := range rest {
			_, err := server.Spawn(u.m.system.Root, sharedNames[0], h.namedProps(sharedNames[0], u.m.name),
				server.WithLeaseLength(nameLease), server.WithLeaseThreshold(nameLease/4), server.WithTimeout(settle))
			if err == nil {
				return true
			}
			var taken *registry.AlreadyRegisteredError
			require.True(t, errors.As(err, &taken), "%s: %v", u.m.name, err)
		}
		return false
	}, "a member takes %q over after its holder left", sharedNames[0])

	// The member that left comes back on its address and acts at once.
	port := portOf(t, gone.m.addr)
	back, err := newMember(gone.m.name+"2", port, test.NewTestProvider(agent), testcluster.Quiet(), opts...)
	require.NoError(t, err)
	ub := &user{m: back}
	ub.act(t, h)
	t.Cleanup(back.leave)
	t.Cleanup(ub.reg.Stop)
	for _, name := range sharedNames {
		var taken *registry.AlreadyRegisteredError
		if err := ub.spawns[name]; err != nil && !errors.As(err, &taken) {
			t.Errorf("the member back on its address: spawning %q: %v", name, err)
		}
	}
	if ub.locked != nil && !errors.Is(ub.locked, lockeractor.ErrNotReady) && !errors.Is(ub.locked, lockeractor.ErrNoQuorum) {
		t.Errorf("the member back on its address: the first Lock failed with %v", ub.locked)
	}
	h.check(t)
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	port, err := strconv.Atoi(addr[strings.LastIndex(addr, ":")+1:])
	require.NoError(t, err, "address %q", addr)
	return port
}
