package core

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/cockroachdb/datadriven"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/protoactor-locker/locker/messages"
)

// TestInteraction runs the trace tests: the scripts in testdata/*.txt
// drive the test harness (harness_test.go) command by command, and each
// command's output is what happened: every message the network handled,
// every answer a caller got, and the state of the peers when asked. A
// change to the protocol shows as a diff of the scripts. Run them with
//
//	go test ./internal/core/ -run TestInteraction
//
// and, after a change that alters traces on purpose, regenerate them
// with -rewrite and read the diff:
//
//	go test ./internal/core/ -run TestInteraction -rewrite
//
// A script is a sequence of directives in the cockroachdb/datadriven
// format: a command line `cmd arg arg=val arg=(v1,v2)`, optional input
// lines, a line `----`, and the expected output. Lines starting with #
// are comments; a script starts with comments saying what it checks.
// Each script runs on a network of its own, its clock at t0; the
// invariants (checkInvariants) are checked after every command.
//
// Peers are named n1 to n5 (10.0.0.1:1 ...) and outsider, a peer that
// runs no Core: the script speaks for it with inject, and what peers
// send it is printed as delivered, nothing more. Durations are Go
// durations (100ms, 1h). Commands:
//
//	config [member] [standalone] [w=N] [request-timeout=D] [write-lock-timeout=D]
//	       [replication-interval=D] [max-lease=D] [max-message-bytes=N]
//	    changes the Config of the peers started from now on and prints it.
//	    The default is testConfig(): standalone, W=1, request timeout 1s,
//	    write-lock timeout 2s, replication interval 100ms.
//	start n1 n2 ... [ahead=D]
//	    starts a Core at each peer, with empty memory, knowing only itself;
//	    ahead=D runs its clock D ahead of the network's (its tokens are larger).
//	stop n1 ...
//	    stops the peers: what they were doing answers "stopped", messages
//	    to them bounce (their senders are told the peer is unreachable).
//	restart n1 ... [ahead=D]
//	    stop, then start: a peer back with empty memory.
//	configure from=n1 masters=(..) [replicas=(..)] [w=N] [peers=(..)]
//	    runs SetNodes (then SetW, if w is given) from a peer on peers
//	    (default: every running peer) to completion, and prints each
//	    peer's answer.
//	reconfigure from=n1 masters=(..) [replicas=(..)]
//	    starts a Reconfigure at a peer; its answer is printed when it
//	    comes (deliver, sleep or settle move it on).
//	submit from=n1 [name=w1]
//	<op> key=K value=V [new=V] [lease=D]     (one line per op; op is
//	                                         lock, update, extend or release)
//	    starts a write at a peer and delivers nothing; its answer is
//	    printed when it comes, as "n1 answers w1: ...". Writes are named
//	    w1, w2, ... in the order they are submitted, unless named.
//	do from=n1 [name=w1]
//	<op> ...
//	    submit, then settle for that write alone (the harness's do).
//	settle [for=D]
//	    delivers every message, then sleeps a millisecond at a time until
//	    every open write and reconfiguration answered, for at most D
//	    (default: the request timeout); says which did not answer.
//	deliver [count=N] [filter]
//	    delivers queued messages in order, those the filter picks only,
//	    until none is left (or N were handled). Each is printed as it is
//	    handled: delivered, or (held), (lost), (unreachable).
//	sleep D
//	    moves the clock D, ticking every peer when its timers come due
//	    and delivering every message after each tick (a fast network).
//	advance D
//	    sleep without delivering: what the ticks send waits in the queue.
//	hold filter
//	    holds the messages the filter picks when they are delivered,
//	    until unhold; holding rules add up.
//	unhold [keep] [filter]
//	    removes the holding rule given exactly so (without a filter:
//	    every rule) and queues again the held messages the filter picks
//	    (all of them without one; none with keep, which leaves them held
//	    for deliver-held or discard); a message another rule picks is
//	    held again when delivered.
//	deliver-held [twice] [filter]
//	    hands the held messages the filter picks to their receivers now,
//	    whatever the rules (twice: each twice in a row, as a duplicating
//	    network).
//	discard [filter]
//	    forgets the held messages the filter picks: they are lost.
//	drop filter / undrop [filter]
//	    loses the messages the filter picks from now on / stops that
//	    (the rule given exactly so; without a filter: every rule).
//	mute filter / unmute [filter]
//	    stops printing the messages the filter picks, whatever becomes
//	    of them (the background traffic of a long wait) / prints them
//	    again (the rule given exactly so; without a filter: every rule).
//	unreachable on=n1 peer=n4
//	    tells n1 that a message to n4 did not arrive.
//	inject from=outsider to=n1 type=T
//	<the message in protobuf text format>
//	    hands n1 a message of type T (a locker.v1 message name) as sent
//	    by from. From the outsider, what n1 sends back to it is printed
//	    at once; from a running peer, it waits in the queue like any
//	    message. A string field that is exactly a peer's name holds that
//	    peer's address.
//	pending
//	    prints the queued and the held messages.
//	state [n1 ...]
//	    prints each peer (default: all): its configuration and role, its
//	    write locks, the writes it coordinates, and its store (value,
//	    token, lease left; tombstones).
//
// A filter picks messages by the keys it is given, all of which must
// match: from, to, not-from, not-to (peers), type, not-type (message
// names, e.g. type=(Prepare,Commit)), snapshot=true|false (a Replicate
// that is, or is not, a snapshot part), request=true|false (a message
// with a request field, set or not: a Reconfigure's ConfigCommit has
// one set, gossip and an answer to ConfigQuery do not) and epoch=N
// (the message's epoch; a ConfigCommit's or ConfigPrepare's is the
// epoch of next). Add a key in filterKeys.
//
// Messages print as `from->to Type field=value ...`, fields in the
// order of locker.proto, defaults left out, enums without their prefix,
// peers by name. A line `at D` says the clock is D past t0 when the
// lines below it happened.
//
// To add a command, write a method func(*interaction, *datadriven.TestData)
// that acts through e.n (the network) and prints with e.logf, add it to
// interactionCommands and to the list above.
func TestInteraction(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no scripts in testdata")
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			e := newInteraction(t)
			datadriven.RunTest(t, path, e.run)
		})
	}
}

