package lockeractor_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"

	"github.com/protoactor-locker/locker/lockeractor"
)

// TestSetNodesChecksTheChangedPeersW checks that SetNodes on a peer that
// is not in the cluster it changes does not hold the new masters against
// its own W: with W=3 here, one master for another peer is that peer's
// business (it checks against its own W and answers).
func TestSetNodesChecksTheChangedPeersW(t *testing.T) {
	system := shortDeadLetterSystem()
	l, err := lockeractor.Start(system, lockeractor.WithW(3))
	require.NoError(t, err)
	defer func() { l.Stop(); system.Shutdown() }()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	other := "127.0.0.1:1" // no Locker runs there
	err = l.SetNodes(ctx, []string{other}, []string{other}, nil)
	require.NotErrorIs(t, err, lockeractor.ErrInvalidArgument, "checked against the caller's W = 3")
	require.True(t, errors.Is(err, lockeractor.ErrUnreachable) || errors.Is(err, context.DeadlineExceeded), "got %v", err)
}

// shortDeadLetterSystem is quietSystem for tests that send to addresses
// where nothing runs: protoactor throttles the logging of dead letters
// with a goroutine that lives one throttle interval, which goleak would
// report if the interval were the default second.
func shortDeadLetterSystem() *actor.ActorSystem {
	return actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }),
		actor.WithDeadLetterThrottleInterval(time.Millisecond),
	)
}
