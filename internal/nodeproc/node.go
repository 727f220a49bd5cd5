package nodeproc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"

	"github.com/protoactor-locker/locker/internal/linearize"
	"github.com/protoactor-locker/locker/internal/testcluster"
	"github.com/protoactor-locker/locker/lockeractor"
	"github.com/protoactor-locker/locker/messages"
)

// Options are the Locker options of every node: the fault tests'
// timeouts (a silent peer costs half a second, a promise never committed
// holds its key for a second) and replication every 50 ms (so a
// restarted peer hears the configuration within half a second).
func Options() []lockeractor.Option {
	return []lockeractor.Option{
		lockeractor.WithW(1),
		lockeractor.WithRequestTimeout(500 * time.Millisecond),
		lockeractor.WithWriteLockTimeout(time.Second),
		lockeractor.WithReplicationInterval(50 * time.Millisecond),
	}
}

// RemoteOptions are lockeractor.RemoteOptions with protoactor's connect
// retries cut from 5 to 1, as in tests/: an endpoint writer whose peer
// was killed sleeps 2 s after each failed connect inside its actor.
func RemoteOptions() []remote.ConfigOption {
	return append(lockeractor.RemoteOptions(), func(cfg *remote.Config) { cfg.MaxRetryCount = 1 })
}

// callTimeout bounds every Locker call of a node; the Locker itself
// answers within a second or two (request and write-lock timeouts).
const callTimeout = 10 * time.Second

// maxLife is how long a node process lives at most, should its parent
// neither close its stdin nor kill it.
const maxLife = 10 * time.Minute

// Main runs a node process: an actor system with remote on
// 127.0.0.1:$LOCKER_NODE_PORT and a Locker started with Options (its
// clock $LOCKER_NODE_CLOCK_AHEAD ahead, if set). It
// writes a ready line, then executes the commands read from stdin, one
// JSON Command a line, answering each with an EvReply Event on stdout,
// and records every write its clients make as an EvInvoke line before
// the call and an EvReturn line after it. It stops its clients and
// returns when stdin closes; the result is the exit code.
func Main() int {
	port, err := strconv.Atoi(os.Getenv(EnvPort))
	if err != nil {
		fmt.Fprintf(os.Stderr, "nodeproc: %s=%q: %v\n", EnvPort, os.Getenv(EnvPort), err)
		return 2
	}
	quiet := actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) })
	sys := actor.NewActorSystem(quiet)
	r := remote.NewRemote(sys, remote.Configure("127.0.0.1", port, RemoteOptions()...))
	r.Start()
	opts := Options()
	if ahead := os.Getenv(EnvClockAhead); ahead != "" {
		d, err := time.ParseDuration(ahead)
		if err != nil {
			fmt.Fprintf(os.Stderr, "nodeproc: %s=%q: %v\n", EnvClockAhead, ahead, err)
			return 2
		}
		opts = append(opts, lockeractor.WithClock(testcluster.AheadClock{By: d}))
	}
	l, err := lockeractor.Start(sys, opts...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "nodeproc: starting the Locker: %v\n", err)
		return 2
	}
	n := &node{name: os.Getenv(EnvName), sys: sys, l: l, out: os.Stdout}
	n.emit(Event{Ev: EvReady, Addr: l.Address()})
	time.AfterFunc(maxLife, func() {
		fmt.Fprintf(os.Stderr, "nodeproc %s: alive for %v, exiting\n", n.name, maxLife)
		os.Exit(3)
	})
	n.serve(os.Stdin)
	n.stopLoad()
	n.wg.Wait() // commands still running
	n.stopNames()
	l.Stop()
	// The remote is not shut down: the process exits, and a graceful
	// protoactor shutdown waits for endpoint writers to killed peers.
	return 0
}

// node is the state of one node process.
type node struct {
	name string
	sys  *actor.ActorSystem
	l    *lockeractor.Locker

	outMu sync.Mutex // guards out: one write call per line, so a kill never tears a line
	out   io.Writer

	seq atomic.Int64 // the last write's sequence number
	wg  sync.WaitGroup

	loadMu   sync.Mutex     // guards loadStop and loadWG
	loadStop chan struct{}  // closed to stop the clients; nil when none run
	loadWG   sync.WaitGroup // the clients

	names names // the Registry and the names spawned here (OpSpawn)
}

