package core

import (
	"maps"
	"slices"
	"time"

	"github.com/protoactor-locker/locker/messages"
)

// batch collects the outcomes of the transactions one Submit became.
// They run in stages: the transactions of one stage touch distinct keys
// and run together; a stage begins once the one before it finished, so
// that an op repeating a key meets the outcome of the earlier op rather
// than its write lock.
type batch struct {
	c       *Core
	ops     []Op
	outs    []Outcome
	stages  [][][2]int // stages not begun yet, each groups of ops [start, end)
	running int        // transactions of the current stage not finished
	handle  RequestID  // the Submit it answers
	// then, when set, takes the outcomes instead of an Answer: the
	// valid ops of a Submit that refused some (refuseInvalid).
	then func([]Outcome)
}

func (b *batch) done(offset int, outs []Outcome) {
	copy(b.outs[offset:], outs)
	b.running--
	if b.running == 0 {
		b.next()
	}
}

// next begins the next stage, or answers when none is left. Once the
// Core is closed, the stages not begun fail as stopped.
func (b *batch) next() {
	for len(b.stages) > 0 {
		stage := b.stages[0]
		b.stages = b.stages[1:]
		if !b.c.closed {
			b.running = len(stage)
			for _, g := range stage {
				b.c.begin(b, g[0], b.ops[g[0]:g[1]])
			}
			return
		}
		for _, g := range stage {
			for i := g[0]; i < g[1]; i++ {
				b.outs[i] = Outcome{Stopped: true, W: b.c.member.Load().W}
			}
		}
	}
	if b.then != nil {
		b.then(b.outs)
		return
	}
	b.c.answerWrite(b.handle, b.outs)
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

	member   *Membership // the configuration the write runs under
	peers    []txnPeer   // per master (the position in masters): what it answered and was sent
	prep     []*Quorum
	reasons  []map[string]messages.Reason
	decided  bool
	commit   []bool   // per op: the decision is to commit
	token    []uint64 // per op: the token committed
	commits  []*Quorum
	grace    int64
	replied  bool
	retried  bool     // this write already started again under a newer configuration
	awaiting bool     // refused for a stale epoch: waits for the newer configuration
	newer    bool     // a master answered from a newer epoch than x's
	ballot   uint64   // drawn before the Prepare: the token of its Locks and Updates (see ballot.go)
	attempt  int      // how often the write started again after REASON_BALLOT_TOO_LOW
	inc      []uint64 // the incarnation of each of masters as known when the Prepare went (nil: none known)
}

// txnPeer is what a write knows of one of its masters.
type txnPeer struct {
	answered bool              // it answered the Prepare, or was counted unreachable
	promise  *messages.Promise // its answer; nil when counted unreachable
	// sent is the op of each item of the Commit it was sent, when that
	// Commit carries a committed op and so is acknowledged (nil: none).
	sent  []int
	acked bool // that ack came, or it was counted unreachable since
}

// peer returns what x knows of addr, or nil when addr is not one of x's
// masters.
func (x *txn) peer(addr string) *txnPeer {
	if i, ok := slices.BinarySearch(x.masters, addr); ok {
		return &x.peers[i]
	}
	return nil
}

// promise returns addr's answer to x's Prepare (nil: none, or counted
// unreachable).
func (x *txn) promise(addr string) *messages.Promise {
	if p := x.peer(addr); p != nil {
		return p.promise
	}
	return nil
}

// waitsAck reports whether x waits for addr to acknowledge a Commit.
func (p *txnPeer) waitsAck() bool { return p.sent != nil && !p.acked }

func (x *txn) phase(i int) Phase {
	if x.decided && x.commit[i] {
		return PhaseCommit
	}
	return PhasePrepare
}

