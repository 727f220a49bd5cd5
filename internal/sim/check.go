package sim

import (
	"slices"
	"time"

	"github.com/protoactor-locker/locker/internal/core"
)

// keyState is what the checkers know about one key.
type keyState struct {
	key      string
	long     bool
	resource resource
	// the successful Locks and Updates, in order of their answers
	grantAt  []int64  // real time of the answer
	grantMax []uint64 // the largest token answered up to and including this one
	owner    map[uint64]int
	// released are the values whose Release succeeded (committed on W
	// masters): each Lock and Update writes a value of its own, so no
	// quorum of masters may hold one of them again.
	released map[string]bool
}

func newKeyState(key string, long bool) *keyState {
	return &keyState{key: key, long: long, owner: map[uint64]int{}, released: map[string]bool{}}
}

// granted checks the token of a successful Lock or Update of rec's key,
// answered now: it must be larger than the token of every successful
// Lock or Update answered before rec was invoked (fencing tokens follow
// real time), and no two locks may share a token.
func (k *keyState) granted(s *Sim, c *client, rec *Op, token uint64) {
	lineage := rec.ID
	if h := c.keys[k.key]; rec.Kind != opLock && h != nil {
		lineage = h.lineage
	}
	i, _ := slices.BinarySearch(k.grantAt, rec.Call) // answers strictly before the call
	if i > 0 && token <= k.grantMax[i-1] {
		s.violate("token order", "%v of %q by client %d (invoked at %v) got token %d, not above %d answered before it was invoked",
			rec.Kind, k.key, c.id, time.Duration(rec.Call), token, k.grantMax[i-1])
	}
	if l, ok := k.owner[token]; ok && l != lineage {
		s.violate("token reuse", "token %d of %q went to lock %d and to lock %d", token, k.key, l, lineage)
	}
	k.owner[token] = lineage
	m := token
	if n := len(k.grantMax); n > 0 {
		m = max(m, k.grantMax[n-1])
	}
	k.grantAt = append(k.grantAt, s.now)
	k.grantMax = append(k.grantMax, m)
}

// answerOnce returns the callback of client's write op: it passes the
// first answer on to reply and reports any further one as a "double
// answer" (a write is answered exactly once).
func (s *Sim) answerOnce(client int, op core.Op, reply func([]core.Outcome)) func([]core.Outcome) {
	answered := 0
	return func(outs []core.Outcome) {
		answered++
		if answered > 1 {
			s.violate("double answer", "%v of %q by client %d answered %d times", op.Kind, op.Key, client, answered)
			return
		}
		reply(outs)
	}
}

// resource is the protected resource of one key: it accepts a write with
// a token at least the largest it has accepted, as the fencing recipe
// says. Holders write to it only while their lease is valid by their own
// clock, but a write may arrive late (a pause between the check and the
// write). Mutual exclusion holds if it never accepts a write of a holder
// after accepting one of a later holder, and never a write of two
// holders with one token.
type resource struct {
	max        uint64
	last       int          // the lock whose write it accepted last
	superseded map[int]bool // locks another lock wrote after
	accepted   int
	refused    int
}

func (r *resource) write(s *Sim, c *client, lineage int, token uint64) {
	if token < r.max {
		r.refused++
		s.note("resource refuses token %d of lock %d (client %d): it saw %d", token, lineage, c.id, r.max)
		return
	}
	if r.superseded == nil {
		r.superseded = map[int]bool{}
	}
	switch {
	case r.superseded[lineage]:
		s.violate("resource interleaving", "the resource accepted a write of lock %d (client %d, token %d) after a later lock %d wrote", lineage, c.id, token, r.last)
	case token == r.max && r.last != 0 && r.last != lineage:
		s.violate("resource token reuse", "locks %d and %d wrote to the resource with one token %d", r.last, lineage, token)
	}
	if r.last != 0 && r.last != lineage {
		r.superseded[r.last] = true
	}
	r.last, r.max = lineage, token
	r.accepted++
	s.note("resource accepts token %d of lock %d (client %d)", token, lineage, c.id)
}

// checkInvariants checks, after a step, that at most one client of each
// key believes (by its own clock, from its invocation, with a margin for
// drift) that it holds a lease it has not released.
func (s *Sim) checkInvariants() {
	for _, key := range s.keyList {
		holder := -1
		for _, c := range s.clients {
			h := c.keys[key]
			if !c.valid(h) {
				continue
			}
			if holder >= 0 {
				o := s.clients[holder]
				s.violate("double holder", "clients %d (lock %d, until %v by its clock) and %d (lock %d, until %v by its clock) both hold %q",
					holder, o.keys[key].lineage, o.keys[key].validUntil.Sub(Epoch), c.id, h.lineage, h.validUntil.Sub(Epoch), key)
				return
			}
			holder = c.id
		}
	}
}

// convergeMargin is the lease a key must have left on every peer that
// holds it for checkConverged to judge it: with clocks 1 % apart, a key
// closer to its deadline may have expired on some peers and not others.
const convergeMargin = 2 * time.Second

// settleRounds is how many more quiet times checkConverged lets pass,
// one at a time, for the peers to agree on the configuration and finish
// copying leases before it judges the replicas.
const settleRounds = 3

