package core

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/protoactor-locker/locker/messages"
)

// The test harness: a fake clock and an in-memory network of Cores by
// address. Nothing moves unless the test says so: messages wait in a queue
// until step or run delivers them, time stands still until advance or
// sleep moves it, and each Core is ticked at its NextWake on the way.
//
// The harness takes a Core's output (TakeOutput) after every input it
// gives it: the messages wait in the Core's outbox until collect queues
// them, and each answer goes at once to the function waiting for its
// request (onAnswer; submit, setNodes and setW wait this way), as if the
// Core had called it. After calling a Core directly, a test hands its
// answers on with take (call.done and call.one do it for every Core),
// or uses the harness's close and unreachable instead.

// Addresses of the peers tests use; any host:port works, no socket opens.
const (
	n1 = "10.0.0.1:1"
	n2 = "10.0.0.2:1"
	n3 = "10.0.0.3:1"
	n4 = "10.0.0.4:1"
	n5 = "10.0.0.5:1"
	// outsider is a peer that is no Core: tests speak for it by hand.
	outsider = "10.0.0.9:9"
)

// t0 is when every test starts.
var t0 = time.Date(2024, 8, 22, 20, 23, 45, 0, time.UTC)

// fakeClock is a Clock that moves only when told.
type fakeClock struct{ now time.Time }

func (f *fakeClock) Now() time.Time { return f.now }

// aheadClock is the network's clock run fast by a fixed offset, as a peer
// whose wall clock is ahead (its tokens are larger).
type aheadClock struct {
	base *fakeClock
	by   time.Duration
}

func (a *aheadClock) Now() time.Time { return a.base.now.Add(a.by) }

// testConfig is the Config of every test Core unless a test changes it:
// the shell's defaults (a promise outlives the request that asked for
// it), with room for large messages. Standalone, so that a lone Core
// works at epoch 0 as it did before readiness was checked; the rules of
// an unconfigured member are tested with a cluster member's Config
// (memberConfig, ready_test.go).
func testConfig() Config {
	return Config{
		Standalone:          true,
		W:                   1,
		RequestTimeout:      time.Second,
		WriteLockTimeout:    2 * time.Second,
		ReplicationInterval: 100 * time.Millisecond,
		MaxMessageBytes:     64 << 10,
	}
}

// packet is a message on its way from one peer to another.
type packet struct {
	from, to string
	msg      proto.Message
}

func (p packet) String() string {
	return fmt.Sprintf("%s -> %s %T %v", p.from, p.to, p.msg, p.msg)
}

// network is a cluster of Cores sharing one fake clock.
type network struct {
	t     testing.TB
	clock *fakeClock
	cfg   Config
	cores map[string]*Core
	addrs []string // every address ever added, in order

	queue  []packet          // sent, not yet delivered
	held   []packet          // waiting for unhold
	hold   map[string]bool   // messages to these peers are held
	holdIf func(packet) bool // messages it returns true for are held
	drop   map[string]bool   // messages to these peers are lost
	dropIf func(packet) bool // messages it returns true for are lost
	sent   []packet          // every message that left an outbox, in order
	seeds  map[string]uint64 // next Seed per address (distinct txn ids after restarts)

	// trace, when set, is told what became of every message deliver
	// handled: fate is "" (delivered), "held", "lost" or "unreachable".
	trace func(p packet, fate string)

	// outputs is what the harness took from each Core: by Core rather
	// than address, so that a Core replaced at an address takes its
	// outbox and its requests with it.
	outputs map[*Core]*taken
}

// taken is what the harness took from one Core and has not handed on.
type taken struct {
	outbox   []Envelope                 // messages collect has not queued yet
	waiting  map[RequestID]func(Answer) // who waits for which request
	early    map[RequestID]Answer       // answers that came before anyone waited for them
	answered map[RequestID]bool         // every request answered, to catch a second answer
}

// newNetwork starts one Core per address; each knows only itself.
func newNetwork(t testing.TB, addrs ...string) *network {
	t.Helper()
	return newNetworkWith(t, testConfig(), addrs...)
}

