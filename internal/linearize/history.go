package linearize

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/protoactor-locker/locker/messages"
)

// Outcome is the outcome class of a write as its client sees it.
type Outcome uint8

// The outcome classes of a write.
const (
	Pending Outcome = iota // not answered (yet)
	OK                     // it took effect
	Failed                 // it did not take effect: nothing was committed
	Unknown                // it failed after commits went out: it may have taken effect
)

// String returns "pending", "ok", "fail" or "unknown".
func (r Outcome) String() string {
	switch r {
	case OK:
		return "ok"
	case Failed:
		return "fail"
	case Unknown:
		return "unknown"
	}
	return "pending"
}

// Op is one client write as a History records it. Times are
// nanoseconds since the start of the history (real or simulated).
type Op struct {
	ID       int // 1, 2, ... in order of invocation
	Client   int
	Key      string
	Kind     messages.WriteKind
	Value    string // the value locked with, or expected
	NewValue string // Update only
	LeaseMs  int64
	Call     int64
	Return   int64 // math.MaxInt64 while pending or when the outcome is unknown
	Result   Outcome
	Token    uint64 // the token of the answer (0 when nothing was committed)
	// Checked is true for the writes whose key's history is checked for
	// linearizability (keys whose leases outlast the run).
	Checked bool
}

// String describes the write, its interval and its answer.
func (o *Op) String() string {
	s := fmt.Sprintf("#%d client %d %v %q %q", o.ID, o.Client, o.Kind, o.Key, o.Value)
	if o.Kind == messages.WriteKind_WRITE_KIND_UPDATE {
		s += fmt.Sprintf("->%q", o.NewValue)
	}
	ret := "∞"
	if o.Return != math.MaxInt64 {
		ret = time.Duration(o.Return).String()
	}
	return s + fmt.Sprintf(" [%v, %s] %v token %d", time.Duration(o.Call), ret, o.Result, o.Token)
}

// History is every client write of a run, in order of invocation. It is
// safe for concurrent use; the zero History is empty and ready.
type History struct {
	mu  sync.Mutex // guards ops and every recorded Op's answer fields
	ops []*Op
}

// Since returns the time since start in nanoseconds, the unit of a
// History recorded on a real clock.
func Since(start time.Time) int64 { return int64(time.Since(start)) }

// Invoke records the invocation of a write at time now and returns its
// record, to be finished with Finish.
func (h *History) Invoke(client int, checked bool, key string, kind messages.WriteKind, value, newValue string, leaseMs, now int64) *Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	o := &Op{
		ID: len(h.ops) + 1, Client: client, Key: key, Kind: kind, Value: value,
		NewValue: newValue, LeaseMs: leaseMs, Call: now, Return: math.MaxInt64, Checked: checked,
	}
	h.ops = append(h.ops, o)
	return o
}

// Finish records the answer of o at time now: its outcome and the token
// it carried. An unknown outcome keeps the return time open-ended.
func (h *History) Finish(o *Op, r Outcome, token uint64, now int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	o.Result, o.Token = r, token
	if r != Unknown && r != Pending {
		o.Return = now
	}
}

// CloseOpen makes the writes still pending unknown: they may take
// effect at any time after their invocation. Call it at the end of a
// run, before Operations.
func (h *History) CloseOpen() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, o := range h.ops {
		if o.Result == Pending {
			o.Result = Unknown
		}
	}
}

// Ops returns a copy of the recorded writes, in order of invocation.
func (h *History) Ops() []Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Op, len(h.ops))
	for i, o := range h.ops {
		out[i] = *o
	}
	return out
}

// Len returns the number of recorded writes.
func (h *History) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.ops)
}

// Operations returns the checked writes as porcupine operations. A
// pending write counts as unknown. A write with an unknown outcome keeps
// an open-ended return time (math.MaxInt64), as porcupine intends: it
// may take effect at any point after its invocation, or never.
func (h *History) Operations() []porcupine.Operation {
	var ops []porcupine.Operation
	for _, o := range h.Ops() {
		if !o.Checked {
			continue
		}
		if o.Result == Pending {
			o.Result, o.Return = Unknown, math.MaxInt64
		}
		op := o
		ops = append(ops, porcupine.Operation{ClientId: o.Client, Input: &op, Call: o.Call, Output: o.Result, Return: o.Return})
	}
	return ops
}