// Submit starts the writes ops. Once every op is decided, an Answer of
// KindWrite with the returned handle holds one Outcome per op, in order.
// Ops on distinct keys are sent together, as few messages as
// MaxMessageBytes allows; an op that repeats a key goes in a later
// transaction, begun once the earlier ones are decided.
func (c *Core) Submit(ops []Op) RequestID {
	defer c.letGo(c.hold())
	id := c.newRequestID()
	c.submit(&batch{c: c, ops: ops, handle: id})
	return id
}

// submit starts the writes of b, whose ops, handle and then are set.
func (c *Core) submit(b *batch) {
	ops := b.ops
	if c.closed {
		outs := make([]Outcome, len(ops))
		for i := range outs {
			outs[i].Stopped = true
		}
		b.outs = outs
		b.next()
		return
	}
	if len(ops) == 0 {
		b.next() // answered at once, with no outcomes
		return
	}
	if !c.Ready() {
		b.outs = c.refuseNotReady(ops)
		b.next()
		return
	}
	if bad := invalidOps(ops, c.maxLease()); len(bad) > 0 {
		c.refuseInvalid(b, bad)
		return
	}
	var stages [][][2]int
	var stage [][2]int
	start, size := 0, 0
	keys := map[string]bool{} // the keys of the current stage
	for i, op := range ops {
		n := EntrySize(op.Key, op.Value, op.NewValue)
		repeat := keys[op.Key]
		if i > start && (repeat || size+n > c.cfg.MaxMessageBytes-overhead) {
			stage = append(stage, [2]int{start, i})
			start, size = i, 0
		}
		if repeat {
			stages = append(stages, stage)
			stage = nil
			clear(keys)
		}
		keys[op.Key] = true
		size += n
	}
	stages = append(stages, append(stage, [2]int{start, len(ops)}))
	b.outs, b.stages = make([]Outcome, len(ops)), stages
	b.next()
	c.drain()
}

// invalidOps returns the indices of the ops no master may apply: a Lock
// or Extend whose lease is not in [1 ms, maxLease].
func invalidOps(ops []Op, maxLease time.Duration) []int {
	var bad []int
	for i, op := range ops {
		if (op.Kind == messages.WriteKind_WRITE_KIND_LOCK || op.Kind == messages.WriteKind_WRITE_KIND_EXTEND) && (op.LeaseMs <= 0 || op.LeaseMs > maxLease.Milliseconds()) {
			bad = append(bad, i)
		}
	}
	return bad
}

// refuseInvalid answers the ops of b at bad as refused by this peer
// (REASON_INVALID_ARGUMENT, nothing sent) and submits the others.
func (c *Core) refuseInvalid(b *batch, bad []int) {
	ops := b.ops
	w := c.member.Load().W
	outs := make([]Outcome, len(ops))
	var rest []Op
	var at []int
	for i, op := range ops {
		if slices.Contains(bad, i) {
			outs[i] = Outcome{W: w, Reasons: map[string]messages.Reason{c.cfg.Self: messages.Reason_REASON_INVALID_ARGUMENT}}
			continue
		}
		rest = append(rest, op)
		at = append(at, i)
	}
	b.outs = outs
	if len(rest) == 0 {
		b.next()
		return
	}
	c.submit(&batch{c: c, ops: rest, then: func(o []Outcome) {
		for j, i := range at {
			outs[i] = o[j]
		}
		b.next()
	}})
}

// retryStale starts again, under the configuration just adopted, the
// writes that were refused for a stale epoch.
func (c *Core) retryStale() {
	// In the order of their ids: each begins a transaction with a fresh id.
	for _, id := range slices.Sorted(maps.Keys(c.txns)) {
		x := c.txns[id]
		if x == nil || !x.awaiting || x.replied {
			continue
		}
		x.replied = true // the new transaction answers for it
		delete(c.txns, id)
		c.begin(x.batch, x.offset, x.ops)
		if y := c.txns[c.nextID]; y != nil {
			y.retried = true
		}
	}
}

