// Package lockertest is test tooling for programs that use Locker, as
// raft ships rafttest: Faults injects network and process faults into the
// peers started with WithFaults (drop, delay and reorder, duplicate,
// partition and heal, pause and resume a peer), and DriftClock runs a
// peer's clock up to MaxDrift fast or slow.
//
//	f := lockertest.NewFaults(seed)                        // one per process, or one per peer
//	l, err := lockeractor.Start(system, lockertest.WithFaults(f))
//	f.Partition([]string{a, b}, []string{c, d, e})        // a, b cannot reach c, d, e, and back
//	f.Heal()
//	f.Drop(lockertest.AnyAddress, c, 1)                   // every message to c is lost
//	f.Delay(lockertest.AnyAddress, lockertest.AnyAddress, 0, 20*time.Millisecond) // reordering
//	f.Pause(d); f.Resume(d)                               // d stops, then catches up in order
//
// A peer started without WithFaults pays one nil check.
package lockertest
