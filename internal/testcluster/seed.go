package testcluster

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Seed returns the seed of a seeded test: flagValue when it is set (not
// 0), else one from the clock. When tb fails, it logs the seed and the
// command that replays it: go test [-race] <pkg> -run '^<test>$' -count=1
// -v -<flagName>=<seed>, where <test> is the top-level test tb belongs to.
func Seed(tb testing.TB, flagValue uint64, pkg, flagName string) uint64 {
	tb.Helper()
	seed := flagValue
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	LogSeedOnFailure(tb, seed, pkg, flagName)
	return seed
}

// LogSeedOnFailure logs, when tb fails, seed and the command that replays
// it (see Seed).
func LogSeedOnFailure(tb testing.TB, seed uint64, pkg, flagName string) {
	name, _, _ := strings.Cut(tb.Name(), "/")
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("seed %d: %s", seed, ReplayCommand(seed, pkg, name, flagName))
		}
	})
}

// ReplayCommand is the go test command that runs test of pkg again with
// seed given by -flagName, under the race detector when this run is.
func ReplayCommand(seed uint64, pkg, test, flagName string) string {
	race := ""
	if RaceEnabled {
		race = " -race"
	}
	return fmt.Sprintf("go test%s %s -run '^%s$' -count=1 -v -%s=%d", race, pkg, test, flagName, seed)
}
