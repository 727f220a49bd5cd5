package lockeractor_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/stretchr/testify/require"

	"github.com/protoactor-locker/locker/lockeractor"
)

// recorder is a slog.Handler that hands the messages it is given to a
// channel (dropping them when it is full).
type recorder chan string

func (recorder) Enabled(context.Context, slog.Level) bool { return true }

func (r recorder) Handle(_ context.Context, rec slog.Record) error {
	select {
	case r <- rec.Message:
	default:
	}
	return nil
}

func (r recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r recorder) WithGroup(string) slog.Handler      { return r }

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
	logs := make(recorder, 100)
	l, err := lockeractor.Start(system, lockeractor.WithCluster(c), lockeractor.WithLogger(slog.New(logs)))
	require.NoError(t, err)

	require.NoError(t, l.SetW(context.Background(), []string{l.Address()}, 1))
	var seen []string
	for len(logs) > 0 {
		msg := <-logs
		if strings.Contains(msg, "cluster mode paused") {
			return
		}
		seen = append(seen, msg)
	}
	t.Fatalf("no log of the pause; logged: %q", seen)
}