// staleOnly reports whether x failed before committing anything and some
// master refused it for a stale epoch, being at a newer one.
func (x *txn) staleOnly() bool {
	if !x.newer {
		return false // the refusers are behind: they learn, this write stands
	}
	stale := false
	for i := range x.ops {
		if x.commit[i] {
			return false
		}
		for _, r := range x.reasons[i] {
			stale = stale || r == messages.Reason_REASON_STALE_EPOCH
		}
	}
	return stale
}

func (c *Core) begin(b *batch, offset int, ops []Op) {
	now := c.now()
	c.attempt(b, offset, ops, now+int64(c.cfg.RequestTimeout), 0)
}

// attempt starts a write of ops, its attempt-th after a
// REASON_BALLOT_TOO_LOW, to be answered by deadline.
func (c *Core) attempt(b *batch, offset int, ops []Op, deadline int64, attempt int) {
	m := c.member.Load()
	now := c.now()
	x := &txn{
		id: c.id(), ops: ops, batch: b, offset: offset, w: m.W, epoch: m.Epoch,
		masters: m.Voters(), start: now, deadline: deadline, attempt: attempt, ballot: c.token(),
		prep: make([]*Quorum, len(ops)), member: m,
		reasons: make([]map[string]messages.Reason, len(ops)),
		commit:  make([]bool, len(ops)), token: make([]uint64, len(ops)),
		commits: make([]*Quorum, len(ops)),
	}
	x.peers = make([]txnPeer, len(x.masters))
	for i := range x.prep {
		x.prep[i] = QuorumOf(m)
	}
	if len(c.peerInc) > 0 {
		x.inc = make([]uint64, len(x.masters))
		for i, addr := range x.masters {
			x.inc[i] = c.peerInc[addr]
		}
	}
	c.txns[x.id] = x
	c.schedule(timer{at: x.deadline, kind: timerTxn, id: x.id})
	if c.decide(x, now) {
		// W cannot be reached with these masters. Nobody was asked, so
		// there is nobody to wait for.
		if !x.replied {
			c.reply(x)
		}
		return
	}
	p := &messages.Prepare{Txn: x.id, Epoch: x.epoch, Items: make([]*messages.PrepareItem, len(ops)), Ballot: x.ballot}
	for i, op := range ops {
		p.Items[i] = &messages.PrepareItem{Key: op.Key, Kind: op.Kind}
		if op.Kind != messages.WriteKind_WRITE_KIND_LOCK {
			p.Items[i].Expected = op.Value
		}
		if op.Kind == messages.WriteKind_WRITE_KIND_LOCK || op.Kind == messages.WriteKind_WRITE_KIND_EXTEND {
			p.Items[i].LeaseMs = op.LeaseMs // refused at prepare by a master with a shorter MaxLease
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
		c.abortPromise(from, p)
		return
	}
	for _, it := range p.GetItems() {
		c.observe(max(it.GetToken(), it.GetProposal())) // a retry's ballot goes above them
	}
	xp := x.peer(from)
	dup := xp != nil && xp.answered
	if !dup && !c.promiseLife(x, from, p.GetIncarnation()) {
		// From another life of the master than the one asked or last
		// heard: its write locks went with its memory. Not counted; the
		// master's current life answers, or the write times out there.
		return
	}
	if dup || xp == nil || len(p.GetItems()) != len(x.ops) {
		if !dup || xp.promise == nil {
			// Not counted (a master already counted unreachable, or a
			// stray answer): no commit will follow, so free the promise
			// now rather than after the write-lock timeout. A repeated
			// answer of a counted master gets its commit or abort once.
			c.abortPromise(from, p)
		}
		return
	}
	xp.answered, xp.promise = true, p
	stale := false
	for i, it := range p.GetItems() {
		if it.GetGranted() || x.repairable(i, from, it) {
			x.prep[i].Count(from, true)
		} else {
			x.prep[i].Count(from, false)
			x.refuse(i, from, it.GetReason())
			stale = stale || it.GetReason() == messages.Reason_REASON_STALE_EPOCH
		}
	}
	if stale {
		x.newer = x.newer || p.GetEpoch() > x.epoch
		c.reconcile(from, p.GetEpoch())
	}
	now := c.now()
	if x.decided {
		c.sendCommit(x, from)
		return
	}
	if c.ballotRetry(x, now) {
		return // a master's bound is above x's ballot: no need to wait for the others
	}
	c.decide(x, now)
}

// abortPromise frees whatever from promised in p, with a Commit that
// names no item (abort everything of the transaction).
func (c *Core) abortPromise(from string, p *messages.Promise) {
	for _, it := range p.GetItems() {
		if it.GetGranted() {
			c.send(from, &messages.Commit{Txn: p.GetTxn()})
			return
		}
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
	if c.ballotRetry(x, now) {
		return true
	}
	x.decided = true
	for i := range x.ops {
		x.commit[i] = x.prep[i].Reached()
		x.commits[i] = QuorumOf(x.member)
		if ordered(x.ops[i].Kind) {
			x.token[i] = x.ballot // the ballot every promise was granted for
		}
	}
	for _, xp := range x.peers {
		if xp.promise == nil {
			continue
		}
		for i, it := range xp.promise.GetItems() {
			if it.GetGranted() && !ordered(x.ops[i].Kind) {
				x.token[i] = max(x.token[i], it.GetToken()) // the holder's
			}
		}
	}
	for j, addr := range x.masters {
		switch xp := &x.peers[j]; {
		case xp.promise != nil:
			c.sendCommit(x, addr)
		case xp.answered: // unreachable: it will not commit
			x.commitsNo(addr, nil)
		}
	}
	c.checkDone(x, now)
	return true
}

// ballotRetry starts x again with a larger ballot, and reports whether
// it did, when x is not decided yet (nothing was committed), an op of x
// has not reached W promises and some master refused it for its ballot
// (REASON_BALLOT_TOO_LOW), and attempts and time are left. It does not
// wait for the other masters: the next attempt's ballot is above every
// bound heard, and waiting could only end in the same retry or in a
// commit that a slow master decided. The promises x had are aborted;
// the masters that have not answered yet get their abort when they do
// (the transaction is gone).
func (c *Core) ballotRetry(x *txn, now int64) bool {
	if x.decided || x.attempt+1 >= maxBallotAttempts || now >= x.deadline || c.closed {
		return false
	}
	low := false
	for i := range x.ops {
		if x.prep[i].Reached() {
			continue
		}
		for _, r := range x.reasons[i] {
			low = low || r == messages.Reason_REASON_BALLOT_TOO_LOW
		}
	}
	if !low {
		return false
	}
	for j, addr := range x.masters { // sorted
		if p := x.peers[j].promise; p != nil {
			c.abortPromise(addr, p)
		}
	}
	x.replied = true // the next attempt answers for it
	delete(c.txns, x.id)
	c.attempt(x.batch, x.offset, x.ops, x.deadline, x.attempt+1)
	if y := c.txns[c.nextID]; y != nil {
		y.retried = x.retried
	}
	return true
}

// repairable reports whether a refusal of op i by addr still counts as a
// promise because the commit can repair addr: during a change of masters,
// a new master that lacks the key of an Extend or Release (it has not
// copied the old masters' leases yet). The old masters' quorum alone
// decides whether the key is held; the new masters are there to keep it.
func (x *txn) repairable(i int, addr string, it *messages.PromiseItem) bool {
	if !x.member.Joint() || it.GetReason() != messages.Reason_REASON_NOT_FOUND || contains(x.member.OldMasters, addr) {
		return false
	}
	k := x.ops[i].Kind
	return k == messages.WriteKind_WRITE_KIND_EXTEND || k == messages.WriteKind_WRITE_KIND_RELEASE
}

// repair reports whether the commit of op i goes to addr as a repair
// (locker's anti-entropy): addr refused because its copy of the key
// differs from what a quorum holds, so it receives the quorum's decision
// (the master applies it only over an older token and no other write).
// A repair counts as a commit only where it counted as a promise
// (repairable).
func (x *txn) repair(i int, addr string, it *messages.PromiseItem) bool {
	if it.GetGranted() || !x.commit[i] {
		return false
	}
	switch it.GetReason() {
	case messages.Reason_REASON_ALREADY_LOCKED, messages.Reason_REASON_VALUE_DIFFERS, messages.Reason_REASON_WRITE_LOCKED:
		// WRITE_LOCKED: the other write holding the key there cannot
		// also have W promises (this one has them), so it is doomed.
		return true
	case messages.Reason_REASON_NOT_FOUND:
		k := x.ops[i].Kind
		return k == messages.WriteKind_WRITE_KIND_EXTEND || k == messages.WriteKind_WRITE_KIND_RELEASE
	case messages.Reason_REASON_CATCHING_UP:
		return true // its snapshot may predate this write
	case messages.Reason_REASON_STALE_EPOCH:
		// Behind: reconcile sent it this configuration first (same
		// ordered channel), so it applies the repair under it.
		return x.promise(addr).GetEpoch() < x.epoch
	}
	return false
}

// voted reports whether addr's answer to op i counted as a promise.
func (x *txn) voted(i int, addr string) bool {
	p := x.promise(addr)
	if p == nil || i >= len(p.GetItems()) {
		return false
	}
	it := p.GetItems()[i]
	return it.GetGranted() || x.repairable(i, addr, it)
}

// commitsNo counts addr as not committing each committed op but those
// in sent.
func (x *txn) commitsNo(addr string, sent []int) {
	for i := range x.ops {
		if x.commit[i] && !slices.Contains(sent, i) {
			x.commits[i].Count(addr, false)
		}
	}
}

// reconcile sends a peer whose epoch differs from this peer's the newer
// configuration: ours if it is behind, or a request for its own.
func (c *Core) reconcile(peer string, epoch uint64) {
	cur := c.member.Load()
	switch {
	case epoch < cur.Epoch:
		c.send(peer, &messages.ConfigCommit{Next: toProto(cur)})
	case epoch > cur.Epoch:
		c.send(peer, &messages.ConfigQuery{})
	}
}

// sendCommit sends addr the commit or abort of each op it promised, and
// the repair of each committed Extend it lacked the key for.
func (c *Core) sendCommit(x *txn, addr string) {
	xp := x.peer(addr)
	p := xp.promise
	cm := &messages.Commit{Txn: x.id, Epoch: x.epoch}
	var sent []int  // the op of each position of cm, when some are acknowledged
	var voted []int // the committed ops whose acknowledgement counts
	acked := false
	for i, it := range p.GetItems() {
		op := x.ops[i]
		repair := x.repair(i, addr, it)
		if !it.GetGranted() && !repair {
			continue
		}
		sent = append(sent, i)
		if x.commit[i] && (it.GetGranted() || x.repairable(i, addr, it)) {
			voted = append(voted, i)
		}
		ci := &messages.CommitItem{Key: op.Key, Kind: op.Kind}
		if !x.commit[i] {
			ci.Abort = true
			cm.Items = append(cm.Items, ci)
			continue
		}
		acked = true
		ci.Repair = repair
		ci.Token = x.token[i]
		ci.LeaseMs = op.LeaseMs
		ci.Value = op.Value
		if op.Kind == messages.WriteKind_WRITE_KIND_UPDATE {
			ci.Value = op.NewValue
		}
		cm.Items = append(cm.Items, ci)
	}
	x.commitsNo(addr, voted) // the committed ops whose commit from addr does not count
	if len(cm.Items) == 0 {
		return
	}
	if acked {
		xp.sent = sent // not nil: acked comes with an op in sent
	}
	c.send(addr, cm)
}

func (c *Core) onCommitted(from string, a *messages.Committed) {
	x := c.txns[a.GetTxn()]
	if x == nil {
		return
	}
	xp := x.peer(from)
	if xp == nil || !xp.waitsAck() || len(a.GetItems()) != len(xp.sent) {
		return
	}
	ops := xp.sent
	xp.acked = true
	for j, it := range a.GetItems() {
		i := ops[j]
		if !x.commit[i] || !x.voted(i, from) {
			continue // an abort, or a repair that does not count
		}
		x.commits[i].Count(from, it.GetOk())
		if !it.GetOk() {
			x.refuse(i, from, it.GetReason())
		}
	}
	c.checkDone(x, c.now())
}

// txnUnreachable counts addr as refusing whatever x still waits for.
func (c *Core) txnUnreachable(x *txn, addr string, now int64) {
	if !c.markUnreachable(x, addr) {
		return
	}
	if !x.decided {
		c.decide(x, now)
		return
	}
	c.checkDone(x, now)
}

// markUnreachable counts addr as refusing whatever x still waits for from
// it, and reports whether addr is one of x's masters.
func (c *Core) markUnreachable(x *txn, addr string) bool {
	xp := x.peer(addr)
	if xp == nil {
		return false
	}
	if !xp.answered {
		xp.answered = true
		for i := range x.ops {
			x.prep[i].Count(addr, false)
			x.refuse(i, addr, messages.Reason_REASON_UNREACHABLE)
		}
		if x.decided {
			x.commitsNo(addr, nil)
		}
	}
	if xp.waitsAck() {
		xp.acked = true
		for _, i := range xp.sent {
			if x.commit[i] && x.voted(i, addr) {
				x.commits[i].Count(addr, false)
				x.refuse(i, addr, messages.Reason_REASON_UNREACHABLE)
			}
		}
	}
	return true
}

// outstanding counts the masters whose answer x still waits for and that
// are not known to be down.
func (c *Core) outstanding(x *txn) int {
	n := 0
	for j, addr := range x.masters {
		if c.down[addr] {
			continue
		}
		if xp := &x.peers[j]; !xp.answered || xp.waitsAck() {
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
	if x.replied {
		c.retire(x)
		return
	}
	if !x.decided || x.awaiting {
		// Awaiting: refused only for a stale epoch, it waits for the
		// newer configuration; retryStale or its deadline (txnTimer)
		// answers it, once. A late answer or report must not fail it.
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
	if x.replied { // not while it waits to start again under a newer configuration (retryStale)
		c.retire(x)
	}
}

// retire forgets x once it has replied and every master has answered
// and acknowledged what it was sent, instead of at its deadline: nothing
// can change x any more (a later message for it is treated as one for a
// transaction that is gone), and a busy coordinator no longer keeps a
// request timeout's worth of finished transactions for the collector.
func (c *Core) retire(x *txn) {
	for j := range x.peers {
		if xp := &x.peers[j]; !xp.answered || xp.waitsAck() {
			return
		}
	}
	delete(c.txns, x.id)
}

func (c *Core) reply(x *txn) {
	if !x.retried && !x.awaiting && x.staleOnly() && c.now() < x.deadline {
		// Some masters are at another configuration epoch and nothing was
		// committed: learn their configuration (reconcile asked for it)
		// and start again under it, once, rather than fail.
		x.awaiting = true
		return
	}
	x.replied = true
	outs := make([]Outcome, len(x.ops))
	for i := range x.ops {
		// The caller owns Reasons: the txn lives on after its answer
		// (grace, retire) and late promises still write its own map.
		o := Outcome{W: x.w, Votes: x.prep[i].Yes(), Phase: x.phase(i), Reasons: maps.Clone(x.reasons[i])}
		if x.commit[i] {
			o.Commits = x.commits[i].Yes()
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
	if x.awaiting && !x.replied {
		x.retried = true // no newer configuration came: fail as it stands
		c.reply(x)
	}
	if !x.replied {
		// Count every silent master before deciding, so that the reply
		// names them all.
		for _, addr := range x.masters {
			c.markUnreachable(x, addr)
		}
		c.decide(x, now)
		c.checkDone(x, now)
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
