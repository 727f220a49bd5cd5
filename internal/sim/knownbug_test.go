package sim

import "testing"

// TestGhostLockNotResurrected replays seed 5, which found a lease lost
// while a quorum of masters lived (two holders of "a"), and seed 859
// (two holders of "b"). Both came from writes decided under masters that
// had since been replaced: a Lock prepared under an old epoch committed
// (or was repaired onto masters) after the new masters had copied the
// leases, and its "ghost" value, with a larger token from a fast clock,
// then won every merge by token. Fixed in internal/core: masters refuse
// commits and repairs decided under masters they have replaced since
// (Core.mastersSince); and a Lock's token is a ballot above every one
// its promisers granted before (internal/core/ballot.go).
func TestGhostLockNotResurrected(t *testing.T) {
	for _, seed := range []uint64{5, 859} {
		cfg := ClassicConfig(seed) // the schedule that found them
		cfg.Steps = 50000
		cfg.Replicas = 1 // as the runs that found them
		requireClean(t, New(cfg).Run())
	}
}

// TestAddedMasterCatchesUpAfterStaleJoint replays seed 1598, which found
// two holders of "a": a master added by a change (joint configuration
// epoch 3, old masters {n1,n2,n3}, new {n3,n4,n5}) synced the lease,
// the change completed (epoch 4), and it restarted empty. A removed
// master that missed the last commit still gossiped epoch 3, in which
// the restarted peer is an added master, which then needed no catch-up;
// it learnt a later configuration without catching up and promised
// "absent" for the lease it had held. Fixed in internal/core: an added
// master stays fresh until a Sync of its current epoch completes on it,
// and a stale gossiper is answered with the newer configuration.
func TestAddedMasterCatchesUpAfterStaleJoint(t *testing.T) {
	cfg := ClassicConfig(1598)
	cfg.Masters, cfg.Replicas = 3, 2 // as the run that found it
	requireClean(t, New(cfg).Run())
}

// TestJointLeaseNotReplacedByResidue replays seed 2656, which found two
// holders of "b": an old master n1 promised the move to the joint
// configuration (epoch 3), then coordinated a Lock of "b" under epoch 2
// and committed it on itself before adopting epoch 3 (n2, moved already,
// refused it): residue on one old master, with n1's fast-clock token.
// Another client locked "b" under epoch 3 with a smaller token (n1's
// refusal arrived after the decision), and the new masters' Sync copied
// n1's snapshot, whose residue won the merge by token on two of the three
// new masters. Fixed first by a special rule for joint writes, now by the
// ballot rule (internal/core/ballot.go): the Lock under epoch 3 had n2's
// promise after n2 promised n1's Lock, so its token is the larger.
func TestJointLeaseNotReplacedByResidue(t *testing.T) {
	requireClean(t, New(ClassicConfig(2656)).Run())
}

// TestResidueFromAFastClockNotCopiedOverALease replays the seeds that
// found a failed write's residue, with a larger token from a master's
// fast clock, replacing a committed lease when state was copied between
// peers during rolling restarts (two holders, token order, replica
// divergence): 4379, 6215 and 7257 with the earlier schedule, 10, 650,
// 922, 1302, 1414, 1791, 1805 and 1915 with rolling restarts. Fixed in
// internal/core by the ballot rule (ballot.go).
func TestResidueFromAFastClockNotCopiedOverALease(t *testing.T) {
	for _, seed := range []uint64{4379, 6215, 7257} {
		cfg := ClassicConfig(seed)
		cfg.Steps = 50000
		requireClean(t, New(cfg).Run())
	}
	replayDefault(t, 10, 650, 922, 1302, 1414, 1791, 1805, 1915)
}

// TestCopyNeverShortensTheLeaseItReplaces replays seeds 4118 and 5869,
// which found two holders of "x" with the ballot rule in place: the
// holder's Update reached one master only, which had missed the
// holder's later Extend; a Sync copied that newer state (larger token,
// shorter lease) over the extended lease on another master, and once the
// shorter lease ran out a third Lock took the key. Fixed in
// internal/core: a copy that replaces a live lease keeps the later of
// the two deadlines.
func TestCopyNeverShortensTheLeaseItReplaces(t *testing.T) {
	replayDefault(t, 4118, 5869)
}