func newNetworkWith(t testing.TB, cfg Config, addrs ...string) *network {
	t.Helper()
	n := &network{
		t: t, clock: &fakeClock{now: t0}, cfg: cfg, cores: map[string]*Core{},
		hold: map[string]bool{}, drop: map[string]bool{}, seeds: map[string]uint64{},
		outputs: map[*Core]*taken{},
	}
	for _, a := range addrs {
		n.start(a)
	}
	return n
}

// start runs a fresh Core at addr (replacing any that runs there) and
// returns it: empty memory, knows only itself.
func (n *network) start(addr string) *Core {
	cfg := n.cfg
	cfg.Self = addr
	cfg.Clock = n.clock
	if _, ok := n.seeds[addr]; !ok {
		n.seeds[addr] = uint64(len(n.seeds)+1) << 32
		n.addrs = append(n.addrs, addr)
	}
	cfg.Seed = n.seeds[addr]
	n.seeds[addr] += 1 << 20
	c := New(cfg)
	if old := n.cores[addr]; old != nil {
		delete(n.outputs, old) // what the replaced Core had not sent is lost
	}
	n.cores[addr] = c
	return c
}

// stop closes the Core at addr; messages to it are then undeliverable
// and their senders told so through Unreachable. What it had not sent is
// lost; its pending requests are answered as stopped.
func (n *network) stop(addr string) {
	if c := n.cores[addr]; c != nil {
		c.Close()
		n.take(c)
		delete(n.outputs, c)
		delete(n.cores, addr)
	}
}

// close closes the Core at addr and hands on its answers, leaving it in
// place: a closed Core that still receives messages and calls.
func (n *network) close(addr string) {
	c := n.core(addr)
	c.Close()
	n.take(c)
}

// unreachable tells the Core at addr that peer did not get a message.
func (n *network) unreachable(addr, peer string) {
	c := n.core(addr)
	c.Unreachable(peer)
	n.take(c)
}

// taken returns what the harness holds of c's output.
func (n *network) taken(c *Core) *taken {
	t := n.outputs[c]
	if t == nil {
		t = &taken{waiting: map[RequestID]func(Answer){}, early: map[RequestID]Answer{}, answered: map[RequestID]bool{}}
		n.outputs[c] = t
	}
	return t
}

// take takes c's output: its messages wait in its outbox for collect,
// its answers go to whoever waits for them, in the order they came.
func (n *network) take(c *Core) {
	out := c.TakeOutput()
	defer c.Recycle(out) // as the shell does: every test runs with recycled arrays
	t := n.taken(c)
	t.outbox = append(t.outbox, out.Messages...)
	for _, a := range out.Answers {
		if t.answered[a.ID] {
			n.t.Fatalf("%s answered request %d (%v) twice", c.cfg.Self, a.ID, a.Kind)
		}
		t.answered[a.ID] = true
		if f := t.waiting[a.ID]; f != nil {
			delete(t.waiting, a.ID)
			f(a)
			continue
		}
		t.early[a.ID] = a
	}
}

// takeAll takes the output of every running Core.
func (n *network) takeAll() {
	for _, a := range n.addrs {
		if c := n.cores[a]; c != nil {
			n.take(c)
		}
	}
}

// onAnswer calls f with the answer to request id of the Core at addr:
// at once if it came already, else as soon as the harness takes it.
func (n *network) onAnswer(addr string, id RequestID, f func(Answer)) {
	c := n.core(addr)
	n.take(c)
	t := n.taken(c)
	if a, ok := t.early[id]; ok {
		delete(t.early, id)
		f(a)
		return
	}
	t.waiting[id] = f
}

// takeOutbox returns the messages the Core at addr sent and nobody
// collected yet, and forgets them (they are never delivered).
func (n *network) takeOutbox(addr string) []Envelope {
	c := n.core(addr)
	n.take(c)
	t := n.taken(c)
	out := t.outbox
	t.outbox = nil
	return out
}

func (n *network) core(addr string) *Core {
	c := n.cores[addr]
	if c == nil {
		n.t.Fatalf("no core runs at %s", addr)
	}
	return c
}

