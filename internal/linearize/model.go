package linearize

import (
	"fmt"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/protoactor-locker/locker/messages"
)

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
// as a successful one would, or nothing. Inputs are *Op, outputs
// Outcome.
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
// known says whether o's answer is known (its token is its effect's):
// a Lock or Update answered OK carries a token above every earlier one,
// so a success without a token (0) is illegal. A write with an unknown
// outcome may carry no token (its coordinator stopped before it could
// tell): the key's token is then unknown (0) until a later answer names
// it.
func apply(st keyModel, o *Op, known bool) (keyModel, bool) {
	holds := st.held && st.value == o.Value
	// fenced: a Lock or Update's token is above the key's largest so far
	// (0 passes only when the outcome, and so the token, is unknown).
	fenced := o.Token > st.max || (!known && o.Token == 0)
	switch o.Kind {
	case messages.WriteKind_WRITE_KIND_LOCK:
		if st.held || !fenced {
			return st, false
		}
		return keyModel{held: true, value: o.Value, token: o.Token, max: max(st.max, o.Token)}, true
	case messages.WriteKind_WRITE_KIND_UPDATE:
		if !holds || !fenced {
			return st, false
		}
		return keyModel{held: true, value: o.NewValue, token: o.Token, max: max(st.max, o.Token)}, true
	case messages.WriteKind_WRITE_KIND_EXTEND, messages.WriteKind_WRITE_KIND_RELEASE:
		if !holds || (known && st.token != 0 && o.Token != st.token) {
			return st, false
		}
		if o.Kind == messages.WriteKind_WRITE_KIND_RELEASE {
			return keyModel{max: st.max}, true
		}
		if known && st.token == 0 {
			st.token, st.max = o.Token, max(st.max, o.Token)
		}
		return st, true
	}
	return st, false
}

// Violation is a key whose history is not linearizable.
type Violation struct {
	Key    string
	Writes int    // the key's checked writes
	Prefix string // the last writes of the longest linearizable prefix porcupine found
}

// Error describes the violation.
func (v Violation) Error() string {
	return fmt.Sprintf("the history of %q (%d writes) is not linearizable; longest linearizable prefix ends %s", v.Key, v.Writes, v.Prefix)
}

// Result is what Check found.
type Result struct {
	Keys       int // keys checked
	Operations int // writes checked
	Violations []Violation
	// Inconclusive lists the keys whose check ran out of time.
	Inconclusive []string
}

// Check checks ops (from History.Operations) key by key against Model,
// giving each key at most timeout (0: no limit).
func Check(ops []porcupine.Operation, timeout time.Duration) Result {
	var r Result
	if len(ops) == 0 {
		return r
	}
	r.Operations = len(ops)
	for _, part := range Model.Partition(ops) {
		r.Keys++
		key := part[0].Input.(*Op).Key
		res, info := porcupine.CheckOperationsVerbose(Model, part, timeout)
		switch res {
		case porcupine.Illegal:
			r.Violations = append(r.Violations, Violation{Key: key, Writes: len(part), Prefix: describePartial(info)})
		case porcupine.Unknown:
			r.Inconclusive = append(r.Inconclusive, key)
		}
	}
	return r
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
