package lockeractor_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/protoactor-locker/locker/lockeractor"
)

// TestSingleNodeStoreIsReadyAtOnce: a Locker started without remote and
// without a cluster is a single-node store on purpose: ready at once,
// and writes work with no set-up.
func TestSingleNodeStoreIsReadyAtOnce(t *testing.T) {
	l := start(t)
	require.True(t, l.IsReady())
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	require.NoError(t, l.Ready(ctx))
	_, err := l.Lock(ctx, "k", []byte("v"), time.Minute)
	require.NoError(t, err)
	require.False(t, l.Departed("elsewhere:1"), "a single-node store counts nobody as departed")

	l.Stop()
	require.False(t, l.IsReady())
	require.ErrorIs(t, l.Ready(ctx), lockeractor.ErrStopped)
}
