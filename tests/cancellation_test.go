package tests

// Contexts: every blocking call ends with its context, also against a peer
// that never answers.

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/protoactor-locker/locker/internal/testcluster"
	"github.com/protoactor-locker/locker/lockeractor"
)

// blackhole listens on 127.0.0.1 and accepts connections but never
// answers, so a peer at its address neither answers nor is known to be
// down. Closing it ends every accepted connection.
type blackhole struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	done  sync.WaitGroup
}

// newBlackhole starts a blackhole and closes it when t ends, before the
// clusters started earlier in t are stopped.
func newBlackhole(t *testing.T) *blackhole {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	b := &blackhole{ln: ln}
	b.done.Add(1)
	go func() {
		defer b.done.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns = append(b.conns, conn)
			b.mu.Unlock()
			b.done.Add(1)
			go func() { defer b.done.Done(); _, _ = io.Copy(io.Discard, conn) }()
		}
	}()
	t.Cleanup(b.close)
	return b
}

// Addr is the blackhole's "host:port".
func (b *blackhole) Addr() string { return b.ln.Addr().String() }

func (b *blackhole) close() {
	_ = b.ln.Close()
	b.mu.Lock()
	for _, c := range b.conns {
		_ = c.Close()
	}
	b.mu.Unlock()
	b.done.Wait()
}

// TestContextEndsWaitsAndWrites checks that WaitFor, WaitForRelease,
// Lock, SetNodes and MasterDirtyRead return an error wrapping ctx.Err()
// when their context ends first (cancelled, or past its deadline, or
// already over), and that the ended waits leave no waiter behind.
func TestContextEndsWaitsAndWrites(t *testing.T) {
	shutsNodesDown(t)
	c := startCluster(t, lockeractor.WithRequestTimeout(time.Hour), lockeractor.WithWriteLockTimeout(time.Hour+time.Second))
	hole := newBlackhole(t)
	ctx := testCtx(t)
	setNodes(t, c, A, []int{A, B, C}, []int{A, B}, []int{C})
	l := c.Peer(A)

	t.Run("WaitFor cancelled while blocked", func(t *testing.T) {
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { _, err := l.WaitFor(wctx, "never"); done <- err }()
		eventuallyWaiters(t, l, 1)
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
		require.Zero(t, l.Summary().Waiters)
	})
	t.Run("WaitForRelease past its deadline", func(t *testing.T) {
		_, err := l.Lock(ctx, "held", []byte("v"), longLease)
		require.NoError(t, err)
		wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		require.ErrorIs(t, l.WaitForRelease(wctx, "held"), context.DeadlineExceeded)
		require.Zero(t, l.Summary().Waiters)
	})
	t.Run("Lock with a context already cancelled", func(t *testing.T) {
		wctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := l.Lock(wctx, "not-tried", []byte("v"), longLease)
		require.ErrorIs(t, err, context.Canceled)
		requireAbsent(t, l, "not-tried")
		for _, call := range []func() error{
			func() error { _, err := l.WaitFor(wctx, "x"); return err },
			func() error { return l.WaitForRelease(wctx, "held") },
			func() error { _, err := l.Release(wctx, "held", []byte("v")); return err },
		} {
			require.ErrorIs(t, call(), context.Canceled)
		}
		requireValue(t, l, "held", "v")
	})
	t.Run("Lock waiting for a silent master", func(t *testing.T) {
		// The second master never answers; W = 2 needs it.
		require.NoError(t, c.Peer(A).SetNodes(ctx, c.Addrs(A), []string{c.Nodes[A].Addr, hole.Addr()}, nil))
		wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		// The request timeout is an hour: a Lock that waited for it
		// instead of ctx would not return within the minute.
		errc := make(chan error, 1)
		go func() { _, err := l.Lock(wctx, "silent", []byte("v"), longLease); errc <- err }()
		var err error
		testcluster.Eventually(t, time.Minute, func() bool {
			select {
			case err = <-errc:
				return true
			default:
				return false
			}
		}, "the Lock returns when ctx ends")
		require.ErrorIs(t, err, context.DeadlineExceeded, "returned when ctx ended")
		var qe *lockeractor.QuorumError
		require.False(t, errors.As(err, &qe), "returned when ctx ended, not at the request timeout: %v", err)
	})
	t.Run("SetNodes waiting for a silent peer", func(t *testing.T) {
		wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		err := l.SetNodes(wctx, []string{hole.Addr()}, c.Addrs(A, B), nil)
		require.ErrorIs(t, err, context.DeadlineExceeded)
	})
	t.Run("MasterDirtyRead waiting for a silent master", func(t *testing.T) {
		// C is a replica whose only master never answers.
		require.NoError(t, c.Peer(A).SetW(ctx, c.Addrs(A, C), 1))
		require.NoError(t, c.Peer(A).SetNodes(ctx, c.Addrs(C), []string{hole.Addr()}, c.Addrs(C)))
		wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		_, err := c.Peer(C).MasterDirtyRead(wctx, "held")
		require.ErrorIs(t, err, context.DeadlineExceeded)
	})
}