// TestOnlyVotersKeepTheLaterDeadline replays seeds 2458 (a peer
// restarted with empty memory, which counts itself its own master until
// it learns its configuration, kept an older holder's hour-long deadline
// for a newer short lease, and as a replica held the value long after
// every master let it go) and 38, 185 and 425 (the same on replicas).
// Fixed in internal/core: only a voter of a configuration keeps the later
// deadline of a merge; any other peer mirrors what it is sent. Seed 11145
// found the same through a push: a master paused through two changes of
// masters merged a newer short lease, pushed to it as a replica of the
// latest configuration, over its hour-long one as a voter would. Fixed:
// a voter keeps the later deadline only of the copies it asks for.
func TestOnlyVotersKeepTheLaterDeadline(t *testing.T) {
	replayDefault(t, 2458, 38, 185, 425, 11145)
}

// TestEndedStateStillPushed replays seeds 13187 and 14734, which found a
// replica holding for half an hour a lease no master held: its master
// replaced the lease (a repair, a new short Lock) and the new state ended
// before the next push, which then left the key out ("replicas expire it
// themselves"), so the replica kept the older, longer lease that master
// still vouched for. Fixed in internal/core: a push sends a state that
// ended before it as an entry with no lease left, which replaces older
// states on the replica.
func TestEndedStateStillPushed(t *testing.T) {
	replayDefault(t, 13187, 14734)
}

// TestReleaseResidueTombstoneLeavesReplicas replays seeds 676, 33055,
// 33592, 33760 and 34673, which found a replica holding, for the hour,
// the tombstone of a lease W masters held: the holder's Release,
// answered "unknown", committed on a minority of masters (its
// coordinator, a repair onto a master restarted with empty memory),
// which pushed or snapshotted the tombstone, with the lease's own token,
// to the replica, and lost it since (a restart and a catch-up that copied
// the lease back, the short tombstone of a repair). The tombstone won
// the tie of tokens against every later push and snapshot of the lease.
// Fixed in internal/core (settle, follow.go): a replica forgets a
// tombstone no master vouches for any more when a master sent it the
// lease of the tombstone's own token, and asks that master again.
func TestReleaseResidueTombstoneLeavesReplicas(t *testing.T) {
	replayDefault(t, 676, 33055, 33592, 33760, 34673)
}

// TestGhostLeaseStaysReleased replays the seeds that found the ghost
// lease (4396 first): after a Release, a short Lock took the key over
// its tombstone and expired; the store forgot the key, and a stale copy
// of the released, longer lease (on a master that missed the Release)
// came back through catch-up, snapshots and pushes onto a quorum of
// masters: the key was locked by nobody until that lease ended, and the
// replicas that kept the tombstone disagreed with the masters. Fixed in
// internal/core: an entry keeps the tombstone it was written over
// (shadow) and becomes it again when it ends first; copies carry it.
func TestGhostLeaseStaysReleased(t *testing.T) {
	replayDefault(t, 4396, 7177, 9711, 10240, 10425, 11476, 17440, 18752, 28931, 31091, 31875, 32274, 35144)
}

// replayDefault replays seeds with the suite's schedule (DefaultConfig)
// for as many steps as TestSimulation takes, each required clean.
func replayDefault(t *testing.T, seeds ...uint64) {
	t.Helper()
	for _, seed := range seeds {
		cfg := DefaultConfig(seed)
		cfg.Steps = 50000
		requireClean(t, New(cfg).Run())
	}
}

// requireClean fails t on every violation of r, and when the
// linearizability check of a key ran out of time: an undecided history
// proves nothing.
func requireClean(t *testing.T, r *Result) {
	t.Helper()
	for _, v := range r.Violations {
		t.Errorf("seed %d: %v", r.Seed, v)
	}
	if len(r.Inconclusive) > 0 {
		t.Errorf("seed %d: the linearizability check of %v timed out", r.Seed, r.Inconclusive)
	}
	if r.Operations == 0 {
		t.Errorf("seed %d: no operation ran", r.Seed)
	}
}
