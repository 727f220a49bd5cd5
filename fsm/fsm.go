package fsm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/protoactor-locker/locker/registry"
	"github.com/protoactor-locker/locker/server"
)

// State names a state of a machine.
type State string

// Results a Handler returns besides the name of the next state.
const (
	// Keep stays in the current state: no enter action, the state
	// timeout keeps running. Returning the current state does the same.
	Keep State = ""
	// Unhandled says the handler does not handle the message: the
	// machine's AnyState handler gets it next; if that one does not
	// handle it either, it is dropped (logged at debug level).
	Unhandled State = "\x00unhandled"
)

// Handler handles msg in a state and returns the next state, Keep or
// Unhandled. It runs on the actor's goroutine; c is valid during the
// call only.
type Handler func(c *Context, msg any) State

// StateSpec says how a machine behaves in one state.
type StateSpec struct {
	// Enter runs when the machine enters the state: the initial state at
	// start (and after a restart), any other on a transition to it. It
	// cannot change the state; it may set a state timeout or send.
	Enter func(c *Context)
	// Handle gets the messages that arrive in the state. Nil leaves them
	// all to the machine's AnyState handler.
	Handle Handler
	// Timeout, if positive, is a state timeout: after this long in the
	// state, the machine gets a StateTimeout message (or moves to
	// TimeoutTo). Leaving the state cancels it.
	Timeout time.Duration
	// TimeoutTo, if set, is where the state timeout leads, without
	// calling Handle.
	TimeoutTo State
}

// Machine is a state machine's definition: its states, where it starts,
// and what every state answers. A Producer makes one per actor
// incarnation, so a machine's fields may hold that incarnation's data.
type Machine struct {
	// Initial is the state the machine starts in (and restarts in).
	Initial State
	// States are the machine's states by name.
	States map[State]StateSpec
	// AnyState gets every message the current state leaves Unhandled,
	// and the lifecycle messages *actor.Stopping, *actor.Stopped and
	// *actor.Restarting (its result is then ignored): the place for
	// synchronous requests answered in every state (c.Respond).
	AnyState Handler
	// OnTransition, if set, is told of every change of state, after the
	// state changed and before the new state's Enter.
	OnTransition func(c *Context, from, to State)
}

// Producer makes the Machine of one actor incarnation.
type Producer func() *Machine

// StateTimeout is the message a state's Handle gets when the state's
// timeout fires.
type StateTimeout struct {
	State State // the state whose timeout fired
}

// ErrInvalidMachine: a Machine that cannot run (nil, no states, an
// initial or timeout state that is not one of its states). Check with
// errors.Is; it also matches registry.ErrInvalidArgument.
var ErrInvalidMachine = errors.New("fsm: invalid machine")

type machineError struct{ problem string }

func (e *machineError) Error() string { return "fsm: invalid machine: " + e.problem }

func (e *machineError) Is(target error) bool {
	return target == ErrInvalidMachine || target == registry.ErrInvalidArgument
}

// Validate reports what keeps m from running, or nil.
func (m *Machine) Validate() error {
	switch {
	case m == nil:
		return &machineError{"nil"}
	case len(m.States) == 0:
		return &machineError{"no states"}
	}
	if _, ok := m.States[m.Initial]; !ok {
		return &machineError{fmt.Sprintf("initial state %q is not one of %v", m.Initial, m.names())}
	}
	for name, s := range m.States {
		if name == Keep || name == Unhandled {
			return &machineError{fmt.Sprintf("state name %q is reserved", name)}
		}
		if s.TimeoutTo != "" {
			if _, ok := m.States[s.TimeoutTo]; !ok {
				return &machineError{fmt.Sprintf("state %q times out to %q, which is not a state", name, s.TimeoutTo)}
			}
		}
		if s.Timeout < 0 {
			return &machineError{fmt.Sprintf("state %q has a negative timeout %v", name, s.Timeout)}
		}
	}
	return nil
}

