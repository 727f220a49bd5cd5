package registry

import (
	"strings"
	"time"

	"github.com/protoactor-locker/locker/lockeractor"
)

// Config is what a Registry is created with. Build it with options.
type Config struct {
	// KeyPrefix is put before every name to make its store key (default
	// "registry/"). Registries that share a store must agree on it.
	KeyPrefix string
	// LeaseThreshold is how long before expiry Register renews a lease
	// (default 500 ms). A lease not longer than twice the threshold is
	// renewed a quarter of its length before expiry instead.
	LeaseThreshold time.Duration
	// RenewWindow is how far ahead of its renewal time a lease is renewed
	// together with one that is due (default 100 ms): leases due within
	// the window share one Batch.
	RenewWindow time.Duration
	// MaxBatch bounds the operations of one Batch call (default 20,000);
	// more renewals due at once take several calls.
	MaxBatch int
	// RequestTimeout bounds Request when its context has no deadline
	// (default 5 s).
	RequestTimeout time.Duration
	// ReleaseTimeout bounds the release of the names of an actor that
	// stopped (default 5 s).
	ReleaseTimeout time.Duration
	// Clock is the time source of leases and renewals (default nil: the
	// clock its Locker was started with, Locker.Clock, so that both count
	// a lease alike).
	Clock lockeractor.Clock
}

// Option changes a Config.
type Option func(*Config)

// DefaultConfig returns the defaults described on Config.
func DefaultConfig() Config {
	return Config{
		KeyPrefix:      "registry/",
		LeaseThreshold: 500 * time.Millisecond,
		RenewWindow:    100 * time.Millisecond,
		MaxBatch:       20000,
		RequestTimeout: 5 * time.Second,
		ReleaseTimeout: 5 * time.Second,
	}
}

// WithClock sets the time source of leases and renewals, instead of the
// Locker's (Locker.Clock). Leases are then counted on two clocks: give it
// only a clock that runs with the Locker's.
func WithClock(c lockeractor.Clock) Option { return func(cfg *Config) { cfg.Clock = c } }

// WithKeyPrefix sets the prefix of the store keys of names.
func WithKeyPrefix(p string) Option { return func(c *Config) { c.KeyPrefix = p } }

// WithLeaseThreshold sets how long before expiry Register renews a lease
// (Config.LeaseThreshold).
func WithLeaseThreshold(d time.Duration) Option { return func(c *Config) { c.LeaseThreshold = d } }

// WithThreshold is WithLeaseThreshold.
//
// Deprecated: use WithLeaseThreshold, the name package server uses too.
func WithThreshold(d time.Duration) Option { return WithLeaseThreshold(d) }

// WithRenewWindow sets how far ahead leases are renewed together.
func WithRenewWindow(d time.Duration) Option { return func(c *Config) { c.RenewWindow = d } }

// WithMaxBatch bounds the operations of one Batch call.
func WithMaxBatch(n int) Option { return func(c *Config) { c.MaxBatch = n } }

// WithRequestTimeout sets how long Request waits for the answer when
// its context has no deadline (Config.RequestTimeout).
func WithRequestTimeout(d time.Duration) Option { return func(c *Config) { c.RequestTimeout = d } }

// WithReleaseTimeout bounds the release of a stopped actor's names.
func WithReleaseTimeout(d time.Duration) Option { return func(c *Config) { c.ReleaseTimeout = d } }

func (c Config) validate() error {
	switch {
	case c.KeyPrefix == "" || strings.IndexByte(c.KeyPrefix, 0) >= 0:
		return argError("key prefix", "%q is empty or holds a zero byte", c.KeyPrefix)
	case c.LeaseThreshold <= 0:
		return argError("lease threshold", "%v is not positive", c.LeaseThreshold)
	case c.RenewWindow < 0:
		return argError("renew window", "%v is negative", c.RenewWindow)
	case c.MaxBatch < 1:
		return argError("max batch", "%d is less than 1", c.MaxBatch)
	case c.RequestTimeout <= 0:
		return argError("request timeout", "%v is not positive", c.RequestTimeout)
	case c.ReleaseTimeout <= 0:
		return argError("release timeout", "%v is not positive", c.ReleaseTimeout)
	}
	return nil
}
