package core

import (
	"time"

	"github.com/protoactor-locker/locker/messages"
)

// batch collects the outcomes of the transactions one Submit became.
type batch struct {
	outs  []Outcome
	left  int
	reply func([]Outcome)
}

func (b *batch) done(offset int, outs []Outcome) {
	copy(b.outs[offset:], outs)
	b.left--
	if b.left == 0 {
		b.reply(b.outs)
	}
}

// txn is a write this peer coordinates: one Prepare to every master,
// then one Commit to every master that promised.
type txn struct {
	id       uint64
	ops      []Op
	batch    *batch
	offset   int
	w        int
	epoch    uint64
	masters  []string
	start    int64
	deadline int64

	answered map[string]*messages.Promise // nil value: unreachable
	prep     []Tally
	reasons  []map[string]messages.Reason
	decided  bool
	commit   []bool           // per op: the decision is to commit
	token    []uint64         // per op: the token committed
	sent     map[string][]int // ops sent to a master in its Commit, expecting an ack
	acked    map[string]bool
	commits  []Tally
	grace    int64
	replied  bool
}

func (x *txn) phase(i int) Phase {
	if x.decided && x.commit[i] {
		return PhaseCommit
	}
	return PhasePrepare
}

// Submit starts the writes ops; reply gets one Outcome per op, in order,
// once every op is decided. Ops on distinct keys are sent together, as
// few messages as MaxMessageBytes allows; an op that repeats a key goes
// in a later transaction.
func (c *Core) Submit(ops []Op, reply func([]Outcome)) {
	if c.closed {
		outs := make([]Outcome, len(ops))
		for i := range outs {
			outs[i].Stopped = true
		}
		reply(outs)
		return
	}
	if len(ops) == 0 {
		reply(nil)
		return
	}
	b := &batch{outs: make([]Outcome, len(ops)), reply: reply}
	var groups [][2]int
	start, size := 0, 0
	keys := map[string]bool{}
	for i, op := range ops {
		n := EntrySize(op.Key, op.Value, op.NewValue)
		if i > start && (keys[op.Key] || size+n > c.cfg.MaxMessageBytes-overhead) {
			groups = append(groups, [2]int{start, i})
			start, size = i, 0
			clear(keys)
		}
		keys[op.Key] = true
		size += n
	}
	groups = append(groups, [2]int{start, len(ops)})
	b.left = len(groups)
	for _, g := range groups {
		c.begin(b, g[0], ops[g[0]:g[1]])
	}
	c.drain()
}

func (c *Core) begin(b *batch, offset int, ops []Op) {
	m := c.member.Load()
	now := c.now()
	x := &txn{
		id: c.id(), ops: ops, batch: b, offset: offset, w: m.W, epoch: m.Epoch,
		masters: m.Masters, start: now, deadline: now + int64(c.cfg.RequestTimeout),
		answered: map[string]*messages.Promise{}, prep: make([]Tally, len(ops)),
		reasons: make([]map[string]messages.Reason, len(ops)),
		commit:  make([]bool, len(ops)), token: make([]uint64, len(ops)),
		sent: map[string][]int{}, acked: map[string]bool{}, commits: make([]Tally, len(ops)),
	}
	for i := range x.prep {
		x.prep[i] = Tally{W: m.W, Masters: len(m.Masters)}
	}
	c.txns[x.id] = x
	c.schedule(timer{at: x.deadline, kind: timerTxn, id: x.id})
	if c.decide(x, now) {
		return // W cannot be reached with these masters
	}
	p := &messages.Prepare{Txn: x.id, Epoch: x.epoch, Items: make([]*messages.PrepareItem, len(ops))}
	for i, op := range ops {
		p.Items[i] = &messages.PrepareItem{Key: op.Key, Kind: op.Kind}
		if op.Kind != messages.WriteKind_WRITE_KIND_LOCK {
			p.Items[i].Expected = op.Value
		}
	}
	for _, addr := range x.masters {
		c.send(addr, p)
	}
}

