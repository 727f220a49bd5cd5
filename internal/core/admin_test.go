package core

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/protoactor-locker/locker/messages"
)

// TestMembership checks SetNodes and SetW between Cores.
func TestMembership(t *testing.T) {
	all := []string{n1, n2, n3}
	applied := func(t *testing.T, res map[string]AdminResult, addrs ...string) {
		t.Helper()
		for _, a := range addrs {
			if r, ok := res[a]; !ok || r.Reason != rNone {
				t.Fatalf("%s: %+v, want applied (all: %+v)", a, r, res)
			}
		}
	}
	refused := func(t *testing.T, res map[string]AdminResult, want string, addrs ...string) {
		t.Helper()
		for _, a := range addrs {
			if r := res[a]; r.Reason != rInvalid || !strings.Contains(r.Message, want) {
				t.Fatalf("%s: %+v, want INVALID_ARGUMENT naming %q", a, r, want)
			}
		}
	}
	t.Run("a fresh Core knows only itself", func(t *testing.T) {
		n := newNetwork(t, n1)
		m := n.core(n1).Membership()
		if !slices.Equal(m.Masters, []string{n1}) || len(m.Replicas) != 0 || m.W != 1 || m.Epoch != 0 {
			t.Fatalf("membership %+v", m)
		}
	})
	t.Run("SetNodes applies to every peer in cluster under a higher epoch", func(t *testing.T) {
		n := newNetwork(t, n1, n2, n3, n4)
		res := n.setNodes(n2, all, []string{n3, n1, n2, n1}, []string{n4})
		applied(t, res, all...)
		for _, a := range all {
			m := n.core(a).Membership()
			if !slices.Equal(m.Masters, []string{n1, n2, n3}) || !slices.Equal(m.Replicas, []string{n4}) || m.Epoch != 1 || m.W != 1 {
				t.Fatalf("%s: membership %+v, want sorted and deduplicated, epoch 1", a, m)
			}
		}
		if m := n.core(n4).Membership(); m.Epoch != 0 {
			t.Fatal("a peer outside cluster changed")
		}
		res = n.setNodes(n1, all, []string{n1, n2}, []string{n3})
		applied(t, res, all...)
		if m := n.core(n3).Membership(); m.Epoch != 2 || !slices.Equal(m.Replicas, []string{n3}) {
			t.Fatalf("membership %+v, want epoch 2", m)
		}
	})
	t.Run("an older epoch does not lower a peer's epoch", func(t *testing.T) {
		n := newNetwork(t, n1)
		c := n.core(n1)
		c.Step(n2, &messages.SetNodes{Request: 1, Epoch: 7, Masters: []string{n1}})
		c.Step(n2, &messages.SetNodes{Request: 2, Epoch: 3, Masters: []string{n1, n2}})
		c.TakeOutput()
		if m := c.Membership(); m.Epoch != 7 {
			t.Fatalf("epoch %d, want 7", m.Epoch)
		}
	})
	t.Run("SetW applies to every peer in cluster", func(t *testing.T) {
		n := newNetwork(t, n1, n2, n3)
		n.configure(n1, all, nil, 3)
		for _, a := range all {
			if w := n.core(a).Membership().W; w != 3 {
				t.Fatalf("%s: W = %d", a, w)
			}
		}
	})
	t.Run("SetNodes is refused where W would exceed the masters", func(t *testing.T) {
		n := newNetwork(t, n1, n2, n3)
		n.configure(n1, all, nil, 3)
		before := n.core(n2).Membership()
		refused(t, n.setNodes(n1, all, []string{n1, n2}, []string{n3}), "W = 3 is more than the 2 masters", all...)
		if n.core(n2).Membership() != before {
			t.Fatal("a refused SetNodes changed the membership")
		}
	})
	t.Run("SetNodes is refused where a master is also a replica", func(t *testing.T) {
		n := newNetwork(t, n1, n2)
		refused(t, n.setNodes(n1, []string{n1, n2}, []string{n1, n2}, []string{n2}), n2+" is both a master and a replica", n1, n2)
	})
	t.Run("SetNodes is refused without masters", func(t *testing.T) {
		n := newNetwork(t, n1)
		refused(t, n.setNodes(n1, []string{n1}, nil, []string{n2}), "no masters", n1)
	})
	t.Run("SetNodes is refused with a malformed address", func(t *testing.T) {
		n := newNetwork(t, n1)
		refused(t, n.setNodes(n1, []string{n1}, []string{n1, "nohost"}, nil), `"nohost" is not host:port`, n1)
		refused(t, n.setNodes(n1, []string{n1}, []string{n1}, []string{"h:0"}), `"h:0" has no valid port`, n1)
	})
	t.Run("SetW is refused below 1", func(t *testing.T) {
		n := newNetwork(t, n1, n2)
		n.configure(n1, []string{n1, n2}, nil, 2)
		refused(t, n.setW(n1, []string{n1, n2}, 0), "W = 0 is less than 1", n1, n2)
		if w := n.core(n2).Membership().W; w != 2 {
			t.Fatalf("W = %d after a refused SetW", w)
		}
	})
	t.Run("SetW is refused above the masters", func(t *testing.T) {
		n := newNetwork(t, n1, n2)
		n.configure(n1, []string{n1, n2}, nil, 2)
		refused(t, n.setW(n1, []string{n1, n2}, 3), "W = 3 is more than the 2 masters", n1, n2)
	})
	t.Run("a silent peer is reported unreachable at RequestTimeout", func(t *testing.T) {
		n := newNetwork(t, n1, n2)
		n.drop[n2] = true
		var got map[string]AdminResult
		n.onAnswer(n1, n.core(n1).SetW([]string{n1, n2}, 1), func(a Answer) { got = a.Admin })
		n.sleep(n.cfg.RequestTimeout - time.Nanosecond)
		if got != nil {
			t.Fatal("replied before RequestTimeout")
		}
		n.sleep(time.Nanosecond)
		if got[n1].Reason != rNone || got[n2].Reason != rUnreachable {
			t.Fatalf("results %+v", got)
		}
	})
	t.Run("a stopped peer is reported unreachable at once", func(t *testing.T) {
		n := newNetwork(t, n1, n2)
		n.stop(n2)
		res := n.setW(n1, []string{n1, n2}, 1)
		if res[n2].Reason != rUnreachable {
			t.Fatalf("results %+v", res)
		}
	})
	t.Run("an empty cluster replies at once", func(t *testing.T) {
		n := newNetwork(t, n1)
		var got map[string]AdminResult
		n.onAnswer(n1, n.core(n1).SetNodes(nil, []string{n1}, nil), func(a Answer) { got = a.Admin })
		if got == nil || len(got) != 0 {
			t.Fatalf("results %v", got)
		}
	})
	t.Run("a write uses the W and masters of when it began", func(t *testing.T) {
		n := masters(t, 2, n1, n2, n3)
		n.holdTo(n2)
		n.holdTo(n3)
		c := n.submit(n1, lockOp("k", "v", leaseForTests))
		n.run()
		n.core(n1).Step(outsider, &messages.SetW{Request: 1, W: 1})
		n.takeOutbox(n1)
		n.unholdAll()
		n.run()
		if o := c.one(); !o.OK || o.W != 2 || o.Votes != 3 {
			t.Fatalf("outcome %+v", o)
		}
	})
}

