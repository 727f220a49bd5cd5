package sim

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/protoactor-locker/locker/internal/core"
	"github.com/protoactor-locker/locker/messages"
)

// Config says what one simulation runs. Everything random in a run (the
// network's loss and delay, the clocks' drift, the faults, the clients'
// choices) comes from Seed; a run replays exactly from its Config.
type Config struct {
	Seed      uint64   // the one seed of the run
	Steps     int      // events to run after the cluster is configured
	Masters   int      // voting peers (3 or 5 are typical)
	Replicas  int      // other peers; membership changes swap one or more of them with masters
	Clients   int      // simulated clients, each attached to one peer
	LongKeys  []string // keys locked with leases that outlive the run: checked for linearizability
	ShortKeys []string // keys locked with short leases that expire during the run: checked by the invariants
	// MixedKeys are locked with a short lease (50 to 800 ms) or, one Lock
	// in three, with a long one (half the maximum lease up to the maximum,
	// Core.MaxLease): a long lease lost to the state of a write that
	// failed with a short lease frees the key for a third Lock when the
	// short one ends. Checked by the invariants, not for linearizability
	// (their histories have time in them).
	MixedKeys []string
	Faults    bool // inject partitions, crashes, pauses, membership changes and message loss
	// FaultInterval bounds the time between two injected faults
	// (partitions, crashes, pauses, membership changes), drawn up to it;
	// 0 means 200 ms.
	FaultInterval time.Duration
	// RollingRestarts restarts the voting masters with empty memory one
	// at a time, in turn, again and again during traffic (a rolling
	// upgrade): each stays down for up to RollingDowntime, and the next
	// goes down as soon as no peer is down, unconfigured or catching up.
	// A round over every master ends with a break of up to 2 s.
	RollingRestarts bool
	RollingDowntime time.Duration
	// LateLastWords holds up, at a crash, each message the peer sent
	// that is still on its way with a chance of one in two, until up to
	// 100 ms after the peer restarts (a congested link): answers of its
	// earlier life (promises, acknowledgements) reach their coordinators
	// while its new life votes.
	LateLastWords bool
	// FastClock, when above zero, runs one master's wall clock (which
	// fencing tokens come from) ahead of real time by FastClock/2 to
	// FastClock, and every other peer's within FastClock/10 of real time,
	// instead of offsets within ±100 ms: that master's writes get tokens
	// larger than those of writes other peers coordinate up to FastClock/2
	// later.
	FastClock time.Duration
	Core      core.Config
	// UnsafeW, when above zero, sets W to this value on every peer once
	// the cluster is configured (Core.SetW). It is a test hook for
	// deliberately broken quorums (W not a majority): the checkers must
	// find the double grants it allows.
	UnsafeW int
	// NoBackoff makes clients retry at once after a failed write (more
	// contention) instead of backing off up to 200 ms.
	NoBackoff bool
	// KeepGoing makes a run go on after a violation (recording at most
	// 100) and check linearizability at the end anyway; by default a run
	// stops at its first violation.
	KeepGoing bool
	// Trace is how many of the last events a violation report shows.
	Trace int
	// LinearizabilityTimeout bounds the porcupine check of one key's
	// history; an inconclusive check is reported, never counted as
	// passing silently.
	LinearizabilityTimeout time.Duration
}

// DefaultConfig returns the configuration the test suite runs for seed:
// ClassicConfig with rolling restarts (each master down for up to
// 100 ms, the messages it sent last arriving late), one master's clock
// 50 to 100 ms ahead of the others', and a mixed-lease key "m" beside
// the others. In three seeds of four the other faults come up to 1 s
// apart instead of 200 ms, so that the rolling restarts meet a cluster
// that is mostly whole.
func DefaultConfig(seed uint64) Config {
	cfg := ClassicConfig(seed)
	cfg.MixedKeys = []string{"m"}
	cfg.RollingRestarts, cfg.RollingDowntime, cfg.LateLastWords = true, 100*time.Millisecond, true
	cfg.FastClock = 100 * time.Millisecond
	if seed%4 != 0 {
		cfg.FaultInterval = time.Second
	}
	return cfg
}

