package lockeractor

import (
	"bytes"
	"context"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"
)

// goroutineID is the number runtime.Stack prints for the calling
// goroutine ("goroutine 42 [running]:").
func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	return string(bytes.Fields(buf)[1])
}

// The dispatcher runs every scheduled run on its one worker, in order,
// the way protoactor's mailbox schedules them (the next only after the
// previous has run).
func TestPeerDispatcherRunsOnOneGoroutine(t *testing.T) {
	d := newPeerDispatcher()
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

// close waits for what was scheduled before it; a run scheduled after it
// still runs (a late system message to the stopped peer), on a goroutine
// of its own; close twice is fine.
func TestPeerDispatcherClose(t *testing.T) {
	d := newPeerDispatcher()
	release, first := make(chan struct{}), make(chan struct{})
	var ranBefore bool
	d.Schedule(func() { close(first); <-release })
	<-first
	d.Schedule(func() { ranBefore = true }) // buffered while the first runs
	closed := make(chan struct{})
	go func() { d.close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("close returned while a run was in progress")
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	<-closed
	require.True(t, ranBefore, "close returned before the buffered run ran")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	late := make(chan struct{})
	d.Schedule(func() { close(late) })
	select {
	case <-late:
	case <-ctx.Done():
		t.Fatal("a run scheduled after close never ran")
	}
	d.close()
}

// A stopped Locker leaves no dispatcher worker behind (goleak in
// TestMain checks every test; this one names the case).
func TestStopEndsThePeerDispatcher(t *testing.T) {
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	defer system.Shutdown()
	l, err := Start(system)
	require.NoError(t, err)
	_, err = l.Lock(context.Background(), "k", []byte("v"), time.Second)
	require.NoError(t, err)
	l.Stop()
	select {
	case <-l.dispatcher.done:
	default:
		t.Fatal("the peer's dispatcher still runs after Stop")
	}
}