// collect moves every outbox to the queue, passing each message through
// its wire encoding (as the shell's transport would) and checking its
// size against MaxMessageBytes.
func (n *network) collect() {
	for _, a := range n.addrs {
		c := n.cores[a]
		if c == nil {
			continue
		}
		n.take(c)
		t := n.taken(c)
		outbox := t.outbox
		t.outbox = nil
		for _, env := range outbox {
			if env.To == a {
				n.t.Fatalf("%s put a message to itself in its outbox: %v", a, env.Msg)
			}
			b, err := proto.Marshal(env.Msg)
			if err != nil {
				n.t.Fatalf("encoding %T: %v", env.Msg, err)
			}
			if len(b) > n.cfg.MaxMessageBytes {
				n.t.Fatalf("%s sent a %T of %d bytes, over MaxMessageBytes %d", a, env.Msg, len(b), n.cfg.MaxMessageBytes)
			}
			msg := env.Msg.ProtoReflect().New().Interface()
			if err := proto.Unmarshal(b, msg); err != nil {
				n.t.Fatalf("decoding %T: %v", env.Msg, err)
			}
			p := packet{from: a, to: env.To, msg: msg}
			n.sent = append(n.sent, p)
			n.queue = append(n.queue, p)
		}
	}
}

// deliver hands p to its receiver, or holds, drops or bounces it.
func (n *network) deliver(p packet) {
	switch {
	case n.drop[p.to] || (n.dropIf != nil && n.dropIf(p)):
		n.traced(p, "lost")
	case n.hold[p.to] || (n.holdIf != nil && n.holdIf(p)):
		n.traced(p, "held")
		n.held = append(n.held, p)
	case n.cores[p.to] == nil:
		n.traced(p, "unreachable")
		if c := n.cores[p.from]; c != nil {
			c.Unreachable(p.to)
			n.take(c)
		}
	default:
		n.traced(p, "")
		c := n.cores[p.to]
		c.Step(p.from, p.msg)
		n.take(c)
	}
}

func (n *network) traced(p packet, fate string) {
	if n.trace != nil {
		n.trace(p, fate)
	}
}

// step delivers the oldest message; false when none is waiting.
func (n *network) step() bool {
	n.collect()
	if len(n.queue) == 0 {
		return false
	}
	p := n.queue[0]
	n.queue = n.queue[1:]
	n.deliver(p)
	return true
}

// run delivers messages until none is left.
func (n *network) run() {
	for i := 0; n.step(); i++ {
		if i > 100000 {
			n.t.Fatal("the network does not settle")
		}
	}
}

// pending returns the queued messages (after collecting the outboxes).
func (n *network) pending() []packet {
	n.collect()
	return slices.Clone(n.queue)
}

// holdTo holds every later message to addr until unhold.
func (n *network) holdTo(addr string) { n.hold[addr] = true }

// unhold queues the messages held for addr again and stops holding.
func (n *network) unhold(addr string) {
	delete(n.hold, addr)
	var keep []packet
	for _, p := range n.held {
		if p.to == addr {
			n.queue = append(n.queue, p)
		} else {
			keep = append(keep, p)
		}
	}
	n.held = keep
}

// unholdAll queues every held message again and stops holding.
func (n *network) unholdAll() {
	n.hold = map[string]bool{}
	n.holdIf = nil
	n.queue = append(n.queue, n.held...)
	n.held = nil
}

// unholdTwice delivers every held message twice, at once and in order,
// stops holding, and runs the network: a duplicating network.
func (n *network) unholdTwice() {
	held := n.held
	n.hold, n.holdIf, n.held = map[string]bool{}, nil, nil
	for _, p := range held {
		c := n.core(p.to)
		c.Step(p.from, p.msg)
		c.Step(p.from, p.msg)
		n.take(c)
	}
	n.run()
}

// advance moves the clock by d, ticking each Core at every NextWake on
// the way, without delivering what the ticks send.
func (n *network) advance(d time.Duration) { n.moveClock(d, false) }

// sleep is advance that delivers every message after each tick, as a
// fast network would.
func (n *network) sleep(d time.Duration) { n.moveClock(d, true) }

// wake is c's NextWake on the network's clock: a Core whose clock runs
// ahead (aheadClock) says it in its own time.
func wake(c *Core) (time.Time, bool) {
	at, ok := c.NextWake()
	if a, ahead := c.cfg.Clock.(*aheadClock); ahead {
		at = at.Add(-a.by)
	}
	return at, ok
}

