package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/extensions"

	"github.com/protoactor-locker/locker/internal/registryhook"
	"github.com/protoactor-locker/locker/lockeractor"
)

// extensionID is shared with server and fsm (internal/registryhook).
var extensionID = registryhook.ExtensionID

// extension is what New registers on an actor system: a holder of the
// running Registry, so that Stop and a later New can swap it.
type extension struct {
	current atomic.Pointer[Registry]
}

func (*extension) ExtensionID() extensions.ExtensionID { return extensionID }

// Registry is a cluster-wide name registry of one actor system, kept in
// its Locker's store. Its methods are safe for concurrent use; all of
// them return ErrNoRegistry on a nil Registry.
type Registry struct {
	l      *lockeractor.Locker
	system *actor.ActorSystem
	cfg    Config
	logger *slog.Logger
	ext    *extension
	clock  lockeractor.Clock             // cfg.Clock
	since  func(time.Time) time.Duration // clock.Since, or Now().Sub when it has none
	base   time.Time                     // origin of the monotonic nanoseconds in entry.ownedUntil (a clock reading)
	cache  *cache
	pid    *actor.PID // the registry actor: events, watches of named actors

	unwatch func()

	// mu guards owned, byPID, due and seq: the names this Registry holds
	// and renews. Register, Unregister, the renewal loop and the actor's
	// termination handling all touch them; none holds mu across a call
	// to the store.
	mu    sync.Mutex
	owned map[string]*hold
	byPID map[pidKey]map[string]*hold
	due   dueHeap
	seq   uint64

	wake chan struct{} // tells the renewal loop that due changed
	// life ends when the Registry stops (Stop cancels it): the renewal
	// loop watches it, and renewals in flight derive their contexts from
	// it, so that Stop cancels them.
	life     context.Context
	stopLife context.CancelFunc
	stopOnce sync.Once
	wg       sync.WaitGroup // the renewal loop and release goroutines
}

// hold is one name this Registry holds: it renews the lease until the
// name is unregistered, its actor stops or a renewal fails.
type hold struct {
	name, key string
	value     []byte
	pid       *actor.PID
	lease     time.Duration
	threshold time.Duration
	deadline  time.Time // end of the lease last obtained (Registry clock); guarded by Registry.mu
	token     uint64    // fencing token of the registration; guarded by Registry.mu
	seq       uint64    // which due item is current; guarded by Registry.mu
	linked    bool      // tied to pid's life (Commit called); guarded by Registry.mu
	entry     *entry
}

type pidKey struct{ address, id string }

func keyOf(pid *actor.PID) pidKey { return pidKey{pid.Address, pid.Id} }

// New starts a Registry on l's actor system and registers it as the
// system's extension (see Get). Call it during setup, after
// lockeractor.Start. If the system has a running Registry, New returns
// that one and ignores opts. A nil l or an invalid option is an
// *ArgumentError (errors.Is(err, ErrInvalidArgument)).
func New(l *lockeractor.Locker, opts ...Option) (*Registry, error) {
	if l == nil {
		return nil, &ArgumentError{Arg: "locker", Problem: "nil"}
	}
	system := l.System()
	cfg := DefaultConfig()
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	logger := l.Logger()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = l.Clock()
	}
	ext, _ := system.Extensions.Get(extensionID).(*extension)
	if ext == nil {
		ext = &extension{}
		system.Extensions.Register(ext)
	}
	if cur := ext.current.Load(); cur != nil {
		return cur, nil
	}
	r := &Registry{
		l: l, system: system, cfg: cfg, logger: logger, ext: ext, clock: cfg.Clock, base: cfg.Clock.Now(), cache: newCache(),
		owned: map[string]*hold{}, byPID: map[pidKey]map[string]*hold{},
		wake: make(chan struct{}, 1),
	}
	r.life, r.stopLife = context.WithCancel(context.Background())
	switch c := cfg.Clock.(type) {
	case interface{ Since(time.Time) time.Duration }:
		r.since = c.Since
	default:
		r.since = func(t time.Time) time.Duration { return c.Now().Sub(t) }
	}
	if !ext.current.CompareAndSwap(nil, r) {
		return ext.current.Load(), nil
	}
	r.pid = system.Root.SpawnPrefix(actor.PropsFromProducer(func() actor.Actor { return &registryActor{r: r, watched: map[pidKey]bool{}} }), "locker-registry")
	r.unwatch = l.Watch(cfg.KeyPrefix, r.onChange)
	r.wg.Add(1)
	go r.renewLoop()
	return r, nil
}