// ClassicConfig returns the configuration the test suite ran before
// rolling restarts, mixed leases and a fast clock: 3 or 5 masters and
// one to three replicas (by the seed), eight clients on two long-lease
// keys and one short-lease key, every other fault enabled, and the peer
// shell's default timeouts. With several replicas a membership change
// may promote a write quorum of them at once. Seeds found with it replay
// with it.
func ClassicConfig(seed uint64) Config {
	masters := 3
	if seed%2 == 1 {
		masters = 5
	}
	return Config{
		Seed: seed, Steps: 20000, Masters: masters, Replicas: 1 + int(seed/2%3), Clients: 8,
		LongKeys: []string{"a", "b"}, ShortKeys: []string{"x"}, Faults: true,
		Core: core.Config{
			W:                   1,
			RequestTimeout:      time.Second,
			WriteLockTimeout:    2 * time.Second,
			ReplicationInterval: 100 * time.Millisecond,
			MaxMessageBytes:     3 << 10,
		},
		Trace:                  60,
		LinearizabilityTimeout: 30 * time.Second,
	}
}

// Result is what one run found.
type Result struct {
	Seed       uint64
	Steps      int            // events run, the configuration of the cluster included
	Operations int            // client operations invoked (writes and resource writes)
	Faults     int            // faults injected (see FaultKinds)
	FaultKinds map[string]int // faults by kind
	Outcomes   map[string]int // client writes by outcome: ok, fail, unknown
	// ResourceAccepted and ResourceRefused count the writes to the
	// protected resources (refused: a stale token arrived late).
	ResourceAccepted, ResourceRefused int
	Violations                        []Violation
	// Inconclusive lists the keys whose linearizability check timed out.
	Inconclusive []string
	History      *History // the recorded operations
	SimTime      time.Duration

	// Judged says whether the replicas were checked against the masters
	// at the end (see checkConverged): the peers settled on one
	// configuration.
	Judged bool
}

// Violation is one broken guarantee, with where it happened.
type Violation struct {
	Seed  uint64
	Step  int
	At    time.Duration // simulated real time
	Kind  string        // e.g. "double holder", "token order", "linearizability"
	Msg   string
	Trace []string // the events before it, oldest first
}

func (v Violation) Error() string {
	s := fmt.Sprintf("seed %d step %d at %v: %s: %s", v.Seed, v.Step, v.At, v.Kind, v.Msg)
	if len(v.Trace) > 0 {
		s += "\nlast events:\n  " + strings.Join(v.Trace, "\n  ")
	}
	return s
}

// peer is one simulated machine running a Core.
type peer struct {
	idx         int
	addr        string
	core        *core.Core
	clock       *Clock
	down        bool
	pausedUntil int64 // real time; the peer processes nothing before it
	incarnation uint64
	// waiting is who waits for each request of the current Core, kept
	// after its answer so that a second answer reaches it too (and
	// answerOnce reports it).
	waiting map[core.RequestID]func(core.Answer)
}

func (p *peer) available(now int64) bool { return !p.down && p.pausedUntil <= now }

type eventKind uint8

const (
	evPacket eventKind = iota + 1
	evClient
	evFault
	evRestart
	evResume
	evHeal
	evResource
	evRoll // the next master of a rolling restart goes down, once none is impaired
)

type event struct {
	at   int64
	seq  uint64
	kind eventKind
	// packets
	from, to string
	msg      proto.Message
	life     uint64 // the sender's incarnation when it sent msg
	arm      int    // rolling restarts: the arming an evRoll with p belongs to
	// clients and resource writes
	client  *client
	key     string
	lineage int
	token   uint64
	p       *peer
}

type eventHeap []*event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(*event)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