// interactionCommands are the commands of the scripts, by name.
var interactionCommands = map[string]func(*interaction, *datadriven.TestData){
	"config":       (*interaction).config,
	"start":        (*interaction).start,
	"stop":         (*interaction).stop,
	"restart":      (*interaction).restart,
	"configure":    (*interaction).configure,
	"reconfigure":  (*interaction).reconfigure,
	"submit":       (*interaction).submit,
	"do":           (*interaction).do,
	"settle":       (*interaction).settle,
	"deliver":      (*interaction).deliver,
	"sleep":        (*interaction).sleep,
	"advance":      (*interaction).advance,
	"hold":         (*interaction).hold,
	"unhold":       (*interaction).unhold,
	"deliver-held": (*interaction).deliverHeld,
	"discard":      (*interaction).discard,
	"drop":         (*interaction).drop,
	"undrop":       (*interaction).undrop,
	"mute":         (*interaction).mute,
	"unmute":       (*interaction).unmute,
	"unreachable":  (*interaction).unreachable,
	"inject":       (*interaction).inject,
	"pending":      (*interaction).pending,
	"state":        (*interaction).state,
}

// interaction is a script's network and what the script has started on it.
type interaction struct {
	t     *testing.T // the current directive's
	n     *network
	out   strings.Builder
	shown time.Time // the clock when the last `at` line was printed

	holds, drops []filter
	open         []*openCall // writes and reconfigurations not answered yet
	writes       int         // writes submitted, for their default names
	reconfigs    int

	mutes []filter // the messages not printed
}

// openCall is a write or a Reconfigure waiting for its answer.
type openCall struct {
	name string
	done bool
}

func newInteraction(t *testing.T) *interaction {
	e := &interaction{t: t, n: newNetwork(t), shown: t0}
	e.n.trace = func(p packet, fate string) {
		if anyPicks(e.mutes, p) {
			return
		}
		switch {
		case p.to == outsider:
			fate = "" // the script is the outsider: it hears it
		case fate != "":
			fate = " (" + fate + ")"
		}
		e.logf("%s%s", formatPacket(p), fate)
	}
	e.n.holdIf = func(p packet) bool { return anyPicks(e.holds, p) }
	e.n.dropIf = func(p packet) bool { return p.to == outsider || anyPicks(e.drops, p) }
	return e
}

// run runs one directive and returns what it printed.
func (e *interaction) run(t *testing.T, d *datadriven.TestData) string {
	e.t, e.n.t = t, t
	e.out.Reset()
	cmd, ok := interactionCommands[d.Cmd]
	if !ok {
		d.Fatalf(t, "unknown command %q", d.Cmd)
	}
	cmd(e, d)
	e.n.checkInvariants()
	return e.out.String()
}

// logf prints a line of output, after an `at` line if the clock moved
// since the last one.
func (e *interaction) logf(format string, args ...any) {
	if now := e.n.clock.now; !now.Equal(e.shown) {
		fmt.Fprintf(&e.out, "at %v\n", now.Sub(t0))
		e.shown = now
	}
	fmt.Fprintf(&e.out, format+"\n", args...)
}

// --- arguments ---

// peerNames are the names scripts give the harness's addresses.
var peerNames = []struct{ name, addr string }{
	{"n1", n1}, {"n2", n2}, {"n3", n3}, {"n4", n4}, {"n5", n5}, {"outsider", outsider},
}

func peerAddr(name string) (string, bool) {
	for _, p := range peerNames {
		if p.name == name {
			return p.addr, true
		}
	}
	return "", false
}

// peerName is the name of addr, or addr itself if it has none.
func peerName(addr string) string {
	for _, p := range peerNames {
		if p.addr == addr {
			return p.name
		}
	}
	return addr
}

