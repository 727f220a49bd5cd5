package bench

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/protoactor-locker/locker/internal/core"
	"github.com/protoactor-locker/locker/messages"
)

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// coreNet is three protocol cores wired to each other in memory: what
// Locker's own code costs per write, without protoactor, gRPC or
// serialisation.
type coreNet struct {
	cores   map[string]*core.Core
	addrs   []string
	answers []core.Answer // every core's answers since the last pump
}

func newCoreNet(b *testing.B) *coreNet {
	n := &coreNet{cores: map[string]*core.Core{}}
	for i := 0; i < peers; i++ {
		a := fmt.Sprintf("127.0.0.1:%d", 9000+i)
		n.addrs = append(n.addrs, a)
		n.cores[a] = core.New(core.Config{
			Self: a, W: 1, RequestTimeout: time.Second, WriteLockTimeout: 2 * time.Second,
			ReplicationInterval: 100 * time.Millisecond, MaxMessageBytes: 3 << 10,
			Clock: wallClock{}, Seed: uint64(i) << 40,
		})
	}
	c0 := n.cores[n.addrs[0]]
	check := func(id core.RequestID) {
		n.pump()
		if len(n.answers) != 1 || n.answers[0].ID != id {
			b.Fatalf("answers %+v, want one to request %d", n.answers, id)
		}
		for a, r := range n.answers[0].Admin {
			if r.Reason != messages.Reason_REASON_UNSPECIFIED {
				b.Fatalf("%s: %v %s", a, r.Reason, r.Message)
			}
		}
	}
	check(c0.SetNodes(n.addrs, n.addrs, nil))
	check(c0.SetW(n.addrs, peers/2+1))
	return n
}

// pump delivers every message in flight until none is left, and keeps
// the answers the cores gave on the way in n.answers.
func (n *coreNet) pump() {
	n.answers = n.answers[:0]
	for more := true; more; {
		more = false
		for _, from := range n.addrs {
			out := n.cores[from].TakeOutput()
			n.answers = append(n.answers, out.Answers...)
			for _, env := range out.Messages {
				more = true
				n.cores[env.To].Step(from, env.Msg)
			}
			n.cores[from].Recycle(out) // as the actor shell does
		}
	}
}

// BenchmarkCorePair is one lock+release pair coordinated by core 0 of
// three in-memory cores (all masters, W=2): the CPU and allocations of
// Locker's protocol code alone, every message of the write included.
func BenchmarkCorePair(b *testing.B) {
	n := newCoreNet(b)
	c0 := n.cores[n.addrs[0]]
	value := []byte("holder")
	lock := []core.Op{{Kind: messages.WriteKind_WRITE_KIND_LOCK, Key: "bench/core", Value: value, LeaseMs: 10_000}}
	release := []core.Op{{Kind: messages.WriteKind_WRITE_KIND_RELEASE, Key: "bench/core", Value: value}}
	run := func(ops []core.Op) {
		id := c0.Submit(ops)
		n.pump()
		if len(n.answers) != 1 || n.answers[0].ID != id || len(n.answers[0].Outcomes) != 1 || !n.answers[0].Outcomes[0].OK {
			b.Fatalf("%v: %+v", ops[0].Kind, n.answers)
		}
	}
	b.ReportAllocs()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	mallocs0 := ms.Mallocs
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		run(lock)
		run(release)
		if i%64 == 0 { // what the peers' timers do: expire what is due
			for _, c := range n.cores {
				c.Tick()
			}
		}
	}
	cpu := float64(cpuTime()-cpu0) / float64(time.Microsecond) / float64(b.N)
	b.StopTimer()
	runtime.ReadMemStats(&ms)
	allocs := float64(ms.Mallocs-mallocs0) / float64(b.N)
	b.ReportMetric(cpu, "cpu-µs/pair")
	record("core", func() { summary.coreCPU, summary.coreAllocs = cpu, allocs })
}
