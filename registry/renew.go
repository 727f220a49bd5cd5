package registry

import (
	"container/heap"
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/protoactor-locker/locker/lockeractor"
)

// dueItem says when a hold is to be renewed; it is stale once the hold's
// seq moved on (renewed, rescheduled or dropped).
type dueItem struct {
	at  time.Time
	h   *hold
	seq uint64
}

// dueHeap orders renewals by time.
type dueHeap []dueItem

func (d dueHeap) Len() int           { return len(d) }
func (d dueHeap) Less(i, j int) bool { return d[i].at.Before(d[j].at) }
func (d dueHeap) Swap(i, j int)      { d[i], d[j] = d[j], d[i] }
func (d *dueHeap) Push(x any)        { *d = append(*d, x.(dueItem)) }
func (d *dueHeap) Pop() any {
	old := *d
	it := old[len(old)-1]
	*d = old[:len(old)-1]
	return it
}
func (d *dueHeap) push(it dueItem) { heap.Push(d, it) }
func (d *dueHeap) pop() dueItem    { return heap.Pop(d).(dueItem) }

// liveCheck is how often the renewal loop looks whether its Locker or
// actor system stopped, when no renewal wakes it earlier.
const liveCheck = time.Second

// renewLoop renews due leases, one Batch per wake-up, on its own
// goroutine: never behind the mailbox of a named actor.
func (r *Registry) renewLoop() {
	defer r.wg.Done()
	timer := time.NewTimer(liveCheck)
	defer timer.Stop()
	for {
		d := liveCheck
		r.mu.Lock()
		if r.due.Len() > 0 {
			if until := r.due[0].at.Sub(r.now()); until < d {
				d = max(until, 0)
			}
		}
		r.mu.Unlock()
		timer.Reset(d)
		select {
		case <-r.life.Done():
			return
		case <-r.l.Done():
			go r.shutdown() // the store is gone: nothing left to renew with
			return
		case <-r.wake:
			continue
		case <-timer.C:
		}
		if lockeractor.Get(r.system) != r.l || r.system.IsStopped() {
			go r.shutdown() // the store is gone: nothing left to renew with
			return
		}
		r.renewDue()
	}
}

// renewDue renews every lease due within the renew window.
func (r *Registry) renewDue() {
	horizon := r.now().Add(r.cfg.RenewWindow)
	for {
		r.mu.Lock()
		var batch []*hold
		var seqs []uint64
		for r.due.Len() > 0 && !r.due[0].at.After(horizon) && len(batch) < r.cfg.MaxBatch {
			it := r.due.pop()
			if it.seq != it.h.seq || r.owned[it.h.name] != it.h {
				continue
			}
			batch = append(batch, it.h)
			seqs = append(seqs, it.seq)
		}
		more := r.due.Len() > 0 && !r.due[0].at.After(horizon)
		r.mu.Unlock()
		if len(batch) == 0 {
			return
		}
		r.renew(batch, seqs)
		if !more {
			return
		}
	}
}

// renew extends the leases of batch with one Batch call and handles the
// outcome of each.
func (r *Registry) renew(batch []*hold, seqs []uint64) {
	ops := make([]lockeractor.Op, len(batch))
	var last time.Time // waiting beyond the last lease's end is pointless
	r.mu.Lock()
	for i, h := range batch {
		ops[i] = lockeractor.Op{Kind: lockeractor.OpExtendLease, Key: h.key, Value: h.value, Lease: h.lease}
		if h.deadline.After(last) {
			last = h.deadline
		}
	}
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(r.life, last.Sub(r.now())) // Stop cancels it
	defer cancel()
	start := r.now()
	res, err := r.l.Batch(ctx, ops)
	now := r.now()
	var lost []*hold
	var why []error
	r.mu.Lock()
	for i, h := range batch {
		if h.seq != seqs[i] || r.owned[h.name] != h {
			continue // unregistered or registered anew meanwhile
		}
		opErr := err
		if err == nil {
			opErr = res[i].Err
		}
		if opErr == nil {
			if tok := res[i].Result.Token; tok != 0 {
				h.token = tok
			}
			r.extendLocked(h, start.Add(h.lease))
			continue
		}
		retry := min(h.threshold/4, 50*time.Millisecond)
		if transient(opErr) && now.Add(retry).Before(h.deadline) {
			r.scheduleLocked(h, now.Add(retry))
			continue
		}
		r.dropLocked(h)
		lost = append(lost, h)
		why = append(why, opErr)
	}
	r.mu.Unlock()
	for i, h := range lost {
		r.lost(h, why[i])
	}
}

// lost tells of a name this Registry held and dropped (dropLocked) because
// it no longer holds it: it logs, publishes NameLost and stops the actor
// the name was tied to.
func (r *Registry) lost(h *hold, why error) {
	r.logger.Warn("registry: name lost, stopping its actor",
		slog.String("name", h.name), slog.Any("pid", h.pid), slog.Any("error", why))
	r.publish(NameLost{Name: h.name, PID: h.pid, Err: why})
	if h.linked {
		r.system.Root.Stop(h.pid)
	}
}

// transient reports whether a failed renewal may succeed if tried again
// before the lease ends: the store was busy or some masters silent, but
// none holds another value and not all lost the key.
func transient(err error) bool {
	var qe *lockeractor.QuorumError
	if !errors.As(err, &qe) {
		return !errors.Is(err, lockeractor.ErrStopped) && !errors.Is(err, lockeractor.ErrInvalidArgument)
	}
	if qe.Committing {
		return true // outcome unknown; extending again is harmless
	}
	notFound := 0
	for _, reason := range qe.Peers {
		switch reason {
		case lockeractor.ReasonValueDiffers:
			return false
		case lockeractor.ReasonNotFound:
			notFound++
		}
	}
	return notFound < qe.W
}

// onTerminated releases the names of an actor that stopped.
func (r *Registry) onTerminated(pid *actor.PID) {
	r.mu.Lock()
	m := r.byPID[keyOf(pid)]
	var hs []*hold
	for _, h := range m {
		if h.linked {
			hs = append(hs, h)
		}
	}
	for _, h := range hs {
		r.dropLocked(h)
	}
	r.mu.Unlock()
	if len(hs) == 0 || r.stopped() {
		return
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), r.cfg.ReleaseTimeout)
		defer cancel()
		for _, h := range hs {
			if err := r.release(ctx, h); err != nil {
				r.logger.Warn("registry: releasing the name of a stopped actor",
					slog.String("name", h.name), slog.Any("error", err))
			}
		}
	}()
}
