package nodeproc

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/protoactor-locker/locker/fsm"
	"github.com/protoactor-locker/locker/registry"
	"github.com/protoactor-locker/locker/server"
)

// names is the registry side of a node: a Registry on its Locker,
// started with the first OpSpawn, and a watcher that reports the leases
// of the names spawned here (EvOwned at each renewal, EvLost at the end).
type names struct {
	mu      sync.Mutex // guards the fields below
	r       *registry.Registry
	spawned map[string]*watched // by name
	stop    chan struct{}       // closed to stop the watcher; nil before the first spawn
	done    chan struct{}       // closed when the watcher returned
}

// watched is what the watcher last reported of one name's holder.
type watched struct {
	pid      *actor.PID
	token    uint64
	deadline time.Time
	ended    bool
}

// watchEvery is how often the watcher reads the Registry's leases: a
// renewal is reported at most this late, and so is a loss.
const watchEvery = 5 * time.Millisecond

// registry returns the node's Registry, starting it (and the watcher)
// at the first call.
func (n *node) registry() (*registry.Registry, error) {
	n.names.mu.Lock()
	defer n.names.mu.Unlock()
	if n.names.r == nil {
		r, err := registry.New(n.l)
		if err != nil {
			return nil, err
		}
		n.names.r = r
		n.names.spawned = map[string]*watched{}
		n.names.stop, n.names.done = make(chan struct{}), make(chan struct{})
		go n.watch(n.names.stop, n.names.done)
	}
	return n.names.r, nil
}

// stopNames stops the watcher and the Registry, if they run.
func (n *node) stopNames() {
	n.names.mu.Lock()
	r, stop, done := n.names.r, n.names.stop, n.names.done
	n.names.mu.Unlock()
	if r == nil {
		return
	}
	close(stop)
	<-done
	r.Stop()
}

func pidString(pid *actor.PID) string {
	if pid == nil {
		return ""
	}
	return pid.Address + "/" + pid.Id
}

// spawn spawns c.Actor as c.Key and reports its lease (EvOwned) before
// it replies.
func (n *node) spawn(c Command) Event {
	r, err := n.registry()
	if err != nil {
		return Event{Err: err.Error()}
	}
	lease := time.Duration(c.LeaseMs) * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	var pid *actor.PID
	switch c.Actor {
	case "server":
		pid, err = server.Spawn(n.sys.Root, c.Key, actor.PropsFromFunc(func(actor.Context) {}),
			server.WithLeaseLength(lease), server.WithLeaseThreshold(lease/2), server.WithContext(ctx))
	case "fsm":
		pid, err = fsm.Spawn(n.sys.Root, c.Key, idleMachine,
			fsm.WithLeaseLength(lease), fsm.WithLeaseThreshold(lease/2), fsm.WithContext(ctx))
	default:
		return Event{Err: fmt.Sprintf("spawn: unknown actor %q", c.Actor)}
	}
	if err != nil {
		return Event{Err: err.Error()}
	}
	l, ok := r.Owned(c.Key)
	if !ok || !l.PID.Equal(pid) {
		return Event{PID: pidString(pid), Err: "spawn: the name was lost at once"}
	}
	n.names.mu.Lock()
	w := &watched{pid: pid, token: l.Token, deadline: l.Deadline}
	n.names.spawned[c.Key] = w
	n.owned(c.Key, w)
	n.names.mu.Unlock()
	return Event{PID: pidString(pid), Token: l.Token}
}

// idleMachine is the state machine of the fsm actors: one state, every
// message dropped.
func idleMachine() *fsm.Machine {
	return &fsm.Machine{Initial: "idle", States: map[fsm.State]fsm.StateSpec{"idle": {}}}
}

// owned emits w as an EvOwned of name (n.names.mu held). The deadline
// is converted to the machine-wide monotonic clock from below: the
// monotonic reading is taken before the wall reading the remaining
// lease is measured from.
func (n *node) owned(name string, w *watched) {
	mono := monotonicNanos()
	left := time.Until(w.deadline)
	n.emit(Event{Ev: EvOwned, Name: name, PID: pidString(w.pid), Token: w.token, T: mono, Deadline: mono + int64(left)})
}

// watch reports, every watchEvery until stop closes, each renewal of a
// name spawned here (EvOwned) and the end of its holder (EvLost).
func (n *node) watch(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		n.names.mu.Lock()
		for name, w := range n.names.spawned {
			if w.ended {
				continue
			}
			l, ok := n.names.r.Owned(name)
			switch {
			case !ok || !l.PID.Equal(w.pid):
				w.ended = true
				n.emit(Event{Ev: EvLost, Name: name, PID: pidString(w.pid), Token: w.token, T: monotonicNanos()})
			case !l.Deadline.Equal(w.deadline) || l.Token != w.token:
				w.token, w.deadline = l.Token, l.Deadline
				n.owned(name, w)
			}
		}
		n.names.mu.Unlock()
	}
}