// Sim is one simulated cluster: peers running core.Core over a simulated
// network, with simulated clocks and clients, driven by one seed. Build
// it with New and run it with Run; a Sim is not safe for concurrent use.
type Sim struct {
	cfg   Config
	rng   *rand.Rand
	now   int64
	step  int
	seq   uint64
	queue eventHeap
	peers []*peer
	addr  map[string]*peer

	// network faults, drawn once from the seed
	loss, dup       float64
	minDelay, delay int64
	slow            float64 // chance of a long delay (reordering)
	groups          map[string]int
	fifo            map[[2]string]int64 // per pair: when its last in-order message arrives
	partitioned     bool

	clients []*client
	keys    map[string]*keyState
	keyList []string        // the keys, long ones first, mixed ones last
	mixed   map[string]bool // the mixed keys (Config.MixedKeys)
	// rolling restarts (Config.RollingRestarts): how many masters were
	// restarted so far (the next is the voter at this index modulo their
	// number), and the one that goes down once it has promised a Lock
	rolled   int
	armed    *peer
	arms     int    // how many times a master was armed
	armedTxn uint64 // the last Lock the armed master was asked to promise
	hist     *History
	res      *Result
	trace    []string
	traceAt  int
	stopped  bool
	cfgDone  bool
	quiet    bool // the final quiet time: no faults, no new client writes
}

// New builds a simulation from cfg; nothing runs until Run.
func New(cfg Config) *Sim {
	s := &Sim{
		cfg:  cfg,
		rng:  rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		addr: map[string]*peer{},
		fifo: map[[2]string]int64{},
		keys: map[string]*keyState{},
		hist: &History{},
		res:  &Result{Seed: cfg.Seed, FaultKinds: map[string]int{}, Outcomes: map[string]int{}},
	}
	if cfg.Trace > 0 {
		s.trace = make([]string, 0, cfg.Trace)
	}
	if cfg.Faults {
		s.loss = s.rng.Float64() * 0.05
		s.dup = s.rng.Float64() * 0.03
		s.slow = s.rng.Float64() * 0.05
	}
	s.minDelay = int64(50*time.Microsecond) + s.rng.Int64N(int64(time.Millisecond))
	s.delay = int64(100*time.Microsecond) + s.rng.Int64N(int64(5*time.Millisecond))
	n := cfg.Masters + cfg.Replicas
	fast := -1 // the master whose clock runs ahead
	if cfg.Faults && cfg.FastClock > 0 {
		fast = s.rng.IntN(cfg.Masters)
	}
	for i := range n {
		p := &peer{idx: i, addr: fmt.Sprintf("10.0.0.%d:1", i+1)}
		rate := 1.0
		offset := time.Duration(0)
		if cfg.Faults {
			rate = 0.99 + 0.02*s.rng.Float64()
			switch spread := cfg.FastClock / 10; {
			case i == fast:
				offset = cfg.FastClock/2 + time.Duration(s.rng.Int64N(int64(cfg.FastClock/2)+1))
			case fast >= 0:
				offset = time.Duration(s.rng.Int64N(2*int64(spread)+1)) - spread
			default:
				offset = time.Duration(s.rng.Int64N(int64(200*time.Millisecond))) - 100*time.Millisecond
			}
		}
		p.clock = NewClock(&s.now, rate, offset)
		s.peers = append(s.peers, p)
		s.addr[p.addr] = p
		s.start(p)
	}
	for _, k := range cfg.LongKeys {
		s.keys[k] = newKeyState(k, true)
	}
	for _, k := range cfg.ShortKeys {
		s.keys[k] = newKeyState(k, false)
	}
	s.mixed = map[string]bool{}
	for _, k := range cfg.MixedKeys {
		s.keys[k] = newKeyState(k, false)
		s.mixed[k] = true
	}
	s.keyList = append(append(slices.Clone(cfg.LongKeys), cfg.ShortKeys...), cfg.MixedKeys...)
	for i := range cfg.Clients {
		c := &client{s: s, id: i, p: s.peers[i%n], keys: map[string]*holding{},
			rng: rand.New(rand.NewPCG(cfg.Seed, uint64(i)+1))}
		for k := range s.keys {
			c.keys[k] = &holding{}
		}
		s.clients = append(s.clients, c)
	}
	return s
}

