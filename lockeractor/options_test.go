package lockeractor_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/protoactor-locker/locker/lockeractor"
)

// TestDefaultWriteLockTimeoutFollowsTheRequestTimeout checks that a
// request timeout longer than the default write-lock timeout works
// alone: the write-lock timeout follows it.
func TestDefaultWriteLockTimeoutFollowsTheRequestTimeout(t *testing.T) {
	l := start(t, lockeractor.WithRequestTimeout(5*time.Second))
	_, err := l.Lock(t.Context(), "k", []byte("v"), time.Second)
	require.NoError(t, err)

	system := quietSystem()
	defer system.Shutdown()
	_, err = lockeractor.Start(system, lockeractor.WithRequestTimeout(5*time.Second), lockeractor.WithWriteLockTimeout(4*time.Second))
	require.ErrorIs(t, err, lockeractor.ErrInvalidArgument, "an explicit write-lock timeout must still exceed the request timeout")
}
