//go:build race

package testcluster

// RaceEnabled reports whether the race detector is on.
const RaceEnabled = true
