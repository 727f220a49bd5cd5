package lockeractor

import (
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/protoactor-locker/locker/internal/faulthook"
)

// Fault injection, the peer's side. The rules (which messages to drop,
// delay, duplicate, partition or hold) live in package
// lockeractor/lockertest, which reaches a peer through
// faulthook.WithInjector; a peer started without it pays one nil check.

func init() {
	// Publishes this package's option to lockertest through our internal
	// package; it changes nothing outside this module.
	faulthook.WithInjector = func(inj faulthook.Injector) any {
		return Option(func(c *Config) { c.injector = inj })
	}
}

// faultWake tells a paused peer that Resume was called.
type faultWake struct{}

// stashed is a message a paused peer holds.
type stashed struct {
	msg    any
	sender *actor.PID
}

// peerFaults is a peer's side of its Faults: what it stashes while
// paused and the delayed sends it has pending. Only the peer actor uses
// it, except mu's fields.
type peerFaults struct {
	f        faulthook.Injector
	stashing bool // paused since the last faultWake: every message is stashed
	stash    []stashed
	unwake   func()

	// mu guards timers and closed, which delayed sends' goroutines use.
	mu     sync.Mutex
	timers map[*time.Timer]struct{}
	closed bool
}

func newPeerFaults(f faulthook.Injector) *peerFaults {
	if f == nil {
		return nil
	}
	return &peerFaults{f: f, timers: map[*time.Timer]struct{}{}}
}

// intercept runs before the peer handles a message and reports whether
// the fault layer took it: dropped by a partition, or stashed by a
// pause. A faultWake replays the stash through handle.
func (x *peerFaults) intercept(p *peer, ctx actor.Context) bool {
	switch ctx.Message().(type) {
	case *actor.Started:
		system, self := ctx.ActorSystem(), ctx.Self()
		x.unwake = x.f.OnResume(p.l.self, func() { system.Root.Send(self, faultWake{}) })
		return false
	case *actor.Restarting:
		if x.unwake != nil {
			x.unwake() // the restarted peer registers again when Started
		}
		return false
	case *actor.Stopping, *actor.Stopped:
		return false
	case faultWake:
		if x.stashing && !x.f.Paused(p.l.self) {
			x.stashing = false
			held := x.stash
			x.stash = nil
			for _, s := range held {
				p.handle(ctx, s.msg, s.sender)
			}
		}
		return true
	case proto.Message:
		if s := ctx.Sender(); s != nil && s.Address != p.l.self && x.f.BlockedInbound(s.Address, p.l.self) {
			return true
		}
	}
	if x.stashing || x.f.Paused(p.l.self) {
		x.stashing = true
		x.stash = append(x.stash, stashed{msg: ctx.Message(), sender: ctx.Sender()})
		x.f.Stashed()
		return true
	}
	return false
}

// send sends msg from the peer to pid at address to as the injector decides.
func (x *peerFaults) send(p *peer, ctx actor.Context, to string, pid *actor.PID, msg proto.Message) {
	if to == p.l.self {
		ctx.Request(pid, msg)
		return
	}
	drop, delays, dup := x.f.Route(p.l.self, to)
	if drop {
		return
	}
	for i := range 1 + btoi(dup) {
		if delays[i] <= 0 {
			ctx.Request(pid, msg)
			continue
		}
		x.later(ctx, delays[i], pid, msg)
	}
}

// later sends msg to pid after d, with the peer as its sender, unless the
// peer stops first.
func (x *peerFaults) later(ctx actor.Context, d time.Duration, pid *actor.PID, msg proto.Message) {
	system, self := ctx.ActorSystem(), ctx.Self()
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		x.mu.Lock()
		defer x.mu.Unlock()
		if x.closed {
			return
		}
		delete(x.timers, t)
		system.Root.RequestWithCustomSender(pid, msg, self)
	})
	x.timers[t] = struct{}{}
}

// stop cancels the pending delayed sends and the wake registration.
func (x *peerFaults) stop() {
	x.mu.Lock()
	x.closed = true
	for t := range x.timers {
		t.Stop()
	}
	x.timers = nil
	x.mu.Unlock()
	if x.unwake != nil {
		x.unwake()
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
