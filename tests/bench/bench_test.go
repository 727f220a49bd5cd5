package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/protoactor-locker/locker/messages"
)

// BenchmarkRawRTT is the physical floor: a RequestFuture of a small proto
// message from node 0 to an echo actor on node 1 and back, over the same
// protoactor remote connection the peers use.
func BenchmarkRawRTT(b *testing.B) {
	nodes := cluster(b)
	root := nodes[0].System.Root
	msg := &messages.Read{Request: 1, Key: "bench"}
	samples := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, err := root.RequestFuture(fixture.echo, msg, 5*time.Second).Result(); err != nil {
			b.Fatal(err)
		}
		samples = append(samples, time.Since(start))
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
	p50, p99 := reportLatency(b, "", samples)
	record("rtt", func() { summary.rttP50, summary.rttP99 = p50, p99 })
}

// BenchmarkRawFanout is the floor of one quorum round: node 0 sends the
// same request to the echo actors on nodes 1 and 2 at once; first-p50 is
// when the first answer is back (with node 0's own vote that makes W=2),
// both-p50 when both are. A Lock needs two such rounds (promise, commit).
func BenchmarkRawFanout(b *testing.B) {
	nodes := cluster(b)
	root := nodes[0].System.Root
	msg := &messages.Read{Request: 1, Key: "bench"}
	first := make([]time.Duration, 0, b.N)
	both := make([]time.Duration, 0, b.N)
	answers := make(chan time.Time, 2)
	wait := func(f *actor.Future) {
		if _, err := f.Result(); err != nil {
			b.Error(err)
		}
		answers <- time.Now()
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		go wait(root.RequestFuture(fixture.echo, msg, 5*time.Second))
		go wait(root.RequestFuture(fixture.echo2, msg, 5*time.Second))
		t1, t2 := <-answers, <-answers
		first = append(first, t1.Sub(start))
		both = append(both, t2.Sub(start))
	}
	b.StopTimer()
	p50, _ := reportLatency(b, "first-", first)
	reportLatency(b, "both-", both)
	record("fanout", func() { summary.fanP50 = p50 })
}

// BenchmarkLockRelease is one caller on node 0, uncontended: each
// iteration locks a key and releases it; Lock and Release are timed
// separately (ns/op is the pair).
func BenchmarkLockRelease(b *testing.B) {
	nodes := cluster(b)
	l := nodes[0].Locker
	ctx := context.Background()
	key, value := "bench/uncontended", []byte("holder")
	locks := make([]time.Duration, 0, b.N)
	releases := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, err := l.Lock(ctx, key, value, lease); err != nil {
			b.Fatal(err)
		}
		mid := time.Now()
		if _, err := l.Release(ctx, key, value); err != nil {
			b.Fatal(err)
		}
		end := time.Now()
		locks = append(locks, mid.Sub(start))
		releases = append(releases, end.Sub(mid))
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/pair")
	lp50, lp99 := reportLatency(b, "lock-", locks)
	rp50, rp99 := reportLatency(b, "release-", releases)
	record("lock", func() {
		summary.lockP50, summary.lockP99 = lp50, lp99
		summary.releaseP50, summary.releaseP99 = rp50, rp99
	})
}

// BenchmarkPairs runs lock+release pairs from many concurrent callers,
// spread round-robin over the three peers (any peer coordinates), each
// caller on a key of its own. b.N is the total number of pairs.
func BenchmarkPairs(b *testing.B) {
	for _, callers := range []int{8, 64} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			nodes := cluster(b)
			ctx := context.Background()
			var next atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, callers)
			pairLat := make([][]time.Duration, callers)
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime()
			for c := 0; c < callers; c++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					l := nodes[c%len(nodes)].Locker
					key, value := fmt.Sprintf("bench/pairs/%d/%d", callers, c), []byte("holder")
					for next.Add(1) <= int64(b.N) {
						t0 := time.Now()
						if _, err := l.Lock(ctx, key, value, lease); err != nil {
							errs <- fmt.Errorf("caller %d lock: %w", c, err)
							return
						}
						if _, err := l.Release(ctx, key, value); err != nil {
							errs <- fmt.Errorf("caller %d release: %w", c, err)
							return
						}
						pairLat[c] = append(pairLat[c], time.Since(t0))
					}
				}()
			}
			wg.Wait()
			elapsed, cpu := time.Since(start), cpuTime()-cpu0
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			rate := float64(b.N) / elapsed.Seconds()
			b.ReportMetric(rate, "pairs/s")
			b.ReportMetric(float64(cpu)/float64(time.Microsecond)/float64(b.N), "cpu-µs/pair")
			var all []time.Duration
			for _, s := range pairLat {
				all = append(all, s...)
			}
			reportLatency(b, "pair-", all)
			cpuPerPair := float64(cpu) / float64(time.Microsecond) / float64(b.N)
			record(fmt.Sprintf("pairs%d", callers), func() {
				summary.pairs[callers] = rate
				summary.pairsCPU[callers] = cpuPerPair
			})
		})
	}
}

// BenchmarkDirtyRead reads a held key locally on node 0.
func BenchmarkDirtyRead(b *testing.B) {
	nodes := cluster(b)
	l := nodes[0].Locker
	key, value := "bench/dirty", []byte("holder")
	if _, err := l.Lock(context.Background(), key, value, lease); err == nil {
		b.Cleanup(func() { _, _ = l.Release(context.Background(), key, value) })
	} else if _, err := l.DirtyRead(key); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := l.DirtyRead(key); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	allocs := testing.AllocsPerRun(1000, func() { _, _ = l.DirtyRead(key) })
	record("dirty", func() { summary.dirtyNs, summary.dirtyAllocs = ns, int64(allocs) })
}