// emit writes ev as one line with one write call (atomic on a pipe for
// lines under PIPE_BUF, and lines are written whole in any case).
func (n *node) emit(ev Event) {
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err) // Event has only marshalable fields
	}
	b = append(b, '\n')
	n.outMu.Lock()
	defer n.outMu.Unlock()
	if _, err := n.out.Write(b); err != nil {
		// The parent is gone: nobody reads the history any more.
		os.Exit(4)
	}
}

// serve executes the commands read from in until it closes.
func (n *node) serve(in io.Reader) {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var c Command
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			n.emit(Event{Ev: EvReply, ID: c.ID, Err: fmt.Sprintf("bad command %q: %v", sc.Text(), err)})
			continue
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			ev := n.do(c)
			ev.Ev, ev.ID = EvReply, c.ID
			n.emit(ev)
		}()
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// do executes c and returns its reply.
func (n *node) do(c Command) Event {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	switch c.Op {
	case OpConnect:
		return Event{Err: errText(n.connect(c.Addrs))}
	case OpSetNodes:
		if err := n.l.SetNodes(ctx, c.Addrs, c.Masters, c.Replicas); err != nil {
			return Event{Err: "SetNodes: " + err.Error()}
		}
		if err := n.l.SetW(ctx, c.Addrs, c.W); err != nil {
			return Event{Err: "SetW: " + err.Error()}
		}
		return Event{}
	case OpReconfigure:
		return Event{Err: errText(n.l.Reconfigure(ctx, c.Masters, c.Replicas))}
	case OpConfig:
		cfg := n.l.Configuration()
		return Event{Epoch: cfg.Epoch, Masters: cfg.Masters, Replicas: cfg.Replicas, W: cfg.W}
	case OpLoad:
		if c.Load == nil {
			return Event{Err: "load without Load"}
		}
		return Event{Err: errText(n.startLoad(*c.Load))}
	case OpStopLoad:
		n.stopLoad()
		return Event{}
	case OpWrite:
		if c.Write == nil {
			return Event{Err: "write without Write"}
		}
		out, token, err := n.write(ctx, *c.Write)
		return Event{Outcome: out.String(), Token: token, Err: errText(err)}
	case OpBatch:
		res, err := n.batch(ctx, c.Batch)
		return Event{Results: res, Err: errText(err)}
	case OpWaitFor:
		wctx, wcancel := context.WithTimeout(ctx, time.Duration(c.TimeoutMs)*time.Millisecond)
		defer wcancel()
		v, err := n.l.WaitFor(wctx, c.Key)
		return Event{Value: string(v), Err: errText(err)}
	case OpRead:
		v, err := n.l.DirtyRead(c.Key)
		return Event{Value: string(v), Err: errText(err)}
	case OpSpawn:
		return n.spawn(c)
	case OpWhereIs:
		r, err := n.registry()
		if err != nil {
			return Event{Err: err.Error()}
		}
		return Event{PID: pidString(r.WhereIs(c.Key))}
	case OpSummary:
		s := n.l.Summary()
		return Event{Leases: s.Leases, Waiters: s.Waiters}
	case OpProbe:
		key := fmt.Sprintf("probe/%s/%d", n.l.Address(), n.seq.Add(1))
		res, err := n.l.Lock(ctx, key, []byte("probe"), time.Second)
		if err == nil {
			_, _ = n.l.Release(ctx, key, []byte("probe"))
		}
		return Event{Votes: res.Votes, Token: res.Token, Err: errText(err)}
	}
	return Event{Err: fmt.Sprintf("unknown op %q", c.Op)}
}

// connect sends a Touch to every other peer's Locker until each
// answers, so that the endpoints (gRPC streams, which take up to several
// hundred milliseconds to open) exist before writes are timed. A peer
// that was just killed and restarted at its address needs several
// tries: protoactor answers the first messages to it from the endpoint
// it tore down (a dead letter, or nothing), and the peer's answers take
// its own stale endpoint back.
func (n *node) connect(addrs []string) error {
	deadline := time.Now().Add(connectBound)
	var errs []error
	for _, a := range addrs {
		if a == n.l.Address() {
			continue
		}
		pid := actor.NewPID(a, lockeractor.ActorName)
		for {
			_, err := n.sys.Root.RequestFuture(pid, &actor.Touch{}, touchTimeout).Result()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				errs = append(errs, fmt.Errorf("touching %s: %w", a, err))
				break
			}
			time.Sleep(touchRetry) // pacing of the retries, bounded by the deadline
		}
	}
	return errors.Join(errs...)
}