// Get returns the running Registry of system, or nil when none runs.
func Get(system *actor.ActorSystem) *Registry {
	if system == nil {
		return nil
	}
	ext, _ := system.Extensions.Get(extensionID).(*extension)
	if ext == nil {
		return nil
	}
	return ext.current.Load()
}

// Stop stops renewing names and watching the store, and stops the
// registry actor; the names it held expire with their leases (their
// actors keep running). Stop is idempotent. A Registry also stops by
// itself within a second of its Locker stopping.
func (r *Registry) Stop() {
	if r == nil {
		return
	}
	r.shutdown()
	r.wg.Wait()
}

func (r *Registry) shutdown() {
	r.stopOnce.Do(func() {
		r.stopLife()
		r.unwatch()
		r.ext.current.CompareAndSwap(r, nil)
		_ = r.system.Root.StopFuture(r.pid).Wait()
	})
}

func (r *Registry) stopped() bool {
	return r.life.Err() != nil
}

// Locker is the store the Registry keeps its names in.
func (r *Registry) Locker() *lockeractor.Locker {
	if r == nil {
		return nil
	}
	return r.l
}

// Key is the store key of name.
func (r *Registry) Key(name string) string {
	if r == nil {
		return name
	}
	return r.cfg.KeyPrefix + name
}

// Held returns how many names this Registry holds and renews.
func (r *Registry) Held() int {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.owned)
}

// nanotime is the Registry's monotonic clock, in nanoseconds since base.
func (r *Registry) nanotime() int64 {
	return int64(r.since(r.base))
}

// now reads the Registry's clock (Config.Clock).
func (r *Registry) now() time.Time { return r.clock.Now() }

func (r *Registry) mono(t time.Time) int64 { return int64(t.Sub(r.base)) }

func checkName(name string) error {
	if name == "" {
		return argError("name", "empty")
	}
	return nil
}

func checkPID(pid *actor.PID) error {
	switch {
	case pid == nil:
		return argError("pid", "nil")
	case pid.Id == "":
		return argError("pid", "empty id")
	case pid.Address == "" || strings.IndexByte(pid.Address, 0) >= 0:
		return argError("pid", "address %q is empty or holds a zero byte", pid.Address)
	case strings.IndexByte(pid.Id, 0) >= 0:
		return argError("pid", "id %q holds a zero byte", pid.Id)
	}
	return nil
}

// threshold is the renewal threshold Register uses for lease.
func (r *Registry) threshold(lease time.Duration) time.Duration {
	if lease > 2*r.cfg.LeaseThreshold {
		return r.cfg.LeaseThreshold
	}
	return lease / 4
}

// Register waits, within ctx, until its Locker is ready (see
// lockeractor.Locker.Ready), then registers name for pid across the
// cluster for lease, renewed
// by this Registry a threshold before it runs out (see
// Config.LeaseThreshold) for as long as pid runs: when pid stops, the name is
// released; when a renewal fails (no quorum before the lease ends,
// another value in the store), pid is stopped, since it no longer owns
// its name (a NameLost event is published). Register returns once a
// quorum holds the name. If another PID holds it, the error is an
// *AlreadyRegisteredError; registering the same name for the same PID
// again extends the lease and succeeds. Transient failures (another
// write of the name in progress, masters that do not answer or are
// changing configuration) are tried again, within ctx, for up to about 3 s of pauses; after that the last
// error is returned (errors.Is ErrNoQuorum or ErrUnreachable).
func (r *Registry) Register(ctx context.Context, name string, pid *actor.PID, lease time.Duration) error {
	if r == nil {
		return ErrNoRegistry
	}
	res, err := r.reserve(ctx, name, pid, lease, r.threshold(lease))
	if err != nil {
		return err
	}
	res.Commit()
	return nil
}

// reservation is a name registered for an actor that is about to be
// spawned: it is renewed like any other, but not yet tied to the actor's
// life. Commit ties it (the name is released when the actor stops);
// Cancel releases it.
type reservation struct {
	r *Registry
	h *hold
}