func (e *interaction) addr(d *datadriven.TestData, name string) string {
	a, ok := peerAddr(name)
	if !ok {
		d.Fatalf(e.t, "unknown peer %q", name)
	}
	return a
}

func (e *interaction) addrs(d *datadriven.TestData, names []string) []string {
	out := []string{}
	for _, s := range names {
		out = append(out, e.addr(d, s))
	}
	return out
}

// bare returns the arguments given without a value (peer names,
// durations, flags).
func bare(d *datadriven.TestData) []string {
	var out []string
	for _, a := range d.CmdArgs {
		if len(a.Vals) == 0 {
			out = append(out, a.Key)
		}
	}
	return out
}

// args fails the directive if it has an argument other than keys, or
// (unless peers) one without a value.
func (e *interaction) args(d *datadriven.TestData, peers bool, keys ...string) {
	for _, a := range d.CmdArgs {
		if !slices.Contains(keys, a.Key) && (!peers || len(a.Vals) > 0) {
			d.Fatalf(e.t, "%s: unknown argument %q", d.Cmd, a.Key)
		}
	}
}

// vals returns the values of argument key, and whether it was given.
func vals(d *datadriven.TestData, key string) ([]string, bool) {
	a, ok := d.Arg(key)
	return a.Vals, ok
}

func (e *interaction) val(d *datadriven.TestData, key string) (string, bool) {
	a, ok := d.Arg(key)
	if !ok {
		return "", false
	}
	return a.SingleVal(e.t), true
}

func (e *interaction) mustVal(d *datadriven.TestData, key string) string {
	v, ok := e.val(d, key)
	if !ok {
		d.Fatalf(e.t, "%s needs %s=", d.Cmd, key)
	}
	return v
}

func (e *interaction) duration(d *datadriven.TestData, s string) time.Duration {
	v, err := time.ParseDuration(s)
	if err != nil {
		d.Fatalf(e.t, "%v", err)
	}
	return v
}

func (e *interaction) integer(d *datadriven.TestData, s string) int {
	v, err := strconv.Atoi(s)
	if err != nil {
		d.Fatalf(e.t, "%v", err)
	}
	return v
}

// onlyDuration is the one bare argument of sleep and advance.
func (e *interaction) onlyDuration(d *datadriven.TestData) time.Duration {
	b := bare(d)
	if len(b) != 1 || len(d.CmdArgs) != 1 {
		d.Fatalf(e.t, "%s takes one duration", d.Cmd)
	}
	return e.duration(d, b[0])
}

// --- peers and configuration ---

func (e *interaction) config(d *datadriven.TestData) {
	cfg := &e.n.cfg
	for _, a := range d.CmdArgs {
		switch a.Key {
		case "member":
			cfg.Standalone = false
		case "standalone":
			cfg.Standalone = true
		case "w":
			cfg.W = e.integer(d, a.SingleVal(e.t))
		case "request-timeout":
			cfg.RequestTimeout = e.duration(d, a.SingleVal(e.t))
		case "write-lock-timeout":
			cfg.WriteLockTimeout = e.duration(d, a.SingleVal(e.t))
		case "replication-interval":
			cfg.ReplicationInterval = e.duration(d, a.SingleVal(e.t))
		case "max-lease":
			cfg.MaxLease = e.duration(d, a.SingleVal(e.t))
		case "max-message-bytes":
			cfg.MaxMessageBytes = e.integer(d, a.SingleVal(e.t))
		default:
			d.Fatalf(e.t, "config: unknown setting %q", a.Key)
		}
	}
	kind := "member"
	if cfg.Standalone {
		kind = "standalone"
	}
	e.logf("%s w=%d request-timeout=%v write-lock-timeout=%v replication-interval=%v max-lease=%v max-message-bytes=%d",
		kind, cfg.W, cfg.RequestTimeout, cfg.WriteLockTimeout, cfg.ReplicationInterval, cfg.MaxLease, cfg.MaxMessageBytes)
}

func (e *interaction) start(d *datadriven.TestData) {
	e.args(d, true, "ahead")
	var ahead time.Duration
	if v, ok := e.val(d, "ahead"); ok {
		ahead = e.duration(d, v)
	}
	for _, name := range bare(d) {
		a := e.addr(d, name)
		if e.n.cores[a] != nil {
			d.Fatalf(e.t, "%s runs already (restart it)", name)
		}
		c := e.n.start(a)
		if ahead != 0 {
			// The same Core, built again on a clock running ahead.
			cfg := c.cfg
			cfg.Clock = &aheadClock{base: e.n.clock, by: ahead}
			e.n.cores[a] = New(cfg)
		}
	}
}

func (e *interaction) stop(d *datadriven.TestData) {
	e.args(d, true)
	for _, name := range bare(d) {
		e.n.stop(e.addr(d, name))
	}
}

