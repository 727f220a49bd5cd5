package linearize_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/protoactor-locker/locker/internal/linearize"
	"github.com/protoactor-locker/locker/messages"
)

func TestCheckHoldings(t *testing.T) {
	h := func(res, who string, tok uint64, start, end int64) linearize.Holding {
		return linearize.Holding{Resource: res, Holder: who, Token: tok, Start: start, End: end}
	}
	require.Empty(t, linearize.CheckHoldings([]linearize.Holding{
		h("k", "b", 2, 20, 30), h("k", "a", 1, 0, 10), h("other", "c", 1, 5, math.MaxInt64),
	}), "one after the other, tokens increasing, on two resources")
	require.Len(t, linearize.CheckHoldings([]linearize.Holding{h("k", "a", 1, 0, 25), h("k", "b", 2, 20, 30)}), 1,
		"two holders at once")
	require.Len(t, linearize.CheckHoldings([]linearize.Holding{h("k", "a", 1, 0, math.MaxInt64), h("k", "b", 0, 5, 6), h("k", "c", 2, 40, 50)}), 2,
		"an open holding overlaps every later one")
	require.Len(t, linearize.CheckHoldings([]linearize.Holding{h("k", "a", 5, 0, 10), h("k", "b", 4, 20, 30)}), 1,
		"a later holder with a smaller token")
}

func TestHoldingsOf(t *testing.T) {
	const lock, update, extend, release = messages.WriteKind_WRITE_KIND_LOCK, messages.WriteKind_WRITE_KIND_UPDATE,
		messages.WriteKind_WRITE_KIND_EXTEND, messages.WriteKind_WRITE_KIND_RELEASE
	ms := int64(1e6)
	ops := []linearize.Op{
		{Client: 1, Key: "k", Kind: lock, Value: "a", LeaseMs: 100, Call: 0, Return: 1 * ms, Result: linearize.OK, Token: 10},
		{Client: 1, Key: "k", Kind: update, Value: "a", NewValue: "a2", Call: 2 * ms, Return: 3 * ms, Result: linearize.OK, Token: 11},
		{Client: 1, Key: "k", Kind: release, Value: "a2", Call: 4 * ms, Return: 5 * ms, Result: linearize.OK},
		{Client: 2, Key: "k", Kind: lock, Value: "b", LeaseMs: 100, Call: 6 * ms, Return: 7 * ms, Result: linearize.OK, Token: 12},
		{Client: 2, Key: "k", Kind: extend, Value: "b", LeaseMs: 100, Call: 50 * ms, Return: 51 * ms, Result: linearize.OK},
		{Client: 3, Key: "k", Kind: lock, Value: "c", LeaseMs: 100, Call: 8 * ms, Return: math.MaxInt64, Result: linearize.Unknown},
	}
	hs := linearize.HoldingsOf(ops)
	require.Equal(t, []linearize.Holding{
		{Resource: "k", Holder: "client 1", Token: 10, Start: 1 * ms, End: 4 * ms},
		{Resource: "k", Holder: "client 2", Token: 12, Start: 7 * ms, End: 150 * ms},
	}, hs)
	require.Empty(t, linearize.CheckHoldings(hs))

	// A holder whose Update's outcome is unknown, released under the
	// Update's value by someone else (a killed client's leftovers).
	unknownUpdate := []linearize.Op{
		{Client: 5, Key: "u", Kind: lock, Value: "e", LeaseMs: 100, Call: 0, Return: 1 * ms, Result: linearize.OK, Token: 20},
		{Client: 5, Key: "u", Kind: update, Value: "e", NewValue: "e2", Call: 2 * ms, Return: math.MaxInt64, Result: linearize.Unknown},
		{Client: 9, Key: "u", Kind: release, Value: "e2", Call: 10 * ms, Return: 11 * ms, Result: linearize.OK},
		{Client: 6, Key: "u", Kind: lock, Value: "f", LeaseMs: 100, Call: 12 * ms, Return: 13 * ms, Result: linearize.OK, Token: 21},
	}
	require.Empty(t, linearize.CheckHoldings(linearize.HoldingsOf(unknownUpdate)))

	// A Lock granted while the extended lease still ran: found.
	ops = append(ops, linearize.Op{Client: 4, Key: "k", Kind: lock, Value: "d", LeaseMs: 100, Call: 120 * ms, Return: 121 * ms, Result: linearize.OK, Token: 13})
	require.Len(t, linearize.CheckHoldings(linearize.HoldingsOf(ops)), 1)
}
