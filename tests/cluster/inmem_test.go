package cluster_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"github.com/stretchr/testify/require"

	"github.com/protoactor-locker/locker/internal/testcluster"
	"github.com/protoactor-locker/locker/lockeractor"
)

// TestInMemBootstrap: three fresh members configure themselves from the
// topology (all three masters, W = 2), and a lock taken on one is read
// on the others.
func TestInMemBootstrap(t *testing.T) {
	ic := newInMem(t, 3)
	awaitConfig(t, ic.members, ic.members, nil)
	ctx := testCtx(t)
	res, err := ic.members[0].locker.Lock(ctx, "k", []byte("v"), time.Minute)
	require.NoError(t, err)
	require.Equal(t, 2, res.W)
	for _, m := range ic.members[1:] {
		v, err := m.locker.WaitFor(ctx, "k")
		require.NoError(t, err)
		require.Equal(t, "v", string(v))
	}
}

// TestInMemMastersByJoinOrder: with N = 3, once three members are the
// masters, members that join later are replicas, whatever their
// addresses. (Members that arrive together, before the cluster's first
// configuration, are ordered by the bootstrapping member's first sight,
// ties by address: protoactor's topology carries no join time.)
func TestInMemMastersByJoinOrder(t *testing.T) {
	ic := newInMem(t, 3)
	a, b, c := ic.members[0], ic.members[1], ic.members[2]
	awaitConfig(t, ic.members, ic.members, nil)
	d := ic.add(t)
	awaitConfig(t, ic.members, []*member{a, b, c}, []*member{d})
	e := ic.add(t)
	awaitConfig(t, ic.members, []*member{a, b, c}, []*member{d, e})
}

// newInMem4 starts three members, waits for them to be the masters, then
// adds a fourth, which becomes a replica.
func newInMem4(t *testing.T) (*inMemCluster, *member, *member, *member, *member) {
	ic := newInMem(t, 3)
	awaitConfig(t, ic.members, ic.members, nil)
	d := ic.add(t)
	a, b, c := ic.members[0], ic.members[1], ic.members[2]
	awaitConfig(t, ic.members, []*member{a, b, c}, []*member{d})
	return ic, a, b, c, d
}

// TestInMemMasterLeavesReplicaPromoted: a master leaves; the replica
// takes its place, the lock taken before is still held (nobody else can
// take it), and its holder can extend and release it.
func TestInMemMasterLeavesReplicaPromoted(t *testing.T) {
	_, a, b, c, d := newInMem4(t)
	awaitReady(t, []*member{a, b, c, d}) // every master caught up: the change after B leaves can complete
	ctx := testCtx(t)
	_, err := a.locker.Lock(ctx, "k", []byte("a"), time.Minute)
	require.NoError(t, err)
	_, err = d.locker.WaitFor(ctx, "k") // the replica has it by replication
	require.NoError(t, err)

	b.leave()
	awaitConfig(t, []*member{a, c, d}, []*member{a, c, d}, nil)
	require.NoError(t, d.locker.Ready(ctx), "the promoted replica is ready once it copied the masters' leases")

	requireStillHeld(t, ctx, d.locker, "k", []byte("d")) // the lock taken before the change
	_, err = a.locker.ExtendLease(ctx, "k", []byte("a"), time.Minute)
	require.NoError(t, err)
	_, err = a.locker.Release(ctx, "k", []byte("a"))
	require.NoError(t, err)
	_, err = d.locker.Lock(ctx, "k", []byte("d"), time.Minute)
	require.NoError(t, err)
}

// TestInMemMemberJoinsAsReplicaThenPromoted: with N = 5 and three
// members, all three are masters; a fourth joins (as a replica first:
// the policy's unit tests check that step) and ends as a master: four
// masters, W = 3.
func TestInMemMemberJoinsAsReplicaThenPromoted(t *testing.T) {
	ic := newInMem(t, 3, lockeractor.WithMasters(5))
	awaitConfig(t, ic.members, ic.members, nil)
	ctx := testCtx(t)
	_, err := ic.members[0].locker.Lock(ctx, "k", []byte("v"), time.Minute)
	require.NoError(t, err)
	d := ic.add(t, lockeractor.WithMasters(5))
	awaitConfig(t, ic.members, ic.members, nil)
	requireStillHeld(t, ctx, d.locker, "k", []byte("d")) // the lock taken before the newcomer came
}