// start runs a fresh Core on p: empty memory, knows only itself.
func (s *Sim) start(p *peer) {
	cfg := s.cfg.Core
	cfg.Self = p.addr
	cfg.Clock = p.clock
	cfg.Seed = uint64(p.idx+1)<<40 | p.incarnation<<28
	p.incarnation++
	p.core = core.New(cfg)
	p.waiting = map[core.RequestID]func(core.Answer){}
	p.down = false
}

// await calls f with the answer to request id of p's Core, once flush
// takes it.
func (p *peer) await(id core.RequestID, f func(core.Answer)) { p.waiting[id] = f }

// answer hands the answers p's Core gave to whoever waits for them, in
// the order it gave them.
func (s *Sim) answer(p *peer, answers []core.Answer) {
	for _, a := range answers {
		f := p.waiting[a.ID]
		if f == nil {
			s.violate("stray answer", "%s answered request %d (%v), which it was never asked", p.addr, a.ID, a.Kind)
			continue
		}
		f(a)
	}
}

func (s *Sim) push(e *event) {
	s.seq++
	e.seq = s.seq
	heap.Push(&s.queue, e)
}

// note records an event for the trace a violation shows.
func (s *Sim) note(format string, args ...any) {
	if cap(s.trace) == 0 {
		return
	}
	line := fmt.Sprintf("#%d %v ", s.step, time.Duration(s.now)) + fmt.Sprintf(format, args...)
	if len(s.trace) < cap(s.trace) {
		s.trace = append(s.trace, line)
		return
	}
	s.trace[s.traceAt] = line
	s.traceAt = (s.traceAt + 1) % len(s.trace)
}

func (s *Sim) traceLines() []string {
	return append(slices.Clone(s.trace[s.traceAt:]), s.trace[:s.traceAt]...)
}

// violate records a broken guarantee and stops the run.
func (s *Sim) violate(kind, format string, args ...any) {
	if len(s.res.Violations) >= 100 {
		return
	}
	s.res.Violations = append(s.res.Violations, Violation{
		Seed: s.cfg.Seed, Step: s.step, At: time.Duration(s.now), Kind: kind,
		Msg: fmt.Sprintf(format, args...), Trace: s.traceLines(),
	})
	s.stopped = !s.cfg.KeepGoing
}

func (s *Sim) fault(kind string) {
	s.res.Faults++
	s.res.FaultKinds[kind]++
}

// flush takes what p's Core produced: it hands on the answers and sends
// the messages over the simulated network.
func (s *Sim) flush(p *peer) {
	out := p.core.TakeOutput()
	defer p.core.Recycle(out)
	s.answer(p, out.Answers)
	if p.down {
		return
	}
	// The Core's output is in a deterministic order (see
	// internal/core/order_test.go): sent as it is, a seed's run is the
	// same from one execution to the next.
	faulty := s.cfgDone && !s.quiet
	for _, env := range out.Messages {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(env.Msg)
		if err != nil {
			panic(fmt.Sprintf("sim: encoding %T: %v", env.Msg, err))
		}
		copies := 1
		if faulty && s.rng.Float64() < s.loss {
			s.fault("lost message")
			continue
		}
		if faulty && s.rng.Float64() < s.dup {
			s.fault("duplicated message")
			copies = 2
		}
		for range copies {
			msg := env.Msg.ProtoReflect().New().Interface()
			if err := proto.Unmarshal(b, msg); err != nil {
				panic(fmt.Sprintf("sim: decoding %T: %v", env.Msg, err))
			}
			at := s.now + s.minDelay + s.rng.Int64N(s.delay)
			if faulty && s.rng.Float64() < s.slow {
				// A slow message: later ones between the pair overtake it.
				at += s.rng.Int64N(int64(200 * time.Millisecond))
				s.fault("reordered message")
			} else {
				// Otherwise a pair's messages arrive in order, as over one
				// connection.
				pair := [2]string{p.addr, env.To}
				at = max(at, s.fifo[pair])
				s.fifo[pair] = at
			}
			s.push(&event{at: at, kind: evPacket, from: p.addr, to: env.To, msg: msg, life: p.incarnation})
		}
		if s.armed != nil {
			s.watchArmed(p, env.Msg)
		}
	}
}

