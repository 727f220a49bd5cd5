// Package bench measures Locker on three local peers (all masters, W=2)
// talking over real protoactor remote on 127.0.0.1, next to the raw
// protoactor remote round trip between the same actor systems, which is
// the floor a quorum write cannot beat:
//
//	go test -run '^$' -bench . -benchtime=2s ./tests/bench/
//
// (about 30 s on a 2-core machine). BenchmarkRawRTT and BenchmarkRawFanout
// are the floors (one request, and one request to two peers at once: a
// quorum round); BenchmarkLockRelease is one caller's Lock and Release
// latency; BenchmarkPairs is lock+release throughput with 8 and 64
// callers; BenchmarkDirtyRead the local read; BenchmarkCorePair the
// protocol core alone, without transport. Percentiles are reported with
// b.ReportMetric, CPU per operation (user+system time of the process,
// steadier than wall-clock figures on a shared machine) as cpu-µs/op or
// cpu-µs/pair; TestMain prints a summary table for the README.
package bench

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/protoactor-locker/locker/internal/testcluster"
	"github.com/protoactor-locker/locker/messages"
)

// peers is the number of local peers, all masters; W is their majority.
const peers = 3

// lease is a typical lock lease, long enough never to run out during a
// benchmark (released keys keep their lease timer until it is due).
const lease = 10 * time.Second

// fixture is the cluster shared by every benchmark of the run. It is
// started by the first benchmark that needs it and stopped by TestMain,
// so `go test` without -bench starts nothing.
var fixture struct {
	once  sync.Once
	err   error
	nodes []*testcluster.Node
	echo  *actor.PID // echo actor on node 1, for the raw round trip
	echo2 *actor.PID // echo actor on node 2, for the fan-out round trip
}

// echoActor answers every message with itself.
type echoActor struct{}

func (echoActor) Receive(ctx actor.Context) {
	if m, ok := ctx.Message().(*messages.Read); ok {
		ctx.Respond(m)
	}
}

// cluster returns the three started nodes, configured as masters with
// W=2 and warmed up (every connection between them open).
func cluster(b *testing.B) []*testcluster.Node {
	b.Helper()
	fixture.once.Do(func() { fixture.err = startCluster() })
	if fixture.err != nil {
		b.Fatalf("starting the cluster: %v", fixture.err)
	}
	return fixture.nodes
}

func startCluster() error {
	for i := 0; i < peers; i++ {
		n, err := testcluster.StartNode()
		if err != nil {
			return fmt.Errorf("node %d: %w", i, err)
		}
		fixture.nodes = append(fixture.nodes, n)
	}
	all := make([]string, 0, peers)
	for _, n := range fixture.nodes {
		all = append(all, n.Addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l0 := fixture.nodes[0].Locker
	if err := l0.SetNodes(ctx, all, all, nil); err != nil {
		return fmt.Errorf("SetNodes: %w", err)
	}
	if err := l0.SetW(ctx, all, peers/2+1); err != nil {
		return fmt.Errorf("SetW: %w", err)
	}
	echoProps := actor.PropsFromProducer(func() actor.Actor { return echoActor{} })
	for i, dst := range []**actor.PID{&fixture.echo, &fixture.echo2} {
		n := fixture.nodes[i+1]
		pid, err := n.System.Root.SpawnNamed(echoProps, "bench-echo")
		if err != nil {
			return fmt.Errorf("spawning the echo actor on node %d: %w", i+1, err)
		}
		*dst = actor.NewPID(n.Addr, pid.Id)
	}
	// Warm up: open every peer-to-peer connection and the echo path.
	for i, n := range fixture.nodes {
		key := fmt.Sprintf("warmup/%d", i)
		for j := 0; j < 200; j++ {
			if _, err := n.Locker.Lock(ctx, key, []byte("v"), lease); err != nil {
				return fmt.Errorf("warm-up lock on node %d: %w", i, err)
			}
			if _, err := n.Locker.Release(ctx, key, []byte("v")); err != nil {
				return fmt.Errorf("warm-up release on node %d: %w", i, err)
			}
		}
	}
	for j := 0; j < 200; j++ {
		for _, e := range []*actor.PID{fixture.echo, fixture.echo2} {
			if _, err := fixture.nodes[0].System.Root.RequestFuture(e, &messages.Read{Key: "k"}, 5*time.Second).Result(); err != nil {
				return fmt.Errorf("warm-up echo: %w", err)
			}
		}
	}
	return nil
}

func stopCluster() {
	var wg sync.WaitGroup
	for _, n := range fixture.nodes {
		wg.Add(1)
		go func() { defer wg.Done(); n.Stop() }()
	}
	wg.Wait()
}

// summary holds what the last (full-length) run of each benchmark
// measured, for the table TestMain prints.
var summary struct {
	mu                     sync.Mutex
	rttP50, rttP99         time.Duration
	fanP50                 time.Duration // first answer of two parallel requests
	lockP50, lockP99       time.Duration
	releaseP50, releaseP99 time.Duration
	pairs                  map[int]float64 // callers -> pairs/s
	pairsCPU               map[int]float64 // callers -> CPU µs per pair (whole process)
	coreCPU                float64         // CPU µs per pair of the protocol core alone
	coreAllocs             float64         // allocations per pair of the protocol core alone
	dirtyNs                float64
	dirtyAllocs            int64
	have                   map[string]bool
}

func record(name string, f func()) {
	summary.mu.Lock()
	defer summary.mu.Unlock()
	if summary.have == nil {
		summary.have = map[string]bool{}
		summary.pairs = map[int]float64{}
		summary.pairsCPU = map[int]float64{}
	}
	summary.have[name] = true
	f()
}

func TestMain(m *testing.M) {
	code := m.Run()
	if len(summary.have) > 0 {
		printSummary()
	}
	stopCluster()
	os.Exit(code)
}

func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond)) }

