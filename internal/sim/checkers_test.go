package sim

import (
	"testing"
	"time"

	"github.com/protoactor-locker/locker/internal/core"
	"github.com/protoactor-locker/locker/messages"
)

// kinds returns the kinds of the violations s recorded.
func kinds(s *Sim) []string {
	var out []string
	for _, v := range s.res.Violations {
		out = append(out, v.Kind)
	}
	return out
}

// requireKinds fails t unless s recorded exactly the violations of want
// (in order; none for an empty want).
func requireKinds(t *testing.T, s *Sim, want ...string) {
	t.Helper()
	got := kinds(s)
	if len(got) != len(want) {
		t.Fatalf("violations %q, want %q: %v", got, want, s.res.Violations)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("violations %q, want %q: %v", got, want, s.res.Violations)
		}
	}
}

// TestGrantCheckers feeds the token-order and token-reuse checks
// (keyState.granted) known answers, good and bad.
func TestGrantCheckers(t *testing.T) {
	type grant struct {
		lineage      int // the Lock this answer belongs to
		call, answer int64
		token        uint64
	}
	for _, tc := range []struct {
		name   string
		grants []grant
		broken []string
	}{
		{"tokens grow with real time", []grant{{1, 0, 10, 5}, {2, 20, 30, 6}, {3, 40, 50, 9}}, nil},
		{"concurrent locks may be answered out of token order", []grant{{1, 0, 30, 6}, {2, 10, 20, 5}}, nil},
		{"a lock invoked after an answer gets a smaller token", []grant{{1, 0, 10, 5}, {2, 20, 30, 4}}, []string{"token order"}},
		{"two concurrent locks share a token", []grant{{1, 0, 30, 5}, {2, 10, 20, 5}}, []string{"token reuse"}},
		{"a later lock reuses an earlier one's token", []grant{{1, 0, 10, 5}, {2, 20, 30, 5}}, []string{"token order", "token reuse"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Config{Seed: 1, KeepGoing: true})
			ks := newKeyState("a", true)
			c := &client{s: s, id: 1, keys: map[string]*holding{"a": {}}}
			for _, g := range tc.grants {
				s.now = g.answer
				ks.granted(s, c, &Op{ID: g.lineage, Kind: opLock, Key: "a", Call: g.call}, g.token)
			}
			requireKinds(t, s, tc.broken...)
		})
	}
}

// TestDoubleAnswerChecker answers one write twice: the second answer is
// a violation and does not reach the client.
func TestDoubleAnswerChecker(t *testing.T) {
	s := New(Config{Seed: 1, KeepGoing: true})
	got := 0
	reply := s.answerOnce(1, core.Op{Kind: opLock, Key: "a"}, func([]core.Outcome) { got++ })
	reply([]core.Outcome{{OK: true}})
	requireKinds(t, s)
	reply([]core.Outcome{{OK: true}})
	requireKinds(t, s, "double answer")
	if got != 1 {
		t.Fatalf("the client got %d answers, want 1", got)
	}
}

// TestDoubleHolderChecker makes two clients believe they hold one key.
func TestDoubleHolderChecker(t *testing.T) {
	for _, both := range []bool{false, true} {
		cfg := DefaultConfig(1)
		cfg.Masters, cfg.Replicas, cfg.Clients, cfg.KeepGoing = 3, 0, 2, true
		s := New(cfg)
		until := Epoch.Add(time.Hour)
		s.clients[0].keys["a"] = &holding{state: held, lineage: 1, values: []string{"v1"}, token: 5, validUntil: until}
		if both {
			s.clients[1].keys["a"] = &holding{state: held, lineage: 2, values: []string{"v2"}, token: 6, validUntil: until}
		}
		s.checkInvariants()
		if both {
			requireKinds(t, s, "double holder")
		} else {
			requireKinds(t, s)
		}
	}
}

// TestLinearizabilityChecker records two Locks of a long key answered OK
// one after the other with no Release between them.
func TestLinearizabilityChecker(t *testing.T) {
	s := New(Config{Seed: 1, KeepGoing: true})
	a := s.hist.Invoke(1, true, "a", opLock, "v1", "", time.Hour.Milliseconds(), 0)
	s.hist.Finish(a, OK, 5, 10)
	b := s.hist.Invoke(2, true, "a", opLock, "v2", "", time.Hour.Milliseconds(), 20)
	s.hist.Finish(b, OK, 6, 30)
	s.checkLinearizable()
	requireKinds(t, s, "linearizability")
}

