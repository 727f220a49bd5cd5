// Package lockeractor runs a Locker peer on a protoactor actor system: a
// distributed, consistent, in-memory key-value store with leases, for
// locks, mutexes and leader election (a Go port of Erlang's locker).
//
// Every actor system runs one peer, the actor named "locker". Peers are
// masters (they vote on writes) or replicas (they follow). Every write
// (Lock, Update, ExtendLease, Release) is a two-phase quorum write: the
// coordinating peer asks every master for a promise (a short write lock,
// granted only if the key holds what the caller expects), then commits
// if at least W masters promised, and succeeds only if at least W
// masters acknowledge the commit. Reads (DirtyRead) are local. Entries
// expire when their lease runs out unless extended. Masters push their
// changes to replicas in batches.
//
// Usage on one actor system (no remote needed for a single node):
//
//	system := actor.NewActorSystem()
//	l, err := lockeractor.Start(system)
//	if err != nil { ... }
//	defer l.Stop()
//	res, err := l.Lock(ctx, "leader", []byte("me"), 10*time.Second)
//	// res.Token is a fencing token: pass it to the resource you protect.
//
// For a cluster, start protoactor remote on every system before Start,
// then configure the peers from any one of them:
//
//	l.SetNodes(ctx, all, masters, replicas) // addresses "host:port"
//	l.SetW(ctx, all, len(masters)/2+1)
//
// A peer with remote (or WithCluster) is not ready until it holds a
// configuration that names it: until then its writes fail at once with
// ErrNotReady and it promises nothing, so a member never grants a lock
// on its own vote before it has heard of the cluster. Ready(ctx) waits
// for it.
//
// # Guarantees and their limits
//
// With W a majority of the masters, two writes on one key cannot both
// gather W promises, so at most one Lock of an absent key succeeds, and
// fencing tokens (Result.Token) grow strictly per key: masters propose
// tokens from a hybrid clock (at least the wall clock in microseconds,
// above every token seen), so a master restarted with empty memory still
// proposes larger ones. A write that fails in its commit phase
// (QuorumError.Committing) may have been applied by some masters: its
// outcome is unknown. Leases run on each peer's monotonic clock and start
// when the commit reaches it, so every master holds a lease at least as
// long as the holder counts from its call. DirtyRead on a replica lags
// the masters by up to a replication interval.
//
// Membership changes: Reconfigure changes the masters through a joint
// configuration (writes need a quorum of the old and of the new masters)
// while the new masters copy the old masters' leases; each step is a
// compare-and-set of the configuration epoch on a write quorum, and
// masters promise only to writes of their own epoch. So two sides of a
// partition cannot both change the configuration or both grant a key, and
// no committed lease is lost when the masters change (the argument is in
// internal/core/reconfig.go). A master that restarts with empty memory
// copies enough other masters' leases before it votes again. SetNodes and
// SetW are locker's plain admin calls, with no transition.
//
// With WithCluster, the configuration follows the protoactor cluster's
// topology (see WithCluster).
package lockeractor
