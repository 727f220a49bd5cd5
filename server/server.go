package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/protoactor-locker/locker/internal/registryhook"
	"github.com/protoactor-locker/locker/registry"
)

// Defaults of the options, as Locker.Server's. The renewal threshold
// follows the lease (see Config.LeaseThreshold).
const (
	DefaultLeaseLength    = 5 * time.Second
	DefaultRequestTimeout = 10 * time.Second
)

// Config is how Spawn registers an actor. Build it with options.
type Config struct {
	// LeaseLength is how long each registration or renewal holds the
	// name (default 5 s).
	LeaseLength time.Duration
	// LeaseThreshold is how long before the lease runs out it is renewed;
	// when set, it must be positive and shorter than LeaseLength. The
	// default, 0, follows the lease as the Registry's Register does: the
	// Registry's LeaseThreshold (registry.WithLeaseThreshold, 500 ms by
	// default) for a lease longer than twice that, a quarter of the lease
	// otherwise.
	LeaseThreshold time.Duration
	// Context bounds the registration (default: none beyond
	// RequestTimeout).
	Context context.Context
	// RequestTimeout is how long Spawn waits for the name's registration
	// (default 10 s).
	RequestTimeout time.Duration
}

// Option changes a Config.
type Option func(*Config)

// WithLeaseLength sets how long a lease holds the name (default 5 s).
func WithLeaseLength(d time.Duration) Option { return func(c *Config) { c.LeaseLength = d } }

// WithLeaseThreshold sets how long before expiry the lease is renewed
// (default: it follows the lease, see Config.LeaseThreshold).
func WithLeaseThreshold(d time.Duration) Option { return func(c *Config) { c.LeaseThreshold = d } }

// WithContext makes ctx bound the registration: Spawn gives up when ctx
// ends.
func WithContext(ctx context.Context) Option { return func(c *Config) { c.Context = ctx } }

// WithRequestTimeout sets how long Spawn waits for the name's
// registration (default 10 s).
func WithRequestTimeout(d time.Duration) Option { return func(c *Config) { c.RequestTimeout = d } }

// WithTimeout is WithRequestTimeout.
//
// Deprecated: use WithRequestTimeout, the name packages lockeractor and
// registry use too.
func WithTimeout(d time.Duration) Option { return WithRequestTimeout(d) }

// DefaultConfig returns the defaults described on Config.
func DefaultConfig() Config {
	return Config{
		LeaseLength: DefaultLeaseLength,
		Context:     context.Background(), RequestTimeout: DefaultRequestTimeout,
	}
}

// configure applies opts to the defaults and validates what needs no
// Registry: the error is a *registry.ArgumentError (errors.Is(err,
// registry.ErrInvalidArgument)). Spawn checks the lease against the
// Registry's Locker before it reserves the name or spawns anything.
func configure(opts ...Option) (Config, error) {
	c := DefaultConfig()
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.Context == nil {
		return c, &registry.ArgumentError{Arg: "context", Problem: "nil"}
	}
	if c.RequestTimeout <= 0 {
		return c, &registry.ArgumentError{Arg: "request timeout", Problem: fmt.Sprintf("%v is not positive", c.RequestTimeout)}
	}
	if c.LeaseLength <= 0 {
		return c, &registry.ArgumentError{Arg: "lease", Problem: fmt.Sprintf("%v is not positive", c.LeaseLength)}
	}
	if c.LeaseThreshold < 0 {
		return c, &registry.ArgumentError{Arg: "threshold", Problem: fmt.Sprintf("%v is negative", c.LeaseThreshold)}
	}
	return c, nil
}

// Spawn spawns props as a child of parent (an actor's context, so that
// the actor stops with its parent, as start_link; or system.Root, as
// start) and registers it under name in the Registry of parent's actor
// system (registry.Get), with a lease renewed for as long as it runs.
//
// The name is registered with a quorum before the actor is spawned, for
// the PID it is about to get; Spawn returns once both happened, so
// WhereIs(name) on this node returns the PID at once. No actor ever runs
// under a name it does not hold: if the name is taken, Spawn returns an
// *registry.AlreadyRegisteredError with the holder and spawns nothing.
//
// The name is released when the actor stops (stop, poison, its parent
// stopping, its supervisor giving up); a restart by its supervisor keeps
// the PID and the name. If a renewal fails, the actor is stopped.
func Spawn(parent actor.SpawnerContext, name string, props *actor.Props, opts ...Option) (*actor.PID, error) {
	cfg, err := configure(opts...)
	if err != nil {
		return nil, err
	}
	if parent == nil {
		return nil, &registry.ArgumentError{Arg: "parent", Problem: "nil"}
	}
	if props == nil {
		return nil, &registry.ArgumentError{Arg: "props", Problem: "nil"}
	}
	if name == "" {
		return nil, &registry.ArgumentError{Arg: "name", Problem: "empty"}
	}
	system := parent.ActorSystem()
	r := registryhook.Get(system)
	if r == nil {
		return nil, fmt.Errorf("server: spawning %q: %w", name, registry.ErrNoRegistry)
	}
	threshold := cfg.LeaseThreshold
	if threshold == 0 {
		threshold = r.Threshold(cfg.LeaseLength)
	}
	// The lease against this Registry's Locker's MaxLease.
	if err := r.CheckLease(cfg.LeaseLength, threshold); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(cfg.Context, cfg.RequestTimeout)
	defer cancel()

	// The PID the actor will get: protoactor names a child
	// "<parent id>/<id>" and a root actor "<id>".
	id := system.ProcessRegistry.NextId()
	full := id
	if _, root := parent.(*actor.RootContext); !root && parent.Self() != nil {
		full = parent.Self().Id + "/" + id
	}
	want := actor.NewPID(system.Address(), full)

	res, err := r.Reserve(ctx, name, want, cfg.LeaseLength, threshold)
	if err != nil {
		return nil, err
	}
	pid, err := parent.SpawnNamed(props, id)
	if err == nil && !pid.Equal(want) {
		// A spawner that names actors its own way: the name would point
		// elsewhere. Undo.
		system.Root.Stop(pid)
		err = fmt.Errorf("spawned %s, not the PID %s the name was registered for", pid, want)
	}
	if err != nil {
		if cerr := res.Cancel(ctx); cerr != nil {
			// The name stays reserved until its lease ends: say so.
			err = errors.Join(err, fmt.Errorf("releasing the reservation: %w", cerr))
		}
		return nil, fmt.Errorf("server: spawning %q: %w", name, err)
	}
	res.Commit()
	return pid, nil
}
