package core

import (
	"math/bits"
	"math/rand"
	"reflect"
	"testing"
	"testing/quick"
)

// tallyOracle decides a count the naive way: by trying every way the
// masters that have not answered could still answer.
func tallyOracle(w, masters, yes, no int) (reached, impossible, decided bool) {
	pending := masters - yes - no
	reaches := func(y int) bool { return w >= 1 && y >= w }
	any, all := false, true
	for answers := uint(0); answers < 1<<pending; answers++ {
		r := reaches(yes + bits.OnesCount(answers))
		any = any || r
		all = all && r
	}
	return reaches(yes), !any, all || !any
}

func checkTally(t *testing.T, tl Tally) {
	t.Helper()
	reached, impossible, decided := tallyOracle(tl.W, tl.Masters, tl.Yes, tl.No)
	if tl.Pending() != tl.Masters-tl.Yes-tl.No {
		t.Fatalf("%+v: Pending() = %d", tl, tl.Pending())
	}
	if tl.Reached() != reached || tl.Impossible() != impossible || tl.Decided() != decided {
		t.Fatalf("%+v: Reached=%v Impossible=%v Decided=%v, oracle says %v %v %v",
			tl, tl.Reached(), tl.Impossible(), tl.Decided(), reached, impossible, decided)
	}
	if tl.Reached() && tl.Impossible() {
		t.Fatalf("%+v: both reached and impossible", tl)
	}
}

// TestTallyAgainstOracle checks the quorum arithmetic on every small
// combination of W, masters, yes and no answers.
func TestTallyAgainstOracle(t *testing.T) {
	t.Run("every combination up to 8 masters agrees with the oracle", func(t *testing.T) {
		for w := -1; w <= 9; w++ {
			for m := 0; m <= 8; m++ {
				for yes := 0; yes <= m; yes++ {
					for no := 0; yes+no <= m; no++ {
						checkTally(t, Tally{W: w, Masters: m, Yes: yes, No: no})
					}
				}
			}
		}
	})
}

// votes is a random count: W, the masters, and the answers that came in
// so far, in order (true: yes).
type votes struct {
	W       int
	Masters int
	Answers []bool
}

// Generate implements quick.Generator with small counts.
func (votes) Generate(r *rand.Rand, _ int) reflect.Value {
	v := votes{W: r.Intn(11) - 1, Masters: r.Intn(11)}
	v.Answers = make([]bool, r.Intn(v.Masters+1))
	for i := range v.Answers {
		v.Answers[i] = r.Intn(2) == 0
	}
	return reflect.ValueOf(v)
}

// TestTallyProperties checks, on random answer sequences, that every
// prefix agrees with the oracle and that a decided outcome never changes.
func TestTallyProperties(t *testing.T) {
	t.Run("answers arriving one by one agree with the oracle and a decision never changes", func(t *testing.T) {
		prop := func(v votes) bool {
			tl := Tally{W: v.W, Masters: v.Masters}
			decided, outcome := false, false
			for _, yes := range v.Answers {
				if yes {
					tl.Yes++
				} else {
					tl.No++
				}
				reached, impossible, dec := tallyOracle(tl.W, tl.Masters, tl.Yes, tl.No)
				if tl.Reached() != reached || tl.Impossible() != impossible || tl.Decided() != dec {
					return false
				}
				if decided && (!tl.Decided() || tl.Reached() != outcome) {
					return false // a decided count changed its mind
				}
				if tl.Decided() && !decided {
					decided, outcome = true, tl.Reached()
				}
			}
			if tl.Pending() == 0 && !tl.Decided() {
				return false // every master answered: the outcome is known
			}
			return true
		}
		if err := quick.Check(prop, &quick.Config{MaxCount: 5000, Rand: rand.New(rand.NewSource(1))}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("W below 1 is never reached", func(t *testing.T) {
		prop := func(m, yes uint8) bool {
			tl := Tally{W: 0, Masters: int(m), Yes: int(min(yes, m))}
			return !tl.Reached() && tl.Impossible()
		}
		if err := quick.Check(prop, nil); err != nil {
			t.Fatal(err)
		}
	})
}