// watchArmed watches the promises p sends while a rolling restart waits
// to take s.armed down: it goes down right after it grants a Lock, with
// its promise on its way.
func (s *Sim) watchArmed(p *peer, msg proto.Message) {
	if pr, ok := msg.(*messages.Promise); ok && p == s.armed && pr.GetTxn() == s.armedTxn && granted(pr) {
		s.armedTxn = 0
		s.push(&event{at: s.now, kind: evRoll, p: s.armed, arm: s.arms})
	}
}

// isLock reports whether p prepares a Lock.
func isLock(p *messages.Prepare) bool {
	for _, it := range p.GetItems() {
		if it.GetKind() == messages.WriteKind_WRITE_KIND_LOCK {
			return true
		}
	}
	return false
}

// granted reports whether pr grants a write.
func granted(pr *messages.Promise) bool {
	for _, it := range pr.GetItems() {
		if it.GetGranted() {
			return true
		}
	}
	return false
}

// nextWake returns the peer that should tick first and when.
func (s *Sim) nextWake() (*peer, int64) {
	var best *peer
	var at int64
	for _, p := range s.peers {
		if p.down || p.pausedUntil > s.now {
			continue
		}
		w, ok := p.core.NextWake()
		if !ok {
			continue
		}
		t := max(p.clock.RealAt(w), s.now)
		if best == nil || t < at {
			best, at = p, t
		}
	}
	return best, at
}

// runOne processes the next event; false when nothing is left to do.
func (s *Sim) runOne() bool {
	wp, wat := s.nextWake()
	if len(s.queue) == 0 && wp == nil {
		return false
	}
	s.step++
	if wp != nil && (len(s.queue) == 0 || wat < s.queue[0].at) {
		s.now = max(s.now, wat)
		wp.core.Tick()
		s.flush(wp)
		return true
	}
	e := heap.Pop(&s.queue).(*event)
	s.now = max(s.now, e.at)
	switch e.kind {
	case evPacket:
		s.deliver(e)
	case evClient:
		if !s.quiet {
			e.client.act()
		}
	case evFault:
		if s.quiet {
			break
		}
		s.injectFault()
		s.push(&event{at: s.now + s.rng.Int64N(int64(s.faultInterval())), kind: evFault})
	case evRestart:
		s.start(e.p)
		s.note("%s restarts with empty memory", e.p.addr)
		s.fault("restart")
	case evResume:
		s.note("%s resumes", e.p.addr)
	case evHeal:
		s.groups, s.partitioned = nil, false
		s.note("partition healed")
	case evResource:
		s.keys[e.key].resource.write(s, e.client, e.lineage, e.token)
	case evRoll:
		switch {
		case s.quiet:
			s.armed = nil
		case e.p == nil:
			s.rollOn()
		case e.p == s.armed && e.arm == s.arms:
			s.rollDown(e.p)
		}
	}
	return true
}

