package lockeractor

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/extensions"

	"github.com/protoactor-locker/locker/internal/core"
	"github.com/protoactor-locker/locker/messages"
)

// ActorName is the name of the peer actor on every actor system, so a
// peer at address a is actor.NewPID(a, ActorName).
const ActorName = "locker"

// localAddress is the address of an actor system without remote.
const localAddress = "nonhost"

var extensionID = extensions.NextExtensionID()

// extension is what Locker registers on an actor system: a holder of the
// running Locker, so that Stop and a later Start can swap it.
type extension struct {
	current atomic.Pointer[Locker]
	// leave makes LeaveCluster shut the system's cluster member down
	// once (protoactor's Shutdown panics when repeated).
	leave sync.Once
}

// extensionOf returns system's Locker extension, registering it first if
// the system has none. protoactor's extension table has no lock: the
// first Start (or LeaveCluster) on a system must not race another.
func extensionOf(system *actor.ActorSystem) *extension {
	ext, _ := system.Extensions.Get(extensionID).(*extension)
	if ext == nil {
		ext = &extension{}
		system.Extensions.Register(ext)
	}
	return ext
}

func (*extension) ExtensionID() extensions.ExtensionID { return extensionID }

// Result is what a successful write counted.
type Result struct {
	W       int    // the write quorum
	Votes   int    // masters that promised
	Commits int    // masters that acknowledged the commit
	Token   uint64 // fencing token (see Lock)
}

// Summary is what this peer holds locally.
type Summary struct {
	WriteLocks int // promises held for writes in progress
	Leases     int // keys held
	Waiters    int // blocked WaitFor and WaitForRelease calls
}

// Locker is the handle of one actor system's peer. Its methods are safe
// for concurrent use.
type Locker struct {
	system     *actor.ActorSystem
	pid        *actor.PID
	dispatcher *peerDispatcher // runs the peer's mailbox
	cfg        Config
	self       string
	core       *core.Core // owned by the peer actor; only its concurrent-safe methods are used here
	store      *core.Store
	ext        *extension

	watchers watchers

	stopOnce sync.Once
	stopped  chan struct{}

	follower *follower // cluster mode (cluster.go); nil without WithCluster
	ready    *readiness
}

// Start spawns the Locker peer on system under the name "locker" and
// registers it as the system's extension. Start protoactor remote first
// if the peer is to talk to others: the peer's address is the system's
// address at Start. A fresh peer knows only itself: masters = [its
// address], no replicas, W from WithW (default 1). Without remote and
// without WithCluster it is a single-node store, ready at once; any
// other peer writes only once it is configured (see Ready).
func Start(system *actor.ActorSystem, opts ...Option) (*Locker, error) {
	if system == nil {
		return nil, invalid("actor system is nil")
	}
	cfg := DefaultConfig()
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	cfg.resolve()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = system.Logger()
	}
	patchSerializer() // once per process; see UnknownMessage
	ext := extensionOf(system)
	if ext.current.Load() != nil {
		return nil, fmt.Errorf("%w on %s", ErrAlreadyStarted, system.Address())
	}
	var seed [8]byte
	_, _ = rand.Read(seed[:])
	self := system.Address()
	c := core.New(core.Config{
		Self: self, W: cfg.W, RequestTimeout: cfg.RequestTimeout, WriteLockTimeout: cfg.WriteLockTimeout,
		ReplicationInterval: cfg.ReplicationInterval, MaxMessageBytes: cfg.MaxMessageBytes, MaxLease: cfg.MaxLease,
		Clock: cfg.Clock, Seed: binary.LittleEndian.Uint64(seed[:]) >> 1,
		// Without remote (the address is protoactor's local "nonhost")
		// and without a cluster, there is nobody to be configured with.
		Standalone: cfg.Cluster == nil && self == localAddress,
	})
	l := &Locker{system: system, cfg: cfg, self: self, core: c, store: c.Store(), ext: ext, stopped: make(chan struct{}), ready: newReadiness(c.Ready()),
		dispatcher: newPeerDispatcher(peerIdle)}
	l.store.OnChange = l.watchers.notify
	if !ext.current.CompareAndSwap(nil, l) {
		return nil, fmt.Errorf("%w on %s", ErrAlreadyStarted, self)
	}
	props := actor.PropsFromProducer(func() actor.Actor { return newPeer(l) }, actor.WithDispatcher(l.dispatcher))
	pid, err := system.Root.SpawnNamed(props, ActorName)
	if err != nil {
		l.dispatcher.close()
		ext.current.CompareAndSwap(l, nil)
		return nil, fmt.Errorf("locker: spawning the peer: %w", err)
	}
	l.pid = pid
	if err := l.startCluster(); err != nil {
		l.Stop()
		return nil, err
	}
	return l, nil
}

