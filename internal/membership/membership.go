// Package membership is the policy that turns a cluster's topology into a
// Locker configuration: which members are masters (they vote on writes),
// which are replicas (they follow), and the write quorum W. It is pure:
// no actors, no goroutines, no clock, no protoactor types; the cluster
// shell (lockeractor's cluster mode) feeds it plain member records and
// applies what it proposes.
//
// # The policy
//
// Input: the alive members, each with its address and its join order
// (Member.Order; lower joined earlier, ties broken by address), the
// number of masters wanted N (Policy.Masters, default 3), and the current
// configuration. Output (Policy.Propose):
//
//  1. Let n = min(N, number of alive members).
//  2. Stability: every current master that is still alive stays a master,
//     oldest first by join order, up to n of them (when N was lowered the
//     youngest surplus masters become replicas).
//  3. Replacement: free master slots go to the current replicas that are
//     alive, oldest first by join order. A departed master is thereby
//     replaced by the oldest replica.
//  4. Catch-up: a member that is in neither list of the current
//     configuration joins as a replica, and is promoted by a later
//     proposal (step 3), once it is in the configuration. Exception, the
//     bootstrap: when the configuration was never set (epoch 0) or none of
//     its members is alive (every configured member gone), the first n
//     alive members by join order become masters at once.
//  5. Every other alive member is a replica; members that are not alive
//     are dropped from both lists.
//  6. W is the majority of the masters: len(masters)/2 + 1.
//
// With a stable topology the policy is a fixed point: applied to its own
// proposal it proposes the same configuration again, so a shell that
// applies a proposal only when it differs from the current configuration
// stops changing anything once the topology stops changing. The whole
// proposal is a function of its inputs only; two members that feed it
// the same inputs get the same answer.
//
// # Who applies a proposal
//
// Coordinator names the one member that applies proposals, so that
// members do not fight over the configuration: the alive current master
// with the smallest address; if no current master is alive, the alive
// current replica with the smallest address; if the configuration was
// never set (epoch 0) or none of its members is alive, the alive member
// with the smallest address. Members that share a configuration agree on
// the coordinator as soon as they agree on the set of alive members.
package membership

import (
	"cmp"
	"slices"
)

// DefaultMasters is the number of masters a Policy wants when Masters is
// zero.
const DefaultMasters = 3

// Member is one alive cluster member as the policy sees it.
type Member struct {
	// ID identifies this incarnation of the member (protoactor's
	// Member.Id is fresh at every actor-system start).
	ID string
	// Address is "host:port", the name configurations use.
	Address string
	// Order is the join order: lower joined earlier. Ties are broken by
	// Address. Tracker assigns it by first sight.
	Order uint64
}

// Config is a Locker configuration.
type Config struct {
	// Epoch is the configuration's epoch; 0 means never configured.
	Epoch uint64
	// Masters and Replicas are addresses; order does not matter.
	Masters  []string
	Replicas []string
	// W is the write quorum.
	W int
}

// Same reports whether c and o name the same masters, replicas and W
// (the epoch and the order of the lists are ignored).
func (c Config) Same(o Config) bool {
	return c.W == o.W && slices.Equal(sortedSet(c.Masters), sortedSet(o.Masters)) &&
		slices.Equal(sortedSet(c.Replicas), sortedSet(o.Replicas))
}

// Majority is the smallest number of masters that is more than half of n.
func Majority(n int) int { return n/2 + 1 }

// Policy computes configurations from topologies.
type Policy struct {
	// Masters is the number of masters wanted (N); 0 means DefaultMasters.
	// With fewer alive members, all of them are masters (bootstrap) or as
	// many as step 3 of the policy can fill.
	Masters int
}

func (p Policy) n() int {
	if p.Masters <= 0 {
		return DefaultMasters
	}
	return p.Masters
}

