package core

import (
	"fmt"
	"net"
	"slices"
	"strconv"
)

// SortedSet returns the distinct addresses of addrs, sorted, in a new slice.
func SortedSet(addrs []string) []string {
	out := slices.Clone(addrs)
	slices.Sort(out)
	return slices.Compact(out)
}

func contains(sorted []string, s string) bool {
	_, ok := slices.BinarySearch(sorted, s)
	return ok
}

// CheckAddress returns what is wrong with a peer address ("host:port"),
// or "" when nothing is.
func CheckAddress(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("address %q is not host:port", addr)
	}
	if host == "" {
		return fmt.Sprintf("address %q has no host", addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Sprintf("address %q has no valid port", addr)
	}
	return ""
}

// MaxMasters is the most masters a configuration may have: a replica
// keeps one vouch bit per master in each entry (see follow.go).
const MaxMasters = 32

// CheckNodes returns what is wrong with a configuration of sorted,
// distinct masters and replicas under write quorum w, or "" when nothing is.
func CheckNodes(masters, replicas []string, w int) string {
	if len(masters) == 0 {
		return "no masters"
	}
	if len(masters) > MaxMasters {
		return fmt.Sprintf("%d masters, more than the %d a configuration may have", len(masters), MaxMasters)
	}
	for _, a := range append(slices.Clone(masters), replicas...) {
		if msg := CheckAddress(a); msg != "" {
			return msg
		}
	}
	for _, r := range replicas {
		if contains(masters, r) {
			return fmt.Sprintf("%s is both a master and a replica", r)
		}
	}
	if w > len(masters) {
		return fmt.Sprintf("W = %d is more than the %d masters", w, len(masters))
	}
	return ""
}

// CheckW returns what is wrong with write quorum w over n masters, or "".
func CheckW(w, n int) string {
	if w < 1 {
		return fmt.Sprintf("W = %d is less than 1", w)
	}
	if w > n {
		return fmt.Sprintf("W = %d is more than the %d masters", w, n)
	}
	return ""
}