// reserve registers name for pid like Register, with an explicit
// renewal threshold, but does not tie the name to pid's life until
// Commit: pid need not run yet. This is how server.Spawn registers a
// name before the actor exists (through internal/registryhook), so that
// no actor ever runs under a name it does not hold.
func (r *Registry) reserve(ctx context.Context, name string, pid *actor.PID, lease, threshold time.Duration) (*reservation, error) {
	if r == nil {
		return nil, ErrNoRegistry
	}
	if ctx == nil {
		return nil, argError("ctx", "nil")
	}
	if err := checkName(name); err != nil {
		return nil, err
	}
	if err := checkPID(pid); err != nil {
		return nil, err
	}
	if err := r.checkLease(lease, threshold); err != nil {
		return nil, err
	}
	if r.stopped() {
		return nil, ErrNoRegistry
	}
	// A member that is not configured yet would only be refused
	// (lockeractor.ErrNotReady): wait for it within ctx.
	if err := r.l.Ready(ctx); err != nil {
		return nil, fmt.Errorf("registry: registering %q: %w", name, err)
	}
	h, err := r.acquire(ctx, name, pid, lease, threshold)
	if err != nil {
		return nil, err
	}
	return &reservation{r: r, h: h}, nil
}

// Commit ties the name to the actor's life: when it stops, the name is
// released. Commit is idempotent.
func (res *reservation) Commit() {
	r, h := res.r, res.h
	r.mu.Lock()
	live := r.owned[h.name] == h && !h.linked
	if live {
		h.linked = true
	}
	r.mu.Unlock()
	if live {
		r.system.Root.Send(r.pid, &watchPID{pid: h.pid})
	}
}

// Cancel releases the name if this reservation still holds it. A name
// the masters no longer hold for it (its lease ran out, it was taken)
// needs no release: Cancel returns nil.
func (res *reservation) Cancel(ctx context.Context) error {
	r, h := res.r, res.h
	r.mu.Lock()
	live := r.owned[h.name] == h
	if live {
		r.dropLocked(h)
	}
	r.mu.Unlock()
	if !live {
		return nil
	}
	if err := notRegistered(h.name, r.release(ctx, h)); !errors.Is(err, ErrNotRegistered) {
		return err
	}
	return nil
}

// acquire locks name for pid, or extends the lease if it already holds
// it, and starts renewing it.
func (r *Registry) acquire(ctx context.Context, name string, pid *actor.PID, lease, threshold time.Duration) (*hold, error) {
	key := r.cfg.KeyPrefix + name
	value := encodePID(pid)
	backoff := time.Millisecond
	var waited time.Duration // pauses between tries so far
	for {
		r.mu.Lock()
		cur := r.owned[name]
		r.mu.Unlock()
		if cur != nil && !cur.entry.matches(value) {
			return nil, &AlreadyRegisteredError{Name: name, Holder: cur.pid}
		}
		start := r.now()
		var res lockeractor.Result
		var err error
		if cur != nil {
			res, err = r.l.ExtendLease(ctx, key, value, lease)
		} else {
			res, err = r.l.Lock(ctx, key, value, lease)
		}
		if err == nil {
			return r.own(name, key, value, pid, lease, threshold, start, res.Token), nil
		}
		var qe *lockeractor.QuorumError
		switch {
		case errors.Is(err, lockeractor.ErrInvalidArgument):
			// The checks above pass, so the store refused the entry's
			// size: the name (with the PID) does not fit in a message.
			return nil, argError("name", "%d bytes do not fit in the store: %v", len(name), err)
		case !errors.As(err, &qe):
			return nil, fmt.Errorf("registry: registering %q: %w", name, err)
		}
		switch {
		case hasReason(qe, lockeractor.ReasonAlreadyLocked):
			holder, found, rerr := r.readHolder(ctx, key)
			if rerr != nil {
				err = fmt.Errorf("reading the holder: %w", rerr)
				if !errors.Is(rerr, lockeractor.ErrUnreachable) {
					return nil, fmt.Errorf("registry: registering %q: %w", name, err)
				}
				break // a master silent for now: try again
			}
			if found && string(holder) == string(value) {
				// Held for this very PID (a concurrent Register, or a
				// Registry before this one): extend it and hold it.
				start = r.now()
				if res, err := r.l.ExtendLease(ctx, key, value, lease); err == nil {
					return r.own(name, key, value, pid, lease, threshold, start, res.Token), nil
				}
			} else if found {
				return nil, &AlreadyRegisteredError{Name: name, Holder: decodePID(holder)}
			}
			// Released meanwhile, or the extension raced: try again.
		case qe.Committing:
			// Some masters may hold the name for pid: take it back, so that
			// it does not block the name for a lease.
			rctx, cancel := context.WithTimeout(context.Background(), r.cfg.ReleaseTimeout)
			_, _ = r.l.Release(rctx, key, value)
			cancel()
			return nil, fmt.Errorf("registry: registering %q: %w", name, err)
		case !passing(qe):
			return nil, fmt.Errorf("registry: registering %q: %w", name, err)
		}
		// Another write of the name is in progress, masters were silent
		// (a member restarted on its address is not heard at once, see
		// docs/protoactor.md) or are changing configuration: wait a
		// little and try again.
		if waited += backoff; waited > retryWindow {
			return nil, fmt.Errorf("registry: registering %q: %w", name, err)
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil, fmt.Errorf("registry: registering %q: %w", name, errors.Join(ctx.Err(), err))
		}
		backoff = min(2*backoff, maxRetryBackoff)
	}
}

