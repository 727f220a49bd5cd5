package tests

// A port of wooga/locker's test/locker_proper.erl: a random sequence of
// commands, issued from random nodes, checked against a simple model.
// Upstream runs parallel_commands on one master and one replica; this
// runs the commands one after another (so that every outcome is
// determined by the model) on two masters (W = 2) and one replica, and
// adds ExtendLease and MasterDirtyRead to upstream's lock, release,
// update, dirty read and replicate.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/protoactor-locker/locker/lockeractor"
)

var (
	seedFlag  = flag.Uint64("seed", 0, "seed of TestModel's command sequence (0: from the clock)")
	stepsFlag = flag.Int("model.steps", 1000, "number of commands TestModel runs")
)

// model is what the cluster must hold: the masters' table, the replica's
// table as of the last push, and the last fencing token of each key.
type model struct {
	master     map[string]string
	replicated map[string]string
	token      map[string]uint64
}

// TestModel runs a random sequence of lock, release, update, extend,
// dirty read, master dirty read and replicate commands on a few keys
// from random nodes, and checks each outcome (success or ErrNoQuorum
// with the refusing masters' reasons, the counts, the fencing token,
// the value read) against the model. Run it again with -seed=N; the
// seed is logged on failure.
func TestModel(t *testing.T) {
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (go test ./tests/ -run 'TestModel$' -seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed))

	c := startCluster(t)
	// locker_proper: set_nodes(Cluster, [A], [B]); here two masters.
	setNodes(t, c, A, []int{A, B, C}, []int{A, B}, []int{C})
	var ctx context.Context                    // of the current command
	masters := map[string]lockeractor.Reason{} // addresses of the masters
	for _, i := range []int{A, B} {
		masters[c.Nodes[i].Addr] = 0
	}

	keys := []string{"k1", "k2", "k3"}
	values := []string{"foo", "bar"}
	m := model{master: map[string]string{}, replicated: map[string]string{}, token: map[string]uint64{}}
	var history []string
	t.Cleanup(func() {
		if t.Failed() {
			from := max(0, len(history)-40)
			t.Logf("seed %d; the last %d of %d commands:\n%s", seed, len(history)-from, len(history), strings.Join(history[from:], "\n"))
		}
	})

	// refused checks a write that the model says fails: ErrNoQuorum,
	// nothing committed, no vote, and every master that answered in
	// time gave the reason the model expects.
	refused := func(err error, want lockeractor.Reason) {
		t.Helper()
		qe := requireNoQuorum(t, err)
		require.False(t, qe.Committing, "%v", qe)
		require.Zero(t, qe.Votes, "%v", qe)
		require.NotEmpty(t, qe.Peers, "%v", qe)
		for addr, got := range qe.Peers {
			_, isMaster := masters[addr]
			require.True(t, isMaster, "%s is no master: %v", addr, qe)
			require.Equal(t, want, got, "reason of %s: %v", addr, qe)
		}
	}
	// heldReason is why the masters refuse a write expecting value.
	heldReason := func(key string) lockeractor.Reason {
		if _, ok := m.master[key]; ok {
			return lockeractor.ReasonValueDiffers
		}
		return lockeractor.ReasonNotFound
	}
	// valueFor picks the value a command expects: mostly the held one.
	valueFor := func(key string) string {
		if v, ok := m.master[key]; ok && rng.IntN(3) > 0 {
			return v
		}
		return values[rng.IntN(len(values))]
	}

	for step := range *stepsFlag {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.Background(), callTimeout)
		node := rng.IntN(len(c.Nodes))
		l := c.Peer(node)
		key := keys[rng.IntN(len(keys))]
		held, isHeld := m.master[key]
		switch cmd := rng.IntN(7); cmd {
		case 0: // lock
			value := values[rng.IntN(len(values))]
			history = append(history, fmt.Sprintf("%d: node %d lock %s %s", step, node, key, value))
			res, err := l.Lock(ctx, key, []byte(value), longLease)
			if isHeld {
				refused(err, lockeractor.ReasonAlreadyLocked)
				break
			}
			require.NoError(t, err, "step %d", step)
			requireResult(t, res, 2, 2, 2)
			require.Greater(t, res.Token, m.token[key], "step %d: fencing token", step)
			m.master[key], m.token[key] = value, res.Token
		case 1: // release
			value := valueFor(key)
			history = append(history, fmt.Sprintf("%d: node %d release %s %s", step, node, key, value))
			res, err := l.Release(ctx, key, []byte(value))
			if !isHeld || held != value {
				refused(err, heldReason(key))
				break
			}
			require.NoError(t, err, "step %d", step)
			requireResult(t, res, 2, 2, 2)
			require.Equal(t, m.token[key], res.Token, "step %d: the holder's token", step)
			delete(m.master, key)
		case 2: // update
			value, newValue := valueFor(key), values[rng.IntN(len(values))]
			history = append(history, fmt.Sprintf("%d: node %d update %s %s -> %s", step, node, key, value, newValue))
			res, err := l.Update(ctx, key, []byte(value), []byte(newValue))
			if !isHeld || held != value {
				refused(err, heldReason(key))
				break
			}
			require.NoError(t, err, "step %d", step)
			requireResult(t, res, 2, 2, 2)
			require.Greater(t, res.Token, m.token[key], "step %d: fencing token", step)
			m.master[key], m.token[key] = newValue, res.Token
		case 3: // extend
			value := valueFor(key)
			history = append(history, fmt.Sprintf("%d: node %d extend %s %s", step, node, key, value))
			res, err := l.ExtendLease(ctx, key, []byte(value), longLease)
			if !isHeld || held != value {
				refused(err, heldReason(key))
				break
			}
			require.NoError(t, err, "step %d", step)
			requireResult(t, res, 2, 2, 2)
			require.Equal(t, m.token[key], res.Token, "step %d: the holder's token", step)
		case 4: // dirty read: a master's table or the replica's last push
			history = append(history, fmt.Sprintf("%d: node %d dirty_read %s", step, node, key))
			want, ok := m.master[key]
			if node == C {
				want, ok = m.replicated[key]
			}
			requireRead(t, step, l, key, want, ok)
		case 5: // master dirty read
			history = append(history, fmt.Sprintf("%d: node %d master_dirty_read %s", step, node, key))
			v, err := l.MasterDirtyRead(ctx, key)
			if isHeld {
				require.NoError(t, err, "step %d", step)
				require.Equal(t, held, string(v), "step %d", step)
			} else {
				require.ErrorIs(t, err, lockeractor.ErrNotFound, "step %d: read %q", step, v)
			}
		case 6: // replicate: push_trans_log on the masters
			history = append(history, fmt.Sprintf("%d: replicate", step))
			c.Peer(A).PushTransLog()
			c.Peer(B).PushTransLog()
			eventually(t, func() error {
				for _, k := range keys {
					want, ok := m.master[k]
					v, err := c.Peer(C).DirtyRead(k)
					if ok != (err == nil) || (ok && string(v) != want) {
						return fmt.Errorf("step %d: replica has %s = %q, %v; masters have %q", step, k, v, err, want)
					}
				}
				return nil
			})
			m.replicated = maps.Clone(m.master)
		}
		cancel()
	}

	for _, i := range []int{A, B} {
		eventuallySummary(t, c.Peer(i), 0, len(m.master))
	}
}

// requireRead checks a DirtyRead against the model: the value want if
// ok, else ErrNotFound.
func requireRead(t *testing.T, step int, l *lockeractor.Locker, key, want string, ok bool) {
	t.Helper()
	v, err := l.DirtyRead(key)
	if !ok {
		require.True(t, errors.Is(err, lockeractor.ErrNotFound), "step %d: %s: DirtyRead(%q) = %q, %v; want not found", step, l.Address(), key, v, err)
		return
	}
	require.NoError(t, err, "step %d: %s: DirtyRead(%q)", step, l.Address(), key)
	require.Equal(t, want, string(v), "step %d: %s: DirtyRead(%q)", step, l.Address(), key)
}
