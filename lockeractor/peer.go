package lockeractor

import (
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/protoactor-locker/locker/internal/core"
	"github.com/protoactor-locker/locker/messages"
)

// Messages from the Locker handle to its peer actor (local only, never
// on the wire). Each of submit, readMaster, adminCall and reconfigure
// starts a request of the core and waits for its answer (caller).
type (
	submit struct {
		ops   []core.Op
		reply func([]core.Outcome)
	}
	readMaster struct {
		key   string
		reply func(core.ReadResult)
	}
	adminCall struct {
		cluster, masters, replicas []string
		w                          int
		setW                       bool
		reply                      func(map[string]core.AdminResult)
	}
	reconfigure struct {
		masters, replicas []string
		reply             func(core.ReconfigResult)
	}
	pushNow struct{}
	tick    struct{}
)

// caller is a Locker call waiting for the answer to its core request.
type caller interface {
	answer(a core.Answer)
}

func (m *submit) answer(a core.Answer)      { m.reply(a.Outcomes) }
func (m *readMaster) answer(a core.Answer)  { m.reply(a.Read) }
func (m *adminCall) answer(a core.Answer)   { m.reply(a.Admin) }
func (m *reconfigure) answer(a core.Answer) { m.reply(a.Reconfig) }

// peer is the actor shell around a core.Core: it decodes messages, calls
// the core, takes what the core produced (core.Output) after each call,
// sends its messages, answers the callers whose requests finished and
// keeps one timer armed for the core's next wake-up. It never waits for
// another peer.
type peer struct {
	l       *Locker
	core    *core.Core
	waiting map[core.RequestID]caller // the calls whose core request has not been answered
	pids    map[string]*actor.PID
	// watched are the peers this actor watches: protoactor tells it with
	// *actor.Terminated when one stops or its address goes down. (Remote
	// dead-letter responses do not say which peer they come from.)
	watched map[string]bool
	// suspect are watched peers whose Terminated came once: it may be
	// the previous incarnation's at that address, so the peer is watched
	// again and counted down only if that watch ends too.
	suspect map[string]bool

	// mu guards timer and armed, which the timer's goroutine reads.
	mu     sync.Mutex
	timer  *time.Timer
	armed  time.Time
	closed bool

	fx *peerFaults // lockertest.WithFaults (faults.go); nil without

	// told is the readiness last told to l.ready (told.set: once at all),
	// so that flush takes its lock only when it changes.
	told struct {
		set   bool
		ready bool
		why   messages.Reason
	}
}

func newPeer(l *Locker) *peer {
	return &peer{l: l, core: l.core, waiting: map[core.RequestID]caller{}, pids: map[string]*actor.PID{},
		watched: map[string]bool{}, suspect: map[string]bool{}, fx: newPeerFaults(l.cfg.injector)}
}

// Receive implements actor.Actor.
func (p *peer) Receive(ctx actor.Context) {
	if p.fx != nil && p.fx.intercept(p, ctx) {
		return
	}
	p.handle(ctx, ctx.Message(), ctx.Sender())
}

// handle handles msg from sender (ctx's own, or one a pause held).
func (p *peer) handle(ctx actor.Context, msg any, sender *actor.PID) {
	switch m := msg.(type) {
	case *submit:
		p.waiting[p.core.Submit(m.ops)] = m
	case *readMaster:
		p.waiting[p.core.ReadMaster(m.key)] = m
	case *adminCall:
		if m.setW {
			p.waiting[p.core.SetW(m.cluster, m.w)] = m
		} else {
			p.waiting[p.core.SetNodes(m.cluster, m.masters, m.replicas)] = m
		}
	case *reconfigure:
		p.waiting[p.core.Reconfigure(m.masters, m.replicas)] = m
	case pushNow:
		p.core.PushNow()
	case tick:
		p.core.Tick()
	case *actor.DeadLetterResponse:
		if m.Target != nil {
			p.core.Unreachable(m.Target.Address)
		}
	case *actor.Terminated:
		if m.Who == nil || m.Who.Id != ActorName || m.Who.Address == p.l.self {
			return
		}
		addr := m.Who.Address
		if !p.suspect[addr] {
			p.suspect[addr] = true
			ctx.Watch(p.pid(addr))
			return
		}
		delete(p.suspect, addr)
		delete(p.watched, addr)
		p.core.Unreachable(addr)
	case *actor.Stopping:
		p.stop()
		return
	case *actor.Started, *actor.Stopped, *actor.Restarting:
		return
	case proto.Message:
		if sender == nil {
			return // peers always send with a sender; this is not a peer
		}
		from := sender.Address
		if from == localAddress || from == "" {
			from = p.l.self
		}
		delete(p.suspect, from) // it answers: alive
		p.core.Step(from, m)
	default:
		return
	}
	p.flush(ctx)
}

// flush answers the callers whose requests finished, sends the messages
// the core produced and re-arms the timer.
func (p *peer) flush(ctx actor.Context) {
	out := p.core.TakeOutput()
	p.answer(out.Answers)
	for _, env := range out.Messages {
		pid := p.pid(env.To)
		if !p.watched[env.To] {
			p.watched[env.To] = true
			ctx.Watch(pid)
		}
		if p.fx != nil {
			p.fx.send(p, ctx, env.To, pid, env.Msg)
			continue
		}
		ctx.Request(pid, env.Msg)
	}
	p.core.Recycle(out)
	if at, ok := p.core.NextWake(); ok {
		p.arm(ctx, at)
	}
	ready, why := p.core.Ready(), messages.Reason_REASON_UNSPECIFIED
	if !ready {
		why = p.core.NotReadyReason()
	}
	if !p.told.set || ready != p.told.ready || why != p.told.why {
		p.told.set, p.told.ready, p.told.why = true, ready, why
		p.l.ready.set(ready, why)
	}
}

// answer hands each answer to the caller waiting for it, in the order
// the core gave them.
func (p *peer) answer(answers []core.Answer) {
	for _, a := range answers {
		if c := p.waiting[a.ID]; c != nil {
			delete(p.waiting, a.ID)
			c.answer(a)
		}
	}
}

func (p *peer) pid(addr string) *actor.PID {
	pid := p.pids[addr]
	if pid == nil {
		pid = actor.NewPID(addr, ActorName)
		p.pids[addr] = pid
	}
	return pid
}

// arm makes sure a tick reaches the actor at or soon after at.
func (p *peer) arm(ctx actor.Context, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || (!p.armed.IsZero() && !at.Before(p.armed)) {
		return
	}
	p.armed = at
	d := at.Sub(p.l.cfg.Clock.Now())
	if d < 0 {
		d = 0
	}
	if p.timer == nil {
		system, self := ctx.ActorSystem(), ctx.Self()
		p.timer = time.AfterFunc(d, func() {
			p.mu.Lock()
			p.armed = time.Time{}
			closed := p.closed
			p.mu.Unlock()
			if !closed {
				system.Root.Send(self, tick{})
			}
		})
		return
	}
	p.timer.Reset(d)
}

func (p *peer) stop() {
	p.mu.Lock()
	p.closed = true
	if p.timer != nil {
		p.timer.Stop()
	}
	p.mu.Unlock()
	if p.fx != nil {
		p.fx.stop()
	}
	p.core.Close()
	// Close answered every request still pending; nothing is sent any more.
	p.answer(p.core.TakeOutput().Answers)
}
