// Package multiproc holds Locker's multi-process tests: every Locker
// peer runs in an OS process of its own (the test binary itself,
// re-executed as a node, see internal/nodeproc), talking to the others
// over protoactor remote on 127.0.0.1.
//
// One remote per process is what makes the race detector usable on
// real multi-node code paths: in one process, several protoactor remotes
// race inside protoactor-go itself, so the in-process multi-node tests
// (tests/) skip under -race. Here, under `go test -race`, the children
// are race-built too (the same binary), and a test fails when a child's
// stderr reports a data race, a panic or a fatal error, or when a child
// stopped gracefully exits with a non-zero status (66 after a race).
// Separate processes also make "kill -9 of a node" real: SIGKILL, then a
// restart at the same address with empty memory.
//
// The parent runs no actor system. It writes commands to each child's
// stdin and reads events from its stdout, one JSON line each (see
// nodeproc.Command and nodeproc.Event). Each child records every write
// its clients make as a line before the call and a line after it, with
// the machine-wide monotonic clock; the parent merges the lines of all processes
// into one linearize.History, in which the writes a killed process had
// in flight stay open-ended (unknown outcome, never dropped), and checks
// it with porcupine. The children are killed when the test ends, passed
// or failed (t.Cleanup, exec.CommandContext), and exit by themselves
// when their stdin closes (the parent is gone).
//
// Tests:
//
//   - TestMultiProcessKill9: three masters and a replica under contended
//     load from every process; two masters and the replica are killed
//     with SIGKILL mid-write, one after the other, in an order drawn from
//     the seed, and restarted with empty memory. It requires no
//     linearizability violation and nothing inconclusive, that restarted
//     masters vote again holding the leases taken before their restart,
//     a fresh Lock after the cluster healed (liveness), and clean exits
//     and stderr. It logs a summary line
//     "multiproc: N processes, K kills, M operations (U unknown), 0 violations; ...".
//   - TestMultiProcessRollingKill9: three masters, one with its Locker
//     clock 40-90 ms ahead; every master killed with SIGKILL mid-write in
//     turn, twice over, and restarted empty, under contended load with
//     short leases beside long ones. Besides linearizability, holders of
//     one key, merged across processes on the machine-wide monotonic
//     clock, must never overlap and their tokens must grow. Its summary
//     line also starts "multiproc:".
//   - TestMultiProcessPaths: a replica coordinating writes, replication
//     waking a WaitFor on the replica, Batch, and Reconfigure moving the
//     masters under a held lease, every answer asserted.
//   - TestMultiProcessNames: the registry, server and fsm across three
//     masters: named server and fsm actors on every node, lookups from
//     every node throughout, two holding nodes killed with SIGKILL in turn
//     and restarted empty. Every name of a killed node must move (spawned
//     again on a survivor, resolved there by every node), and the leases
//     the processes report (renewals included) must never give a name two
//     holders at once, nor a holder a token not above the one before.
//     Summary line "multiproc names: ...".
//   - TestJudgeFindsInjectedDoubleGrant, TestStderrProblem,
//     TestOverlapsFindsTwoHolders: the checks themselves can fail (no
//     processes).
//
// Run, and replay a seed (a failing test logs its own replay command):
//
//	go test ./tests/multiproc/ -run Kill9 -v -multiproc.seed=N
//	go test -race ./tests/multiproc/ -run Kill9 -v -multiproc.seed=N
//
// -multiproc.stderr logs every child's stderr. The kill test's phases
// are counted in answered writes, not in time, and shorter under -race;
// the package takes about 12 s either way on a 2-core machine. The run
// is reproducible in its kill order, victims and clients' choices, not
// in its interleavings.
package multiproc