func (s *Sim) deliver(e *event) {
	to, from := s.addr[e.to], s.addr[e.from]
	if to == nil {
		return
	}
	if s.partitioned && s.groups[e.from] != s.groups[e.to] {
		s.note("partition drops %s -> %s %T", e.from, e.to, e.msg)
		return
	}
	if to.down {
		// A dead letter: the sender learns the peer is not running.
		if from != nil && from.available(s.now) {
			from.core.Unreachable(e.to)
			s.flush(from)
		}
		return
	}
	if to.pausedUntil > s.now {
		e.at = to.pausedUntil + s.rng.Int64N(int64(time.Millisecond))
		s.push(e)
		return
	}
	if cap(s.trace) > 0 {
		life := ""
		if from != nil && from.incarnation != e.life {
			life = " (sent in an earlier life)"
		}
		s.note("%s -> %s%s %T %v", e.from, e.to, life, e.msg, e.msg)
	}
	if pr, ok := e.msg.(*messages.Prepare); ok && to == s.armed && isLock(pr) {
		s.armedTxn = pr.GetTxn()
	}
	to.core.Step(e.from, e.msg)
	s.flush(to)
}

// impaired reports whether some peer is down, unconfigured or copying
// leases after a restart: no second peer may lose its memory then, so
// that a quorum of masters always keeps every committed lease.
func (s *Sim) impaired() bool {
	for _, p := range s.peers {
		if p.down || p.core.Membership().Epoch == 0 || p.core.CatchingUp() {
			return true
		}
	}
	return false
}

func (s *Sim) pick() *peer { return s.peers[s.rng.IntN(len(s.peers))] }

// injectFault injects one random fault.
func (s *Sim) injectFault() {
	switch r := s.rng.IntN(100); {
	case r < 25 && !s.partitioned:
		s.groups = map[string]int{}
		for _, p := range s.peers {
			s.groups[p.addr] = s.rng.IntN(2)
		}
		s.partitioned = true
		s.note("partition %v", s.groups)
		s.fault("partition")
		s.push(&event{at: s.now + s.rng.Int64N(int64(1500*time.Millisecond)), kind: evHeal})
	case r < 40 && !s.impaired():
		s.crash(s.pick(), "crash", s.rng.Int64N(int64(time.Second)))
	case r < 65:
		p := s.pick()
		if p.down || p.pausedUntil > s.now {
			return
		}
		d := s.rng.Int64N(int64(1500 * time.Millisecond))
		p.pausedUntil = s.now + d
		s.note("%s pauses for %v", p.addr, time.Duration(d))
		s.fault("pause")
		s.push(&event{at: p.pausedUntil, kind: evResume, p: p})
	case r < 80:
		p := s.pick()
		if !p.available(s.now) {
			return
		}
		m := p.core.Membership()
		if m.Epoch == 0 || m.Joint() || len(m.Replicas) == 0 {
			return
		}
		// Swap k masters with k replicas: one when there is one replica
		// (as the runs of one replica always did, drawing the same
		// numbers), else up to as many as there are, so that promoted
		// replicas (with snapshots they asked for as replicas still on
		// their way) can make a write quorum of the new masters.
		k := 1
		if n := min(len(m.Masters), len(m.Replicas)); n > 1 {
			k += s.rng.IntN(n)
		}
		masters, replicas := slices.Clone(m.Masters), slices.Clone(m.Replicas)
		var outs, ins []string
		for range k {
			out := masters[s.rng.IntN(len(masters))]
			in := replicas[s.rng.IntN(len(replicas))]
			masters = slices.DeleteFunc(masters, func(a string) bool { return a == out })
			replicas = slices.DeleteFunc(replicas, func(a string) bool { return a == in })
			outs, ins = append(outs, out), append(ins, in)
		}
		masters, replicas = append(masters, ins...), append(replicas, outs...)
		s.note("%s reconfigures: masters %v out, %v in", p.addr, outs, ins)
		s.fault("membership change")
		p.await(p.core.Reconfigure(masters, replicas), func(a core.Answer) {
			s.note("reconfiguration by %s answered %+v", p.addr, a.Reconfig)
		})
		s.flush(p)
	}
}