func (m *Machine) names() []State {
	var out []State
	for n := range m.States {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Context is what a handler sees: the actor's context (Respond, Send,
// Self, Stop, ...) and the machine's state.
type Context struct {
	actor.Context
	a *machineActor
}

// State is the current state.
func (c *Context) State() State { return c.a.state }

// SetStateTimeout (re)arms the current state's timeout to fire after d,
// replacing the one StateSpec.Timeout set; d <= 0 cancels it.
func (c *Context) SetStateTimeout(d time.Duration) { c.a.arm(c.Context, d) }

// Option configures Spawn: the lease options of package server.
type Option = server.Option

// WithLeaseLength sets how long a lease holds the name (default 5 s).
func WithLeaseLength(d time.Duration) Option { return server.WithLeaseLength(d) }

// WithLeaseThreshold sets how long before expiry the lease is renewed
// (default: it follows the lease, see server.Config.LeaseThreshold).
func WithLeaseThreshold(d time.Duration) Option { return server.WithLeaseThreshold(d) }

// WithContext makes ctx bound the registration.
func WithContext(ctx context.Context) Option { return server.WithContext(ctx) }

// WithRequestTimeout sets how long Spawn waits for the name's
// registration (default 10 s).
func WithRequestTimeout(d time.Duration) Option { return server.WithRequestTimeout(d) }

// Props returns the props of a machine actor that is not registered
// under a name (spawn it with parent.Spawn). A machine that does not
// Validate logs the problem and stops at start.
func Props(producer Producer, opts ...actor.PropsOption) *actor.Props {
	return props(producer, nil, opts)
}

func props(producer Producer, first *Machine, opts []actor.PropsOption) *actor.Props {
	var firstUsed atomic.Bool
	return actor.PropsFromProducer(func() actor.Actor {
		if first != nil && firstUsed.CompareAndSwap(false, true) {
			return &machineActor{m: first}
		}
		var m *Machine
		if producer != nil {
			m = producer()
		}
		return &machineActor{m: m}
	}, opts...)
}

// Spawn spawns a machine actor as a child of parent and registers it
// under name, exactly as server.Spawn does (same guarantees, same
// errors). It calls producer once to validate the machine, which then
// runs as the first incarnation.
func Spawn(parent actor.SpawnerContext, name string, producer Producer, opts ...Option) (*actor.PID, error) {
	if producer == nil {
		return nil, &machineError{"nil producer"}
	}
	m := producer()
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return server.Spawn(parent, name, props(producer, m, nil), opts...)
}

// stateQuery asks a machine for its state (local only).
type stateQuery struct{}

// StateOf asks the machine actor pid of system for its current state,
// for tests and diagnostics. pid must be local to system.
func StateOf(ctx context.Context, system *actor.ActorSystem, pid *actor.PID) (State, error) {
	if ctx == nil || system == nil || pid == nil {
		return "", &registry.ArgumentError{Arg: "StateOf", Problem: "nil context, system or pid"}
	}
	timeout := 5 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		return "", fmt.Errorf("fsm: state of %s: %w", pid, context.DeadlineExceeded)
	}
	res, err := system.Root.RequestFuture(pid, &stateQuery{}, timeout).Result()
	if err != nil {
		return "", fmt.Errorf("fsm: state of %s: %w", pid, err)
	}
	s, ok := res.(State)
	if !ok {
		return "", fmt.Errorf("fsm: %s is not a state machine (answered %T)", pid, res)
	}
	return s, nil
}

// timeoutFired is the state timer's message to its actor.
type timeoutFired struct{ gen uint64 }

// machineActor runs a Machine.
type machineActor struct {
	m     *Machine
	state State
	gen   uint64 // counts state entries and timer re-arms; stale timeouts carry an old one
	timer *time.Timer
	c     Context
}

// Receive implements actor.Actor.
func (a *machineActor) Receive(ctx actor.Context) {
	a.c = Context{Context: ctx, a: a}
	c := &a.c
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		if err := a.m.Validate(); err != nil {
			ctx.Logger().Error("fsm: stopping", slog.Any("pid", ctx.Self()), slog.Any("error", err))
			ctx.Stop(ctx.Self())
			return
		}
		a.enter(c, "", a.m.Initial)
	case *actor.Stopping, *actor.Stopped, *actor.Restarting:
		a.disarm()
		if a.m != nil && a.m.AnyState != nil {
			a.m.AnyState(c, msg)
		}
	case *timeoutFired:
		if msg.gen != a.gen {
			return // the state changed or the timer was re-armed since
		}
		a.timer = nil
		if to := a.m.States[a.state].TimeoutTo; to != "" {
			a.enter(c, a.state, to)
			return
		}
		a.dispatch(c, StateTimeout{State: a.state})
	case *stateQuery:
		ctx.Respond(a.state)
	default:
		a.dispatch(c, msg)
	}
}

func (a *machineActor) dispatch(c *Context, msg any) {
	if a.m == nil || a.state == "" {
		return // not started
	}
	next := Unhandled
	if h := a.m.States[a.state].Handle; h != nil {
		next = h(c, msg)
	}
	if next == Unhandled && a.m.AnyState != nil {
		next = a.m.AnyState(c, msg)
	}
	switch next {
	case Unhandled:
		c.Logger().Debug("fsm: unhandled message", slog.String("state", string(a.state)), slog.Any("message", msg))
	case Keep, a.state:
	default:
		if _, ok := a.m.States[next]; !ok {
			c.Logger().Error("fsm: transition to an unknown state ignored",
				slog.String("state", string(a.state)), slog.String("next", string(next)))
			return
		}
		a.enter(c, a.state, next)
	}
}

// enter moves to state to: cancels the old state's timeout, tells the
// observer, arms the new state's timeout and runs its enter action.
func (a *machineActor) enter(c *Context, from, to State) {
	a.disarm()
	a.state = to
	if from != "" && a.m.OnTransition != nil {
		a.m.OnTransition(c, from, to)
	}
	spec := a.m.States[to]
	if spec.Timeout > 0 {
		a.arm(c.Context, spec.Timeout)
	}
	if spec.Enter != nil {
		spec.Enter(c)
	}
}

func (a *machineActor) arm(ctx actor.Context, d time.Duration) {
	a.disarm()
	if d <= 0 {
		return
	}
	gen, system, self := a.gen, ctx.ActorSystem(), ctx.Self()
	a.timer = time.AfterFunc(d, func() { system.Root.Send(self, &timeoutFired{gen: gen}) })
}

func (a *machineActor) disarm() {
	a.gen++
	if a.timer != nil {
		a.timer.Stop()
		a.timer = nil
	}
}
