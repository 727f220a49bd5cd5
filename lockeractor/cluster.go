package lockeractor

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/eventstream"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/protoactor-locker/locker/internal/membership"
)

// Cluster mode.
//
// With WithCluster, the Locker follows the protoactor cluster's topology:
// every *cluster.ClusterTopology event on the actor system's event stream
// is fed to the membership policy (the first N members by join order are
// masters, the rest replicas, W the majority of the masters; alive
// masters stay masters; a departed master is replaced by the oldest
// replica; a member enters as a replica and is promoted later; see
// internal/membership for the exact rules). When the policy's proposal
// differs from the current configuration, one member only, the
// coordinator (the alive current master with the smallest address),
// applies it with Reconfigure, retrying with backoff when it fails (a
// member whose attempt failed goes on retrying until one succeeds, even
// if it is no longer the coordinator, since a failed attempt may have
// reached some peers only). A member that was never configured (a fresh
// cluster) waits until the topology has been stable for BootstrapDelay,
// or until it sees ExpectedMembers members (WithExpectedMembers); then
// the alive member with the smallest address configures everyone. Until
// a member holds a configuration that names it, it is not ready: its
// writes fail with ErrNotReady and it promises nothing (Locker.Ready
// waits for it).
//
// Topology only proposes: who votes is always the configuration the
// peers hold (with its epoch), never "whoever is visible now".

const (
	// minReconfigureTimeout is the least time one Reconfigure attempt of
	// cluster mode gets (at least 10 request timeouts otherwise).
	minReconfigureTimeout = 5 * time.Second
	// Retry backoff of a failed Reconfigure: doubles from min to max.
	minBackoff = 50 * time.Millisecond
	maxBackoff = time.Second
)

// WithCluster runs the Locker in cluster mode on c: masters and replicas
// follow c's topology (see WithMasters). c must be the cluster of the
// actor system the Locker starts on, and Start must come after
// c.StartMember() (the peer's address is the member's address). Leave
// with LeaveCluster(c), which stops the Locker first, rather than with
// c.Shutdown.
//
// Explicit SetNodes and SetW calls on this Locker pause cluster mode on
// this member until FollowCluster is called. Any member may become the
// coordinator, so to pin a configuration by hand in a running cluster,
// call SetW or SetNodes on every member's Locker first (each call pauses
// the member it is made on), then set the configuration.
func WithCluster(c *cluster.Cluster) Option { return func(cfg *Config) { cfg.Cluster = c } }

// WithMasters sets how many masters cluster mode wants (default 3; all
// members when fewer are alive).
func WithMasters(n int) Option { return func(cfg *Config) { cfg.Masters = n } }

// WithBootstrapDelay sets how long, in cluster mode, a member that was
// never configured waits for the topology to stop changing before the
// member with the smallest address configures the cluster (default 2 s).
// An established coordinator adds newcomers at once; the delay gives it
// the time to do so before a newcomer would bootstrap on its own.
func WithBootstrapDelay(d time.Duration) Option { return func(cfg *Config) { cfg.BootstrapDelay = d } }

// WithExpectedMembers tells cluster mode how many members the cluster
// starts with: a never-configured cluster is configured as soon as n
// members are seen, instead of once the topology has been stable for
// the bootstrap delay. Members are ready (see Locker.Ready) one
// Reconfigure later, a few round trips. Give every member the same n.
// With fewer members alive the bootstrap delay still applies, so a
// cluster that lost a member before its first configuration still
// starts.
func WithExpectedMembers(n int) Option { return func(cfg *Config) { cfg.ExpectedMembers = n } }

// FollowCluster resumes cluster mode after explicit SetNodes or SetW
// calls paused it: the policy is applied again from the current
// configuration and topology. It does nothing outside cluster mode.
func (l *Locker) FollowCluster() {
	if f := l.follower; f != nil {
		f.manual.Store(false)
		f.poke()
	}
}

// explicitConfig is the hook of SetNodes and SetW: a call pauses cluster
// mode on this member. Cluster mode itself only calls Reconfigure, which
// does not pause it.
func (l *Locker) explicitConfig() {
	if f := l.follower; f != nil {
		if !f.manual.Swap(true) {
			f.log.Info("locker: cluster mode paused by an explicit SetNodes/SetW; FollowCluster resumes it")
		}
	}
}

// follower is cluster mode: it owns one goroutine that reads the latest
// topology and applies the policy. The event-stream callback only stores
// the topology and wakes it.
type follower struct {
	l       *Locker
	policy  membership.Policy
	delay   time.Duration
	log     *slog.Logger
	stream  *eventstream.EventStream
	sub     *eventstream.Subscription
	manual  atomic.Bool // explicit SetNodes/SetW seen; FollowCluster clears it
	wake    chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	stopped sync.Once

	// mu guards latest and fresh (and serialises writers of topo), written by the event-stream callback
	// (under protoactor's member-list lock) and read by the goroutine.
	mu     sync.Mutex
	latest []membership.Seen
	fresh  bool

	// topo is the set of addresses the latest topology lists and of those
	// any topology listed, for Departed; replaced, never modified.
	topo atomic.Pointer[topology]
}

