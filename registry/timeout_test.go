package registry_test

import (
	"context"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"

	"github.com/protoactor-locker/locker/internal/testcluster"
	"github.com/protoactor-locker/locker/lockeractor"
	"github.com/protoactor-locker/locker/registry"
)

// TestRequestTimeoutIsOneError: a Request that gets no answer fails with
// ErrRequestTimeout whichever layer timed out: protoactor's future
// (Config.RequestTimeout, the context without a deadline) or the
// caller's context; the layer's own error stays in the chain.
func TestRequestTimeoutIsOneError(t *testing.T) {
	sys := actor.NewActorSystem(testcluster.Quiet()...)
	l, err := lockeractor.Start(sys)
	require.NoError(t, err)
	r, err := registry.New(l, registry.WithRequestTimeout(30*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(func() { r.Stop(); l.Stop(); sys.Shutdown() })

	silent := sys.Root.Spawn(actor.PropsFromFunc(func(actor.Context) {}))
	ctx := context.Background()
	require.NoError(t, r.Register(ctx, "silent", silent, time.Minute))

	_, err = r.Request(ctx, "silent", "hello") // the future times out
	require.ErrorIs(t, err, registry.ErrRequestTimeout)
	require.ErrorIs(t, err, actor.ErrTimeout)

	dl, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	_, err = r.Request(dl, "silent", "hello") // the context ends first, or the future it bounds
	require.ErrorIs(t, err, registry.ErrRequestTimeout)

	_, err = r.Request(dl, "silent", "hello") // the context has ended already
	require.ErrorIs(t, err, registry.ErrRequestTimeout)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}