func (e *interaction) restart(d *datadriven.TestData) {
	for _, name := range bare(d) {
		e.n.stop(e.addr(d, name))
	}
	e.start(d)
}

func (e *interaction) configure(d *datadriven.TestData) {
	e.args(d, false, "from", "masters", "replicas", "w", "peers")
	from := e.addr(d, e.mustVal(d, "from"))
	ms, ok := vals(d, "masters")
	if !ok {
		d.Fatalf(e.t, "configure needs masters=")
	}
	masters := e.addrs(d, ms)
	rs, _ := vals(d, "replicas")
	replicas := e.addrs(d, rs)
	var cluster []string
	if ps, ok := vals(d, "peers"); ok {
		cluster = e.addrs(d, ps)
	} else {
		for _, a := range e.n.addrs {
			if e.n.cores[a] != nil {
				cluster = append(cluster, a)
			}
		}
	}
	answered := func(call string) func(map[string]AdminResult) {
		return func(res map[string]AdminResult) {
			var parts []string
			for _, a := range slices.Sorted(maps.Keys(res)) {
				r := res[a]
				s := peerName(a) + " ok"
				if r.Reason != messages.Reason_REASON_UNSPECIFIED {
					s = fmt.Sprintf("%s %s %q", peerName(a), reasonName(r.Reason), r.Message)
				}
				parts = append(parts, s)
			}
			e.logf("%s answers %s: %s", peerName(from), call, strings.Join(parts, ", "))
		}
	}
	setNodes := answered("set-nodes")
	e.n.onAnswer(from, e.n.core(from).SetNodes(cluster, masters, replicas), func(a Answer) { setNodes(a.Admin) })
	e.n.run()
	if w, ok := e.val(d, "w"); ok {
		setW := answered("set-w")
		e.n.onAnswer(from, e.n.core(from).SetW(cluster, e.integer(d, w)), func(a Answer) { setW(a.Admin) })
		e.n.run()
	}
}

func (e *interaction) reconfigure(d *datadriven.TestData) {
	e.args(d, false, "from", "masters", "replicas")
	from := e.addr(d, e.mustVal(d, "from"))
	ms, ok := vals(d, "masters")
	if !ok {
		d.Fatalf(e.t, "reconfigure needs masters=")
	}
	rs, _ := vals(d, "replicas")
	e.reconfigs++
	call := &openCall{name: fmt.Sprintf("r%d", e.reconfigs)}
	e.open = append(e.open, call)
	e.n.onAnswer(from, e.n.core(from).Reconfigure(e.addrs(d, ms), e.addrs(d, rs)), func(a Answer) {
		r := a.Reconfig
		call.done = true
		s := "ok"
		if !r.OK {
			s = "failed " + reasonName(r.Reason)
		}
		if r.Stopped {
			s += " stopped"
		}
		if r.Message != "" {
			s += fmt.Sprintf(" %q", r.Message)
		}
		e.logf("%s answers %s: %s epoch=%d", peerName(from), call.name, s, r.Epoch)
	})
}

// --- writes ---

// startWrite submits the write of a submit or do directive.
func (e *interaction) startWrite(d *datadriven.TestData) *openCall {
	e.args(d, false, "from", "name")
	from := e.addr(d, e.mustVal(d, "from"))
	e.writes++
	name := fmt.Sprintf("w%d", e.writes)
	if v, ok := e.val(d, "name"); ok {
		name = v
	}
	ops := e.ops(d)
	call := &openCall{name: name}
	e.open = append(e.open, call)
	e.n.onAnswer(from, e.n.core(from).Submit(ops), func(a Answer) {
		outs := a.Outcomes
		if call.done {
			e.t.Errorf("%s answered twice", name)
		}
		call.done = true
		if len(outs) == 1 {
			e.logf("%s answers %s: %s", peerName(from), name, formatOutcome(ops[0], outs[0]))
			return
		}
		e.logf("%s answers %s:", peerName(from), name)
		for i, o := range outs {
			e.logf("  %s", formatOutcome(ops[i], o))
		}
	})
	return call
}

// ops parses the input of a write, one op a line.
func (e *interaction) ops(d *datadriven.TestData) []Op {
	var ops []Op
	for _, line := range strings.Split(d.Input, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		kind, args, err := datadriven.ParseLine(line)
		if err != nil {
			d.Fatalf(e.t, "%v", err)
		}
		k, ok := messages.WriteKind_value["WRITE_KIND_"+strings.ToUpper(kind)]
		if !ok || k == 0 {
			d.Fatalf(e.t, "unknown op %q (lock, update, extend, release)", kind)
		}
		op := Op{Kind: messages.WriteKind(k)}
		for _, a := range args {
			v := a.SingleVal(e.t)
			switch a.Key {
			case "key":
				op.Key = v
			case "value":
				op.Value = []byte(v)
			case "new":
				op.NewValue = []byte(v)
			case "lease":
				op.LeaseMs = e.duration(d, v).Milliseconds()
			default:
				d.Fatalf(e.t, "unknown op argument %q", a.Key)
			}
		}
		ops = append(ops, op)
	}
	if len(ops) == 0 {
		d.Fatalf(e.t, "%s needs ops, one a line", d.Cmd)
	}
	return ops
}