// topology is what Departed needs of the topologies seen.
type topology struct {
	alive, seen map[string]bool
}

// startCluster is the hook of Start: it starts cluster mode when
// configured.
func (l *Locker) startCluster() error {
	c := l.cfg.Cluster
	if c == nil {
		return nil
	}
	if c.ActorSystem != l.system {
		return invalid("the cluster belongs to another actor system")
	}
	if c.MemberList == nil || c.Remote == nil {
		return invalid("the cluster is not started: call StartMember before lockeractor.Start")
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &follower{
		l: l, policy: membership.Policy{Masters: l.cfg.Masters}, delay: l.cfg.BootstrapDelay,
		log: l.cfg.Logger, stream: l.system.EventStream,
		wake: make(chan struct{}, 1), ctx: ctx, cancel: cancel, done: make(chan struct{}),
	}
	l.follower = f
	f.sub = f.stream.Subscribe(func(evt any) {
		if t, ok := evt.(*cluster.ClusterTopology); ok {
			f.offer(t.Members)
		}
	})
	// Topologies published before we subscribed (during StartMember) are
	// lost; the member list holds the latest. This read is unlocked in
	// protoactor (MemberList has no locked accessor); the set it returns
	// is never modified.
	f.offer(c.MemberList.Members().Members())
	go f.run()
	return nil
}

// stopCluster is the hook of Stop: it unsubscribes and waits for the
// follower's goroutine to end.
func (l *Locker) stopCluster() {
	f := l.follower
	if f == nil {
		return
	}
	f.stopped.Do(func() {
		f.stream.Unsubscribe(f.sub)
		f.cancel()
		<-f.done
	})
}

// offer stores a topology and wakes the goroutine. It runs under
// protoactor's member-list lock: it copies and returns.
func (f *follower) offer(members []*cluster.Member) {
	seen := make([]membership.Seen, 0, len(members))
	for _, m := range members {
		seen = append(seen, membership.Seen{ID: m.Id, Address: m.Address()})
	}
	f.mu.Lock()
	f.latest, f.fresh = seen, true
	f.noteTopology(seen)
	f.mu.Unlock()
	f.poke()
}

// noteTopology records which addresses are alive now and which were ever
// seen. offer calls it under f.mu.
func (f *follower) noteTopology(members []membership.Seen) {
	next := &topology{alive: map[string]bool{}, seen: map[string]bool{}}
	if cur := f.topo.Load(); cur != nil {
		for a := range cur.seen {
			next.seen[a] = true
		}
	}
	for _, m := range members {
		next.alive[m.Address], next.seen[m.Address] = true, true
	}
	f.topo.Store(next)
}

// Departed reports whether the member at addr is known to be gone: in
// cluster mode, the topology listed it once and lists it no more; or
// this peer holds a configuration (epoch > 0) that names it neither as
// a master nor as a replica (the Lockers reconfigured without it). A
// peer with no configuration yet counts no address as departed, and
// never its own. The registry uses it to skip holders on departed
// members; it is a few lookups, safe from any goroutine.
func (l *Locker) Departed(addr string) bool {
	if addr == l.self {
		return false
	}
	if f := l.follower; f != nil {
		if t := f.topo.Load(); t != nil && t.seen[addr] && !t.alive[addr] {
			return true
		}
	}
	m := l.core.Membership()
	return m.Epoch > 0 && !slices.Contains(m.Masters, addr) && !slices.Contains(m.Replicas, addr) && !slices.Contains(m.OldMasters, addr)
}

func (f *follower) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *follower) take() ([]membership.Seen, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fresh := f.fresh
	f.fresh = false
	return f.latest, fresh
}

func (f *follower) run() {
	defer close(f.done)
	var (
		tracker   membership.Tracker
		alive     []membership.Member
		changedAt time.Time
		retry     retryState
	)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-f.ctx.Done():
			return
		case <-f.wake:
		case <-timer.C:
		}
		if seen, ok := f.take(); ok {
			next := tracker.Observe(seen)
			if !sameAddresses(alive, next) {
				changedAt = time.Now()
			}
			alive = next
		}
		if again := f.step(alive, changedAt, &retry); again > 0 {
			timer.Stop()
			timer.Reset(again)
		}
	}
}

// retryState is what the follower remembers between steps.
type retryState struct {
	backoff time.Duration // the wait before the next attempt after a failure
	// pending is the proposal whose last Reconfigure failed. A failed
	// Reconfigure may have been applied here and on some peers only, so
	// the local configuration equalling the proposal does not mean every
	// peer has it: it is applied again until a call succeeds.
	pending *membership.Config
}

