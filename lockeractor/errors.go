package lockeractor

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/protoactor-locker/locker/messages"
)

// Errors returned by Locker. Each is wrapped with %w and checked with
// errors.Is.
var (
	// ErrNoQuorum: fewer than W masters promised or committed the write.
	// The error is a *QuorumError with the counts and each peer's reason.
	ErrNoQuorum = errors.New("locker: no quorum")
	// ErrNotFound: the key is not held here (DirtyRead, MasterDirtyRead).
	ErrNotFound = errors.New("locker: not found")
	// ErrKeyNotLocked: WaitForRelease on a key that is not held here.
	ErrKeyNotLocked = errors.New("locker: key not locked")
	// ErrInvalidArgument: the call's input is nonsense; the message names
	// the problem.
	ErrInvalidArgument = errors.New("locker: invalid argument")
	// ErrUnreachable: a peer did not answer in time (SetNodes, SetW,
	// MasterDirtyRead).
	ErrUnreachable = errors.New("locker: peer unreachable")
	// ErrStopped: the Locker was stopped.
	ErrStopped = errors.New("locker: stopped")
	// ErrAlreadyStarted: Start on an actor system whose Locker runs.
	ErrAlreadyStarted = errors.New("locker: already started")
	// ErrNotReady: this peer may not coordinate writes yet: it holds no
	// configuration that names it (a cluster member before the cluster
	// configured it, a newcomer before it was added, a restarted member
	// before it heard from the others), or it is a master still copying
	// leases after losing its memory. Nothing was written; see
	// Locker.Ready.
	ErrNotReady = errors.New("locker: not ready")
)

// Reason says why a peer refused a write; the names are the wire's.
type Reason = messages.Reason

// The reasons a peer gives.
const (
	ReasonAlreadyLocked  = messages.Reason_REASON_ALREADY_LOCKED
	ReasonNotFound       = messages.Reason_REASON_NOT_FOUND
	ReasonValueDiffers   = messages.Reason_REASON_VALUE_DIFFERS
	ReasonWriteLocked    = messages.Reason_REASON_WRITE_LOCKED
	ReasonNotMaster      = messages.Reason_REASON_NOT_MASTER
	ReasonStaleEpoch     = messages.Reason_REASON_STALE_EPOCH
	ReasonUnreachable    = messages.Reason_REASON_UNREACHABLE
	ReasonPromiseExpired = messages.Reason_REASON_PROMISE_EXPIRED
	ReasonInvalid        = messages.Reason_REASON_INVALID_ARGUMENT
	ReasonCatchingUp     = messages.Reason_REASON_CATCHING_UP
	// ReasonBallotTooLow: the master granted or saw a larger ballot on
	// the key; the coordinator retries with a larger one by itself, so a
	// caller sees it only when the retries ran out under contention.
	ReasonBallotTooLow = messages.Reason_REASON_BALLOT_TOO_LOW
)

// QuorumError reports a write that did not reach W. errors.Is(err,
// ErrNoQuorum) holds for it.
type QuorumError struct {
	Key string
	// Committing is true when commits were sent but fewer than W were
	// acknowledged in time: some masters may hold the write, so its
	// outcome is unknown. When false, nothing was written.
	Committing bool
	W, Votes   int
	Commits    int
	// Peers maps each refusing or silent peer's address to its reason.
	Peers map[string]Reason
}

// Error describes the failure with its counts and reasons.
func (e *QuorumError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "locker: no quorum for %q: W=%d votes=%d", e.Key, e.W, e.Votes)
	if e.Committing {
		fmt.Fprintf(&b, " commits=%d (outcome unknown)", e.Commits)
	}
	addrs := make([]string, 0, len(e.Peers))
	for a := range e.Peers {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	for i, a := range addrs {
		sep := ", "
		if i == 0 {
			sep = ": "
		}
		fmt.Fprintf(&b, "%s%s %s", sep, a, reasonText(e.Peers[a]))
	}
	return b.String()
}

// Is makes errors.Is(err, ErrNoQuorum) true.
func (e *QuorumError) Is(target error) bool { return target == ErrNoQuorum }

func reasonText(r Reason) string {
	switch r {
	case ReasonAlreadyLocked:
		return "already locked"
	case ReasonNotFound:
		return "key not found"
	case ReasonValueDiffers:
		return "value differs"
	case ReasonWriteLocked:
		return "write in progress"
	case ReasonNotMaster:
		return "not a master"
	case ReasonStaleEpoch:
		return "stale epoch"
	case ReasonUnreachable:
		return "unreachable"
	case ReasonPromiseExpired:
		return "promise expired"
	case ReasonInvalid:
		return "invalid request"
	case ReasonCatchingUp:
		return "catching up after a restart"
	case ReasonBallotTooLow:
		return "ballot too low"
	}
	return r.String()
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidArgument}, args...)...)
}