func (x *txn) refuse(i int, addr string, r messages.Reason) {
	if x.reasons[i] == nil {
		x.reasons[i] = map[string]messages.Reason{}
	}
	x.reasons[i][addr] = r
}

func (c *Core) onPromise(from string, p *messages.Promise) {
	x := c.txns[p.GetTxn()]
	if x == nil {
		// Too late: the transaction is gone. Free what was promised.
		for _, it := range p.GetItems() {
			if it.GetGranted() {
				c.send(from, &messages.Commit{Txn: p.GetTxn()})
				break
			}
		}
		return
	}
	if _, dup := x.answered[from]; dup || !contains(x.masters, from) || len(p.GetItems()) != len(x.ops) {
		return
	}
	x.answered[from] = p
	for i, it := range p.GetItems() {
		if it.GetGranted() {
			x.prep[i].Yes++
		} else {
			x.prep[i].No++
			x.refuse(i, from, it.GetReason())
		}
	}
	now := c.now()
	if x.decided {
		c.sendCommit(x, from)
		return
	}
	if !c.decide(x, now) {
		return
	}
}

// decide fixes the outcome of every op once each is decided, sends the
// commits and aborts, and reports whether it did.
func (c *Core) decide(x *txn, now int64) bool {
	if x.decided {
		return true
	}
	for _, t := range x.prep {
		if !t.Decided() {
			return false
		}
	}
	x.decided = true
	for i := range x.ops {
		x.commit[i] = x.prep[i].Reached()
		x.commits[i] = Tally{W: x.w}
	}
	for addr, p := range x.answered {
		if p == nil {
			continue
		}
		for i, it := range p.GetItems() {
			if !it.GetGranted() {
				continue
			}
			if op := x.ops[i].Kind; op == messages.WriteKind_WRITE_KIND_LOCK || op == messages.WriteKind_WRITE_KIND_UPDATE {
				x.token[i] = max(x.token[i], it.GetProposal())
			} else {
				x.token[i] = max(x.token[i], it.GetToken())
			}
		}
		_ = addr
	}
	for _, addr := range x.masters {
		if p := x.answered[addr]; p != nil {
			c.sendCommit(x, addr)
		}
	}
	c.checkDone(x, now)
	return true
}

// sendCommit sends addr the commit or abort of each op it promised, and
// the repair of each committed Extend it lacked the key for.
func (c *Core) sendCommit(x *txn, addr string) {
	p := x.answered[addr]
	cm := &messages.Commit{Txn: x.id, Epoch: x.epoch}
	var acks []int
	for i, it := range p.GetItems() {
		op := x.ops[i]
		repair := !it.GetGranted() && x.commit[i] && op.Kind == messages.WriteKind_WRITE_KIND_EXTEND &&
			it.GetReason() == messages.Reason_REASON_NOT_FOUND
		if !it.GetGranted() && !repair {
			continue
		}
		ci := &messages.CommitItem{Key: op.Key, Kind: op.Kind}
		if !x.commit[i] {
			ci.Abort = true
			cm.Items = append(cm.Items, ci)
			continue
		}
		ci.Repair = repair
		ci.Token = x.token[i]
		ci.LeaseMs = op.LeaseMs
		ci.Value = op.Value
		if op.Kind == messages.WriteKind_WRITE_KIND_UPDATE {
			ci.Value = op.NewValue
		}
		cm.Items = append(cm.Items, ci)
		acks = append(acks, len(cm.Items)-1)
		x.commits[i].Masters++
	}
	if len(cm.Items) == 0 {
		return
	}
	if len(acks) > 0 {
		// Remember which op each acknowledged position stands for.
		ops := make([]int, len(cm.Items))
		j := 0
		for i, it := range p.GetItems() {
			op := x.ops[i]
			repair := !it.GetGranted() && x.commit[i] && op.Kind == messages.WriteKind_WRITE_KIND_EXTEND &&
				it.GetReason() == messages.Reason_REASON_NOT_FOUND
			if it.GetGranted() || repair {
				ops[j] = i
				j++
			}
		}
		x.sent[addr] = ops
	}
	c.send(addr, cm)
}

