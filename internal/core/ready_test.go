package core

import (
	"testing"
	"time"

	"github.com/protoactor-locker/locker/messages"
)

// memberConfig is the Config of a cluster member: not Standalone, so
// it grants nothing before it holds a configuration that names it.
func memberConfig() Config {
	cfg := testConfig()
	cfg.Standalone = false
	return cfg
}

// requireApplied checks that every peer of addrs applied an admin call.
func requireApplied(t *testing.T, res map[string]AdminResult, addrs ...string) {
	t.Helper()
	for _, a := range addrs {
		if r, ok := res[a]; !ok || r.Reason != messages.Reason_REASON_UNSPECIFIED {
			t.Fatalf("%s: %+v, want applied (all: %+v)", a, r, res)
		}
	}
}

func requireReady(t *testing.T, c *Core, want bool) {
	t.Helper()
	if got := c.Ready(); got != want {
		t.Fatalf("%s: Ready() = %v, want %v (epoch %d, catching up %v)", c.cfg.Self, got, want, c.Membership().Epoch, c.CatchingUp())
	}
}

func TestReadiness(t *testing.T) {
	t.Run("a member with no configuration refuses every write at once and sends nothing", func(t *testing.T) {
		n := newNetworkWith(t, memberConfig(), n1, n2, n3)
		for _, a := range []string{n1, n2, n3} {
			requireReady(t, n.core(a), false)
			c := n.submit(a, lockOp("billing", a, time.Minute))
			o := c.one()
			if !o.NotReady || o.OK || o.Reasons[a] != messages.Reason_REASON_NOT_MASTER {
				t.Fatalf("%s: %+v, want NotReady with REASON_NOT_MASTER", a, o)
			}
		}
		if len(n.sent) != 0 || len(n.pending()) != 0 {
			t.Fatalf("unconfigured members sent %v", n.sent)
		}
	})

	t.Run("a member with no configuration promises nothing", func(t *testing.T) {
		n := newNetworkWith(t, memberConfig(), n1)
		n.core(n1).Step(outsider, &messages.Prepare{Txn: 1, Epoch: 0, Items: []*messages.PrepareItem{
			{Key: "k", Kind: messages.WriteKind_WRITE_KIND_LOCK, LeaseMs: 1000}}})
		out := n.takeOutbox(n1)
		if len(out) != 1 {
			t.Fatalf("%d answers, want 1", len(out))
		}
		p := out[0].Msg.(*messages.Promise)
		if it := p.GetItems()[0]; it.GetGranted() || it.GetReason() != messages.Reason_REASON_NOT_MASTER {
			t.Fatalf("promise %v, want refused with REASON_NOT_MASTER", p)
		}
		if n.core(n1).WriteLocks() != 0 {
			t.Fatal("the refused prepare left a write lock")
		}
	})

	t.Run("a standalone store is ready with no set-up", func(t *testing.T) {
		n := newNetwork(t, n1)
		requireReady(t, n.core(n1), true)
		if o := n.do1(n1, lockOp("k", "v", time.Minute)); !o.OK {
			t.Fatalf("%+v", o)
		}
	})

	t.Run("a first SetNodes every peer answers configures a new cluster, masters and replicas ready", func(t *testing.T) {
		n := newNetworkWith(t, memberConfig(), n1, n2, n3, n4)
		n.configure(n1, []string{n1, n2, n3}, []string{n4}, 2)
		for _, a := range []string{n1, n2, n3, n4} {
			requireReady(t, n.core(a), true)
			if e := n.core(a).Membership().Epoch; e != 1 {
				t.Fatalf("%s at epoch %d, want 1", a, e)
			}
		}
		if o := n.do1(n4, lockOp("k", "v", time.Minute)); !o.OK {
			t.Fatalf("a replica coordinates: %+v", o)
		}
	})

	t.Run("a new cluster's first SetNodes makes W at least a majority before any SetW", func(t *testing.T) {
		n := newNetworkWith(t, memberConfig(), n1, n2, n3)
		all := []string{n1, n2, n3}
		res := n.setNodes(n1, all, all, nil)
		requireApplied(t, res, all...)
		for _, a := range all {
			if w := n.core(a).Membership().W; w != 2 {
				t.Fatalf("%s: W = %d after the first SetNodes, want 2 (the peers started with W = 1)", a, w)
			}
		}
		requireApplied(t, n.setW(n1, all, 1), all...) // lowering it stays possible
		if w := n.core(n2).Membership().W; w != 1 {
			t.Fatalf("W = %d after SetW(1)", w)
		}
	})

	t.Run("a first SetNodes a peer does not answer changes nothing", func(t *testing.T) {
		n := newNetworkWith(t, memberConfig(), n1, n2, n3)
		n.drop[n3] = true
		var res map[string]AdminResult
		n.onAnswer(n1, n.core(n1).SetNodes([]string{n1, n2, n3}, []string{n1, n2, n3}, nil), func(a Answer) { res = a.Admin })
		n.sleep(2 * n.cfg.RequestTimeout)
		if r, ok := res[n3]; !ok || r.Reason != messages.Reason_REASON_UNREACHABLE {
			t.Fatalf("answers %v, want n3 unreachable", res)
		}
		for _, a := range []string{n1, n2, n3} {
			if e := n.core(a).Membership().Epoch; e != 0 {
				t.Fatalf("%s moved to epoch %d", a, e)
			}
			requireReady(t, n.core(a), false)
		}
	})

	t.Run("a restarted master is not ready until it learnt the configuration and caught up", func(t *testing.T) {
		n := newNetworkWith(t, memberConfig(), n1, n2, n3)
		n.configure(n1, []string{n1, n2, n3}, nil, 2)
		if o := n.do1(n1, lockOp("k", "v", time.Minute)); !o.OK {
			t.Fatalf("%+v", o)
		}
		n.stop(n2)
		n.start(n2)
		requireReady(t, n.core(n2), false)
		if o := n.submit(n2, lockOp("k", "other", time.Minute)).one(); !o.NotReady {
			t.Fatalf("the restarted master coordinated before it knew the cluster: %+v", o)
		}
		// The masters' gossip brings the configuration; the copy follows.
		n.sleep(2 * time.Second)
		requireReady(t, n.core(n2), true)
		if o := n.do1(n2, lockOp("k", "other", time.Minute)); o.OK {
			t.Fatal("the restarted master granted a held key")
		}
	})

	t.Run("SetNodes run again from restarted masters does not start a new cluster over live leases", func(t *testing.T) {
		n := newNetworkWith(t, memberConfig(), n1, n2, n3)
		all := []string{n1, n2, n3}
		n.configure(n1, all, nil, 2)
		if o := n.do1(n1, lockOp("k", "v", time.Minute)); !o.OK {
			t.Fatalf("%+v", o)
		}
		// Two of three masters lose their memory and a set-up script runs
		// again from one of them.
		n.stop(n2)
		n.stop(n3)
		n.start(n2)
		n.start(n3)
		res := n.setNodes(n2, all, all, nil)
		requireApplied(t, res, all...)
		for _, a := range all {
			if e := n.core(a).Membership().Epoch; e < 2 {
				t.Fatalf("%s at epoch %d: the script made a first configuration again", a, e)
			}
		}
		requireReady(t, n.core(n2), false)
		requireReady(t, n.core(n3), false)
		if o := n.do1(n1, lockOp("k", "twice", time.Minute)); o.OK {
			t.Fatal("the key was granted twice: the restarted masters voted as a new cluster")
		}
	})

	t.Run("a peer told of configurations in any order is ready only once one names it and it caught up", func(t *testing.T) {
		n := newNetworkWith(t, memberConfig(), n1, n2, n3, n4)
		n.configure(n1, []string{n1, n2, n3}, nil, 2)
		old := n.core(n1).Membership()
		if o := n.do1(n1, lockOp("k", "v", time.Minute)); !o.OK {
			t.Fatalf("%+v", o)
		}
		// n4 joins: gossip of the configuration without it first.
		n.core(n4).Step(n2, &messages.ConfigCommit{Next: toProto(old), Incarnation: 1})
		requireReady(t, n.core(n4), false)
		if o := n.submit(n4, lockOp("k", "n4", time.Minute)).one(); !o.NotReady {
			t.Fatalf("a peer no configuration names coordinated: %+v", o)
		}
		// Then the change that adds it as a master, then the old gossip again.
		if r := n.reconfigure(n1, []string{n1, n2, n3, n4}, nil); !r.OK {
			t.Fatalf("reconfigure: %+v", r)
		}
		n.core(n4).Step(n2, &messages.ConfigCommit{Next: toProto(old), Incarnation: 1})
		n.run()
		requireReady(t, n.core(n4), true)
		if o := n.do1(n4, lockOp("k", "n4", time.Minute)); o.OK {
			t.Fatal("the newcomer granted a held key")
		}
		// A restarted master hears an older configuration before the
		// current one: not ready until it copied the others' leases.
		n.stop(n3)
		n.start(n3)
		n.core(n3).Step(n2, &messages.ConfigCommit{Next: toProto(old), Incarnation: 1})
		requireReady(t, n.core(n3), false)
		n.sleep(2 * time.Second)
		requireReady(t, n.core(n3), true)
		if o := n.do1(n3, lockOp("k", "n3", time.Minute)); o.OK {
			t.Fatal("the restarted master granted a held key")
		}
	})
}

// TestOneMemberClusterConfiguresItself checks that the first Reconfigure
// of a cluster of one member moves it to epoch 1, so it becomes ready:
// its own starting configuration (itself alone, epoch 0) is none.
func TestOneMemberClusterConfiguresItself(t *testing.T) {
	n := newNetworkWith(t, memberConfig(), n1)
	c := n.core(n1)
	if c.Ready() {
		t.Fatal("a member is ready before any configuration")
	}
	var res *ReconfigResult
	n.onAnswer(n1, c.Reconfigure([]string{n1}, nil), func(a Answer) { res = &a.Reconfig })
	n.run()
	if res == nil || !res.OK {
		t.Fatalf("Reconfigure: %+v", res)
	}
	if m := c.Membership(); m.Epoch == 0 || !c.Ready() {
		t.Fatalf("after its first Reconfigure: epoch %d, ready %v; want configured and ready", m.Epoch, c.Ready())
	}
}
