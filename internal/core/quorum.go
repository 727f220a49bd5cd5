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