func (n *network) moveClock(d time.Duration, deliver bool) {
	if deliver {
		n.run()
	}
	end := n.clock.now.Add(d)
	for {
		var next time.Time
		found := false
		for _, c := range n.cores {
			if at, ok := wake(c); ok && !at.After(end) && (!found || at.Before(next)) {
				next, found = at, true
			}
		}
		if !found {
			break
		}
		if next.After(n.clock.now) {
			n.clock.now = next
		}
		for _, a := range n.addrs {
			if c := n.cores[a]; c != nil {
				if at, ok := wake(c); ok && !at.After(n.clock.now) {
					c.Tick()
					n.take(c)
				}
			}
		}
		if deliver {
			n.run()
		}
	}
	n.clock.now = end
}

// configure makes masters and replicas the membership of every running
// Core (asked by from), then W, and checks that every peer applied both.
func (n *network) configure(from string, masters, replicas []string, w int) {
	n.t.Helper()
	var cluster []string
	for _, a := range n.addrs {
		if n.cores[a] != nil {
			cluster = append(cluster, a)
		}
	}
	res := n.setNodes(from, cluster, masters, replicas)
	for a, r := range res {
		if r.Reason != messages.Reason_REASON_UNSPECIFIED {
			n.t.Fatalf("SetNodes on %s: %v %s", a, r.Reason, r.Message)
		}
	}
	res = n.setW(from, cluster, w)
	for a, r := range res {
		if r.Reason != messages.Reason_REASON_UNSPECIFIED {
			n.t.Fatalf("SetW on %s: %v %s", a, r.Reason, r.Message)
		}
	}
}

// setNodes runs SetNodes from a peer to completion (delivering messages).
func (n *network) setNodes(from string, cluster, masters, replicas []string) map[string]AdminResult {
	n.t.Helper()
	var got map[string]AdminResult
	n.onAnswer(from, n.core(from).SetNodes(cluster, masters, replicas), func(a Answer) { got = a.Admin })
	n.run()
	if got == nil {
		n.t.Fatal("SetNodes did not answer")
	}
	return got
}

// setW runs SetW from a peer to completion.
func (n *network) setW(from string, cluster []string, w int) map[string]AdminResult {
	n.t.Helper()
	var got map[string]AdminResult
	n.onAnswer(from, n.core(from).SetW(cluster, w), func(a Answer) { got = a.Admin })
	n.run()
	if got == nil {
		n.t.Fatal("SetW did not answer")
	}
	return got
}

// call is a Submit in progress.
type call struct {
	t     testing.TB
	n     *network
	outs  []Outcome
	calls int
	at    time.Time // when the reply came
}

// done reports whether the write answered, after taking every Core's
// answers.
func (c *call) done() bool {
	c.n.takeAll()
	return c.calls > 0
}

// one returns the single outcome of a finished one-op call.
func (c *call) one() Outcome {
	c.t.Helper()
	c.n.takeAll()
	if c.calls != 1 {
		c.t.Fatalf("the write replied %d times, want once", c.calls)
	}
	if len(c.outs) != 1 {
		c.t.Fatalf("%d outcomes, want 1", len(c.outs))
	}
	return c.outs[0]
}

// submit starts ops on the Core at from, delivering nothing.
func (n *network) submit(from string, ops ...Op) *call {
	c := &call{t: n.t, n: n}
	n.onAnswer(from, n.core(from).Submit(ops), func(a Answer) {
		c.calls++
		c.outs = a.Outcomes
		c.at = n.clock.now
	})
	return c
}

// do runs ops on the Core at from to completion: delivering messages and
// moving the clock through grace periods, but at most RequestTimeout.
func (n *network) do(from string, ops ...Op) []Outcome {
	n.t.Helper()
	c := n.submit(from, ops...)
	n.settle(c)
	if c.calls != 1 {
		n.t.Fatalf("the write replied %d times, want once", c.calls)
	}
	return c.outs
}

// do1 is do for a single op.
func (n *network) do1(from string, op Op) Outcome {
	n.t.Helper()
	return n.do(from, op)[0]
}