// Bounds of connect.
const (
	connectBound = time.Minute
	touchTimeout = 2 * time.Second
	touchRetry   = 50 * time.Millisecond
)

// write performs w and records it: EvInvoke before the call, EvReturn
// after it.
func (n *node) write(ctx context.Context, w Write) (linearize.Outcome, uint64, error) {
	seq := n.seq.Add(1)
	n.emit(Event{Ev: EvInvoke, Seq: seq, T: monotonicNanos(), Write: &w})
	var res lockeractor.Result
	var err error
	lease := time.Duration(w.LeaseMs) * time.Millisecond
	switch w.Kind {
	case messages.WriteKind_WRITE_KIND_LOCK:
		res, err = n.l.Lock(ctx, w.Key, []byte(w.Value), lease)
	case messages.WriteKind_WRITE_KIND_UPDATE:
		res, err = n.l.Update(ctx, w.Key, []byte(w.Value), []byte(w.NewValue))
	case messages.WriteKind_WRITE_KIND_EXTEND:
		res, err = n.l.ExtendLease(ctx, w.Key, []byte(w.Value), lease)
	case messages.WriteKind_WRITE_KIND_RELEASE:
		res, err = n.l.Release(ctx, w.Key, []byte(w.Value))
	default:
		err = fmt.Errorf("%w: kind %v", lockeractor.ErrInvalidArgument, w.Kind)
	}
	out := linearize.OutcomeOf(err)
	n.emit(Event{Ev: EvReturn, Seq: seq, T: monotonicNanos(), Outcome: out.String(), Token: res.Token, Err: errText(err)})
	return out, res.Token, err
}

// opKinds maps the wire's write kinds onto Batch's.
var opKinds = map[messages.WriteKind]lockeractor.OpKind{
	messages.WriteKind_WRITE_KIND_LOCK:    lockeractor.OpLock,
	messages.WriteKind_WRITE_KIND_UPDATE:  lockeractor.OpUpdate,
	messages.WriteKind_WRITE_KIND_EXTEND:  lockeractor.OpExtendLease,
	messages.WriteKind_WRITE_KIND_RELEASE: lockeractor.OpRelease,
}

// batch performs ws in one Batch and records each write as its own
// operation (invoked before the Batch, answered after it).
func (n *node) batch(ctx context.Context, ws []Write) ([]BatchOutcome, error) {
	ops := make([]lockeractor.Op, len(ws))
	seqs := make([]int64, len(ws))
	for i, w := range ws {
		ops[i] = lockeractor.Op{Kind: opKinds[w.Kind], Key: w.Key, Value: []byte(w.Value), NewValue: []byte(w.NewValue),
			Lease: time.Duration(w.LeaseMs) * time.Millisecond}
		seqs[i] = n.seq.Add(1)
		n.emit(Event{Ev: EvInvoke, Seq: seqs[i], T: monotonicNanos(), Write: &ws[i]})
	}
	res, err := n.l.Batch(ctx, ops)
	out := make([]BatchOutcome, len(ws))
	for i := range ws {
		var token uint64
		e := err
		if err == nil {
			token, e = res[i].Result.Token, res[i].Err
		}
		o := linearize.OutcomeOf(e)
		n.emit(Event{Ev: EvReturn, Seq: seqs[i], T: monotonicNanos(), Outcome: o.String(), Token: token, Err: errText(e)})
		out[i] = BatchOutcome{Outcome: o.String(), Token: token, Err: errText(e)}
	}
	return out, err
}