func (c *Core) onCommitted(from string, a *messages.Committed) {
	x := c.txns[a.GetTxn()]
	if x == nil {
		return
	}
	ops, ok := x.sent[from]
	if !ok || x.acked[from] || len(a.GetItems()) != len(ops) {
		return
	}
	x.acked[from] = true
	for j, it := range a.GetItems() {
		i := ops[j]
		if !x.commit[i] {
			continue // an abort
		}
		if it.GetOk() {
			x.commits[i].Yes++
		} else {
			x.commits[i].No++
			x.refuse(i, from, it.GetReason())
		}
	}
	c.checkDone(x, c.now())
}

// txnUnreachable counts addr as refusing whatever x still waits for.
func (c *Core) txnUnreachable(x *txn, addr string, now int64) {
	if !contains(x.masters, addr) {
		return
	}
	if _, ok := x.answered[addr]; !ok {
		x.answered[addr] = nil
		for i := range x.ops {
			x.prep[i].No++
			x.refuse(i, addr, messages.Reason_REASON_UNREACHABLE)
		}
		if !x.decided {
			c.decide(x, now)
			return
		}
	}
	if ops, ok := x.sent[addr]; ok && !x.acked[addr] {
		x.acked[addr] = true
		for _, i := range ops {
			if x.commit[i] {
				x.commits[i].No++
				x.refuse(i, addr, messages.Reason_REASON_UNREACHABLE)
			}
		}
	}
	c.checkDone(x, now)
}

// outstanding counts the masters whose answer x still waits for and that
// are not known to be down.
func (c *Core) outstanding(x *txn) int {
	n := 0
	for _, addr := range x.masters {
		if c.down[addr] {
			continue
		}
		if _, ok := x.answered[addr]; !ok {
			n++
		} else if _, ok := x.sent[addr]; ok && !x.acked[addr] {
			n++
		}
	}
	return n
}

// checkDone replies once every op is decided. If masters that are not
// known to be down have not answered yet, it waits for them a little (as
// long again as the write took so far, within the request timeout), so
// that the counts in the reply are complete when every master is up;
// a master that is down costs at most that.
func (c *Core) checkDone(x *txn, now int64) {
	if x.replied || !x.decided {
		return
	}
	for i := range x.ops {
		if x.commit[i] && !x.commits[i].Decided() {
			return
		}
	}
	if c.outstanding(x) > 0 && now < x.deadline {
		if x.grace == 0 {
			x.grace = min(now+max(now-x.start, int64(graceFloor)), x.deadline)
			c.schedule(timer{at: x.grace, kind: timerTxn, id: x.id})
		}
		if now < x.grace {
			return
		}
	}
	c.reply(x)
}

func (c *Core) reply(x *txn) {
	x.replied = true
	outs := make([]Outcome, len(x.ops))
	for i := range x.ops {
		o := Outcome{W: x.w, Votes: x.prep[i].Yes, Phase: x.phase(i), Reasons: x.reasons[i]}
		if x.commit[i] {
			o.Commits = x.commits[i].Yes
			o.OK = x.commits[i].Reached()
			o.Token = x.token[i]
		}
		outs[i] = o
	}
	x.batch.done(x.offset, outs)
}

// txnTimer handles x's grace end or deadline.
func (c *Core) txnTimer(x *txn, now int64) {
	if now < x.deadline {
		c.checkDone(x, now)
		return
	}
	if !x.replied {
		for _, addr := range x.masters {
			c.txnUnreachable(x, addr, now)
		}
		// Whatever is still undecided failed.
		if !x.replied {
			c.reply(x)
		}
	}
	delete(c.txns, x.id)
}

// graceFloor is the least checkDone waits for masters that have not
// answered once the outcome is decided.
const graceFloor = 2 * time.Millisecond
