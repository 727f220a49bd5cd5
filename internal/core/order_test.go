package core

import (
	"fmt"
	"testing"
	"time"
)

// orderScenario drives the paths of a Core that walk several pending
// operations at once (Unreachable, Close, SetNodes to many peers, the
// writes retried under a configuration just learnt, sync deadlines) and
// returns everything they make observable, in order: every message sent
// (sender, receiver, contents) and every answer given.
func orderScenario(t *testing.T) []string {
	var log []string
	answer := func(format string, args ...any) { log = append(log, fmt.Sprintf(format, args...)) }
	keys := []string{"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"}
	lockAll := func(n *network, from, tag string) {
		for _, k := range keys {
			n.onAnswer(from, n.core(from).Submit([]Op{lockOp(k, tag, time.Minute)}), func(a Answer) { answer("%s %s %+v", tag, k, a.Outcomes) })
		}
	}
	sent := func(n *network) {
		for _, p := range n.sent {
			log = append(log, p.String())
		}
	}

	// Unreachable fails every write that needed the lost master, and
	// answers the admin requests that waited for it.
	n := masters(t, 3, n1, n2, n3)
	n.start(n4)
	n.stop(n3)
	lockAll(n, n1, "unreachable")
	for i := range 3 {
		n.onAnswer(n1, n.core(n1).SetW([]string{n1, n2, n3, n4}, 3), func(a Answer) { answer("setw %d %v", i, a.Admin) })
	}
	n.run()
	n.sleep(3 * time.Second)
	sent(n)

	// Writes refused for a stale epoch start again, each with a new
	// transaction id, once the coordinator learns the newer configuration.
	n = masters(t, 2, n1, n2, n3)
	n.setNodes(n2, []string{n2, n3}, []string{n1, n2, n3}, nil)
	lockAll(n, n1, "stale")
	n.run()
	n.sleep(3 * time.Second)
	sent(n)

	// Close answers every pending write and admin request as stopped.
	n = masters(t, 2, n1, n2, n3)
	n.holdTo(n2)
	n.holdTo(n3)
	lockAll(n, n1, "closed")
	for i := range 3 {
		n.onAnswer(n1, n.core(n1).SetNodes([]string{n1, n2, n3}, []string{n1, n2, n3}, nil), func(a Answer) { answer("setnodes %d %v", i, a.Admin) })
	}
	n.collect()
	n.stop(n1)
	sent(n)
	return log
}

// TestOutputOrderReplays checks that what a Core does does not depend on
// Go's map iteration order: a scenario that walks many pending writes,
// reads and admin requests at once gives the same messages and answers,
// in the same order, every time. Go randomises each range over a map,
// so a few runs in one process catch an order that leaks.
func TestOutputOrderReplays(t *testing.T) {
	first := orderScenario(t)
	for run := 1; run < 8; run++ {
		got := orderScenario(t)
		if i := firstDiff(first, got); i >= 0 {
			t.Fatalf("run %d differs from the first at line %d of %d/%d:\n first: %s\n  then: %s", run, i, len(first), len(got), at(first, i), at(got, i))
		}
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

func at(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return "(end)"
}
