package lockeractor

import (
	"context"
	"fmt"

	"github.com/protoactor-locker/locker/internal/core"
	"github.com/protoactor-locker/locker/messages"
)

// Reconfigure safely makes masters and replicas the configuration of
// every peer the current and the new configuration name, with W the
// majority of the new masters. Unlike SetNodes it keeps every committed
// lease and never lets two groups of peers both reach a write quorum:
// the change goes through a joint configuration in which writes need a
// quorum of both the old and the new masters, the new masters copy the
// old masters' leases, and only then do the old masters step down. Each
// step is a compare-and-set of the configuration epoch on a write quorum,
// so concurrent Reconfigure calls cannot both succeed from one epoch, and
// a side of a partition without a quorum cannot change anything. A call
// that fails half-way leaves the peers in a safe joint configuration; the
// next Reconfigure resumes from it. See the package documentation.
func (l *Locker) Reconfigure(ctx context.Context, masters, replicas []string) error {
	if ctx == nil {
		return invalid("nil context")
	}
	ms, rs := core.SortedSet(masters), core.SortedSet(replicas)
	if msg := core.CheckNodes(ms, rs, 0); msg != "" {
		return invalid("%s", msg)
	}
	reply := make(chan core.ReconfigResult, 1)
	if err := l.send(ctx, &reconfigure{masters: ms, replicas: rs, reply: func(r core.ReconfigResult) { reply <- r }}); err != nil {
		return err
	}
	select {
	case r := <-reply:
		switch {
		case r.OK:
			return nil
		case r.Stopped:
			return ErrStopped
		case r.Reason == messages.Reason_REASON_INVALID_ARGUMENT:
			return invalid("%s", r.Message)
		case r.Reason == messages.Reason_REASON_UNREACHABLE:
			return fmt.Errorf("%w: reconfiguration at epoch %d: %s", ErrUnreachable, r.Epoch, r.Message)
		}
		return fmt.Errorf("%w: reconfiguration at epoch %d refused (%s): %s", ErrNoQuorum, r.Epoch, reasonText(r.Reason), r.Message)
	case <-ctx.Done():
		return fmt.Errorf("locker: %w (the reconfiguration may still complete)", ctx.Err())
	case <-l.stopped:
		return ErrStopped
	}
}

// Epoch is the configuration epoch this peer is at.
func (l *Locker) Epoch() uint64 { return l.core.Membership().Epoch }
