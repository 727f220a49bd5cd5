package membership

import (
	"fmt"
	"slices"
	"testing"
)

// ms builds alive members a, b, c... with join orders 0, 1, 2... in the
// order given: ms("c", "a") means c joined before a.
func ms(addrs ...string) []Member {
	out := make([]Member, len(addrs))
	for i, a := range addrs {
		out[i] = Member{ID: "id-" + a, Address: a, Order: uint64(i)}
	}
	return out
}

func cfg(epoch uint64, masters, replicas []string) Config {
	return Config{Epoch: epoch, Masters: masters, Replicas: replicas, W: Majority(len(masters))}
}

func l(s ...string) []string { return s }

func TestPropose(t *testing.T) {
	tests := []struct {
		rule    string
		n       int
		alive   []Member
		current Config
		want    Config
	}{
		{
			rule:    "bootstrap: never configured, the first N by join order are masters",
			alive:   ms("d", "b", "a", "c"),
			current: Config{Masters: l("a"), W: 1},
			want:    cfg(0, l("a", "b", "d"), l("c")),
		},
		{
			rule:    "bootstrap with fewer members than N: all are masters",
			alive:   ms("b", "a"),
			current: Config{Masters: l("b"), W: 1},
			want:    cfg(0, l("a", "b"), nil),
		},
		{
			rule:    "a single member is its own master with W = 1",
			alive:   ms("a"),
			current: Config{Masters: l("a"), W: 1},
			want:    cfg(0, l("a"), nil),
		},
		{
			rule:  "N configurable: N = 5 of 6 members",
			n:     5,
			alive: ms("a", "b", "c", "d", "e", "f"),
			want:  cfg(0, l("a", "b", "c", "d", "e"), l("f")),
		},
		{
			rule:    "fixed point: a configuration the policy made is proposed again",
			alive:   ms("a", "b", "c", "d"),
			current: cfg(4, l("a", "b", "c"), l("d")),
			want:    cfg(4, l("a", "b", "c"), l("d")),
		},
		{
			rule:    "stability: alive masters stay, even when older members are replicas",
			alive:   ms("d", "e", "a", "b", "c"),
			current: cfg(2, l("a", "b", "c"), l("d", "e")),
			want:    cfg(2, l("a", "b", "c"), l("d", "e")),
		},
		{
			rule:    "a departed master is replaced by the oldest replica",
			alive:   ms("a", "c", "e", "d"),
			current: cfg(3, l("a", "b", "c"), l("d", "e")),
			want:    cfg(3, l("a", "c", "e"), l("d")),
		},
		{
			rule:    "a departed replica is dropped",
			alive:   ms("a", "b", "c"),
			current: cfg(3, l("a", "b", "c"), l("d")),
			want:    cfg(3, l("a", "b", "c"), nil),
		},
		{
			rule:    "a departed master without replicas leaves fewer masters, W their majority",
			alive:   ms("a", "c"),
			current: cfg(3, l("a", "b", "c"), nil),
			want:    cfg(3, l("a", "c"), nil),
		},
		{
			rule:    "a new member joins as a replica first, even with a master slot free",
			alive:   ms("a", "c", "x"),
			current: cfg(3, l("a", "c"), nil),
			want:    cfg(3, l("a", "c"), l("x")),
		},
		{
			rule:    "...and is promoted once it is a replica",
			alive:   ms("a", "c", "x"),
			current: cfg(4, l("a", "c"), l("x")),
			want:    cfg(4, l("a", "c", "x"), nil),
		},
		{
			rule:    "promotion takes replicas by join order, not by address",
			alive:   ms("a", "z", "y"),
			current: cfg(2, l("a"), l("y", "z")),
			want:    cfg(2, l("a", "y", "z"), nil),
		},
		{
			rule:    "N lowered: the youngest masters become replicas",
			n:       1,
			alive:   ms("b", "a", "c"),
			current: cfg(2, l("a", "b", "c"), nil),
			want:    cfg(2, l("b"), l("a", "c")),
		},
		{
			rule:    "every configured member gone: bootstrap again from the alive ones",
			alive:   ms("x", "y"),
			current: cfg(7, l("a", "b", "c"), l("d")),
			want:    cfg(7, l("x", "y"), nil),
		},
		{
			rule:    "no alive member: the current configuration, unchanged",
			alive:   nil,
			current: cfg(7, l("a", "b", "c"), nil),
			want:    cfg(7, l("a", "b", "c"), nil),
		},
		{
			rule:    "two incarnations at one address count once, the oldest",
			alive:   []Member{{ID: "new", Address: "a", Order: 9}, {ID: "b", Address: "b", Order: 1}, {ID: "old", Address: "a", Order: 0}},
			current: Config{},
			want:    cfg(0, l("a", "b"), nil),
		},
	}
	for _, tt := range tests {
		t.Run(tt.rule, func(t *testing.T) {
			got := Policy{Masters: tt.n}.Propose(tt.alive, tt.current)
			if !got.Same(tt.want) || got.Epoch != tt.want.Epoch {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestProposeConverges checks that applying proposals until nothing
// changes ends within two steps (one to add newcomers as replicas, one to
// promote them) and ends at a fixed point with W a majority.
func TestProposeConverges(t *testing.T) {
	alive := ms("a", "b", "c", "d", "e")
	starts := []Config{
		{},
		cfg(1, l("a"), nil),
		cfg(5, l("b"), l("a")),
		cfg(5, l("x", "y", "c"), l("z")),
		cfg(5, l("a", "b", "c", "d", "e"), nil),
	}
	for _, n := range []int{0, 1, 2, 3, 5, 7} {
		for _, start := range starts {
			cur := start
			steps := 0
			for {
				next := Policy{Masters: n}.Propose(alive, cur)
				if next.Same(cur) {
					break
				}
				steps++
				if steps > 2 {
					t.Fatalf("N=%d from %+v: no fixed point after 2 steps (%+v)", n, start, next)
				}
				cur = next
				cur.Epoch++
			}
			wantN := min(Policy{Masters: n}.n(), len(alive))
			if len(cur.Masters) != wantN || cur.W != Majority(wantN) || len(cur.Masters)+len(cur.Replicas) != len(alive) {
				t.Fatalf("N=%d from %+v: ended at %+v", n, start, cur)
			}
		}
	}
}

func TestCoordinator(t *testing.T) {
	tests := []struct {
		rule    string
		alive   []Member
		current Config
		want    string
	}{
		{"the alive master with the smallest address", ms("a", "b", "c", "d"), cfg(2, l("c", "b"), l("a", "d")), "b"},
		{"a dead master is passed over", ms("a", "c", "d"), cfg(2, l("b", "c"), l("a", "d")), "c"},
		{"no master alive: the alive replica with the smallest address", ms("a", "d"), cfg(2, l("b", "c"), l("d", "a")), "a"},
		{"never configured: the smallest alive address", ms("c", "b"), Config{Masters: l("c"), W: 1}, "b"},
		{"nobody configured alive: the smallest alive address", ms("y", "x"), cfg(3, l("a"), nil), "x"},
	}
	for _, tt := range tests {
		t.Run(tt.rule, func(t *testing.T) {
			got, ok := Coordinator(tt.alive, tt.current)
			if !ok || got != tt.want {
				t.Fatalf("got %q (%v), want %q", got, ok, tt.want)
			}
		})
	}
	if _, ok := Coordinator(nil, Config{}); ok {
		t.Fatal("a coordinator among no members")
	}
}

// TestCoordinatorAgreement: members that share the configuration and see
// the same alive set, in any order, name the same coordinator.
func TestCoordinatorAgreement(t *testing.T) {
	current := cfg(4, l("b", "c", "e"), l("a", "d"))
	alive := ms("a", "b", "c", "d", "e")
	want, _ := Coordinator(alive, current)
	for i := range alive {
		rotated := append(slices.Clone(alive[i:]), alive[:i]...)
		if got, _ := Coordinator(rotated, current); got != want {
			t.Fatalf("rotation %d: %q, want %q", i, got, want)
		}
	}
}

func TestTracker(t *testing.T) {
	var tr Tracker
	got := tr.Observe([]Seen{{"3", "c"}, {"1", "a"}})
	want := []Member{{"1", "a", 0}, {"3", "c", 1}}
	if !slices.Equal(got, want) {
		t.Fatalf("first observation (same time: by address): %v, want %v", got, want)
	}
	got = tr.Observe([]Seen{{"0", "0"}, {"3", "c"}, {"1", "a"}})
	want = []Member{{"1", "a", 0}, {"3", "c", 1}, {"0", "0", 2}}
	if !slices.Equal(got, want) {
		t.Fatalf("a newcomer joins last whatever its address: %v, want %v", got, want)
	}
	got = tr.Observe([]Seen{{"0", "0"}, {"1b", "a"}})
	want = []Member{{"0", "0", 2}, {"1b", "a", 3}}
	if !slices.Equal(got, want) {
		t.Fatalf("a restarted member (new id) joins again at the end: %v, want %v", got, want)
	}
}

func ExamplePolicy_Propose() {
	var tr Tracker
	alive := tr.Observe([]Seen{{"id1", "10.0.0.1:8090"}, {"id2", "10.0.0.2:8090"}, {"id3", "10.0.0.3:8090"}, {"id4", "10.0.0.4:8090"}})
	p := Policy{Masters: 3}
	cur := p.Propose(alive, Config{}) // bootstrap
	fmt.Println("masters", cur.Masters, "replicas", cur.Replicas, "W", cur.W)
	cur.Epoch++

	// 10.0.0.2 leaves: the oldest replica replaces it.
	alive = tr.Observe([]Seen{{"id1", "10.0.0.1:8090"}, {"id3", "10.0.0.3:8090"}, {"id4", "10.0.0.4:8090"}})
	cur = p.Propose(alive, cur)
	fmt.Println("masters", cur.Masters, "replicas", cur.Replicas, "W", cur.W)
	// Output:
	// masters [10.0.0.1:8090 10.0.0.2:8090 10.0.0.3:8090] replicas [10.0.0.4:8090] W 2
	// masters [10.0.0.1:8090 10.0.0.3:8090 10.0.0.4:8090] replicas [] W 2
}