func (e *interaction) submit(d *datadriven.TestData) { e.startWrite(d) }

func (e *interaction) do(d *datadriven.TestData) {
	call := e.startWrite(d)
	e.settleFor(e.n.cfg.RequestTimeout, func() bool { return call.done })
	if !call.done {
		e.logf("%s not answered", call.name)
	}
}

func (e *interaction) settle(d *datadriven.TestData) {
	e.args(d, false, "for")
	bound := e.n.cfg.RequestTimeout
	if v, ok := e.val(d, "for"); ok {
		bound = e.duration(d, v)
	}
	e.settleFor(bound, e.allAnswered)
	for _, c := range e.open {
		if !c.done {
			e.logf("%s not answered", c.name)
		}
	}
}

func (e *interaction) allAnswered() bool {
	e.open = slices.DeleteFunc(e.open, func(c *openCall) bool { return c.done })
	return len(e.open) == 0
}

// settleFor is the harness's settle: deliver, then sleep a millisecond
// at a time until done, for at most bound.
func (e *interaction) settleFor(bound time.Duration, done func() bool) {
	e.n.run()
	for waited := time.Duration(0); !done() && waited <= bound; waited += time.Millisecond {
		e.n.sleep(time.Millisecond)
	}
}

// --- the network ---

func (e *interaction) deliver(d *datadriven.TestData) {
	limit := -1
	if v, ok := e.val(d, "count"); ok {
		limit = e.integer(d, v)
	}
	f := e.filter(d, "count")
	for i := 0; limit < 0 || i < limit; i++ {
		if i > 100000 {
			e.t.Fatal("the network does not settle")
		}
		e.n.collect()
		j := slices.IndexFunc(e.n.queue, f.picks)
		if j < 0 {
			return
		}
		p := e.n.queue[j]
		e.n.queue = slices.Delete(e.n.queue, j, j+1)
		e.n.deliver(p)
	}
}

func (e *interaction) sleep(d *datadriven.TestData)   { e.n.sleep(e.onlyDuration(d)) }
func (e *interaction) advance(d *datadriven.TestData) { e.n.advance(e.onlyDuration(d)) }

func (e *interaction) hold(d *datadriven.TestData) {
	f := e.filter(d)
	if f.key == "" {
		d.Fatalf(e.t, "hold needs a filter (to hold everything: hold not-to=outsider)")
	}
	e.holds = append(e.holds, f)
}

func (e *interaction) unhold(d *datadriven.TestData) {
	f := e.filter(d, "keep")
	e.holds = removeRule(e.holds, f)
	if d.HasArg("keep") {
		return
	}
	var keep []packet
	for _, p := range e.n.held {
		if f.picks(p) {
			e.n.queue = append(e.n.queue, p)
		} else {
			keep = append(keep, p)
		}
	}
	e.n.held = keep
}

func (e *interaction) deliverHeld(d *datadriven.TestData) {
	f := e.filter(d, "twice")
	times := 1
	if d.HasArg("twice") {
		times = 2
	}
	var picked []packet
	e.n.held = slices.DeleteFunc(e.n.held, func(p packet) bool {
		if f.picks(p) {
			picked = append(picked, p)
			return true
		}
		return false
	})
	for _, p := range picked {
		for range times {
			if c := e.n.cores[p.to]; c != nil {
				e.n.traced(p, "")
				c.Step(p.from, p.msg)
				e.n.take(c)
			} else {
				e.n.traced(p, "unreachable")
				if e.n.cores[p.from] != nil {
					e.n.unreachable(p.from, p.to)
				}
			}
		}
	}
}

func (e *interaction) discard(d *datadriven.TestData) {
	f := e.filter(d)
	e.n.held = slices.DeleteFunc(e.n.held, func(p packet) bool {
		if f.picks(p) {
			e.logf("%s (lost)", formatPacket(p))
			return true
		}
		return false
	})
}

func (e *interaction) drop(d *datadriven.TestData) {
	f := e.filter(d)
	if f.key == "" {
		d.Fatalf(e.t, "drop needs a filter")
	}
	e.drops = append(e.drops, f)
}

func (e *interaction) undrop(d *datadriven.TestData) { e.drops = removeRule(e.drops, e.filter(d)) }

func (e *interaction) mute(d *datadriven.TestData) {
	f := e.filter(d)
	if f.key == "" {
		d.Fatalf(e.t, "mute needs a filter")
	}
	e.mutes = append(e.mutes, f)
}

func (e *interaction) unmute(d *datadriven.TestData) { e.mutes = removeRule(e.mutes, e.filter(d)) }

func (e *interaction) unreachable(d *datadriven.TestData) {
	e.args(d, false, "on", "peer")
	on := e.addr(d, e.mustVal(d, "on"))
	e.n.unreachable(on, e.addr(d, e.mustVal(d, "peer")))
}

