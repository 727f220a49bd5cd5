package registry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/protoactor-locker/locker/internal/registrytest"
	"github.com/protoactor-locker/locker/internal/testcluster"
	"github.com/protoactor-locker/locker/lockeractor"
	"github.com/protoactor-locker/locker/registry"
	"github.com/protoactor-locker/locker/server"
)

// typed reports whether err is one of the registry's sentinels.
func typed(err error) bool {
	for _, s := range []error{registry.ErrNotRegistered, registry.ErrAlreadyRegistered, registry.ErrInvalidArgument, registry.ErrNoRegistry} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// FuzzRegistryNames feeds arbitrary names, leases and thresholds to the
// public calls of a single-system Registry (Register, Reserve, WhereIs,
// Send, Unregister) and to server.Spawn's options: nothing panics, every
// error is one of the package's sentinels (ErrInvalidArgument exactly
// when the input is nonsense), and a registered name resolves to its
// PID until it is unregistered.
//
// The Locker's clock (which the Registry counts leases on) is a
// ManualClock that never moves, so no lease ends and no renewal runs
// while an input is checked, however slowly the machine runs: the
// checks hold for every lease the calls accept, not only for leases
// long enough to outlast a stall. Each input gets its own actor: a
// Registry stops the actor whose name it loses (as documented), and an
// actor stopped by an earlier input would make every later Register
// release its name at once (the Registry is told the actor is gone).
func FuzzRegistryNames(f *testing.F) {
	for _, seed := range []struct {
		name             string
		lease, threshold int64
	}{
		{"billing", int64(time.Second), int64(100 * time.Millisecond)},
		{"", int64(time.Second), int64(100 * time.Millisecond)},
		{"a\x00b", int64(time.Minute), int64(time.Second)},
		{"x", 0, 0},
		{"x", -1, 1},
		{"x", int64(time.Millisecond), int64(time.Millisecond)},
		{"x", 1<<63 - 1, 1},
		{"name/with/slashes", int64(2 * time.Second), int64(time.Second)},
	} {
		f.Add(seed.name, seed.lease, seed.threshold)
	}
	clk := testcluster.NewManualClock(time.Now())
	// No renew window: a renewal is due only a threshold (shorter than
	// the lease) before the lease ends, which the still clock never
	// reaches.
	sys, r := registrytest.SingleWith(f, []lockeractor.Option{lockeractor.WithClock(clk)}, registry.WithRenewWindow(0))
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, name string, leaseNs, thresholdNs int64) {
		pid := sys.Root.Spawn(echoProps())
		defer sys.Root.Stop(pid)
		lease, threshold := time.Duration(leaseNs), time.Duration(thresholdNs)
		check := func(what string, err error) {
			t.Helper()
			if err != nil && !typed(err) {
				t.Fatalf("%s(%q, %v, %v): untyped error %v", what, name, lease, threshold, err)
			}
		}
		badLease := registry.CheckLease(r, lease, threshold) != nil

		// WhereIs and Send of a name nobody holds.
		if got := r.WhereIs(name); got != nil {
			t.Fatalf("WhereIs(%q) = %v before any registration", name, got)
		}
		check("Send", r.Send(name, "x"))

		// Register: the renewal threshold is the Registry's.
		err := r.Register(ctx, name, pid, lease)
		check("Register", err)
		if invalid := name == "" || lease < time.Millisecond; invalid && !errors.Is(err, registry.ErrInvalidArgument) {
			t.Fatalf("Register(%q, %v) = %v, want ErrInvalidArgument", name, lease, err)
		}
		if err == nil {
			if !pid.Equal(r.WhereIs(name)) {
				t.Fatalf("Register(%q, %v) succeeded but WhereIs = %v", name, lease, r.WhereIs(name))
			}
			if l, ok := r.Owned(name); !ok || !pid.Equal(l.PID) || l.Token == 0 {
				t.Fatalf("Owned(%q) = %+v, %v after Register", name, l, ok)
			}
			check("Unregister", r.Unregister(ctx, name))
			if got := r.WhereIs(name); got != nil {
				t.Fatalf("WhereIs(%q) = %v after Unregister", name, got)
			}
		}

		// Reserve with the fuzzed threshold, then Cancel.
		res, err := registry.Reserve(r, ctx, name, pid, lease, threshold)
		check("Reserve", err)
		if (name == "" || badLease) && !errors.Is(err, registry.ErrInvalidArgument) {
			t.Fatalf("Reserve(%q, %v, %v) = %v, want ErrInvalidArgument", name, lease, threshold, err)
		}
		if err == nil {
			check("Cancel", res.Cancel(ctx))
		}
		err = r.Unregister(ctx, name)
		check("Unregister", err)
		// The clock stands still: no renewal can be in flight when Cancel
		// runs, to extend the lease once more.
		if err == nil && !badLease {
			t.Fatalf("Unregister(%q) of a released name succeeded", name)
		}

		// server.Spawn: without a threshold it uses the Registry's rule,
		// which suits every valid lease; a bad lease or threshold is
		// refused before anything is spawned.
		spawnThreshold := threshold
		if spawnThreshold == 0 && lease > 0 {
			spawnThreshold = registry.Threshold(r, lease)
		}
		spawnBad := name == "" || registry.CheckLease(r, lease, spawnThreshold) != nil
		spid, err := server.Spawn(sys.Root, name, echoProps(),
			server.WithLeaseLength(lease), server.WithLeaseThreshold(threshold), server.WithRequestTimeout(5*time.Second))
		check("server.Spawn", err)
		if spawnBad && !errors.Is(err, registry.ErrInvalidArgument) {
			t.Fatalf("server.Spawn(%q, %v, %v) = %v, want ErrInvalidArgument", name, lease, threshold, err)
		}
		if err == nil {
			if !spid.Equal(r.WhereIs(name)) {
				t.Fatalf("server.Spawn(%q) = %v but WhereIs = %v", name, spid, r.WhereIs(name))
			}
			if err := r.Unregister(ctx, name); err != nil {
				t.Fatalf("Unregister(%q) of a spawned server: %v", name, err)
			}
			_ = sys.Root.StopFuture(spid).Wait()
		}
	})
}