// faultInterval is Config.FaultInterval, 200 ms when it is not set.
func (s *Sim) faultInterval() time.Duration {
	if s.cfg.FaultInterval > 0 {
		return s.cfg.FaultInterval
	}
	return 200 * time.Millisecond
}

// crash stops p (counted as a fault of kind) and restarts it with empty
// memory after down nanoseconds.
func (s *Sim) crash(p *peer, kind string, down int64) {
	p.core.Close()
	p.down = true
	s.flush(p) // the answers Close gave; its last messages are lost
	if kind == "crash" {
		s.note("%s crashes", p.addr)
	} else {
		s.note("%s crashes (%s)", p.addr, kind)
	}
	s.fault(kind)
	s.push(&event{at: s.now + down, kind: evRestart, p: p})
	if !s.cfg.LateLastWords {
		return
	}
	late := 0
	for _, e := range s.queue { // in the heap's order: deterministic
		if e.kind == evPacket && e.from == p.addr && s.rng.IntN(2) == 0 {
			e.at = max(e.at, s.now+down+s.rng.Int64N(int64(100*time.Millisecond)))
			late++
		}
	}
	if late > 0 {
		heap.Init(&s.queue)
		s.note("%d messages %s sent arrive after it restarts", late, p.addr)
		s.fault("late message")
	}
}

// rollOn picks the next master of a rolling restart once no peer is
// down, unconfigured or catching up (until then it looks again a little
// later). The master goes down right after it grants a Lock (see
// watchArmed), or after armedFor if it grants none: its promise is then
// on its way while it restarts.
func (s *Sim) rollOn() {
	m := s.newestMembership()
	if m == nil || m.Epoch == 0 || s.impaired() {
		s.rollLater()
		return
	}
	voters := m.Voters()
	s.armed = s.addr[voters[s.rolled%len(voters)]]
	s.armedTxn = 0
	s.rolled++
	s.arms++
	s.push(&event{at: s.now + int64(armedFor), kind: evRoll, p: s.armed, arm: s.arms})
}

// rollLater looks for the next master of a rolling restart again in 2
// to 22 ms.
func (s *Sim) rollLater() {
	s.push(&event{at: s.now + int64(2*time.Millisecond) + s.rng.Int64N(int64(20*time.Millisecond)), kind: evRoll})
}

// armedFor is how long a master a rolling restart picked waits for a
// promise to go down after (see watchArmed) before it goes down anyway.
const armedFor = 50 * time.Millisecond

// rollDown takes p, the master a rolling restart picked, down, if no
// other peer is impaired by now (else it picks again later), and plans
// the next one. A round over every voter ends with a break of up to 2 s.
func (s *Sim) rollDown(p *peer) {
	s.armed = nil
	if s.impaired() {
		s.rolled--
		s.rollLater()
		return
	}
	down := 1 + s.rng.Int64N(int64(s.cfg.RollingDowntime))
	s.crash(p, "rolling restart", down)
	next := s.now + down + s.rng.Int64N(int64(50*time.Millisecond))
	if m := s.newestMembership(); m == nil || s.rolled%len(m.Voters()) == 0 {
		next += s.rng.Int64N(int64(2 * time.Second))
	}
	s.push(&event{at: next, kind: evRoll})
}

// bootstrap configures the cluster (a reliable network, no faults) with
// one Reconfigure, as cluster mode does.
func (s *Sim) bootstrap() error {
	var masters, replicas []string
	for i, p := range s.peers {
		if i < s.cfg.Masters {
			masters = append(masters, p.addr)
		} else {
			replicas = append(replicas, p.addr)
		}
	}
	var got *core.ReconfigResult
	first := s.peers[0]
	for attempt := 0; attempt < 5 && (got == nil || !got.OK); attempt++ {
		got = nil
		first.await(first.core.Reconfigure(masters, replicas), func(a core.Answer) { got = &a.Reconfig })
		s.flush(first)
		for got == nil && s.runOne() {
		}
	}
	if got == nil || !got.OK {
		return fmt.Errorf("sim: seed %d: configuring the cluster failed: %+v", s.cfg.Seed, got)
	}
	// Let the last commits and gossip land.
	for until := s.now + int64(50*time.Millisecond); s.now < until && s.runOne(); {
	}
	if s.cfg.UnsafeW > 0 {
		var done bool
		first.await(first.core.SetW(masters, s.cfg.UnsafeW), func(core.Answer) { done = true })
		s.flush(first)
		for !done && s.runOne() {
		}
	}
	return nil
}

