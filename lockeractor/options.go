package lockeractor

import (
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/cluster"

	"github.com/protoactor-locker/locker/internal/core"
	"github.com/protoactor-locker/locker/internal/faulthook"
	"github.com/protoactor-locker/locker/internal/membership"
)

// Clock tells the time; Locker reads leases from its monotonic reading
// and fencing tokens from its wall reading. Tests inject a fake one.
type Clock = core.Clock

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Since reads the monotonic clock only, cheaper than Now (core.SinceClock).
func (systemClock) Since(t time.Time) time.Duration { return time.Since(t) }

// Config is what a Locker is started with. Build it with options.
type Config struct {
	// W is the write quorum before any SetNodes/SetW (default 1).
	W int
	// ReplicationInterval is how often masters push changes to replicas
	// (default 100 ms).
	ReplicationInterval time.Duration
	// WriteLockTimeout is how long a promise holds a key if no commit
	// follows; it must be longer than RequestTimeout. The default, 0,
	// follows RequestTimeout: 2 s, or twice RequestTimeout when that is
	// longer, so that any valid RequestTimeout works alone.
	WriteLockTimeout time.Duration
	// RequestTimeout bounds how long a write or admin call waits for
	// peers that do not answer (default 1 s).
	RequestTimeout time.Duration
	// MaxLease is the longest lease Lock, ExtendLease and Batch accept
	// and a master promises and commits (default DefaultMaxLease, an
	// hour; at most MaxLeaseLimit). It must be the same on every peer: a
	// master restarted with empty memory that cannot copy the leases of
	// the others (when W or more masters restart at once) votes again
	// once MaxLease + WriteLockTimeout + RequestTimeout, plus 2 % of that
	// for clock drift, has passed since it started, when every lease it
	// granted before has ended. A longer MaxLease (or longer timeouts)
	// makes that recovery slower.
	MaxLease time.Duration
	// MaxMessageBytes bounds every message a peer sends (default 3 KiB),
	// so that protoactor remote's batches of up to 1000 messages stay under
	// gRPC's 4 MiB frame limit. A key with its values must fit in it.
	// Raise it only together with RemoteOptions on every member.
	MaxMessageBytes int
	// Clock is the time source (default the system clock).
	Clock Clock
	// Logger receives the Locker's logs, and those of the registry on
	// it (default nil: the actor system's logger, system.Logger(), as
	// protoactor's own components log). Set it to keep Locker's logs
	// while the actor system's logger is silenced, or to silence them.
	Logger *slog.Logger
	// Cluster, when set, runs the Locker in cluster mode: masters and
	// replicas follow this protoactor cluster's topology (see WithCluster).
	Cluster *cluster.Cluster
	// Masters is how many masters cluster mode wants (default 3; all
	// members when fewer).
	Masters int
	// BootstrapDelay is how long, in cluster mode, a never-configured
	// member waits for a stable topology before the cluster is first
	// configured (default 2 s).
	BootstrapDelay time.Duration
	// ExpectedMembers, when positive, is how many members cluster mode
	// expects: a never-configured cluster is configured as soon as that
	// many members are seen, without waiting for BootstrapDelay (default
	// 0: wait for a stable topology).
	ExpectedMembers int

	// injector, when set, injects faults into this peer's traffic and
	// processing (lockertest.WithFaults).
	injector faulthook.Injector
}

// Option changes a Config.
type Option func(*Config)

// DefaultConfig returns the defaults described on Config.
func DefaultConfig() Config {
	return Config{
		W:                   1,
		ReplicationInterval: 100 * time.Millisecond,
		RequestTimeout:      time.Second,
		MaxLease:            DefaultMaxLease,
		MaxMessageBytes:     3 << 10,
		Clock:               systemClock{},
		Masters:             membership.DefaultMasters,
		BootstrapDelay:      2 * time.Second,
	}
}

// WithW sets the write quorum the peer starts with, before any masters
// are known (locker's start_link(W)).
func WithW(w int) Option { return func(c *Config) { c.W = w } }

// WithReplicationInterval sets how often masters push to replicas.
func WithReplicationInterval(d time.Duration) Option {
	return func(c *Config) { c.ReplicationInterval = d }
}

// WithWriteLockTimeout sets how long an uncommitted promise holds a key.
func WithWriteLockTimeout(d time.Duration) Option { return func(c *Config) { c.WriteLockTimeout = d } }

// WithRequestTimeout sets how long a call waits for silent peers.
func WithRequestTimeout(d time.Duration) Option { return func(c *Config) { c.RequestTimeout = d } }

// WithMaxLease sets the longest lease this peer accepts and commits
// (Config.MaxLease); give every peer the same.
func WithMaxLease(d time.Duration) Option { return func(c *Config) { c.MaxLease = d } }

// WithMaxMessageBytes sets the size bound of every message a peer sends.
func WithMaxMessageBytes(n int) Option { return func(c *Config) { c.MaxMessageBytes = n } }

// WithLogger sets the logger of the Locker's logs (Config.Logger):
// protoactor's logs go to the actor system's logger, Locker's to l. A nil
// l silences Locker's logs.
func WithLogger(l *slog.Logger) Option {
	return func(c *Config) {
		if l == nil {
			l = slog.New(slog.DiscardHandler)
		}
		c.Logger = l
	}
}

// WithClock sets the time source.
func WithClock(clock Clock) Option { return func(c *Config) { c.Clock = clock } }

// resolve fills in the defaults that follow other settings.
func (c *Config) resolve() {
	if c.WriteLockTimeout == 0 {
		c.WriteLockTimeout = max(2*time.Second, 2*c.RequestTimeout)
	}
}

func (c Config) validate() error {
	switch {
	case c.W < 1:
		return invalid("W = %d is less than 1", c.W)
	case c.ReplicationInterval <= 0:
		return invalid("replication interval %v is not positive", c.ReplicationInterval)
	case c.RequestTimeout <= 0:
		return invalid("request timeout %v is not positive", c.RequestTimeout)
	case c.WriteLockTimeout <= c.RequestTimeout:
		return invalid("write lock timeout %v must be longer than the request timeout %v", c.WriteLockTimeout, c.RequestTimeout)
	case c.MaxLease < time.Millisecond:
		return invalid("max lease %v is shorter than a millisecond", c.MaxLease)
	case c.MaxLease > MaxLeaseLimit:
		return invalid("max lease %v is longer than MaxLeaseLimit (%v)", c.MaxLease, MaxLeaseLimit)
	case c.MaxMessageBytes < 512:
		return invalid("max message size %d is less than 512 bytes", c.MaxMessageBytes)
	case c.Clock == nil:
		return invalid("clock is nil")
	case c.Masters < 1:
		return invalid("masters = %d is less than 1", c.Masters)
	case c.BootstrapDelay < 0:
		return invalid("bootstrap delay %v is negative", c.BootstrapDelay)
	case c.ExpectedMembers < 0:
		return invalid("expected members = %d is negative", c.ExpectedMembers)
	}
	return nil
}