// retryWindow bounds the pauses of a registration that retries
// transient failures (a write of the name in progress, masters that do
// not answer), within its context; maxRetryBackoff is the longest pause
// between two tries.
const (
	retryWindow     = 3 * time.Second
	maxRetryBackoff = 100 * time.Millisecond
)

// passing reports whether every peer that refused the write qe reports
// did so for a reason that passes by itself: a write of the key in
// progress, silence, or a configuration being changed or caught up with.
func passing(qe *lockeractor.QuorumError) bool {
	if len(qe.Peers) == 0 {
		return false
	}
	for _, reason := range qe.Peers {
		switch reason {
		case lockeractor.ReasonWriteLocked, lockeractor.ReasonUnreachable, lockeractor.ReasonStaleEpoch,
			lockeractor.ReasonNotMaster, lockeractor.ReasonCatchingUp, lockeractor.ReasonPromiseExpired,
			lockeractor.ReasonBallotTooLow:
		default:
			return false
		}
	}
	return true
}

func hasReason(qe *lockeractor.QuorumError, reason lockeractor.Reason) bool {
	for _, r := range qe.Peers {
		if r == reason {
			return true
		}
	}
	return false
}

// readHolder reads key here, or on a master when this peer lacks it.
func (r *Registry) readHolder(ctx context.Context, key string) ([]byte, bool, error) {
	if v, err := r.l.DirtyRead(key); err == nil {
		return v, true, nil
	}
	v, err := r.l.MasterDirtyRead(ctx, key)
	switch {
	case errors.Is(err, lockeractor.ErrNotFound):
		return nil, false, nil
	case err != nil:
		return nil, false, err
	}
	return v, true, nil
}

// own records a name this Registry now holds, with a lease obtained by
// a call started at start and the registration's fencing token.
func (r *Registry) own(name, key string, value []byte, pid *actor.PID, lease, threshold time.Duration, start time.Time, token uint64) *hold {
	e := r.cache.put(name, key, value, pid)
	h := &hold{name: name, key: key, value: e.value, pid: e.pid, lease: lease, threshold: threshold, token: token, entry: e}
	r.mu.Lock()
	if old := r.owned[name]; old != nil {
		h.linked = old.linked
		r.dropLocked(old)
	}
	r.owned[name] = h
	k := keyOf(h.pid)
	if r.byPID[k] == nil {
		r.byPID[k] = map[string]*hold{}
	}
	r.byPID[k][name] = h
	r.extendLocked(h, start.Add(lease))
	r.mu.Unlock()
	return h
}

// extendLocked records a new deadline for h and schedules its renewal.
func (r *Registry) extendLocked(h *hold, deadline time.Time) {
	h.deadline = deadline
	h.entry.ownedUntil.Store(r.mono(deadline))
	r.scheduleLocked(h, deadline.Add(-h.threshold))
}

