package linearize

import "fmt"

// Summary is what every part of the fault suite reports: the histories it
// checked, the operations it recorded, the faults it injected and the
// violations it found. .ci/run adds up the lines String makes.
type Summary struct {
	Histories, Operations, Faults, Violations int
}

// String returns "N histories, M operations, K faults, V violations".
func (s Summary) String() string {
	return fmt.Sprintf("%d histories, %d operations, %d faults, %d violations", s.Histories, s.Operations, s.Faults, s.Violations)
}
