package sim

import (
	"fmt"
	"math"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/protoactor-locker/locker/internal/core"
	"github.com/protoactor-locker/locker/messages"
)

const (
	opLock    = messages.WriteKind_WRITE_KIND_LOCK
	opUpdate  = messages.WriteKind_WRITE_KIND_UPDATE
	opExtend  = messages.WriteKind_WRITE_KIND_EXTEND
	opRelease = messages.WriteKind_WRITE_KIND_RELEASE
)

// Op is one client write as the history records it. Times are simulated
// real time in nanoseconds since Epoch.
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
	// Checked is true for the ops of long keys, whose histories are
	// checked for linearizability.
	Checked bool
}

func (o *Op) String() string {
	s := fmt.Sprintf("#%d client %d %v %q %q", o.ID, o.Client, o.Kind, o.Key, o.Value)
	if o.Kind == opUpdate {
		s += fmt.Sprintf("->%q", o.NewValue)
	}
	ret := "∞"
	if o.Return != math.MaxInt64 {
		ret = time.Duration(o.Return).String()
	}
	return s + fmt.Sprintf(" [%v, %s] %v token %d", time.Duration(o.Call), ret, o.Result, o.Token)
}

// History is every client write of a run, in order of invocation.
type History struct {
	Ops []*Op
}

func (h *History) invoke(client int, checked bool, op core.Op, now int64) *Op {
	o := &Op{
		ID: len(h.Ops) + 1, Client: client, Key: op.Key, Kind: op.Kind, Value: string(op.Value),
		NewValue: string(op.NewValue), LeaseMs: op.LeaseMs, Call: now, Return: math.MaxInt64, Checked: checked,
	}
	h.Ops = append(h.Ops, o)
	return o
}

func (o *Op) finish(r Outcome, token uint64, now int64) {
	o.Result, o.Token = r, token
	if r != Unknown {
		o.Return = now
	}
}

// closeOpen makes the writes still pending at the end of the run
// unknown: they may take effect at any time after their invocation.
func (h *History) closeOpen() {
	for _, o := range h.Ops {
		if o.Result == Pending {
			o.Result = Unknown
		}
	}
}

// Operations returns the checked writes as porcupine operations. A write
// with an unknown outcome keeps an open-ended return time
// (math.MaxInt64), as porcupine intends: it may take effect at any point
// after its invocation, or never (it is then linearized last).
func (h *History) Operations() []porcupine.Operation {
	var ops []porcupine.Operation
	for _, o := range h.Ops {
		if !o.Checked {
			continue
		}
		ops = append(ops, porcupine.Operation{ClientId: o.Client, Input: o, Call: o.Call, Output: o.Result, Return: o.Return})
	}
	return ops
}

// keyModel is the sequential specification of one key of the store,
// without time: a lease never expires within a checked history.
type keyModel struct {
	held  bool
	value string
	token uint64 // the token of the holder's last Lock or Update
	max   uint64 // the largest token of any Lock or Update so far
}

// Model is the porcupine model of the store, partitioned by key: Lock
// succeeds only on a free key, Update, ExtendLease and Release only with
// the key's current value, Lock and Update return a token larger than
// every earlier one, ExtendLease and Release the holder's. A failed
// write changes nothing; a write with an unknown outcome changes the key
// as a successful one would, or nothing.
var Model = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(*Op).Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return keyModel{} },
	Step: func(state, input, output any) (bool, any) {
		st, o, r := state.(keyModel), input.(*Op), output.(Outcome)
		if r == Failed {
			return true, st
		}
		next, ok := apply(st, o, r == OK)
		if r == Unknown && !ok {
			return true, st // it did not take effect
		}
		return ok, next
	},
	DescribeOperation: func(input, output any) string {
		o := input.(*Op)
		return fmt.Sprintf("c%d %v %s -> %v %d", o.Client, o.Kind, o.Value, output, o.Token)
	},
	DescribeState: func(state any) string {
		st := state.(keyModel)
		if !st.held {
			return fmt.Sprintf("free (max token %d)", st.max)
		}
		return fmt.Sprintf("%s token %d (max %d)", st.value, st.token, st.max)
	},
}

// apply returns the key after o took effect, and whether o could.
// known says whether o's answer is known (its token is its effect's).
// A write with an unknown outcome may carry no token (its coordinator
// stopped before it could tell): the key's token is then unknown (0)
// until a later answer names it.
func apply(st keyModel, o *Op, known bool) (keyModel, bool) {
	holds := st.held && st.value == o.Value
	switch o.Kind {
	case opLock:
		if st.held || (o.Token != 0 && o.Token <= st.max) {
			return st, false
		}
		return keyModel{held: true, value: o.Value, token: o.Token, max: max(st.max, o.Token)}, true
	case opUpdate:
		if !holds || (o.Token != 0 && o.Token <= st.max) {
			return st, false
		}
		return keyModel{held: true, value: o.NewValue, token: o.Token, max: max(st.max, o.Token)}, true
	case opExtend, opRelease:
		if !holds || (known && st.token != 0 && o.Token != st.token) {
			return st, false
		}
		if o.Kind == opRelease {
			return keyModel{max: st.max}, true
		}
		if known && st.token == 0 {
			st.token, st.max = o.Token, max(st.max, o.Token)
		}
		return st, true
	}
	return st, false
}

// checkLinearizable checks the long keys' history with porcupine.
func (s *Sim) checkLinearizable() {
	ops := s.hist.Operations()
	if len(ops) == 0 {
		return
	}
	for _, part := range Model.Partition(ops) {
		key := part[0].Input.(*Op).Key
		res, info := porcupine.CheckOperationsVerbose(Model, part, s.cfg.LinearizabilityTimeout)
		switch res {
		case porcupine.Illegal:
			s.res.Violations = append(s.res.Violations, Violation{
				Seed: s.cfg.Seed, Step: s.step, At: time.Duration(s.now), Kind: "linearizability",
				Msg: fmt.Sprintf("the history of %q (%d writes) is not linearizable; longest linearizable prefix ends %s",
					key, len(part), describePartial(info)),
			})
		case porcupine.Unknown:
			s.res.Inconclusive = append(s.res.Inconclusive, key)
		}
	}
}

// describePartial names the writes of the longest partial linearization
// porcupine found.
func describePartial(info porcupine.LinearizationInfo) string {
	best := []porcupine.Operation(nil)
	for _, part := range info.PartialLinearizationsOperations() {
		for _, lin := range part {
			if len(lin) > len(best) {
				best = lin
			}
		}
	}
	s := ""
	for i := max(0, len(best)-8); i < len(best); i++ {
		s += "\n  " + best[i].Input.(*Op).String()
	}
	return s
}