func (e *interaction) inject(d *datadriven.TestData) {
	e.args(d, false, "from", "to", "type")
	from := e.addr(d, e.mustVal(d, "from"))
	to := e.addr(d, e.mustVal(d, "to"))
	name := e.mustVal(d, "type")
	mt, err := protoregistry.GlobalTypes.FindMessageByName(messages.File_locker_proto.Package().Append(protoreflect.Name(name)))
	if err != nil {
		d.Fatalf(e.t, "type %s: %v", name, err)
	}
	msg := mt.New().Interface()
	if err := prototext.Unmarshal([]byte(d.Input), msg); err != nil {
		d.Fatalf(e.t, "%v", err)
	}
	namesToAddrs(msg.ProtoReflect())
	e.logf("%s", formatPacket(packet{from: from, to: to, msg: msg}))
	e.n.core(to).Step(from, msg)
	e.n.take(e.n.core(to))
	// What the peer answers the script at once.
	e.n.collect()
	e.n.queue = slices.DeleteFunc(e.n.queue, func(p packet) bool {
		if p.to == from && from == outsider {
			e.n.traced(p, "")
			return true
		}
		return false
	})
}

// namesToAddrs replaces every string field of m that is a peer's name
// with its address.
func namesToAddrs(m protoreflect.Message) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Kind() == protoreflect.StringKind:
			l := v.List()
			for i := range l.Len() {
				if a, ok := peerAddr(l.Get(i).String()); ok {
					l.Set(i, protoreflect.ValueOfString(a))
				}
			}
		case fd.IsList() && fd.Kind() == protoreflect.MessageKind:
			l := v.List()
			for i := range l.Len() {
				namesToAddrs(l.Get(i).Message())
			}
		case fd.Kind() == protoreflect.StringKind:
			if a, ok := peerAddr(v.String()); ok {
				m.Set(fd, protoreflect.ValueOfString(a))
			}
		case fd.Kind() == protoreflect.MessageKind && !fd.IsMap():
			namesToAddrs(v.Message())
		}
		return true
	})
}

func (e *interaction) pending(d *datadriven.TestData) {
	e.args(d, false)
	for _, p := range e.n.pending() {
		e.logf("queued %s", formatPacket(p))
	}
	for _, p := range e.n.held {
		e.logf("held %s", formatPacket(p))
	}
}

// --- filters ---

// filter picks messages; key is its arguments as given, in a canonical
// order, to find a rule again ("" picks every message).
type filter struct {
	key   string
	tests []func(packet) bool
}

func (f filter) picks(p packet) bool {
	for _, t := range f.tests {
		if !t(p) {
			return false
		}
	}
	return true
}

func anyPicks(rules []filter, p packet) bool {
	return slices.ContainsFunc(rules, func(f filter) bool { return f.picks(p) })
}

func removeRule(rules []filter, f filter) []filter {
	if f.key == "" {
		return nil
	}
	return slices.DeleteFunc(rules, func(r filter) bool { return r.key == f.key })
}

// filterKeys are the keys of a filter: each makes a test from its values.
var filterKeys = map[string]func(e *interaction, d *datadriven.TestData, vals []string) func(packet) bool{
	"from": func(e *interaction, d *datadriven.TestData, vals []string) func(packet) bool {
		addrs := e.addrs(d, vals)
		return func(p packet) bool { return slices.Contains(addrs, p.from) }
	},
	"to": func(e *interaction, d *datadriven.TestData, vals []string) func(packet) bool {
		addrs := e.addrs(d, vals)
		return func(p packet) bool { return slices.Contains(addrs, p.to) }
	},
	"not-from": func(e *interaction, d *datadriven.TestData, vals []string) func(packet) bool {
		addrs := e.addrs(d, vals)
		return func(p packet) bool { return !slices.Contains(addrs, p.from) }
	},
	"not-to": func(e *interaction, d *datadriven.TestData, vals []string) func(packet) bool {
		addrs := e.addrs(d, vals)
		return func(p packet) bool { return !slices.Contains(addrs, p.to) }
	},
	"type": func(e *interaction, d *datadriven.TestData, vals []string) func(packet) bool {
		names := e.typeNames(d, vals)
		return func(p packet) bool { return slices.Contains(names, typeName(p.msg)) }
	},
	"not-type": func(e *interaction, d *datadriven.TestData, vals []string) func(packet) bool {
		names := e.typeNames(d, vals)
		return func(p packet) bool { return !slices.Contains(names, typeName(p.msg)) }
	},
	"snapshot": func(e *interaction, d *datadriven.TestData, vals []string) func(packet) bool {
		want, err := strconv.ParseBool(singleVal(e, d, vals))
		if err != nil {
			d.Fatalf(e.t, "snapshot=%v", err)
		}
		return func(p packet) bool {
			r, ok := p.msg.(*messages.Replicate)
			return ok && (r.GetSnapshot() != 0) == want
		}
	},
	"request": func(e *interaction, d *datadriven.TestData, vals []string) func(packet) bool {
		want, err := strconv.ParseBool(singleVal(e, d, vals))
		if err != nil {
			d.Fatalf(e.t, "request=%v", err)
		}
		return func(p packet) bool {
			r := p.msg.ProtoReflect()
			fd := r.Descriptor().Fields().ByName("request")
			return fd != nil && (r.Get(fd).Uint() != 0) == want
		}
	},
	"epoch": func(e *interaction, d *datadriven.TestData, vals []string) func(packet) bool {
		want := uint64(e.integer(d, singleVal(e, d, vals)))
		return func(p packet) bool {
			epoch, ok := msgEpoch(p.msg)
			return ok && epoch == want
		}
	},
}

