package sim

import (
	"time"

	"github.com/protoactor-locker/locker/internal/core"
	"github.com/protoactor-locker/locker/internal/linearize"
	"github.com/protoactor-locker/locker/messages"
)

const (
	opLock    = messages.WriteKind_WRITE_KIND_LOCK
	opUpdate  = messages.WriteKind_WRITE_KIND_UPDATE
	opExtend  = messages.WriteKind_WRITE_KIND_EXTEND
	opRelease = messages.WriteKind_WRITE_KIND_RELEASE
)

// Op is one client write as the history records it (see
// internal/linearize). Times are simulated real time in nanoseconds
// since Epoch.
type Op = linearize.Op

// History is every client write of a run, in order of invocation.
type History = linearize.History

// Model is the porcupine model of the store (linearize.Model).
var Model = linearize.Model

// invoke records op by client at simulated time now.
func (s *Sim) invoke(client int, checked bool, op core.Op, now int64) *Op {
	return s.hist.Invoke(client, checked, op.Key, op.Kind, string(op.Value), string(op.NewValue), op.LeaseMs, now)
}

// checkLinearizable checks the long keys' history with porcupine.
func (s *Sim) checkLinearizable() {
	r := linearize.Check(s.hist.Operations(), s.cfg.LinearizabilityTimeout)
	for _, v := range r.Violations {
		s.res.Violations = append(s.res.Violations, Violation{
			Seed: s.cfg.Seed, Step: s.step, At: time.Duration(s.now), Kind: "linearizability", Msg: v.Error(),
		})
	}
	s.res.Inconclusive = append(s.res.Inconclusive, r.Inconclusive...)
}