// Get returns the running Locker of system, or nil when none runs.
func Get(system *actor.ActorSystem) *Locker {
	if system == nil {
		return nil
	}
	ext, _ := system.Extensions.Get(extensionID).(*extension)
	if ext == nil {
		return nil
	}
	return ext.current.Load()
}

// Stop stops the peer and waits until it has stopped; pending calls fail
// with ErrStopped and waiters wake. To other peers it is then down.
// Stop is idempotent.
func (l *Locker) Stop() {
	l.stopOnce.Do(func() {
		l.stopCluster()
		close(l.stopped)
		_ = l.system.Root.StopFuture(l.pid).Wait()
		l.dispatcher.close()
		l.ext.current.CompareAndSwap(l, nil)
	})
}

// Address is this peer's address ("host:port", or "nonhost" without
// protoactor remote).
func (l *Locker) Address() string { return l.self }

// PID is the peer actor.
func (l *Locker) PID() *actor.PID { return l.pid }

func (l *Locker) isStopped() bool {
	select {
	case <-l.stopped:
		return true
	default:
		return false
	}
}

// Op is one write of a Batch.
type Op struct {
	Kind     OpKind
	Key      string
	Value    []byte        // the value to lock with, or the value the key must hold
	NewValue []byte        // Update only
	Lease    time.Duration // Lock and ExtendLease
}

// OpKind says what an Op does.
type OpKind int

// The kinds of Op.
const (
	OpLock OpKind = iota + 1
	OpUpdate
	OpExtendLease
	OpRelease
)

// String names the kind.
func (k OpKind) String() string {
	switch k {
	case OpLock:
		return "lock"
	case OpUpdate:
		return "update"
	case OpExtendLease:
		return "extend lease"
	case OpRelease:
		return "release"
	}
	return fmt.Sprintf("OpKind(%d)", int(k))
}

// OpResult is the result of one Op of a Batch.
type OpResult struct {
	Result Result
	Err    error
}

// DefaultMaxLease is the longest lease a Locker accepts unless
// WithMaxLease says otherwise: an hour.
const DefaultMaxLease = core.DefaultMaxLease

// MaxLeaseLimit bounds what WithMaxLease may set: a year. Leases are
// counted in nanoseconds in an int64, which a lease near its maximum
// would overflow; a lease arriving longer from a peer is cut to it.
const MaxLeaseLimit = core.MaxLeaseLimit

// MaxLease is the longest lease Lock, ExtendLease and Batch accept on
// this Locker (Config.MaxLease); a longer one fails with
// ErrInvalidArgument.
func (l *Locker) MaxLease() time.Duration { return l.cfg.MaxLease }

// Logger is the logger of the Locker's logs (WithLogger; the actor
// system's logger by default). Packages built on a Locker, such as
// registry, log through it too.
func (l *Locker) Logger() *slog.Logger { return l.cfg.Logger }

// Clock is the time source this Locker was started with (WithClock; the
// system clock by default). Packages built on a Locker, such as
// registry, count leases with it.
func (l *Locker) Clock() Clock { return l.cfg.Clock }

// Lock takes key with value for lease, if no master of a quorum holds the
// key. Result.Token is a fencing token strictly greater than every token
// handed out before for key. The holder may count on the lease from the
// moment it called Lock: masters start it later, when the commit arrives.
func (l *Locker) Lock(ctx context.Context, key string, value []byte, lease time.Duration) (Result, error) {
	return l.one(ctx, Op{Kind: OpLock, Key: key, Value: value, Lease: lease})
}