func printSummary() {
	s := &summary
	s.mu.Lock()
	defer s.mu.Unlock()
	na := "n/a"
	col := func(name string, v string) string {
		if !s.have[name] {
			return na
		}
		return v
	}
	ratio := na
	if s.have["rtt"] && s.have["lock"] && s.rttP50 > 0 {
		ratio = fmt.Sprintf("%.2fx", float64(s.lockP50)/float64(s.rttP50))
	}
	header := []string{"raw RTT p50", "Lock p50 (ratio)", "Release p50", "pairs/s@8", "pairs/s@64", "DirtyRead ns"}
	row := []string{
		col("rtt", us(s.rttP50)),
		col("lock", us(s.lockP50)+" ("+ratio+")"),
		col("lock", us(s.releaseP50)),
		col("pairs8", fmt.Sprintf("%.0f", s.pairs[8])),
		col("pairs64", fmt.Sprintf("%.0f", s.pairs[64])),
		col("dirty", fmt.Sprintf("%.1f ns, %d allocs", s.dirtyNs, s.dirtyAllocs)),
	}
	detail := []string{
		col("rtt", "p99 "+us(s.rttP99)),
		col("lock", "p99 "+us(s.lockP99)),
		col("lock", "p99 "+us(s.releaseP99)),
		col("pairs8", fmt.Sprintf("%.0f µs CPU/pair", s.pairsCPU[8])),
		col("pairs64", fmt.Sprintf("%.0f µs CPU/pair", s.pairsCPU[64])),
		"",
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nLocker on %d local peers (all masters, W=%d), protoactor remote on 127.0.0.1\n\n", peers, peers/2+1)
	fmt.Fprintf(&b, "| %s |\n", strings.Join(header, " | "))
	fmt.Fprintf(&b, "|%s\n", strings.Repeat("---|", len(header)))
	fmt.Fprintf(&b, "| %s |\n", strings.Join(row, " | "))
	fmt.Fprintf(&b, "| %s |\n", strings.Join(detail, " | "))
	if s.have["fanout"] && s.have["rtt"] && s.rttP50 > 0 {
		fmt.Fprintf(&b, "\nfloor of one quorum round (node 0 asks nodes 1 and 2 at once, first answer) p50 %s = %.2fx raw RTT;\n"+
			"a Lock is two rounds (promise, commit), so its floor here is about %.1fx raw RTT\n",
			us(s.fanP50), float64(s.fanP50)/float64(s.rttP50), 2*float64(s.fanP50)/float64(s.rttP50))
	}
	if s.have["core"] {
		fmt.Fprintf(&b, "protocol core alone (3 in-memory cores, no transport): %.1f µs CPU and %.0f allocations per lock+release pair\n",
			s.coreCPU, s.coreAllocs)
	}
	fmt.Fprintf(&b, "\ntargets: Lock p50 <= 2.5x raw RTT p50; >= 20000 pairs/s @64; DirtyRead <= 50 ns, 0 allocs\n")
	fmt.Print(b.String())
}

// percentile returns the p-th percentile (0..100) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

// reportLatency sorts samples, reports p50 and p99 under prefix and
// returns them.
func reportLatency(b *testing.B, prefix string, samples []time.Duration) (p50, p99 time.Duration) {
	slices.Sort(samples)
	p50, p99 = percentile(samples, 50), percentile(samples, 99)
	b.ReportMetric(float64(p50)/float64(time.Microsecond), prefix+"p50-µs")
	b.ReportMetric(float64(p99)/float64(time.Microsecond), prefix+"p99-µs")
	return p50, p99
}