// settle delivers messages and moves the clock in small steps until c
// replied, at most RequestTimeout.
func (n *network) settle(c *call) {
	n.t.Helper()
	n.run()
	for waited := time.Duration(0); !c.done() && waited <= n.cfg.RequestTimeout; waited += time.Millisecond {
		n.sleep(time.Millisecond)
	}
	if !c.done() {
		n.t.Fatal("the write did not reply within RequestTimeout")
	}
}

func lockOp(key, value string, lease time.Duration) Op {
	return Op{Kind: messages.WriteKind_WRITE_KIND_LOCK, Key: key, Value: []byte(value), LeaseMs: lease.Milliseconds()}
}

func updateOp(key, value, newValue string) Op {
	return Op{Kind: messages.WriteKind_WRITE_KIND_UPDATE, Key: key, Value: []byte(value), NewValue: []byte(newValue)}
}

func extendOp(key, value string, lease time.Duration) Op {
	return Op{Kind: messages.WriteKind_WRITE_KIND_EXTEND, Key: key, Value: []byte(value), LeaseMs: lease.Milliseconds()}
}

func releaseOp(key, value string) Op {
	return Op{Kind: messages.WriteKind_WRITE_KIND_RELEASE, Key: key, Value: []byte(value)}
}

// read is the local value of key on the Core at addr.
func (n *network) read(addr, key string) (string, bool) {
	v, ok := n.core(addr).Store().Read(key)
	return string(v), ok
}

// checkInvariants asserts what must hold of every Core at any time.
func (n *network) checkInvariants() {
	n.t.Helper()
	for _, a := range n.addrs {
		if c := n.cores[a]; c != nil {
			if msg := coreInvariants(c); msg != "" {
				n.t.Fatalf("%s: %s", a, msg)
			}
		}
	}
}

// coreInvariants returns what is wrong with c's bookkeeping, or "".
func coreInvariants(c *Core) string {
	live, waiting := c.store.Counts()
	if live < 0 || waiting < 0 {
		return fmt.Sprintf("negative counts: %d leases, %d waiters", live, waiting)
	}
	if wl := c.WriteLocks(); wl != len(c.locks) {
		return fmt.Sprintf("WriteLocks() = %d, but %d write locks are held", wl, len(c.locks))
	}
	n := 0
	now := c.now()
	var expired []string
	c.store.mu.RLock()
	for k, e := range c.store.entries {
		if !e.deleted {
			n++
			if e.deadline <= now {
				expired = append(expired, k)
			}
		}
		if e.deleted && e.value != nil {
			c.store.mu.RUnlock()
			return fmt.Sprintf("tombstone of %q keeps a value", k)
		}
	}
	w := 0
	for _, l := range c.store.waits {
		w += len(l.present) + len(l.released)
	}
	c.store.mu.RUnlock()
	if n != live {
		return fmt.Sprintf("%d leases counted, %d held", live, n)
	}
	if w != waiting {
		return fmt.Sprintf("%d waiters counted, %d registered", waiting, w)
	}
	for _, k := range expired {
		if _, ok := c.store.Read(k); ok {
			return fmt.Sprintf("%q is readable past its deadline", k)
		}
	}
	return ""
}

// countSent counts the messages of type T that went from one peer to another.
func countSent[T proto.Message](n *network, from, to string) int {
	k := 0
	for _, p := range n.sent {
		if _, ok := p.msg.(T); ok && (from == "" || p.from == from) && (to == "" || p.to == to) {
			k++
		}
	}
	return k
}

// requireRefused fails the test if op, submitted from from, succeeds:
// why says what its success would mean (two holders, most often).
func (n *network) requireRefused(from string, op Op, why string) {
	n.t.Helper()
	if o := n.do1(from, op); o.OK {
		n.t.Fatalf("%s: %+v", why, o)
	}
}

// logKey logs what each peer of addrs holds of key, for the story of a
// failing test.
func (n *network) logKey(key string, addrs ...string) {
	n.t.Helper()
	for _, a := range addrs {
		if e := n.core(a).store.raw(key); e != nil {
			n.t.Logf("%s: %s = %q token %d, %v left, released %v (epoch %d)", a, key, e.value, e.token, time.Duration(e.deadline-n.core(a).now()), e.deleted, n.core(a).Membership().Epoch)
		} else {
			n.t.Logf("%s: no %s (epoch %d)", a, key, n.core(a).Membership().Epoch)
		}
	}
}
