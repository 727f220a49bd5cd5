package registry

import (
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/protoactor-locker/locker/lockeractor"
)

// Errors of the registry. Each is wrapped with %w (or carried by a typed
// error whose Is matches it) and checked with errors.Is.
var (
	// ErrNotRegistered: no live actor holds the name here (Send, Request,
	// Unregister).
	ErrNotRegistered = errors.New("registry: name not registered")
	// ErrAlreadyRegistered: another actor holds the name. The error is an
	// *AlreadyRegisteredError carrying the holder.
	ErrAlreadyRegistered = errors.New("registry: name already registered")
	// ErrInvalidArgument: the call's input is nonsense (empty name, nil
	// PID, a lease not longer than its renewal threshold, ...). The error
	// is an *ArgumentError naming the argument.
	ErrInvalidArgument = errors.New("registry: invalid argument")
	// ErrNoRegistry: the actor system has no running Registry (see New),
	// or the Registry was stopped.
	ErrNoRegistry = errors.New("registry: no registry on this actor system")
	// ErrRequestTimeout: Request got no answer in time, whichever layer
	// timed out (protoactor's future, actor.ErrTimeout, or the caller's
	// context, context.DeadlineExceeded; both stay in the error chain).
	ErrRequestTimeout = errors.New("registry: request timed out")
)

// AlreadyRegisteredError reports a name that another actor holds.
// errors.Is(err, ErrAlreadyRegistered) holds for it.
type AlreadyRegisteredError struct {
	Name   string
	Holder *actor.PID // the holder as the store knows it; nil if its value is not a PID
}

// Error names the name and its holder.
func (e *AlreadyRegisteredError) Error() string {
	if e.Holder == nil {
		return fmt.Sprintf("registry: name %q already registered", e.Name)
	}
	return fmt.Sprintf("registry: name %q already registered by %s/%s", e.Name, e.Holder.Address, e.Holder.Id)
}

// Is makes errors.Is(err, ErrAlreadyRegistered) true.
func (e *AlreadyRegisteredError) Is(target error) bool { return target == ErrAlreadyRegistered }

// ArgumentError reports a bad argument. errors.Is(err,
// ErrInvalidArgument) holds for it.
type ArgumentError struct {
	Arg     string // the argument or option, e.g. "name", "lease"
	Problem string // what is wrong with it
}

// Error names the argument and the problem.
func (e *ArgumentError) Error() string {
	return fmt.Sprintf("registry: invalid argument %s: %s", e.Arg, e.Problem)
}

// Is makes errors.Is(err, ErrInvalidArgument) true.
func (e *ArgumentError) Is(target error) bool { return target == ErrInvalidArgument }

func argError(arg, format string, args ...any) error {
	return &ArgumentError{Arg: arg, Problem: fmt.Sprintf(format, args...)}
}

// MaxLeaseLimit is lockeractor.MaxLeaseLimit (a year), the longest lease
// any Locker may be configured to accept. A Registry accepts at most its
// Locker's MaxLease (lockeractor.WithMaxLease, an hour by default).
const MaxLeaseLimit = lockeractor.MaxLeaseLimit

// checkLease validates a lease length and its renewal threshold against
// the MaxLease of r's Locker, as Register and server.Spawn do: both
// positive, the threshold shorter than the lease, and the lease at least
// a millisecond (the store's resolution) and at most the Locker's
// MaxLease. It returns an *ArgumentError, or ErrNoRegistry for a nil r.
func (r *Registry) checkLease(lease, threshold time.Duration) error {
	if r == nil {
		return ErrNoRegistry
	}
	return validLease(lease, threshold, r.l.MaxLease())
}

func validLease(lease, threshold, maxLease time.Duration) error {
	switch {
	case lease < time.Millisecond:
		return argError("lease", "%v is shorter than a millisecond", lease)
	case lease > maxLease:
		return argError("lease", "%v is longer than MaxLease (%v)", lease, maxLease)
	case threshold <= 0:
		return argError("threshold", "%v is not positive", threshold)
	case threshold >= lease:
		return argError("threshold", "%v is not shorter than the lease %v", threshold, lease)
	}
	return nil
}