// Run runs the simulation and returns what it found. It checks the
// invariants after every step and the linearizability of the long keys'
// histories at the end.
func (s *Sim) Run() *Result {
	if err := s.bootstrap(); err != nil {
		s.violate("setup", "%v", err)
		return s.finish(false)
	}
	s.cfgDone = true
	for _, c := range s.clients {
		c.schedule()
	}
	if s.cfg.Faults {
		s.push(&event{at: s.now + s.rng.Int64N(int64(100*time.Millisecond)), kind: evFault})
		if s.cfg.RollingRestarts && s.cfg.RollingDowntime > 0 {
			s.push(&event{at: s.now + s.rng.Int64N(int64(500*time.Millisecond)), kind: evRoll})
		}
	}
	for end := s.step + s.cfg.Steps; s.step < end && !s.stopped; {
		if !s.runOne() {
			break
		}
		s.checkInvariants()
	}
	if !s.stopped {
		s.quiesce()
	}
	return s.finish(!s.stopped || s.cfg.KeepGoing)
}

// quietTime is how long a run goes on without faults or new writes
// before checkConverged: a few gossip intervals, for the peers to learn
// the configuration, crashed masters to copy leases and replicas to
// repair what they missed.
const quietTime = 5 * time.Second

// quiesce heals the network, stops the faults and the clients' new
// writes, lets quietTime pass, and checks that the replicas converged.
func (s *Sim) quiesce() {
	s.quiet = true
	s.groups, s.partitioned = nil, false
	s.note("quiet from now on")
	s.runFor(quietTime)
	// A change of masters left half done (its coordinator crashed or gave
	// up) is finished, as the next Reconfigure would.
	if m := s.newestMembership(); m != nil && m.Joint() && !s.stopped {
		replicas := append(slices.Clone(m.Replicas), slices.DeleteFunc(slices.Clone(m.OldMasters), func(a string) bool {
			return slices.Contains(m.Masters, a)
		})...)
		for _, a := range m.Masters {
			if p := s.addr[a]; p.available(s.now) {
				s.note("%s finishes the change of masters", a)
				p.await(p.core.Reconfigure(m.Masters, replicas), func(r core.Answer) {
					s.note("reconfiguration by %s answered %+v", a, r.Reconfig)
				})
				s.flush(p)
				s.runFor(3 * quietTime)
				break
			}
		}
	}
	if !s.stopped {
		s.checkConverged()
	}
}

// runFor runs events for d of simulated time, checking the invariants.
func (s *Sim) runFor(d time.Duration) {
	for until := s.now + int64(d); s.now < until && !s.stopped && s.runOne(); {
		s.checkInvariants()
	}
}

// newestMembership is the configuration of the highest epoch a running
// peer has.
func (s *Sim) newestMembership() *core.Membership {
	var m *core.Membership
	for _, p := range s.peers {
		if pm := p.core.Membership(); !p.down && (m == nil || pm.Epoch > m.Epoch) {
			m = pm
		}
	}
	return m
}

func (s *Sim) finish(check bool) *Result {
	s.res.Steps = s.step
	for _, k := range s.keys {
		s.res.ResourceAccepted += k.resource.accepted
		s.res.ResourceRefused += k.resource.refused
	}
	s.res.SimTime = time.Duration(s.now)
	s.hist.CloseOpen()
	s.res.History = s.hist
	if check {
		s.checkLinearizable()
	}
	return s.res
}