// Update replaces key's value with newValue if a quorum of masters holds
// value; the lease is unchanged. Result.Token is a fresh fencing token.
func (l *Locker) Update(ctx context.Context, key string, value, newValue []byte) (Result, error) {
	return l.one(ctx, Op{Kind: OpUpdate, Key: key, Value: value, NewValue: newValue})
}

// ExtendLease makes key's lease last at least lease from now if a quorum
// of masters holds value; masters that lack the key receive it (repair).
// It never shortens a lease (Release ends one), so a holder whose
// ExtendLease failed with an unknown outcome may keep counting from its
// previous lease. Result.Token is the holder's token.
func (l *Locker) ExtendLease(ctx context.Context, key string, value []byte, lease time.Duration) (Result, error) {
	return l.one(ctx, Op{Kind: OpExtendLease, Key: key, Value: value, Lease: lease})
}

// Release deletes key if a quorum of masters holds value. Result.Token is
// the token the holder had.
func (l *Locker) Release(ctx context.Context, key string, value []byte) (Result, error) {
	return l.one(ctx, Op{Kind: OpRelease, Key: key, Value: value})
}

func (l *Locker) one(ctx context.Context, op Op) (Result, error) {
	res, err := l.Batch(ctx, []Op{op})
	if err != nil {
		return Result{}, err
	}
	return res[0].Result, res[0].Err
}

// Batch performs independent writes together: ops on distinct keys share
// one Prepare and one Commit per master (as many as the message size
// bound needs), which is how many leases are renewed cheaply. Each op
// succeeds or fails on its own. The error is non-nil only when the
// batch as a whole was refused (bad input, stopped, ctx ended).
func (l *Locker) Batch(ctx context.Context, ops []Op) ([]OpResult, error) {
	if ctx == nil {
		return nil, invalid("nil context")
	}
	cops := make([]core.Op, len(ops))
	for i, op := range ops {
		c, err := l.coreOp(op)
		if err != nil {
			return nil, fmt.Errorf("op %d: %w", i, err)
		}
		cops[i] = c
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("locker: %w", err)
	}
	if l.isStopped() {
		return nil, ErrStopped
	}
	reply := make(chan []core.Outcome, 1)
	l.system.Root.Send(l.pid, &submit{ops: cops, reply: func(o []core.Outcome) { reply <- o }})
	select {
	case outs := <-reply:
		res := make([]OpResult, len(outs))
		for i, o := range outs {
			res[i] = l.opResult(ops[i].Key, o)
		}
		return res, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("locker: %w (the write may still complete)", ctx.Err())
	case <-l.stopped:
		return nil, ErrStopped
	}
}

func (l *Locker) opResult(key string, o core.Outcome) OpResult {
	r := Result{W: o.W, Votes: o.Votes, Commits: o.Commits, Token: o.Token}
	switch {
	case o.Stopped:
		return OpResult{Result: r, Err: ErrStopped}
	case o.NotReady:
		return OpResult{Result: r, Err: notReady(o.Reasons[l.self])}
	case o.OK:
		return OpResult{Result: r}
	}
	return OpResult{Result: r, Err: &QuorumError{
		Key: key, Committing: o.Phase == core.PhaseCommit, W: o.W, Votes: o.Votes, Commits: o.Commits, Peers: o.Reasons,
	}}
}

func (l *Locker) coreOp(op Op) (core.Op, error) {
	if op.Key == "" {
		return core.Op{}, invalid("empty key")
	}
	c := core.Op{Key: op.Key, Value: slices.Clone(op.Value)}
	switch op.Kind {
	case OpLock, OpExtendLease:
		if op.Lease <= 0 {
			return core.Op{}, invalid("lease %v for %q is not positive", op.Lease, op.Key)
		}
		ms := op.Lease.Milliseconds()
		if ms == 0 {
			return core.Op{}, invalid("lease %v for %q is shorter than a millisecond", op.Lease, op.Key)
		}
		if op.Lease > l.cfg.MaxLease {
			return core.Op{}, invalid("lease %v for %q is longer than MaxLease (%v)", op.Lease, op.Key, l.cfg.MaxLease)
		}
		c.LeaseMs = ms
		c.Kind = messages.WriteKind_WRITE_KIND_LOCK
		if op.Kind == OpExtendLease {
			c.Kind = messages.WriteKind_WRITE_KIND_EXTEND
		}
	case OpUpdate:
		c.Kind = messages.WriteKind_WRITE_KIND_UPDATE
		c.NewValue = slices.Clone(op.NewValue)
	case OpRelease:
		c.Kind = messages.WriteKind_WRITE_KIND_RELEASE
	default:
		return core.Op{}, invalid("unknown op kind %v", op.Kind)
	}
	if !core.Fits(c, l.cfg.MaxMessageBytes) {
		return core.Op{}, invalid("key %.40q with its values is %d bytes, over the message size bound %d (see WithMaxMessageBytes)",
			op.Key, core.EntrySize(c.Key, c.Value, c.NewValue), l.cfg.MaxMessageBytes)
	}
	return c, nil
}