// step applies the policy once. It returns when to look again (0: at the
// next topology change).
func (f *follower) step(alive []membership.Member, changedAt time.Time, retry *retryState) time.Duration {
	l := f.l
	if f.manual.Load() || !slices.ContainsFunc(alive, func(m membership.Member) bool { return m.Address == l.self }) {
		return 0
	}
	m := l.core.Membership()
	cur := membership.Config{Epoch: m.Epoch, Masters: m.Masters, Replicas: m.Replicas, W: m.W}
	want := f.policy.Propose(alive, cur)
	// At epoch 0 the peer's own configuration (itself alone) is no
	// configuration: a one-member cluster still needs its first
	// Reconfigure to be ready.
	if cur.Epoch > 0 && want.Same(cur) && retry.pending == nil {
		retry.backoff, retry.pending = 0, nil
		return 0
	}
	// The coordinator applies proposals. A member whose own last attempt
	// failed also goes on until one succeeds: the peers it reached may
	// hold its configuration, in which another member may be named
	// coordinator that never received it.
	if coord, _ := membership.Coordinator(alive, cur); coord != l.self && retry.pending == nil {
		return 0
	}
	if cur.Epoch == 0 && (l.cfg.ExpectedMembers == 0 || len(alive) < l.cfg.ExpectedMembers) {
		if wait := f.delay - time.Since(changedAt); wait > 0 {
			return wait
		}
	}
	ctx, cancel := context.WithTimeout(f.ctx, max(10*l.cfg.RequestTimeout, minReconfigureTimeout))
	err := l.Reconfigure(ctx, want.Masters, want.Replicas)
	cancel()
	if f.ctx.Err() != nil {
		return 0
	}
	if m := l.core.Membership(); err == nil && !want.Same(membership.Config{Masters: m.Masters, Replicas: m.Replicas, W: m.W}) {
		err = errors.New("locker: the configuration did not change here (refused as stale?)")
	}
	if err != nil {
		retry.backoff = min(max(2*retry.backoff, minBackoff), maxBackoff)
		retry.pending = &want
		f.log.Warn("locker: cluster reconfiguration failed; retrying",
			slog.Any("masters", want.Masters), slog.Any("replicas", want.Replicas),
			slog.Duration("after", retry.backoff), slog.Any("error", err))
		return retry.backoff
	}
	retry.backoff, retry.pending = 0, nil
	f.log.Info("locker: cluster reconfigured",
		slog.Any("masters", want.Masters), slog.Any("replicas", want.Replicas), slog.Int("w", want.W))
	return time.Nanosecond // look again at once: a newcomer may now be promoted
}

func sameAddresses(a, b []membership.Member) bool {
	return slices.EqualFunc(a, b, func(x, y membership.Member) bool { return x.Address == y.Address && x.ID == y.ID })
}

// LeaveCluster stops the Locker running on c's actor system, if any, and
// then shuts the cluster member down: it tells the other members by
// gossip that it left, deregisters from the cluster provider, stops
// identity lookup and gossip, the actor system and remote. It is safe to
// call more than once, unlike protoactor's cluster.Shutdown, which panics
// when called twice. If c's actor system was already stopped (by
// c.Shutdown, say), it only stops the Locker: protoactor's shutdown
// steps panic when repeated.
//
// It does not wait: cluster.Shutdown(true) sleeps a fixed 2 s, and a
// graceful remote stop waits up to 10 s for gRPC streams from the other
// members, so remote is stopped hard. Left behind in this process, as
// after protoactor's own Shutdown(false): gRPC client connections that
// retry the other members for about 10 s (protoactor's endpoint writer
// retries 5 times, 2 s apart), protoactor's log-throttle goroutines (two
// per member, never stopped), and the in-memory test provider's TTL
// goroutine (its ticker is stopped but its loop never ends).
func LeaveCluster(c *cluster.Cluster) {
	if c == nil {
		return
	}
	if c.ActorSystem == nil {
		return
	}
	// The member is shut down once per actor system, as remembered by
	// the system's Locker extension.
	extensionOf(c.ActorSystem).leave.Do(func() {
		if l := Get(c.ActorSystem); l != nil {
			l.Stop()
		}
		if c.ActorSystem.IsStopped() {
			return
		}
		if c.Gossip != nil {
			c.Gossip.SetState(cluster.GracefullyLeftKey, &emptypb.Empty{})
		}
		if c.Config != nil && c.Config.ClusterProvider != nil {
			if err := c.Config.ClusterProvider.Shutdown(true); err != nil {
				logger := c.ActorSystem.Logger()
				if l := Get(c.ActorSystem); l != nil {
					logger = l.Logger()
				}
				logger.Warn("locker: leaving the cluster provider failed", slog.Any("error", err))
			}
		}
		if c.IdentityLookup != nil {
			c.IdentityLookup.Shutdown()
		}
		if c.Gossip != nil {
			c.Gossip.Shutdown()
		}
		c.ActorSystem.Shutdown()
		if c.Remote != nil {
			c.Remote.Shutdown(false)
		}
	})
}