func singleVal(e *interaction, d *datadriven.TestData, vals []string) string {
	if len(vals) != 1 {
		d.Fatalf(e.t, "want one value, got %v", vals)
	}
	return vals[0]
}

// filter reads the filter keys among d's arguments; skip are the other
// arguments the command takes.
func (e *interaction) filter(d *datadriven.TestData, skip ...string) filter {
	var f filter
	var key []string
	for _, a := range d.CmdArgs {
		if slices.Contains(skip, a.Key) {
			continue
		}
		mk, ok := filterKeys[a.Key]
		if !ok {
			d.Fatalf(e.t, "%s: unknown argument %q", d.Cmd, a.Key)
		}
		f.tests = append(f.tests, mk(e, d, a.Vals))
		key = append(key, a.String())
	}
	slices.Sort(key)
	f.key = strings.Join(key, " ")
	return f
}

func (e *interaction) typeNames(d *datadriven.TestData, names []string) []string {
	pkg := messages.File_locker_proto.Package()
	for _, n := range names {
		if _, err := protoregistry.GlobalTypes.FindMessageByName(pkg.Append(protoreflect.Name(n))); err != nil {
			d.Fatalf(e.t, "no message type %s", n)
		}
	}
	return names
}

func typeName(m proto.Message) string { return string(m.ProtoReflect().Descriptor().Name()) }

// msgEpoch is the epoch a message carries: its epoch field, or the
// epoch of the configuration it carries as next.
func msgEpoch(m proto.Message) (uint64, bool) {
	r := m.ProtoReflect()
	fds := r.Descriptor().Fields()
	if fd := fds.ByName("epoch"); fd != nil {
		return r.Get(fd).Uint(), true
	}
	if fd := fds.ByName("next"); fd != nil && r.Has(fd) {
		return msgEpoch(r.Get(fd).Message().Interface())
	}
	return 0, false
}

// --- printing ---

func formatPacket(p packet) string {
	return fmt.Sprintf("%s->%s %s", peerName(p.from), peerName(p.to), formatMsg(p.msg))
}

// formatMsg prints a message as its type and its fields set.
func formatMsg(m proto.Message) string {
	var b strings.Builder
	r := m.ProtoReflect()
	b.WriteString(string(r.Descriptor().Name()))
	if f := formatFields(r); f != "" {
		b.WriteString(" " + f)
	}
	return b.String()
}

func formatFields(r protoreflect.Message) string {
	var parts []string
	fds := r.Descriptor().Fields()
	for i := range fds.Len() {
		fd := fds.Get(i)
		if !r.Has(fd) {
			continue
		}
		v := r.Get(fd)
		switch {
		case fd.IsList():
			l := v.List()
			items := make([]string, l.Len())
			for j := range l.Len() {
				items[j] = formatValue(fd, l.Get(j))
			}
			parts = append(parts, fmt.Sprintf("%s=[%s]", fd.Name(), strings.Join(items, " ")))
		case fd.Kind() == protoreflect.BoolKind:
			parts = append(parts, string(fd.Name())) // set: true
		default:
			parts = append(parts, fmt.Sprintf("%s=%s", fd.Name(), formatValue(fd, v)))
		}
	}
	return strings.Join(parts, " ")
}

func formatValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) string {
	switch fd.Kind() {
	case protoreflect.MessageKind:
		return "{" + formatFields(v.Message()) + "}"
	case protoreflect.EnumKind:
		ev := fd.Enum().Values().ByNumber(v.Enum())
		if ev == nil {
			return strconv.Itoa(int(v.Enum()))
		}
		return enumName(fd.Enum(), ev)
	case protoreflect.StringKind:
		return formatString(peerName(v.String()))
	case protoreflect.BytesKind:
		return formatString(string(v.Bytes()))
	}
	return v.String()
}

// enumName is an enum value's name without its type's prefix
// (WRITE_KIND_LOCK: LOCK).
func enumName(enum protoreflect.EnumDescriptor, ev protoreflect.EnumValueDescriptor) string {
	var prefix strings.Builder
	for i, r := range string(enum.Name()) {
		if i > 0 && unicode.IsUpper(r) {
			prefix.WriteByte('_')
		}
		prefix.WriteRune(unicode.ToUpper(r))
	}
	prefix.WriteByte('_')
	return strings.TrimPrefix(string(ev.Name()), prefix.String())
}

