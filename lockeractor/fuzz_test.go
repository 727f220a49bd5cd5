package lockeractor_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/protoactor-locker/locker/lockeractor"
)

// fuzzInput reads a fuzz input as a sequence of public calls and their
// arguments; past its end it reads zeros.
type fuzzInput struct{ b []byte }

func (in *fuzzInput) byte() byte {
	if len(in.b) == 0 {
		return 0
	}
	c := in.b[0]
	in.b = in.b[1:]
	return c
}

// bytes returns a byte string: a length byte then that many bytes, or,
// for length 255, a huge one (larger than any message may carry).
func (in *fuzzInput) bytes() []byte {
	n := int(in.byte())
	if n == 255 {
		return bytes.Repeat([]byte{in.byte()}, 70<<10)
	}
	n = min(n, len(in.b))
	s := in.b[:n]
	in.b = in.b[n:]
	return s
}

// str is bytes as a string: empty, huge or invalid UTF-8 alike.
func (in *fuzzInput) str() string { return string(in.bytes()) }

// lease is a lease from -1 s to about an hour, zero and sub-millisecond
// leases included, or an absurd one.
func (in *fuzzInput) lease() time.Duration {
	switch c := in.byte(); {
	case c == 255:
		return time.Duration(1<<63 - 1)
	case c == 254:
		return -time.Duration(1<<63 - 1)
	case c >= 200:
		return time.Duration(c-200) * time.Microsecond
	default:
		return time.Duration(int(c)-10) * 100 * time.Millisecond * time.Duration(1+int(c)/50)
	}
}

// addrs is a list of peer addresses: well-formed ones where nothing
// runs, malformed ones, and arbitrary strings.
func (in *fuzzInput) addrs() []string {
	table := []string{"127.0.0.1:1", "127.0.0.1:2", "", "nohost", "host:0", "host:99999", ":5", "[::1]:7"}
	n := int(in.byte() % 5)
	out := make([]string, 0, n)
	for range n {
		c := int(in.byte())
		if c < len(table) {
			out = append(out, table[c])
		} else {
			out = append(out, in.str())
		}
	}
	return out
}

