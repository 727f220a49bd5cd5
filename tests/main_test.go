// Package tests holds Locker's multi-node tests: three actor systems in
// one process talking over real protoactor remote on 127.0.0.1.
//
// It runs without -race: several protoactor remotes in one process race
// inside protoactor-go itself (grpclog.SetLoggerV2, MemberList reads),
// so every test here skips itself under the race detector (see
// testcluster.SkipUnderRace).
package tests

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/protoactor-locker/locker/internal/testcluster"
)

// TestMain fails the package if goroutines outlive the tests.
func TestMain(m *testing.M) {
	// Only protoactor's and gRPC's own leftovers are ignored; see
	// testcluster.LeakOptions for each and why.
	goleak.VerifyTestMain(withTotals{m}, testcluster.LeakOptions()...)
}

// withTotals runs the tests, then prints the totals of the fault tests'
// summaries (printFaultTotals).
type withTotals struct{ m *testing.M }

// Run runs the tests and prints the totals.
func (w withTotals) Run() int {
	code := w.m.Run()
	printFaultTotals()
	return code
}