// TestCheck checks the validation helpers the shell also uses.
func TestCheck(t *testing.T) {
	addrs := []struct {
		addr string
		bad  string // "" when valid
	}{
		{"10.0.0.1:1", ""},
		{"localhost:65535", ""},
		{"[::1]:8080", ""},
		{"host:0", "no valid port"},
		{"host:65536", "no valid port"},
		{"host:-1", "no valid port"},
		{"host:port", "no valid port"},
		{":8080", "no host"},
		{"host", "not host:port"},
		{"", "not host:port"},
		{"a:b:c", "not host:port"},
	}
	for _, tc := range addrs {
		name := "address " + tc.addr + " is valid"
		if tc.bad != "" {
			name = "address " + tc.addr + " is refused: " + tc.bad
		}
		t.Run(name, func(t *testing.T) {
			got := CheckAddress(tc.addr)
			if (tc.bad == "") != (got == "") || !strings.Contains(got, tc.bad) {
				t.Fatalf("CheckAddress(%q) = %q, want %q", tc.addr, got, tc.bad)
			}
		})
	}
	t.Run("CheckW accepts 1 to the number of masters", func(t *testing.T) {
		for n := 0; n < 5; n++ {
			for w := -1; w < 7; w++ {
				if ok := CheckW(w, n) == ""; ok != (w >= 1 && w <= n) {
					t.Fatalf("CheckW(%d, %d) = %q", w, n, CheckW(w, n))
				}
			}
		}
	})
	t.Run("CheckNodes accepts W up to the masters, and no peer as both", func(t *testing.T) {
		if msg := CheckNodes([]string{n1, n2}, []string{n3}, 2); msg != "" {
			t.Fatal(msg)
		}
		if msg := CheckNodes([]string{n1, n2}, []string{n3}, 3); msg == "" {
			t.Fatal("W above the masters accepted")
		}
		if msg := CheckNodes([]string{n1, n2}, []string{n2}, 1); msg == "" {
			t.Fatal("a master that is also a replica accepted")
		}
	})
	t.Run("SortedSet sorts, deduplicates and copies", func(t *testing.T) {
		in := []string{n3, n1, n3, n2}
		out := SortedSet(in)
		if !slices.Equal(out, []string{n1, n2, n3}) || in[0] != n3 {
			t.Fatalf("SortedSet(%v) = %v", in, out)
		}
	})
	t.Run("Fits bounds an op under the message size", func(t *testing.T) {
		op := lockOp("k", strings.Repeat("v", 1000), time.Second)
		if !Fits(op, 2048) || Fits(op, 1024) {
			t.Fatal("Fits disagrees with the bound")
		}
	})
}