// settled returns the configuration every peer it names runs, or nil
// while one of them is down, they disagree on the configuration, a change
// of masters is half done or a master still copies leases after a
// restart: the replicas cannot be judged then. A peer the configuration
// no longer names (a change left it out) is not waited for.
func (s *Sim) settled() *core.Membership {
	var m *core.Membership
	for _, p := range s.peers {
		if pm := p.core.Membership(); !p.down && (m == nil || pm.Epoch > m.Epoch) {
			m = pm
		}
	}
	if m == nil {
		return nil
	}
	for _, a := range m.Everyone() {
		p := s.addr[a]
		if pm := p.core.Membership(); p.down || pm.Epoch != m.Epoch || pm.Joint() || p.core.CatchingUp() {
			return nil
		}
	}
	return m
}

// finishChange asks a new master (the round-th available one, so that
// every round asks another) to finish a change of masters still half
// done, as the next Reconfigure would.
func (s *Sim) finishChange(round int) {
	m := s.newestMembership()
	if m == nil || !m.Joint() {
		return
	}
	var coords []*peer
	for _, a := range m.Masters {
		if p := s.addr[a]; p.available(s.now) {
			coords = append(coords, p)
		}
	}
	if len(coords) == 0 {
		return
	}
	p := coords[round%len(coords)]
	replicas := append(slices.Clone(m.Replicas), slices.DeleteFunc(slices.Clone(m.OldMasters), func(a string) bool {
		return slices.Contains(m.Masters, a)
	})...)
	s.note("%s finishes the change of masters (settling, round %d)", p.addr, round)
	p.await(p.core.Reconfigure(m.Masters, replicas), func(a core.Answer) {
		s.note("reconfiguration by %s answered %+v", p.addr, a.Reconfig)
	})
	s.flush(p)
}

// checkConverged checks, after the quiet time, that every replica holds
// what the masters hold: no live key that no master holds, and no older
// state (or nothing at all) where a write quorum of masters holds a
// lease with the newest token any master knows of the key. Keys a
// minority holds or released (writes with unknown outcomes) may go
// either way on a replica and are not judged. While the peers have not
// settled (see settled) it lets up to settleRounds more quiet times
// pass; a run that never settles is not judged, and Result.Judged says
// which runs were (TestSimulation requires nearly all of them).
func (s *Sim) checkConverged() {
	m := s.settled()
	for i := 0; m == nil && i < settleRounds && !s.stopped; i++ {
		s.finishChange(i)
		s.runFor(quietTime)
		m = s.settled()
	}
	if m == nil || s.stopped {
		s.note("the peers never settled: the replicas are not judged")
		return
	}
	s.res.Judged = true
keys:
	for _, key := range s.keyList {
		var newest core.Lease
		holders, live, released := 0, 0, uint64(0)
		for _, a := range m.Masters {
			l, ok := s.addr[a].core.Store().Lookup(key)
			switch {
			case !ok || l.Left <= 0:
			case l.Released:
				released = max(released, l.Token)
			case l.Left < convergeMargin:
				continue keys // about to expire here: not judged
			case live == 0 || l.Token > newest.Token:
				newest, holders, live = l, 1, live+1
			case l.Token == newest.Token:
				holders++
				live++
			default:
				live++
			}
		}
		s.checkReleasedStaysReleased(m, key)
		for _, r := range m.Replicas {
			l, ok := s.addr[r].core.Store().Lookup(key)
			held := ok && !l.Released && l.Left > 0
			switch {
			case held && l.Left < convergeMargin:
			case live == 0 && held:
				s.violate("replica divergence", "replica %s holds %q = %q (token %d) that no master holds", r, key, l.Value, l.Token)
			case live > 0 && holders >= m.W && newest.Token > released && (!held || l.Token < newest.Token):
				// W masters hold the newest lease and none released it: a
				// replica that does not hold it has lost it, also behind a
				// tombstone with a token as large or larger.
				s.violate("replica divergence", "replica %s holds %q as %+v; %d masters hold %q (token %d), the newest",
					r, key, l, holders, newest.Value, newest.Token)
			}
		}
	}
}

// checkReleasedStaysReleased checks that no write quorum of m's masters
// holds a lease of key whose Release succeeded: a stale copy of a
// released lease (kept by a master that missed the Release) must not
// come back onto a quorum, where it would keep the key locked by nobody
// until it ends (the ghost lease). Replicas follow what the masters
// hold, so a replica check alone cannot see it. A lease about to expire
// on a master is not counted.
func (s *Sim) checkReleasedStaysReleased(m *core.Membership, key string) {
	ks := s.keys[key]
	holders := map[string]int{}
	for _, a := range m.Masters {
		l, ok := s.addr[a].core.Store().Lookup(key)
		if ok && !l.Released && l.Left >= convergeMargin && ks.released[string(l.Value)] {
			holders[string(l.Value)]++
		}
	}
	for v, n := range holders {
		if n >= m.W {
			s.violate("released lease back", "%d masters hold %q = %q, whose Release succeeded", n, key, v)
		}
	}
}
