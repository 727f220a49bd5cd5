package linearize

import "fmt"

// Summary is what every part of the fault suite reports: the histories it
// checked, the operations it recorded, the faults it injected, the
// violations it found, and how many of its runs judged something (Runs,
// Judged: a run whose checks had nothing to look at, or could not
// decide, is not judged). .ci/run adds up the lines String makes.
type Summary struct {
	Histories, Operations, Faults, Violations int
	Runs, Judged                              int
}

// String returns "N histories, M operations, K faults, V violations, J of
// R runs judged".
func (s Summary) String() string {
	return fmt.Sprintf("%d histories, %d operations, %d faults, %d violations, %d of %d runs judged",
		s.Histories, s.Operations, s.Faults, s.Violations, s.Judged, s.Runs)
}

// Judges reports whether a run whose linearizability check returned r
// judged something: it checked writes, and decided every key.
func Judges(r Result) bool {
	return r.Keys > 0 && r.Operations > 0 && len(r.Inconclusive) == 0
}

// RunSummary is the Summary of one run whose linearizability check
// returned r: it judged if Judges(r) and it injected faults.
func RunSummary(r Result, operations, faults, violations int) Summary {
	s := Summary{Histories: r.Keys, Operations: operations, Faults: faults, Violations: violations, Runs: 1}
	if Judges(r) && faults > 0 {
		s.Judged = 1
	}
	return s
}