// documented reports whether err is one of the package's sentinels or a
// context's end.
func documented(err error) bool {
	for _, s := range []error{
		lockeractor.ErrNoQuorum, lockeractor.ErrNotFound, lockeractor.ErrKeyNotLocked,
		lockeractor.ErrInvalidArgument, lockeractor.ErrUnreachable, lockeractor.ErrStopped,
		context.DeadlineExceeded, context.Canceled,
	} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// callTimeout is when the context of each call of FuzzLockerAPI ends. A
// call that outlived it for good would hang the fuzz target (and fail
// the test by its timeout); no wall-clock bound decides pass or fail.
const callTimeout = 20 * time.Millisecond

// FuzzLockerAPI feeds the public API of one Locker (no remote) a short
// sequence of calls decoded from the input, with arbitrary keys (empty,
// huge, invalid UTF-8), values, leases (negative, zero, sub-millisecond,
// huge), W values and peer addresses, and checks that no call panics or
// hangs past its context, that every error is one of the
// package's sentinels (or the context's end), and that a successful Lock
// with a lease of a minute or more is read back by DirtyRead with its
// value. Each input gets a fresh Locker on one actor system: SetNodes,
// SetW and Reconfigure may leave a Locker in a configuration no later
// input could undo.
func FuzzLockerAPI(f *testing.F) {
	system := shortDeadLetterSystem()
	f.Cleanup(system.Shutdown)
	f.Add(lockReadBack)
	f.Add([]byte{0, 1, 'k', 1, 'v', 199, 1, 1, 'k', 1, 'v', 2, 'v', '2', 0, 1, 'k', 2, 'v', '2', 170})
	f.Add([]byte{0, 1, 'k', 1, 'v', 30, 5, 1, 'k', 3, 1, 'k', 1, 'v'})
	f.Add([]byte{0, 0, 1, 'v', 30})
	f.Add([]byte{0, 255, 'k', 1, 'v', 255})
	f.Add([]byte{1, 1, 'k', 0, 0, 2, 2, 0xff, 0xfe, 0, 254})
	f.Add([]byte{4, 3, 7, 1, 'a', 1, 'x', 0, 40, 1, 1, 'a', 1, 'x', 1, 'y', 0})
	f.Add([]byte{6, 1, 'w', 7, 1, 'w', 11, 1, 'w'})
	f.Add([]byte{8, 2, 0, 1, 3, 9, 1, 0, 1, 0, 1, 1, 10, 1, 0, 1, 1})
	f.Add([]byte{8, 1, 3, 200, 9, 2, 8, 3, 'a', ':', '1', 1, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := lockeractor.Start(system, lockeractor.WithRequestTimeout(50*time.Millisecond),
			lockeractor.WithWriteLockTimeout(100*time.Millisecond))
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		defer l.Stop()
		in := &fuzzInput{b: data}
		for step := 0; step < 8 && len(in.b) > 0; step++ {
			fuzzCall(t, l, in, callTimeout)
		}
	})
}

// lockReadBack is an input of FuzzLockerAPI's corpus: Lock("k", "v") for
// a minute (lease byte 160), which fuzzCall reads back with DirtyRead.
var lockReadBack = []byte{0, 1, 'k', 1, 'v', 160}

// TestFuzzCorpusReadsBackALock proves that FuzzLockerAPI's read-back
// check runs on its corpus: lockReadBack's Lock succeeds with a lease of
// a minute or more, so fuzzCall compared DirtyRead with its value.
func TestFuzzCorpusReadsBackALock(t *testing.T) {
	system := shortDeadLetterSystem()
	defer system.Shutdown()
	l, err := lockeractor.Start(system)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer l.Stop()
	in := &fuzzInput{b: lockReadBack}
	if op, key, value, lease := in.byte(), in.str(), in.bytes(), in.lease(); op != 0 || key != "k" || string(value) != "v" || lease < time.Minute {
		t.Fatalf("lockReadBack decodes to call %d, Lock(%q, %q, %v): not a Lock of a minute or more", op, key, value, lease)
	}
	fuzzCall(t, l, &fuzzInput{b: lockReadBack}, time.Minute) // a bound for a hang, not a deadline to meet
	got, err := l.DirtyRead("k")
	if err != nil || string(got) != "v" {
		t.Fatalf("the corpus Lock did not take: DirtyRead = %q, %v", got, err)
	}
}

// fuzzCall makes one call decoded from in, with a context that ends after
// timeout, and checks its outcome.
func fuzzCall(t *testing.T, l *lockeractor.Locker, in *fuzzInput, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	op := in.byte() % 12
	var err error
	switch op {
	case 0:
		key, value, lease := in.str(), in.bytes(), in.lease()
		_, err = l.Lock(ctx, key, value, lease)
		// Only leases of a minute or more: the lease runs on the wall
		// clock, and a stall of the machine between the Lock and the read
		// must not fail the target.
		if err == nil && lease >= time.Minute {
			got, rerr := l.DirtyRead(key)
			if rerr != nil || !bytes.Equal(got, value) {
				t.Fatalf("Lock(%q, %q, %v) succeeded, then DirtyRead = %q, %v", trim(key), trim(string(value)), lease, trim(string(got)), rerr)
			}
		}
	case 1:
		_, err = l.Update(ctx, in.str(), in.bytes(), in.bytes())
	case 2:
		_, err = l.ExtendLease(ctx, in.str(), in.bytes(), in.lease())
	case 3:
		_, err = l.Release(ctx, in.str(), in.bytes())
	case 4:
		ops := make([]lockeractor.Op, int(in.byte()%5))
		for i := range ops {
			ops[i] = lockeractor.Op{Kind: lockeractor.OpKind(int(in.byte()) - 2), Key: in.str(), Value: in.bytes(), NewValue: in.bytes(), Lease: in.lease()}
		}
		var res []lockeractor.OpResult
		res, err = l.Batch(ctx, ops)
		if err == nil && len(res) != len(ops) {
			t.Fatalf("Batch of %d ops gave %d results", len(ops), len(res))
		}
		for _, r := range res {
			if r.Err != nil && !documented(r.Err) {
				t.Fatalf("Batch op error %v (%T) is none of the documented errors", r.Err, r.Err)
			}
		}
	case 5:
		_, err = l.DirtyRead(in.str())
	case 6:
		_, err = l.WaitFor(ctx, in.str())
	case 7:
		err = l.WaitForRelease(ctx, in.str())
	case 8:
		err = l.SetW(ctx, in.addrs(), int(int8(in.byte())))
	case 9:
		err = l.SetNodes(ctx, in.addrs(), in.addrs(), in.addrs())
	case 10:
		err = l.Reconfigure(ctx, in.addrs(), in.addrs())
	case 11:
		_, err = l.MasterDirtyRead(ctx, in.str())
	}
	if err != nil && !documented(err) {
		t.Fatalf("call %d: error %v (%T) is none of the documented errors", op, err, err)
	}
}

func trim(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