// DirtyRead returns key's value as this peer holds it, without asking
// anyone: fast, but possibly stale (a replica lags its masters by up to
// a replication interval). It never returns an entry whose lease ran out
// here. The returned slice must not be modified.
func (l *Locker) DirtyRead(key string) ([]byte, error) {
	if v, ok := l.store.Read(key); ok {
		return v, nil
	}
	return nil, ErrNotFound
}

// MasterDirtyRead reads key on a master: here if this peer is one,
// otherwise on one of the masters.
func (l *Locker) MasterDirtyRead(ctx context.Context, key string) ([]byte, error) {
	if ctx == nil {
		return nil, invalid("nil context")
	}
	if key == "" {
		return nil, invalid("empty key")
	}
	m := l.core.Membership()
	if m.IsMaster(l.self) {
		return l.DirtyRead(key)
	}
	reply := make(chan core.ReadResult, 1)
	if err := l.send(ctx, &readMaster{key: key, reply: func(r core.ReadResult) { reply <- r }}); err != nil {
		return nil, err
	}
	select {
	case r := <-reply:
		switch {
		case r.Stopped:
			return nil, ErrStopped
		case r.Failure != messages.Reason_REASON_UNSPECIFIED:
			return nil, fmt.Errorf("%w: master %s did not answer", ErrUnreachable, r.Master)
		case !r.Found:
			return nil, ErrNotFound
		}
		return r.Value, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("locker: %w", ctx.Err())
	case <-l.stopped:
		return nil, ErrStopped
	}
}

// send hands msg to the peer actor unless ctx ended or the peer stopped.
func (l *Locker) send(ctx context.Context, msg any) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("locker: %w", err)
	}
	if l.isStopped() {
		return ErrStopped
	}
	l.system.Root.Send(l.pid, msg)
	return nil
}

// WaitFor returns key's value as soon as this peer holds it: at once if
// it does, else when a local write or replication brings it.
func (l *Locker) WaitFor(ctx context.Context, key string) ([]byte, error) {
	if ctx == nil {
		return nil, invalid("nil context")
	}
	if key == "" {
		return nil, invalid("empty key")
	}
	v, w := l.store.WaitPresent(key)
	if w == nil {
		return v, nil
	}
	select {
	case <-w.Done():
		if l.isStopped() && w.Value() == nil {
			return nil, ErrStopped
		}
		return w.Value(), nil
	case <-ctx.Done():
		w.Cancel()
		return nil, fmt.Errorf("locker: waiting for %q: %w", key, ctx.Err())
	case <-l.stopped:
		w.Cancel()
		return nil, ErrStopped
	}
}

// WaitForRelease returns nil when key, held here now, is released or its
// lease runs out here; ErrKeyNotLocked when this peer does not hold it.
func (l *Locker) WaitForRelease(ctx context.Context, key string) error {
	if ctx == nil {
		return invalid("nil context")
	}
	if key == "" {
		return invalid("empty key")
	}
	w := l.store.WaitAbsent(key)
	if w == nil {
		return fmt.Errorf("%w: %q", ErrKeyNotLocked, key)
	}
	select {
	case <-w.Done():
		if l.isStopped() {
			return ErrStopped
		}
		return nil
	case <-ctx.Done():
		w.Cancel()
		return fmt.Errorf("locker: waiting for release of %q: %w", key, ctx.Err())
	case <-l.stopped:
		w.Cancel()
		return ErrStopped
	}
}