// quietCluster starts 3 masters and 1 replica with no clients and no
// faults, configured, for the checkers' own scenarios.
func quietCluster(t *testing.T) (s *Sim, master, replica *peer) {
	t.Helper()
	cfg := DefaultConfig(1)
	cfg.Masters, cfg.Replicas, cfg.Clients, cfg.Faults, cfg.KeepGoing = 3, 1, 0, false, true
	s = New(cfg)
	if err := s.bootstrap(); err != nil {
		t.Fatal(err)
	}
	s.cfgDone = true
	return s, s.peers[0], s.peers[3]
}

// write runs op through master until it answers; it must succeed.
func write(t *testing.T, s *Sim, master *peer, op core.Op) core.Outcome {
	t.Helper()
	var got *core.Outcome
	master.await(master.core.Submit([]core.Op{op}), func(a core.Answer) { got = &a.Outcomes[0] })
	s.flush(master)
	s.runFor(2 * time.Second)
	if got == nil || !got.OK {
		t.Fatalf("%v of %q: %+v", op.Kind, op.Key, got)
	}
	return *got
}

// TestReplicaDivergenceCheckerSeesATombstone gives the replica a
// tombstone of the key with a larger token than the lease W masters
// hold: the replica holds nothing, which checkConverged must report even
// though the replica's token is the larger.
func TestReplicaDivergenceCheckerSeesATombstone(t *testing.T) {
	s, master, replica := quietCluster(t)
	got := write(t, s, master, core.Op{Kind: opLock, Key: "a", Value: []byte("v"), LeaseMs: time.Hour.Milliseconds()})
	replica.core.Step("10.0.0.99:1", &messages.Replicate{Entries: []*messages.Entry{{Key: "a", Token: got.Token + 1, Deleted: true}}})
	replica.core.TakeOutput()
	if l, ok := replica.core.Store().Lookup("a"); !ok || !l.Released {
		t.Fatalf("the replica did not take the tombstone: %+v %v", l, ok)
	}
	s.checkConverged()
	if !s.res.Judged {
		t.Fatal("the run was not judged")
	}
	requireKinds(t, s, "replica divergence")
}

// TestReplicaDivergenceChecker locks a key, lets it reach the replica,
// then cuts the replica off and releases the key on the masters: the
// replica keeps a lease no master holds, which checkConverged must
// report. Without the cut, the replica follows and the run is judged
// clean.
func TestReplicaDivergenceChecker(t *testing.T) {
	for _, cut := range []bool{false, true} {
		s, master, replica := quietCluster(t)
		write(t, s, master, core.Op{Kind: opLock, Key: "a", Value: []byte("v"), LeaseMs: time.Hour.Milliseconds()})
		if l, ok := replica.core.Store().Lookup("a"); !ok || l.Released {
			t.Fatalf("the replica never got the lease: %+v %v", l, ok)
		}
		if cut {
			s.groups = map[string]int{replica.addr: 1}
			s.partitioned = true
		}
		write(t, s, master, core.Op{Kind: opRelease, Key: "a", Value: []byte("v")})
		s.checkConverged()
		if !s.res.Judged {
			t.Fatalf("cut %v: the run was not judged", cut)
		}
		if cut {
			requireKinds(t, s, "replica divergence")
		} else {
			requireKinds(t, s)
		}
	}
}

// TestReleasedLeaseBackChecker: after a Release of "v" succeeded, a
// quorum of masters holding "v" again is a released lease back (the
// ghost lease), which checkConverged must report; the simulation's
// clients never write a value twice, so here a Lock that writes "v"
// again stands for the stale copy. A released key left alone is judged
// clean.
func TestReleasedLeaseBackChecker(t *testing.T) {
	for _, back := range []bool{false, true} {
		s, master, _ := quietCluster(t)
		write(t, s, master, core.Op{Kind: opLock, Key: "a", Value: []byte("v"), LeaseMs: time.Hour.Milliseconds()})
		write(t, s, master, core.Op{Kind: opRelease, Key: "a", Value: []byte("v")})
		s.keys["a"].released["v"] = true // as a client's successful Release records it
		if back {
			write(t, s, master, core.Op{Kind: opLock, Key: "a", Value: []byte("v"), LeaseMs: time.Hour.Milliseconds()})
		}
		s.checkConverged()
		if !s.res.Judged {
			t.Fatalf("back %v: the run was not judged", back)
		}
		if back {
			requireKinds(t, s, "released lease back")
		} else {
			requireKinds(t, s)
		}
	}
}