// TestInMemCrashLeaseExpiresAndAnotherTakesOver: the member holding a
// lock crashes; the configuration drops it, the lease runs out on the
// others (nobody renews it), and another member takes the lock with a
// larger fencing token.
func TestInMemCrashLeaseExpiresAndAnotherTakesOver(t *testing.T) {
	ic := newInMem(t, 3)
	a, b, c := ic.members[0], ic.members[1], ic.members[2]
	awaitConfig(t, ic.members, ic.members, nil)
	ctx := testCtx(t)
	require.NoError(t, c.locker.Ready(ctx))
	const lease = 1500 * time.Millisecond
	held, err := c.locker.Lock(ctx, "leader", []byte("c"), lease)
	require.NoError(t, err)
	_, err = b.locker.WaitFor(ctx, "leader")
	require.NoError(t, err)

	c.crash()
	awaitConfig(t, []*member{a, b}, []*member{a, b}, nil)
	for _, m := range []*member{a, b} {
		err := m.locker.WaitForRelease(ctx, "leader")
		if err != nil && !errors.Is(err, lockeractor.ErrKeyNotLocked) {
			t.Fatal(err)
		}
	}
	res, err := b.locker.Lock(ctx, "leader", []byte("b"), lease)
	require.NoError(t, err)
	require.Greater(t, res.Token, held.Token, "fencing tokens grow across the takeover")
}

// TestInMemExplicitSetNodesWinsUntilFollowCluster: explicit SetNodes and
// SetW pause cluster mode; a member leaving then changes nothing; after
// FollowCluster the policy applies again.
func TestInMemExplicitSetNodesWinsUntilFollowCluster(t *testing.T) {
	ic, a, b, c, d := newInMem4(t)
	ctx := testCtx(t)
	all := sortedAddrs(ic.members)
	// Pin a configuration by hand: a and b masters, W = 2. SetW and
	// SetNodes pause the member they are called on; call them on all.
	for _, m := range ic.members {
		require.NoError(t, m.locker.SetW(ctx, all, 1))
	}
	require.NoError(t, a.locker.SetNodes(ctx, all, []string{a.addr, b.addr}, []string{c.addr, d.addr}))
	require.NoError(t, a.locker.SetW(ctx, all, 2))
	pinned := awaitConfig(t, ic.members, []*member{a, b}, []*member{c, d})

	d.leave()
	// The topology changed; cluster mode is paused, so the configuration
	// stays as pinned. (A negative: checked once every member's topology
	// has dropped d and a write has gone through the pinned masters.)
	testcluster.Eventually(t, settle, func() bool {
		for _, m := range []*member{a, b, c} {
			if m.cluster.MemberList.ContainsMemberID(d.system.ID) {
				return false
			}
		}
		return true
	}, "every member's topology drops the member that left")
	_, err := c.locker.Lock(ctx, "k", []byte("c"), time.Minute)
	require.NoError(t, err)
	for _, m := range []*member{a, b, c} {
		require.True(t, nodes(m.locker).equal(pinned), "%s: %+v", m.name, nodes(m.locker))
	}

	for _, m := range []*member{a, b, c} {
		m.locker.FollowCluster()
	}
	awaitConfig(t, []*member{a, b, c}, []*member{a, b, c}, nil)
}

// TestInMemRestartOnSameAddress: a member leaves and a fresh incarnation
// comes back on the same address (a restarted process with a fixed
// port). It is taken in again (replica, then master) and the lock taken
// before is still held. Protoactor's endpoint writer to that address is
// still retrying the dead incarnation for up to 2 s when the new one
// starts, so the coordinator's first attempts fail and are retried.
func TestInMemRestartOnSameAddress(t *testing.T) {
	ic := newInMem(t, 3)
	a, b, c := ic.members[0], ic.members[1], ic.members[2]
	awaitConfig(t, ic.members, ic.members, nil)
	awaitReady(t, ic.members) // every master caught up: the change after B leaves can complete
	ctx := testCtx(t)
	_, err := a.locker.Lock(ctx, "k", []byte("a"), time.Minute)
	require.NoError(t, err)

	b.leave()
	awaitConfig(t, []*member{a, c}, []*member{a, c}, nil)
	port, err := strconv.Atoi(b.addr[strings.LastIndex(b.addr, ":")+1:])
	require.NoError(t, err)
	b2 := startMemberOn(t, port, "B2", test.NewTestProvider(ic.agent))
	require.Equal(t, b.addr, b2.addr)
	awaitConfig(t, []*member{a, c, b2}, []*member{a, c, b2}, nil)
	require.NoError(t, b2.locker.Ready(ctx), "the restarted member copies the leases and is ready")
	requireStillHeld(t, ctx, b2.locker, "k", []byte("b2")) // the lock taken before the restart
}

// TestLeaveClusterIsIdempotent: protoactor's cluster.Shutdown panics when
// called twice, and so does ActorSystem.Shutdown; LeaveCluster may be
// called any number of times, also after the member was shut down with
// protoactor's own Shutdown(false).
func TestLeaveClusterIsIdempotent(t *testing.T) {
	ic := newInMem(t, 2)
	a, b := ic.members[0], ic.members[1]
	lockeractor.LeaveCluster(a.cluster)
	lockeractor.LeaveCluster(a.cluster)
	require.Nil(t, lockeractor.Get(a.system), "the Locker is stopped")

	b.locker.Stop()
	b.cluster.Shutdown(false)
	lockeractor.LeaveCluster(b.cluster)
	_ = b.provider.Shutdown(false)
}
