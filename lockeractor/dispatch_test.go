package lockeractor

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// goroutineID is the number runtime.Stack prints for the calling
// goroutine ("goroutine 42 [running]:").
func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	return string(bytes.Fields(buf)[1])
}

// testCtx ends with the test, or after a minute.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// waitClosed waits for ch to be closed, or fails the test when ctx ends.
func waitClosed(t *testing.T, ctx context.Context, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-ctx.Done():
		t.Fatalf("%s: %v", what, ctx.Err())
	}
}

// quietActorSystem is an actor system that logs nothing.
func quietActorSystem() *actor.ActorSystem {
	return actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
}

// The dispatcher runs every scheduled run on its one worker, in order,
// the way protoactor's mailbox schedules them (the next only after the
// previous has run), while they come more often than its idle time.
func TestPeerDispatcherRunsOnOneGoroutine(t *testing.T) {
	d := newPeerDispatcher(time.Hour)
	defer d.close()
	ids := map[string]int{}
	for i := range 100 {
		ran := make(chan string)
		d.Schedule(func() { ran <- goroutineID() })
		id := <-ran
		ids[id]++
		require.NotEqual(t, goroutineID(), id, "run %d ran on the caller", i)
	}
	require.Len(t, ids, 1, "runs on more than one goroutine: %v", ids)
}

// workerRunning reports whether d has a worker goroutine.
func (d *peerDispatcher) workerRunning() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.running
}

// waitWorkerEnded polls until d has no worker, or fails the test when
// ctx ends.
func waitWorkerEnded(t *testing.T, ctx context.Context, d *peerDispatcher, what string) {
	t.Helper()
	for d.workerRunning() {
		select {
		case <-ctx.Done():
			t.Fatalf("%s: the worker never ended: %v", what, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
}

// An idle worker ends, and the next run starts another.
func TestPeerDispatcherIdleWorkerEnds(t *testing.T) {
	ctx := testCtx(t)
	d := newPeerDispatcher(time.Millisecond)
	defer d.close()
	for i := range 3 {
		ran := make(chan struct{})
		d.Schedule(func() { close(ran) })
		waitClosed(t, ctx, ran, "a run")
		waitWorkerEnded(t, ctx, d, fmt.Sprintf("round %d, idle", i))
	}
}

// close does not wait (Stop may run on the worker), the worker still runs
// what was scheduled before it and then ends; a run scheduled after it
// still runs (a late system message to the stopped peer), on a goroutine
// of its own; close twice is fine.
func TestPeerDispatcherClose(t *testing.T) {
	ctx := testCtx(t)
	d := newPeerDispatcher(time.Hour)
	release, first, second := make(chan struct{}), make(chan struct{}), make(chan struct{})
	d.Schedule(func() { close(first); <-release })
	waitClosed(t, ctx, first, "the first run")
	d.Schedule(func() { close(second) }) // buffered while the first runs
	d.close()                            // returns while the first still runs
	require.True(t, d.workerRunning(), "the worker ended while a run was in progress")
	close(release)
	waitClosed(t, ctx, second, "the run buffered before close")
	waitWorkerEnded(t, ctx, d, "after close")

	late := make(chan struct{})
	d.Schedule(func() { close(late) })
	waitClosed(t, ctx, late, "a run scheduled after close")
	d.close()
}

// A stopped Locker leaves no dispatcher worker behind.
func TestStopEndsThePeerDispatcher(t *testing.T) {
	system := quietActorSystem()
	defer system.Shutdown()
	l, err := Start(system)
	require.NoError(t, err)
	_, err = l.Lock(context.Background(), "k", []byte("v"), time.Second)
	require.NoError(t, err)
	l.Stop()
	waitWorkerEnded(t, testCtx(t), l.dispatcher, "the peer's dispatcher after Stop")
}

// Stop called on the peer's own goroutine (a Watch callback, which must
// not block, but may) returns: it used to wait for the worker it ran on.
// StopFuture's own 10 s wait is the time it takes.
func TestStopFromAWatchCallbackReturns(t *testing.T) {
	ctx := testCtx(t)
	system := quietActorSystem()
	defer system.Shutdown()
	l, err := Start(system)
	require.NoError(t, err)
	returned := make(chan struct{})
	var once sync.Once
	l.Watch("k", func(Change) {
		once.Do(func() {
			l.Stop()
			close(returned)
		})
	})
	go func() { _, _ = l.Lock(context.Background(), "k", []byte("v"), time.Minute) }()
	waitClosed(t, ctx, returned, "Stop called from a Watch callback")
}

// An actor system shut down without Locker.Stop leaves no goroutine of
// the dispatcher behind once its peer is idle (protoactor's Shutdown does
// not stop actors; the default dispatcher kept no goroutine either).
func TestShutdownWithoutStopLeavesNoWorker(t *testing.T) {
	before := goleak.IgnoreCurrent()
	system := quietActorSystem()
	l, err := Start(system)
	require.NoError(t, err)
	_, err = l.Lock(context.Background(), "k", []byte("v"), time.Second)
	require.NoError(t, err)
	system.Shutdown()
	// goleak retries for under a second; the lease's end wakes the peer
	// once more, so keep asking until the test's context ends.
	ctx := testCtx(t)
	for {
		err := goleak.Find(before)
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("after Shutdown without Stop: %v", err)
		default:
		}
	}
}
