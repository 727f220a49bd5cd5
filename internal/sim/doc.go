// Package sim is a deterministic simulation of Locker's protocol core
// (internal/core), in the way of FoundationDB's simulator and
// TigerBeetle's VOPR: many core.Core peers and clients, a simulated
// network and simulated clocks, all driven by one seed, with invariants
// checked after every step and the clients' history checked for
// linearizability with porcupine at the end.
//
// What a run simulates, all drawn from Config.Seed (math/rand/v2 PCG):
//
//   - Network: every message is encoded and decoded (as on the wire),
//     delayed, and may be lost or duplicated; a pair's messages arrive in
//     order except slow ones, which later messages overtake (reordering).
//     Partitions split the peers into two groups and heal later. A message
//     to a crashed peer is a dead letter: its sender is told Unreachable.
//   - Clocks: each peer's Clock runs at its own rate (within ±1 % of real
//     time) with its own wall offset (±100 ms, which fencing tokens see).
//     With Config.FastClock one master's wall clock runs FastClock/2 to
//     FastClock ahead and the others' within FastClock/10 of real time:
//     that master's writes carry larger tokens than writes others make
//     up to FastClock/2 later. A paused peer (a GC pause) processes
//     nothing for up to 1.5 s while its clock runs on, so its time jumps
//     when it resumes.
//   - Crashes: a peer stops (core.Core.Close) and restarts later with
//     empty memory at the same address (core.New), then catches up as the
//     core does. At most one peer is down, unconfigured or catching up at
//     a time, so a quorum of masters always keeps every committed lease.
//     With Config.RollingRestarts the masters are also restarted one at a
//     time, in turn and again and again (a rolling upgrade under
//     traffic): each goes down right after it promises a Lock (or after
//     50 ms), stays down up to Config.RollingDowntime, and the next goes
//     down once none is down, unconfigured or catching up. With
//     Config.LateLastWords each message a crashed peer sent that is still
//     on its way arrives, with a chance of one in two, up to 100 ms after
//     the peer restarted: promises and acknowledgements of its earlier
//     life reach their coordinators while its new life votes.
//   - Membership: during traffic a peer reconfigures (Core.Reconfigure),
//     swapping one or more masters with as many replicas (with several
//     replicas, promoted ones can make a write quorum of the new masters).
//   - Clients: Config.Clients clients, each attached to a peer (using its
//     clock, and only once the peer is configured), each with at most one
//     write in flight, Lock, Update, ExtendLease and Release a few hot
//     keys through Core.Submit, and write to a protected resource per key
//     with their fencing token while their lease is valid by their own
//     clock. Long keys (Config.LongKeys) are locked for an hour, longer
//     than any run, so their histories need no time in the model; short
//     keys (Config.ShortKeys) are locked for 50 to 800 ms and expire.
//     Mixed keys (Config.MixedKeys) are locked for 50 to 800 ms or, one
//     Lock in three, for half the maximum lease up to the maximum
//     (core.Config.MaxLease), and extended by the maximum: a committed
//     long lease that a copy replaces by the state of a failed short Lock
//     shows up as a second holder once the short lease ends. A client
//     whose short Lock of a mixed key has an unknown outcome walks away
//     one time in two (as a crashed client would), leaving what it may
//     have committed to its lease; one whose long Lock has an unknown
//     outcome keeps trying to release it.
//
// Invariants checked after every step (a run stops at the first broken
// one and reports it with its seed, step and the events before it):
//
//   - At most one holder: at any simulated instant, at most one client
//     believes it holds a key. A client believes it from a successful Lock
//     until its invocation time plus the lease minus 3 % (clock drift of
//     masters and client), by its own clock, extended by successful
//     ExtendLeases the same way, and no longer once it invokes Release.
//     This is also "no committed lease lost while a quorum of masters
//     lives": a Lock that succeeds while another client's lease is valid
//     breaks it.
//   - Fencing tokens follow real time: a successful Lock or Update gets a
//     token larger than that of every successful Lock or Update of the key
//     answered before it was invoked, and two locks never share a token.
//   - The protected resource (one per key) accepts a write only with a
//     token at least the largest it accepted. Holders write while their
//     lease is valid, but a write may arrive up to 2 s late (a pause
//     between the check and the write). The resource must never accept a
//     write of a holder after one of a later holder, nor two holders'
//     writes with one token.
//   - Every write is answered at most once.
//
// At the end of a run (Config.Steps events), a quiet time: the network
// heals and stops losing, duplicating and reordering messages, no fault
// is injected and clients start no new write; a change of masters left
// half done is finished with one more Reconfigure. Then every replica
// must hold what the masters hold (replicas repair the pushes they
// missed): no live key no master holds, and the newest lease when a
// write quorum of masters holds it (keys a minority holds or released,
// residue of writes with unknown outcomes, and keys about to expire are
// not judged).
//
// The history: every write is recorded with its invocation and answer
// times (simulated real time) and its outcome: ok, fail (nothing was
// committed: Phase == core.PhasePrepare) or unknown (it failed after
// commits went out, or its peer stopped, or it was still pending at the
// end). Model checks each long key's history with porcupine: an unknown
// write has an open-ended return time, so porcupine may let it take
// effect anywhere after its invocation, or never.
//
// Usage, from any test:
//
//	r := sim.New(sim.DefaultConfig(seed)).Run()
//	for _, v := range r.Violations {
//		t.Error(v) // seed, step, what broke, the last events
//	}
//
// In this repository:
//
//	go test ./internal/sim/                               # the fixed set of seeds
//	go test ./internal/sim/ -run TestSimulation -sim.seed=42 -v  # replay one seed
//	LOCKER_SIM_SEED=42 go test ./internal/sim/ -run TestSimulation -v
//	LOCKER_SIM_SEEDS=5000 go test ./internal/sim/ -run TestSimulation -timeout 1h  # a longer hunt
//	LOCKER_SIM_SEEDS=1000 go test ./internal/sim/ -run TestSimulation -sim.from=20001  # seeds 20001-21000
//	LOCKER_SIM_FROM=20001 LOCKER_SIM_SEEDS=1000 go test ./internal/sim/ -run TestSimulation
//
// TestSimulation runs LOCKER_SIM_SEEDS seeds (200 by default) from the
// one -sim.from or LOCKER_SIM_FROM names (1 by default), each with
// DefaultConfig, and prints one summary line with the range it ran.
// Seeds found with the schedule before rolling restarts, fast clocks and
// mixed keys replay with ClassicConfig.
package sim
