package core

// Tally counts the answers of the masters for one item of a write.
// It is the one place where quorum arithmetic lives.
type Tally struct {
	W       int // promises (or commits) needed
	Masters int // masters asked
	Yes     int // granted / committed
	No      int // refused or unreachable
}

// Pending is how many masters have not answered yet.
func (t Tally) Pending() int { return t.Masters - t.Yes - t.No }

// Reached reports whether at least W masters said yes.
func (t Tally) Reached() bool { return t.W >= 1 && t.Yes >= t.W }

// Impossible reports whether W can no longer be reached, even if every
// master that has not answered says yes.
func (t Tally) Impossible() bool { return t.W < 1 || t.Yes+t.Pending() < t.W }

// Decided reports whether the outcome is known.
func (t Tally) Decided() bool { return t.Reached() || t.Impossible() }

// Quorum counts answers against the write quorum of a configuration: W
// of its masters and, during a change of masters, also OldW of the old
// masters. Each voter must be counted at most once.
type Quorum struct {
	groups []quorumGroup
	yes    int // distinct voters that said yes
}

type quorumGroup struct {
	members []string // sorted
	t       Tally
}

// QuorumOf returns an empty count for m's write quorum.
func QuorumOf(m *Membership) *Quorum {
	q := &Quorum{groups: []quorumGroup{{members: m.Masters, t: Tally{W: m.W, Masters: len(m.Masters)}}}}
	if len(m.OldMasters) > 0 {
		q.groups = append(q.groups, quorumGroup{members: m.OldMasters, t: Tally{W: m.OldW, Masters: len(m.OldMasters)}})
	}
	return q
}

// Count records addr's answer in every group addr belongs to.
func (q *Quorum) Count(addr string, yes bool) {
	if yes {
		q.yes++
	}
	for i := range q.groups {
		if contains(q.groups[i].members, addr) {
			if yes {
				q.groups[i].t.Yes++
			} else {
				q.groups[i].t.No++
			}
		}
	}
}

// Yes is how many distinct voters said yes.
func (q *Quorum) Yes() int { return q.yes }

// Reached reports whether every group reached its W.
func (q *Quorum) Reached() bool {
	for _, g := range q.groups {
		if !g.t.Reached() {
			return false
		}
	}
	return true
}

// Impossible reports whether some group can no longer reach its W.
func (q *Quorum) Impossible() bool {
	for _, g := range q.groups {
		if g.t.Impossible() {
			return true
		}
	}
	return false
}

// Decided reports whether the outcome is known.
func (q *Quorum) Decided() bool { return q.Reached() || q.Impossible() }

// Majority is the smallest majority of n masters.
func Majority(n int) int { return n/2 + 1 }