func (r *Registry) scheduleLocked(h *hold, at time.Time) {
	r.seq++
	h.seq = r.seq
	first := r.due.Len() == 0 || at.Before(r.due[0].at)
	r.due.push(dueItem{at: at, h: h, seq: h.seq})
	if first {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

// dropLocked forgets h: no more renewals, WhereIs stops vouching for it.
func (r *Registry) dropLocked(h *hold) {
	if r.owned[h.name] == h {
		delete(r.owned, h.name)
	}
	k := keyOf(h.pid)
	if m := r.byPID[k]; m != nil && m[h.name] == h {
		delete(m, h.name)
		if len(m) == 0 {
			delete(r.byPID, k)
			if h.linked {
				r.system.Root.Send(r.pid, &unwatchPID{pid: h.pid})
			}
		}
	}
	h.seq = 0
	h.entry.ownedUntil.Store(0)
	// Events for the value that came while it was held here were not
	// allowed to drop it: check the store now.
	r.revalidate(h.name, h.entry)
}

// release takes h's name out of the store, retrying while another write
// of it (a renewal in flight) holds it.
func (r *Registry) release(ctx context.Context, h *hold) error {
	backoff := time.Millisecond
	for attempt := 0; ; attempt++ {
		_, err := r.l.Release(ctx, h.key, h.value)
		if err == nil {
			return nil
		}
		var qe *lockeractor.QuorumError
		if !errors.As(err, &qe) || !hasReason(qe, lockeractor.ReasonWriteLocked) || attempt >= 20 {
			return fmt.Errorf("registry: releasing %q: %w", h.name, err)
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return fmt.Errorf("registry: releasing %q: %w", h.name, ctx.Err())
		}
		if backoff < 50*time.Millisecond {
			backoff *= 2
		}
	}
}

// Unregister releases name. A name this Registry holds stops being
// renewed and is released; a name held through another node is released
// too (as Locker.Registry.unregister_name does), and its holder's next
// renewal then fails, which stops the holder. It returns an error
// wrapping ErrNotRegistered when nobody holds the name.
func (r *Registry) Unregister(ctx context.Context, name string) error {
	if r == nil {
		return ErrNoRegistry
	}
	if ctx == nil {
		return argError("ctx", "nil")
	}
	if err := checkName(name); err != nil {
		return err
	}
	r.mu.Lock()
	h := r.owned[name]
	if h != nil {
		r.dropLocked(h)
	}
	r.mu.Unlock()
	if h != nil {
		return notRegistered(name, r.release(ctx, h))
	}
	key := r.cfg.KeyPrefix + name
	v, found, err := r.readHolder(ctx, key)
	if err != nil {
		return fmt.Errorf("registry: unregistering %q: %w", name, err)
	}
	if !found {
		return fmt.Errorf("%w: %q", ErrNotRegistered, name)
	}
	return notRegistered(name, r.release(ctx, &hold{name: name, key: key, value: v}))
}

// notRegistered turns a release refused because the masters no longer
// hold the value (released, expired or taken meanwhile) into
// ErrNotRegistered.
func notRegistered(name string, err error) error {
	var qe *lockeractor.QuorumError
	if errors.As(err, &qe) && (hasReason(qe, lockeractor.ReasonNotFound) || hasReason(qe, lockeractor.ReasonValueDiffers)) {
		return fmt.Errorf("%w: %q (%v)", ErrNotRegistered, name, err)
	}
	return err
}

// WhereIs returns the PID registered under name as this node knows it,
// or nil when the name is unknown, released or expired here, or held on
// a member that departed (lockeractor.Locker.Departed). It asks
// nobody: on a replica it lags the masters by up to a replication
// interval. It never returns a name whose lease has ended on this node,
// not even before the store's expiry timer fires: a name this Registry
// holds is checked against the end of the lease it last obtained (on
// Config.Clock), any other against this node's store, which compares
// its own deadline on its own clock (Locker.DirtyRead). For a name seen
// before it is a map lookup and a clock reading (plus a store read for
// a name held elsewhere): no decoding, no allocation.
func (r *Registry) WhereIs(name string) *actor.PID {
	if r == nil {
		return nil
	}
	if e := r.cache.get(name); e != nil && r.live(e) {
		return e.pid
	}
	return r.whereIsSlow(name)
}

// live reports whether e's lease runs on this node: this Registry holds
// the name and the lease it last obtained has not ended, or this node's
// store holds e's value (it never returns a value past its lease) and
// the holder's member has not departed (lockeractor.Locker.Departed:
// the topology or the configuration dropped it).
func (r *Registry) live(e *entry) bool {
	if u := e.ownedUntil.Load(); u != 0 && r.nanotime() < u {
		return true
	}
	v, err := r.l.DirtyRead(e.key)
	return err == nil && e.matches(v) && !r.l.Departed(e.pid.Address)
}

// Lease is a name this Registry holds, as it last registered or renewed
// it.
type Lease struct {
	Name string
	PID  *actor.PID
	// Token is the registration's fencing token (lockeractor.Result.Token
	// of its Lock): strictly greater than the token of every earlier
	// registration of the name. Hand it to the resource the holder
	// writes to, and let the resource refuse smaller ones.
	Token uint64
	// Deadline is the end of the lease as this Registry counts it, on
	// Config.Clock, from the start of the call that obtained it; masters
	// hold the name at least that long. Past it the holder must not act
	// as the name's owner until a renewal moves it.
	Deadline time.Time
}

// Owned returns the lease of name if this Registry holds it (registered
// here and neither unregistered, nor stopped with its actor, nor lost).
func (r *Registry) Owned(name string) (Lease, bool) {
	if r == nil {
		return Lease{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.owned[name]
	if h == nil {
		return Lease{}, false
	}
	return Lease{Name: name, PID: h.pid, Token: h.token, Deadline: h.deadline}, true
}

// whereIsSlow reads and decodes name's value and remembers the result,
// for a name the watch has not reported (written before New).
func (r *Registry) whereIsSlow(name string) *actor.PID {
	if name == "" {
		return nil
	}
	key := r.cfg.KeyPrefix + name
	v, err := r.l.DirtyRead(key)
	if err != nil {
		return nil
	}
	pid := decodePID(v)
	if pid == nil || r.l.Departed(pid.Address) {
		return nil
	}
	e := r.cache.put(name, key, v, pid)
	// A release between the read and the put was reported before the
	// entry was there: look again.
	r.revalidate(name, e)
	return e.pid
}

// revalidate drops e if the store no longer holds its value and this
// Registry does not hold the name.
func (r *Registry) revalidate(name string, e *entry) {
	if v, err := r.l.DirtyRead(e.key); err != nil || !e.matches(v) {
		r.cache.drop(name, e.value, r.nanotime())
	}
}

// Send sends msg to the actor registered under name, as WhereIs finds
// it. It returns an error wrapping ErrNotRegistered when there is none.
func (r *Registry) Send(name string, msg any) error {
	if r == nil {
		return ErrNoRegistry
	}
	if err := checkName(name); err != nil {
		return err
	}
	pid := r.WhereIs(name)
	if pid == nil {
		return fmt.Errorf("%w: %q", ErrNotRegistered, name)
	}
	r.system.Root.Send(pid, msg)
	return nil
}

// Request sends msg to the actor registered under name and waits for its
// response until ctx ends (or Config.RequestTimeout when ctx has no
// deadline). It returns an error wrapping ErrNotRegistered at once when
// there is no such actor (none registered, or its member departed), one
// wrapping ErrRequestTimeout when no answer came in time (whether
// protoactor's future or ctx ran out), and protoactor's
// actor.ErrDeadLetter when the actor is gone.
func (r *Registry) Request(ctx context.Context, name string, msg any) (any, error) {
	if r == nil {
		return nil, ErrNoRegistry
	}
	if ctx == nil {
		return nil, argError("ctx", "nil")
	}
	if err := checkName(name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return wrapResult(name, nil, err)
	}
	pid := r.WhereIs(name)
	if pid == nil {
		return nil, fmt.Errorf("%w: %q", ErrNotRegistered, name)
	}
	timeout := r.cfg.RequestTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
		if timeout <= 0 {
			return wrapResult(name, nil, context.DeadlineExceeded)
		}
	}
	f := r.system.Root.RequestFuture(pid, msg, timeout)
	if ctx.Done() == nil {
		v, err := f.Result()
		return wrapResult(name, v, err)
	}
	type result struct {
		v   any
		err error
	}
	ch := make(chan result, 1)
	go func() { v, err := f.Result(); ch <- result{v, err} }()
	select {
	case res := <-ch:
		return wrapResult(name, res.v, res.err)
	case <-ctx.Done():
		return wrapResult(name, nil, ctx.Err())
	}
}

// wrapResult names the request in err; a timeout of any layer wraps
// ErrRequestTimeout too.
func wrapResult(name string, v any, err error) (any, error) {
	switch {
	case err == nil:
		return v, nil
	case errors.Is(err, actor.ErrTimeout) || errors.Is(err, context.DeadlineExceeded):
		return nil, fmt.Errorf("registry: request to %q: %w: %w", name, ErrRequestTimeout, err)
	}
	return nil, fmt.Errorf("registry: request to %q: %w", name, err)
}
