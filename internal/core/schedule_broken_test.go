package core

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// failureRecorder is a testing.TB whose Fatal and Fatalf record the
// failure and end the goroutine instead of failing the test: it runs a
// checker that must fail, on its own goroutine.
type failureRecorder struct {
	testing.TB
	failure string
}

func (r *failureRecorder) Helper() {}

func (r *failureRecorder) Fatalf(format string, args ...any) {
	r.failure = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *failureRecorder) Fatal(args ...any) {
	r.failure = fmt.Sprint(args...)
	runtime.Goexit()
}

func (r *failureRecorder) Errorf(format string, args ...any) { r.Fatalf(format, args...) }

// recordFailure runs run with a failureRecorder and returns what it
// failed with ("" if it did not).
func recordFailure(t *testing.T, run func(tb testing.TB)) string {
	r := &failureRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		run(r)
	}()
	<-done
	return r.failure
}

// TestRandomSchedulesCatchBrokenQuorums proves runSchedule's checker can
// fail: with W = 1 on three masters (quorums that need not intersect),
// the schedules of TestRandomSchedules grant a lock while another holder's
// lease runs, or hand out a token not above an earlier one, and the
// checker must say so for most seeds.
func TestRandomSchedulesCatchBrokenQuorums(t *testing.T) {
	const seeds = 10
	caught, exclusion := 0, 0
	for seed := range seeds {
		failure := recordFailure(t, func(tb testing.TB) { runSchedule(tb, int64(2*seed), 1000, 3, 1) })
		if failure == "" {
			continue
		}
		caught++
		if strings.Contains(failure, "granted at") {
			exclusion++
		}
		first, _, _ := strings.Cut(failure, "\n")
		t.Logf("seed %d: %s", 2*seed, first)
	}
	if caught < seeds/2 {
		t.Fatalf("the checker caught %d of %d schedules with W = 1: it cannot fail", caught, seeds)
	}
	if exclusion == 0 {
		t.Fatal("no schedule with W = 1 failed the mutual exclusion check")
	}
}
