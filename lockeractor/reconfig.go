package lockeractor

import (
	"context"

	"github.com/protoactor-locker/locker/internal/core"
)

// Reconfigure makes masters and replicas the configuration of every peer
// that is in the current or the new configuration, with W the majority of
// the new masters.
//
// This first version applies the change with SetNodes and SetW; the
// joint-quorum transition that keeps every committed lease across the
// change is work in progress (issue #3), and Reconfigure is the call that
// will carry it, so callers should use Reconfigure rather than SetNodes
// for membership changes.
func (l *Locker) Reconfigure(ctx context.Context, masters, replicas []string) error {
	if ctx == nil {
		return invalid("nil context")
	}
	ms, rs := core.SortedSet(masters), core.SortedSet(replicas)
	cur := l.core.Membership()
	cluster := core.SortedSet(append(append(append(append([]string{}, cur.Masters...), cur.Replicas...), ms...), rs...))
	w := len(ms)/2 + 1
	if msg := core.CheckNodes(ms, rs, 0); msg != "" {
		return invalid("%s", msg)
	}
	// Lower W first where the new masters are fewer, so that no peer ever
	// holds a W above its masters.
	if w < cur.W {
		if err := l.SetW(ctx, cluster, w); err != nil {
			return err
		}
	}
	if err := l.SetNodes(ctx, cluster, ms, rs); err != nil {
		return err
	}
	return l.SetW(ctx, cluster, w)
}
