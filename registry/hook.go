package registry

import (
	"context"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/protoactor-locker/locker/internal/registryhook"
)

// Registry implements registryhook.Source: the running Registry of the
// extension's actor system, as server and fsm see it.
func (e *extension) Registry() registryhook.Registry {
	if r := e.current.Load(); r != nil {
		return hookView{r}
	}
	return nil
}

// hookView is a Registry as registryhook.Registry.
type hookView struct{ r *Registry }

func (v hookView) CheckLease(lease, threshold time.Duration) error {
	return v.r.checkLease(lease, threshold)
}

func (v hookView) Threshold(lease time.Duration) time.Duration { return v.r.threshold(lease) }

func (v hookView) Reserve(ctx context.Context, name string, pid *actor.PID, lease, threshold time.Duration) (registryhook.Reservation, error) {
	res, err := v.r.reserve(ctx, name, pid, lease, threshold)
	if err != nil {
		return nil, err
	}
	return res, nil
}
