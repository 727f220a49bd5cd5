package lockeractor_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/stretchr/testify/require"

	"github.com/protoactor-locker/locker/lockeractor"
)

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestWithLoggerKeepsLockerLogsWhenTheSystemIsQuiet checks that a Locker
// started WithLogger logs there while its actor system's logger discards
// everything: an explicit SetW in cluster mode is logged as pausing
// cluster mode.
func TestWithLoggerKeepsLockerLogsWhenTheSystemIsQuiet(t *testing.T) {
	system := quietSystem()
	c := cluster.New(system, cluster.Configure("logs", test.NewTestProvider(test.NewInMemAgent()), disthash.New(),
		remote.Configure("127.0.0.1", 0, lockeractor.RemoteOptions()...)))
	c.StartMember()
	t.Cleanup(func() { lockeractor.LeaveCluster(c) })
	var out syncBuffer
	l, err := lockeractor.Start(system, lockeractor.WithCluster(c), lockeractor.WithLogger(slog.New(slog.NewTextHandler(&out, nil))))
	require.NoError(t, err)

	require.NoError(t, l.SetW(context.Background(), []string{l.Address()}, 1))
	require.True(t, strings.Contains(out.String(), "cluster mode paused"), "logged: %q", out.String())
}