// startLoad starts ld's clients.
func (n *node) startLoad(ld Load) error {
	n.loadMu.Lock()
	defer n.loadMu.Unlock()
	if n.loadStop != nil {
		return errors.New("load already running")
	}
	if ld.Clients < 1 || len(ld.Hot)+len(ld.Short) == 0 || ld.HotLeaseMs <= 0 || ld.ShortLeaseMs <= 0 {
		return fmt.Errorf("bad load %+v", ld)
	}
	stop := make(chan struct{})
	n.loadStop = stop
	for i := 0; i < ld.Clients; i++ {
		c := &client{n: n, id: ld.ClientBase + i, ld: ld, stop: stop,
			rng: rand.New(rand.NewPCG(ld.Seed, uint64(ld.ClientBase+i)))}
		n.loadWG.Add(1)
		go func() { defer n.loadWG.Done(); c.run() }()
	}
	return nil
}

// stopLoad stops the clients and waits until each has returned from its
// write in flight.
func (n *node) stopLoad() {
	n.loadMu.Lock()
	defer n.loadMu.Unlock()
	if n.loadStop == nil {
		return
	}
	close(n.loadStop)
	n.loadWG.Wait()
	n.loadStop = nil
}

// client is one load goroutine: a sequential client of the history.
type client struct {
	n    *node
	id   int
	ld   Load
	stop chan struct{}
	rng  *rand.Rand
	seq  int
}

func (c *client) stopped() bool {
	select {
	case <-c.stop:
		return true
	default:
		return false
	}
}

// pause waits up to upTo, or until the clients stop: pacing after a
// refusal, so that losers do not spin on a held key. It waits for no
// condition.
func (c *client) pause(upTo time.Duration) {
	t := time.NewTimer(time.Duration(c.rng.Int64N(int64(upTo) + 1)))
	defer t.Stop()
	select {
	case <-t.C:
	case <-c.stop:
	}
}

func (c *client) w(kind messages.WriteKind, checked bool, key, value, newValue string, leaseMs int64) linearize.Outcome {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	out, _, _ := c.n.write(ctx, Write{Client: c.id, Checked: checked, Kind: kind, Key: key, Value: value, NewValue: newValue, LeaseMs: leaseMs})
	return out
}

// run does lock cycles until the clients stop. A cycle never abandons a
// checked key it may hold: after an unknown outcome it releases every
// value the key may hold by its doing (a release that fails changes
// nothing).
func (c *client) run() {
	for !c.stopped() {
		c.seq++
		hot := len(c.ld.Short) == 0 || (len(c.ld.Hot) > 0 && c.rng.IntN(4) != 0)
		key, lease, long := "", c.ld.ShortLeaseMs, false
		if hot {
			key, lease = c.ld.Hot[c.rng.IntN(len(c.ld.Hot))], c.ld.HotLeaseMs
		} else {
			key = c.ld.Short[c.rng.IntN(len(c.ld.Short))]
			if c.ld.MixedLeaseMs > 0 && c.rng.IntN(3) == 0 {
				lease, long = c.ld.MixedLeaseMs, true
			}
		}
		v := fmt.Sprintf("c%d-%d", c.id, c.seq)
		switch c.w(messages.WriteKind_WRITE_KIND_LOCK, hot, key, v, "", lease) {
		case linearize.Failed:
			c.pause(2 * time.Millisecond)
			continue
		case linearize.Unknown:
			c.release(hot, key, v)
			continue
		}
		held := []string{v} // values the key may hold by this client's doing
		if c.rng.IntN(2) == 0 {
			nv := v + "u"
			switch c.w(messages.WriteKind_WRITE_KIND_UPDATE, hot, key, v, nv, 0) {
			case linearize.OK:
				held = []string{nv}
			case linearize.Unknown:
				held = []string{nv, v}
			}
		}
		if len(held) == 1 && c.rng.IntN(2) == 0 {
			c.w(messages.WriteKind_WRITE_KIND_EXTEND, hot, key, held[0], "", lease)
		}
		if !hot && !long && c.rng.IntN(3) == 0 {
			continue // a short lease left to expire
		}
		c.release(hot, key, held...)
	}
}

// release releases key for each of values, retrying a release whose
// outcome is unknown a few times.
func (c *client) release(checked bool, key string, values ...string) {
	for _, v := range values {
		for try := 0; try < 3; try++ {
			if c.w(messages.WriteKind_WRITE_KIND_RELEASE, checked, key, v, "", 0) != linearize.Unknown {
				break
			}
		}
	}
}
