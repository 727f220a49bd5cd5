package tests

// Bad input: every call rejects nonsense with ErrInvalidArgument.

import (
	"context"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"

	"github.com/protoactor-locker/locker/internal/testcluster"
	"github.com/protoactor-locker/locker/lockeractor"
)

// TestInvalidArgumentsAreRejected checks that nonsense input is
// ErrInvalidArgument with a message naming the problem, is never a
// panic, and changes no peer's configuration.
func TestInvalidArgumentsAreRejected(t *testing.T) {
	c := startCluster(t)
	ctx := testCtx(t)
	setNodes(t, c, A, []int{A, B, C}, []int{A, B, C}, nil)
	l := c.Peer(A)
	all := c.Addrs(A, B, C)
	v := []byte("v")
	var nilCtx context.Context // a nil context, as a careless caller passes it

	cases := []struct {
		name string
		want string // part of the message
		call func() error
	}{
		{"Lock empty key", "empty key", func() error { _, err := l.Lock(ctx, "", v, time.Second); return err }},
		{"Update empty key", "empty key", func() error { _, err := l.Update(ctx, "", v, v); return err }},
		{"ExtendLease empty key", "empty key", func() error { _, err := l.ExtendLease(ctx, "", v, time.Second); return err }},
		{"Release empty key", "empty key", func() error { _, err := l.Release(ctx, "", v); return err }},
		{"WaitFor empty key", "empty key", func() error { _, err := l.WaitFor(ctx, ""); return err }},
		{"WaitForRelease empty key", "empty key", func() error { return l.WaitForRelease(ctx, "") }},
		{"MasterDirtyRead empty key", "empty key", func() error { _, err := l.MasterDirtyRead(ctx, ""); return err }},
		{"Batch empty key", "empty key", func() error {
			_, err := l.Batch(ctx, []lockeractor.Op{{Kind: lockeractor.OpLock, Key: "", Value: v, Lease: time.Second}})
			return err
		}},
		{"Batch unknown kind", "kind", func() error {
			_, err := l.Batch(ctx, []lockeractor.Op{{Kind: 99, Key: "k", Value: v, Lease: time.Second}})
			return err
		}},
		{"Lock zero lease", "lease", func() error { _, err := l.Lock(ctx, "k", v, 0); return err }},
		{"Lock negative lease", "lease", func() error { _, err := l.Lock(ctx, "k", v, -time.Second); return err }},
		{"ExtendLease zero lease", "lease", func() error { _, err := l.ExtendLease(ctx, "k", v, 0); return err }},
		{"ExtendLease negative lease", "lease", func() error { _, err := l.ExtendLease(ctx, "k", v, -1); return err }},
		{"Lock nil ctx", "nil context", func() error { _, err := l.Lock(nilCtx, "k", v, time.Second); return err }},
		{"Update nil ctx", "nil context", func() error { _, err := l.Update(nilCtx, "k", v, v); return err }},
		{"ExtendLease nil ctx", "nil context", func() error { _, err := l.ExtendLease(nilCtx, "k", v, time.Second); return err }},
		{"Release nil ctx", "nil context", func() error { _, err := l.Release(nilCtx, "k", v); return err }},
		{"Batch nil ctx", "nil context", func() error { _, err := l.Batch(nilCtx, nil); return err }},
		{"WaitFor nil ctx", "nil context", func() error { _, err := l.WaitFor(nilCtx, "k"); return err }},
		{"WaitForRelease nil ctx", "nil context", func() error { return l.WaitForRelease(nilCtx, "k") }},
		{"MasterDirtyRead nil ctx", "nil context", func() error { _, err := l.MasterDirtyRead(nilCtx, "k"); return err }},
		{"SetNodes nil ctx", "nil context", func() error { return l.SetNodes(nilCtx, all, all, nil) }},
		{"SetW nil ctx", "nil context", func() error { return l.SetW(nilCtx, all, 2) }},
		{"Lag nil ctx", "nil context", func() error { _, err := l.Lag(nilCtx); return err }},
		{"SetW zero", "W = 0", func() error { return l.SetW(ctx, all, 0) }},
		{"SetW negative", "W = -1", func() error { return l.SetW(ctx, all, -1) }},
		{"SetW above the masters", "W = 4", func() error { return l.SetW(ctx, all, 4) }},
		{"SetNodes fewer masters than W", "W = 2", func() error { return l.SetNodes(ctx, all, c.Addrs(A), nil) }},
		{"SetNodes no masters", "no masters", func() error { return l.SetNodes(ctx, all, nil, all) }},
		{"SetNodes master also replica", "both a master and a replica", func() error {
			return l.SetNodes(ctx, all, all, c.Addrs(C))
		}},
		{"SetNodes malformed master", "nohost", func() error { return l.SetNodes(ctx, all, []string{"nohost", all[1], all[2]}, nil) }},
		{"SetNodes malformed replica", "nohost", func() error { return l.SetNodes(ctx, all, all, []string{"nohost"}) }},
		{"SetNodes malformed cluster", "nohost", func() error { return l.SetNodes(ctx, []string{"nohost"}, all, nil) }},
		{"SetW malformed cluster", "nohost", func() error { return l.SetW(ctx, []string{"nohost"}, 2) }},
		{"SetNodes port out of range", "99999", func() error {
			return l.SetNodes(ctx, all, []string{"127.0.0.1:99999", all[1], all[2]}, nil)
		}},
		{"SetNodes empty cluster", "empty cluster", func() error { return l.SetNodes(ctx, nil, all, nil) }},
		{"SetW empty cluster", "empty cluster", func() error { return l.SetW(ctx, []string{}, 2) }},
		{"Start WithW(0)", "W = 0", func() error {
			sys := actor.NewActorSystem(testcluster.Quiet()...)
			defer sys.Shutdown()
			_, err := lockeractor.Start(sys, lockeractor.WithW(0))
			return err
		}},
		{"Start nil system", "nil", func() error { _, err := lockeractor.Start(nil); return err }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			require.NotPanics(t, func() { err = tc.call() })
			require.ErrorIs(t, err, lockeractor.ErrInvalidArgument)
			require.Contains(t, err.Error(), tc.want)
		})
	}
	for i := range c.Nodes {
		requireNodes(t, c.Peer(i), addrs(c, A, B, C), nil, 2)
		eventuallySummary(t, c.Peer(i), 0, 0)
	}
}