func reasonName(r messages.Reason) string {
	return enumName(r.Descriptor(), r.Descriptor().Values().ByNumber(r.Number()))
}

// formatString prints s bare when it is a plain word, quoted otherwise.
func formatString(s string) string {
	plain := s != ""
	for _, r := range s {
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("_-.:/", r)) || r > unicode.MaxASCII {
			plain = false
		}
	}
	if plain {
		return s
	}
	return strconv.Quote(s)
}

func opName(op Op) string {
	return strings.ToLower(strings.TrimPrefix(op.Kind.String(), "WRITE_KIND_")) + " " + formatString(op.Key)
}

func formatOutcome(op Op, o Outcome) string {
	var b strings.Builder
	b.WriteString(opName(op) + ": ")
	switch {
	case o.OK:
		fmt.Fprintf(&b, "ok token=%d", o.Token)
	case o.NotReady:
		b.WriteString("not ready")
	case o.Stopped:
		b.WriteString("stopped")
	default:
		b.WriteString("failed")
	}
	if o.Phase == PhaseCommit && !o.OK {
		b.WriteString(" phase=commit")
	}
	fmt.Fprintf(&b, " w=%d votes=%d commits=%d", o.W, o.Votes, o.Commits)
	for _, a := range slices.Sorted(maps.Keys(o.Reasons)) {
		fmt.Fprintf(&b, " %s=%s", peerName(a), reasonName(o.Reasons[a]))
	}
	return b.String()
}

func (e *interaction) state(d *datadriven.TestData) {
	e.args(d, true)
	addrs := e.n.addrs
	if names := bare(d); len(names) > 0 {
		addrs = e.addrs(d, names)
	}
	if len(addrs) == 0 {
		e.logf("no peers")
	}
	for _, a := range addrs {
		c := e.n.cores[a]
		if c == nil {
			e.logf("%s: stopped", peerName(a))
			continue
		}
		e.logf("%s", peerState(c))
	}
}

// peerState prints a Core's configuration, role, write locks, writes in
// progress and store, one item a line.
func peerState(c *Core) string {
	var b strings.Builder
	m := c.Membership()
	role := "no role"
	switch {
	case m.IsMaster(c.cfg.Self):
		role = "master"
	case slices.Contains(m.Replicas, c.cfg.Self):
		role = "replica"
	}
	names := func(addrs []string) string {
		out := make([]string, len(addrs))
		for i, a := range addrs {
			out[i] = peerName(a)
		}
		return "(" + strings.Join(out, ",") + ")"
	}
	fmt.Fprintf(&b, "%s: %s epoch=%d masters=%s w=%d", peerName(c.cfg.Self), role, m.Epoch, names(m.Masters), m.W)
	if m.Joint() {
		fmt.Fprintf(&b, " old-masters=%s old-w=%d", names(m.OldMasters), m.OldW)
	}
	if len(m.Replicas) > 0 {
		fmt.Fprintf(&b, " replicas=%s", names(m.Replicas))
	}
	if !c.Ready() {
		b.WriteString(" not-ready")
	}
	if c.CatchingUp() {
		b.WriteString(" catching-up")
	}
	now := c.now()
	for _, key := range slices.Sorted(maps.Keys(c.locks)) {
		wl := c.locks[key]
		fmt.Fprintf(&b, "\n  write lock %s: %s txn=%d for %v", formatString(key), peerName(wl.from), wl.txn, time.Duration(wl.deadline-now))
	}
	for _, id := range slices.Sorted(maps.Keys(c.txns)) {
		x := c.txns[id]
		ops := make([]string, len(x.ops))
		for i, op := range x.ops {
			ops[i] = opName(op)
		}
		fmt.Fprintf(&b, "\n  write txn=%d epoch=%d (%s)", id, x.epoch, strings.Join(ops, ", "))
		for _, flag := range []struct {
			on   bool
			name string
		}{{x.decided, "decided"}, {x.replied, "replied"}, {x.awaiting, "awaiting-configuration"}, {x.retried, "retried"}} {
			if flag.on {
				b.WriteString(" " + flag.name)
			}
		}
	}
	c.store.mu.RLock()
	defer c.store.mu.RUnlock()
	for _, key := range slices.Sorted(maps.Keys(c.store.entries)) {
		en := c.store.entries[key]
		left := time.Duration(en.deadline - now)
		switch {
		case en.deleted:
			fmt.Fprintf(&b, "\n  %s released token=%d kept=%v", formatString(key), en.token, left)
		case left <= 0:
			fmt.Fprintf(&b, "\n  %s=%s token=%d expired", formatString(key), formatString(string(en.value)), en.token)
		default:
			fmt.Fprintf(&b, "\n  %s=%s token=%d lease=%v", formatString(key), formatString(string(en.value)), en.token, left)
		}
	}
	return b.String()
}
