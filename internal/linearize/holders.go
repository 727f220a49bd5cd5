package linearize

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"

	"github.com/protoactor-locker/locker/messages"
)

// Holding is one holder's time with a resource (a key, a name): from
// Start to End, nanoseconds on one clock shared by every process of the
// run (End math.MaxInt64 when it never ended), under fencing token
// Token.
type Holding struct {
	Resource string
	Holder   string
	Token    uint64
	Start    int64
	End      int64
}

// String describes the holding.
func (h Holding) String() string {
	end := "∞"
	if h.End != math.MaxInt64 {
		end = fmt.Sprint(h.End)
	}
	return fmt.Sprintf("%s held by %s [%d, %s] token %d", h.Resource, h.Holder, h.Start, end, h.Token)
}

// CheckHoldings merges the holdings of every holder, per resource, in
// order of their start, and returns one error for each holding that
// starts before an earlier one of the resource ended (two holders at
// once) and for each whose token is not larger than the token of the
// holding before it (fencing tokens must increase in holding order).
// Holdings with token 0 (a holder that was not told its token) are
// checked for overlap only.
func CheckHoldings(hs []Holding) []error {
	by := map[string][]Holding{}
	for _, h := range hs {
		by[h.Resource] = append(by[h.Resource], h)
	}
	var errs []error
	for _, res := range slices.Sorted(maps.Keys(by)) {
		list := by[res]
		slices.SortStableFunc(list, func(a, b Holding) int {
			if a.Start != b.Start {
				return cmp.Compare(a.Start, b.Start)
			}
			return cmp.Compare(a.Token, b.Token)
		})
		var last Holding // the holding that ends last so far
		var prevTok uint64
		for i, h := range list {
			if i > 0 && h.Start < last.End {
				errs = append(errs, fmt.Errorf("two holders at once: %v overlaps %v", h, last))
			}
			if h.Token != 0 {
				if prevTok != 0 && h.Token <= prevTok {
					errs = append(errs, fmt.Errorf("fencing token does not increase: %v after token %d", h, prevTok))
				}
				prevTok = h.Token
			}
			if i == 0 || h.End > last.End {
				last = h
			}
		}
	}
	return errs
}

// HoldingsOf turns the writes of a history into holdings of keys, as
// their clients count them: a Lock that succeeded holds from its answer
// until the first Release of its value (or of a value an Update by the
// same client moved it to or may have) that succeeded or may have (from that
// Release's call), or until its lease ends counted from the call of the
// Lock or of the latest ExtendLease that succeeded, whichever comes
// first. A Lock whose outcome is unknown is not counted: its client
// never acted as the holder.
func HoldingsOf(ops []Op) []Holding {
	type open struct {
		h      Holding
		values map[string]bool
		lease  int64 // end of the lease as the client counts it
		client int
	}
	sorted := slices.Clone(ops)
	slices.SortStableFunc(sorted, func(a, b Op) int { return cmp.Compare(a.Call, b.Call) })
	var out []Holding
	live := map[string][]*open{} // by key
	for _, o := range sorted {
		switch o.Kind {
		case messages.WriteKind_WRITE_KIND_LOCK:
			if o.Result != OK {
				continue
			}
			live[o.Key] = append(live[o.Key], &open{
				h:      Holding{Resource: o.Key, Holder: fmt.Sprintf("client %d", o.Client), Token: o.Token, Start: o.Return, End: math.MaxInt64},
				values: map[string]bool{o.Value: true}, lease: leaseEndNs(o.Call, o.LeaseMs), client: o.Client,
			})
		case messages.WriteKind_WRITE_KIND_UPDATE:
			for _, x := range live[o.Key] {
				if o.Result != Failed && x.client == o.Client && x.values[o.Value] {
					x.values[o.NewValue] = true
				}
			}
		case messages.WriteKind_WRITE_KIND_EXTEND:
			for _, x := range live[o.Key] {
				if o.Result == OK && x.values[o.Value] && x.h.End == math.MaxInt64 {
					x.lease = max(x.lease, leaseEndNs(o.Call, o.LeaseMs))
				}
			}
		case messages.WriteKind_WRITE_KIND_RELEASE:
			if o.Result != OK && o.Result != Unknown {
				continue
			}
			for _, x := range live[o.Key] {
				if x.values[o.Value] && x.h.End == math.MaxInt64 {
					x.h.End = o.Call
				}
			}
		}
	}
	for _, key := range slices.Sorted(maps.Keys(live)) {
		for _, x := range live[key] {
			x.h.End = min(x.h.End, x.lease)
			out = append(out, x.h)
		}
	}
	return out
}

// leaseEndNs is call plus leaseMs milliseconds, saturating.
func leaseEndNs(call, leaseMs int64) int64 {
	d := leaseMs * 1e6
	if leaseMs <= 0 || call > math.MaxInt64-d {
		return math.MaxInt64
	}
	return call + d
}
