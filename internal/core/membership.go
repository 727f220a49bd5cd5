package core

import (
	"fmt"

	"github.com/protoactor-locker/locker/messages"
)

// Membership is the configuration a peer works with. Published values are
// never modified.
type Membership struct {
	Epoch    uint64
	Masters  []string // sorted
	Replicas []string // sorted
	W        int
	// OldMasters is not empty while the masters change (a joint
	// configuration): a write then needs W of Masters and OldW of
	// OldMasters.
	OldMasters []string // sorted
	OldW       int
}

// IsMaster reports whether addr votes on writes: one of the masters, or
// of the old masters during a change.
func (m *Membership) IsMaster(addr string) bool {
	return contains(m.Masters, addr) || contains(m.OldMasters, addr)
}

// Joint reports whether m is a transition between two sets of masters.
func (m *Membership) Joint() bool { return len(m.OldMasters) > 0 }

// Voters returns the masters and old masters, sorted, without repeats.
func (m *Membership) Voters() []string {
	if !m.Joint() {
		return m.Masters
	}
	return SortedSet(append(append([]string{}, m.Masters...), m.OldMasters...))
}

// Everyone returns every peer m names, sorted, without repeats.
func (m *Membership) Everyone() []string {
	return SortedSet(append(append(append([]string{}, m.Masters...), m.OldMasters...), m.Replicas...))
}

func toProto(m *Membership) *messages.Configuration {
	return &messages.Configuration{
		Epoch: m.Epoch, Masters: m.Masters, Replicas: m.Replicas, W: int32(m.W),
		OldMasters: m.OldMasters, OldW: int32(m.OldW),
	}
}

// fromProto checks a configuration from the wire; the string says what
// is wrong with it, "" when nothing is.
func fromProto(p *messages.Configuration) (*Membership, string) {
	if p == nil {
		return nil, "no configuration"
	}
	m := &Membership{
		Epoch: p.GetEpoch(), Masters: SortedSet(p.GetMasters()), Replicas: SortedSet(p.GetReplicas()),
		W: int(p.GetW()), OldMasters: SortedSet(p.GetOldMasters()), OldW: int(p.GetOldW()),
	}
	if len(m.OldMasters) == 0 {
		m.OldMasters, m.OldW = nil, 0
	}
	if msg := CheckNodes(m.Masters, m.Replicas, m.W); msg != "" {
		return nil, msg
	}
	if msg := CheckW(m.W, len(m.Masters)); msg != "" {
		return nil, msg
	}
	if m.Joint() {
		if msg := CheckNodes(m.OldMasters, nil, m.OldW); msg != "" {
			return nil, msg
		}
		if msg := CheckW(m.OldW, len(m.OldMasters)); msg != "" {
			return nil, msg
		}
		for _, r := range m.Replicas {
			if contains(m.OldMasters, r) {
				return nil, fmt.Sprintf("%s is both an old master and a replica", r)
			}
		}
	}
	return m, ""
}

// without returns the addresses of a that are not in b.
func without(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