// Propose returns the configuration the policy wants for the alive
// members, given the current configuration (see the package doc for the
// rules). The returned lists are sorted; Epoch is current.Epoch. With no
// alive members it returns the current configuration unchanged.
func (p Policy) Propose(alive []Member, current Config) Config {
	members := byJoinOrder(alive)
	if len(members) == 0 {
		return current
	}
	n := min(p.n(), len(members))
	isMaster := setOf(current.Masters)
	isReplica := setOf(current.Replicas)

	configuredAlive := false
	for _, m := range members {
		if current.Epoch == 0 {
			break
		}
		if isMaster[m.Address] || isReplica[m.Address] {
			configuredAlive = true
			break
		}
	}

	chosen := map[string]bool{}
	var masters []string
	take := func(pick func(Member) bool) {
		for _, m := range members {
			if len(masters) == n {
				return
			}
			if !chosen[m.Address] && pick(m) {
				chosen[m.Address] = true
				masters = append(masters, m.Address)
			}
		}
	}
	if configuredAlive {
		take(func(m Member) bool { return isMaster[m.Address] })  // stability
		take(func(m Member) bool { return isReplica[m.Address] }) // replacement
	} else {
		take(func(Member) bool { return true }) // bootstrap
	}
	var replicas []string
	for _, m := range members {
		if !chosen[m.Address] {
			replicas = append(replicas, m.Address)
		}
	}
	masters, replicas = sortedSet(masters), sortedSet(replicas)
	return Config{Epoch: current.Epoch, Masters: masters, Replicas: replicas, W: Majority(len(masters))}
}

// Coordinator returns the address of the one member that applies
// proposals for the given alive members and current configuration (see
// the package doc), and false when no member is alive.
func Coordinator(alive []Member, current Config) (string, bool) {
	addrs := make([]string, 0, len(alive))
	for _, m := range alive {
		addrs = append(addrs, m.Address)
	}
	addrs = sortedSet(addrs)
	if len(addrs) == 0 {
		return "", false
	}
	if current.Epoch != 0 {
		for _, list := range [][]string{current.Masters, current.Replicas} {
			in := setOf(list)
			for _, a := range addrs {
				if in[a] {
					return a, true
				}
			}
		}
	}
	return addrs[0], true
}

// Seen is a member as a topology lists it, before it has a join order.
type Seen struct {
	ID      string
	Address string
}

// Tracker assigns join orders by first sight: a member (by ID) gets the
// next order the first time it is observed and keeps it; members first
// seen in the same observation are ordered by address. A member that
// restarts has a new ID and so joins again, at the end. Members gone
// from an observation are forgotten. The zero Tracker is ready to use;
// it is not safe for concurrent use.
type Tracker struct {
	next  uint64
	order map[string]uint64
}

// Observe records the members of one topology and returns them with
// their join orders, oldest first.
func (t *Tracker) Observe(members []Seen) []Member {
	if t.order == nil {
		t.order = map[string]uint64{}
	}
	fresh := slices.Clone(members)
	slices.SortFunc(fresh, func(a, b Seen) int { return cmp.Or(cmp.Compare(a.Address, b.Address), cmp.Compare(a.ID, b.ID)) })
	present := make(map[string]bool, len(fresh))
	out := make([]Member, 0, len(fresh))
	for _, s := range fresh {
		if present[s.ID] {
			continue
		}
		present[s.ID] = true
		o, ok := t.order[s.ID]
		if !ok {
			o = t.next
			t.next++
			t.order[s.ID] = o
		}
		out = append(out, Member{ID: s.ID, Address: s.Address, Order: o})
	}
	for id := range t.order {
		if !present[id] {
			delete(t.order, id)
		}
	}
	return byJoinOrder(out)
}

// byJoinOrder returns the members sorted by (Order, Address), one per
// address (the oldest wins when two incarnations share an address).
func byJoinOrder(members []Member) []Member {
	out := slices.Clone(members)
	slices.SortFunc(out, func(a, b Member) int {
		return cmp.Or(cmp.Compare(a.Order, b.Order), cmp.Compare(a.Address, b.Address))
	})
	seen := map[string]bool{}
	return slices.DeleteFunc(out, func(m Member) bool {
		if seen[m.Address] {
			return true
		}
		seen[m.Address] = true
		return false
	})
}

func setOf(list []string) map[string]bool {
	s := make(map[string]bool, len(list))
	for _, a := range list {
		s[a] = true
	}
	return s
}

func sortedSet(list []string) []string {
	out := slices.Clone(list)
	slices.Sort(out)
	return slices.Compact(out)
}
