package linearize

import (
	"errors"

	"github.com/protoactor-locker/locker/lockeractor"
)

// OutcomeOf classifies the error of a Locker write as its caller must
// treat it: nil is OK; a refusal before any commit went out (a
// QuorumError that is not Committing, an invalid argument, a peer not
// ready to coordinate writes) is Failed;
// everything else — a QuorumError after commits went out, a context that
// ended while the write was in flight, an unreachable or stopped peer —
// is Unknown: the write may have taken effect, or may still.
func OutcomeOf(err error) Outcome {
	if err == nil {
		return OK
	}
	var qe *lockeractor.QuorumError
	if errors.As(err, &qe) {
		if qe.Committing {
			return Unknown
		}
		return Failed
	}
	if errors.Is(err, lockeractor.ErrInvalidArgument) || errors.Is(err, lockeractor.ErrNotReady) {
		return Failed
	}
	return Unknown
}
