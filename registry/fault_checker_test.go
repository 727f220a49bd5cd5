package registry_test

import (
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"
)

// TestFaultCheckerFindsBrokenHistories feeds the registry fault test's
// checker (world.write and world.judge, the part of world.observe after
// the lookup) known-bad histories without a cluster: each must be
// reported, and the healthy one must not.
func TestFaultCheckerFindsBrokenHistories(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	type step func(w *world, a, b *holder)
	write := func(h func(a, b *holder) *holder, token uint64, deadline, now int) step {
		return func(w *world, a, b *holder) { w.writeAt(h(a, b), token, at(deadline), at(now)) }
	}
	// resolve: node 0 resolves the name to h; believed says whether the
	// node believed h held it before and after the lookup.
	resolve := func(h func(a, b *holder) *holder, believed bool) step {
		return func(w *world, a, b *holder) {
			hs := w.byName[a.name]
			pre := make([]bool, len(hs))
			for i, x := range hs {
				pre[i] = believed && x == h(a, b)
			}
			w.judge(0, a.name, hs, pre, h(a, b).pid, believed, at(0))
		}
	}
	first := func(a, _ *holder) *holder { return a }
	second := func(_, b *holder) *holder { return b }
	for _, tc := range []struct {
		name   string
		steps  []step
		broken string // a piece of the violation expected, "" for none
	}{
		{"a holder, then a later one with a larger token; lookups follow", []step{
			write(first, 5, 100, 10), write(first, 5, 200, 50), resolve(first, true),
			write(second, 6, 400, 300), resolve(second, true),
			write(first, 5, 250, 350), // late and stale, its lease over: fenced, no violation
		}, ""},
		{"two holders write with one token", []step{
			write(first, 5, 100, 10), write(second, 5, 100, 20),
		}, "both wrote with token 5"},
		{"a write refused while its holder's lease runs", []step{
			write(second, 6, 100, 10), write(first, 5, 100, 20),
		}, "refused (largest 6) while its lease runs"},
		{"a holder renews past a refusal of its write", []step{
			write(second, 6, 100, 10), write(first, 5, 15, 20), write(first, 5, 500, 30),
		}, "renewed its lease"},
		{"a lookup resolves to a holder its node no longer believes in", []step{
			resolve(first, false),
		}, "past its own lease"},
		{"a lookup goes back to an older holder", []step{
			resolve(second, true), resolve(first, true),
		}, "back to"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld()
			a := &holder{name: "svc", node: 0, pid: actor.NewPID("n0", "a"), token: 5}
			b := &holder{name: "svc", node: 1, pid: actor.NewPID("n1", "b"), token: 6}
			w.add(a)
			w.add(b)
			for _, s := range tc.steps {
				s(w, a, b)
			}
			if tc.broken == "" {
				require.Empty(t, w.violations)
				require.NotZero(t, w.writes)
				return
			}
			require.NotEmpty(t, w.violations)
			require.Contains(t, w.violations[0], tc.broken)
		})
	}
}
