// Package nodeproc is the node program of the multi-process tests
// (tests/multiproc): one Locker peer on its own actor system with
// protoactor remote on 127.0.0.1, one per OS process, so that the race
// detector sees real multi-node code paths (several remotes in one
// process race inside protoactor-go itself).
//
// At its first OpSpawn a node also starts a registry.Registry on its
// Locker and spawns named server or fsm actors on request (OpSpawn,
// OpWhereIs), reporting each lease it holds (EvOwned, renewals included)
// and its end (EvLost) with the same monotonic clock.
//
// A test binary becomes a node when its TestMain finds EnvNode set:
//
//	func TestMain(m *testing.M) {
//		if os.Getenv(nodeproc.EnvNode) != "" {
//			os.Exit(nodeproc.Main())
//		}
//		os.Exit(m.Run())
//	}
//
// The parent starts the binary itself (os.Executable) with EnvNode and
// EnvPort set (and EnvClockAhead, for a node whose clock runs ahead),
// reads the ready line, and talks to it in JSON lines:
// Commands on its stdin, Events on its stdout. Every write the node makes
// is recorded as an EvInvoke line before the call and an EvReturn line
// after it, with the machine-wide monotonic clock (CLOCK_MONOTONIC) in nanoseconds, so the parent can
// merge the histories of all processes, including those of a process
// killed with SIGKILL mid-write (its open invocations stay open-ended:
// their outcome is unknown). A node exits when its stdin closes.
package nodeproc
