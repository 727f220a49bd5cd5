package sim

import "testing"

// TestResourceRefusesStaleTokens checks the protected resource's rule
// and its own checks, write by write.
func TestResourceRefusesStaleTokens(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes [][2]uint64 // lock, token
		broken string      // the violation expected, "" for none
	}{
		{"a holder writes repeatedly, a later holder with a larger token", [][2]uint64{{1, 10}, {1, 10}, {2, 20}, {2, 21}}, ""},
		{"a stale holder's late write is refused", [][2]uint64{{1, 10}, {2, 20}, {1, 10}}, ""},
		{"two holders with one token are caught", [][2]uint64{{1, 10}, {2, 10}}, "resource token reuse"},
		{"a superseded holder accepted again is caught", [][2]uint64{{1, 10}, {2, 20}, {1, 30}}, "resource interleaving"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Config{Seed: 1, KeepGoing: true})
			c := &client{s: s}
			var r resource
			for _, w := range tc.writes {
				r.write(s, c, int(w[0]), w[1])
			}
			got := ""
			if len(s.res.Violations) > 0 {
				got = s.res.Violations[0].Kind
			}
			if got != tc.broken {
				t.Fatalf("violation %q, want %q (%v)", got, tc.broken, s.res.Violations)
			}
		})
	}
}