// SetNodes makes masters and replicas the configuration of every peer in
// cluster (addresses "host:port"), under a new epoch. Each peer checks it
// against its W. It returns nil when every peer applied it.
func (l *Locker) SetNodes(ctx context.Context, cluster, masters, replicas []string) error {
	if ctx == nil {
		return invalid("nil context")
	}
	l.explicitConfig()
	cl, err := checkCluster(cluster)
	if err != nil {
		return err
	}
	// This peer's W is checked here only if the change is for this peer
	// too; every peer of cluster checks the masters against its own W.
	w := 0
	if slices.Contains(cl, l.self) {
		w = l.core.Membership().W
	}
	ms, rs := core.SortedSet(masters), core.SortedSet(replicas)
	if msg := core.CheckNodes(ms, rs, w); msg != "" {
		return invalid("%s", msg)
	}
	return l.admin(ctx, &adminCall{cluster: cl, masters: ms, replicas: rs})
}

// SetW makes w the write quorum of every peer in cluster. Each peer
// checks it against its masters.
func (l *Locker) SetW(ctx context.Context, cluster []string, w int) error {
	if ctx == nil {
		return invalid("nil context")
	}
	l.explicitConfig()
	if w < 1 {
		return invalid("W = %d is less than 1", w)
	}
	cl, err := checkCluster(cluster)
	if err != nil {
		return err
	}
	return l.admin(ctx, &adminCall{cluster: cl, w: w, setW: true})
}

func checkCluster(cluster []string) ([]string, error) {
	cl := core.SortedSet(cluster)
	if len(cl) == 0 {
		return nil, invalid("empty cluster")
	}
	for _, a := range cl {
		if msg := core.CheckAddress(a); msg != "" {
			return nil, invalid("%s", msg)
		}
	}
	return cl, nil
}

func (l *Locker) admin(ctx context.Context, call *adminCall) error {
	reply := make(chan map[string]core.AdminResult, 1)
	call.reply = func(r map[string]core.AdminResult) { reply <- r }
	if err := l.send(ctx, call); err != nil {
		return err
	}
	select {
	case res := <-reply:
		return adminError(res)
	case <-ctx.Done():
		return fmt.Errorf("locker: %w", ctx.Err())
	case <-l.stopped:
		return ErrStopped
	}
}

func adminError(res map[string]core.AdminResult) error {
	addrs := make([]string, 0, len(res))
	for a := range res {
		addrs = append(addrs, a)
	}
	slices.Sort(addrs)
	var unreachable []string
	for _, a := range addrs {
		r := res[a]
		switch r.Reason {
		case messages.Reason_REASON_UNSPECIFIED:
		case messages.Reason_REASON_UNREACHABLE:
			unreachable = append(unreachable, a)
		default:
			return invalid("peer %s refused: %s", a, r.Message)
		}
	}
	if len(unreachable) > 0 {
		return fmt.Errorf("%w: %v", ErrUnreachable, unreachable)
	}
	return nil
}

// Nodes returns the masters, replicas and W as this peer sees them.
func (l *Locker) Nodes() (masters, replicas []string, w int) {
	m := l.core.Membership()
	return slices.Clone(m.Masters), slices.Clone(m.Replicas), m.W
}

// PushTransLog makes this peer push its pending replication batch now
// instead of at the next interval. It does not wait for the push.
func (l *Locker) PushTransLog() {
	if !l.isStopped() {
		l.system.Root.Send(l.pid, pushNow{})
	}
}

// Lag measures how long a quorum write takes now: it locks a probe key,
// times that, and releases it (locker's lag/0).
func (l *Locker) Lag(ctx context.Context) (time.Duration, error) {
	if ctx == nil {
		return 0, invalid("nil context")
	}
	key := fmt.Sprintf("\x00locker/lag/%s/%d", l.self, time.Now().UnixNano())
	value := []byte(l.self)
	start := time.Now()
	if _, err := l.Lock(ctx, key, value, 2*time.Second); err != nil {
		return 0, err
	}
	d := time.Since(start)
	_, _ = l.Release(ctx, key, value) // the probe expires anyway
	return d, nil
}

// Summary returns what this peer holds locally.
func (l *Locker) Summary() Summary {
	leases, waiters := l.store.Counts()
	return Summary{WriteLocks: l.core.WriteLocks(), Leases: leases, Waiters: waiters}
}
