package sim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/protoactor-locker/locker/internal/core"
	"github.com/protoactor-locker/locker/internal/linearize"
	"github.com/protoactor-locker/locker/messages"
)

// leaseMargin is the share of a lease a client gives up to clock drift:
// masters and clients each run within 1 % of real time, so a master's
// lease may be 2 % shorter than the client's clock says.
const leaseMargin = 0.03

// longLease is the lease of long keys: longer than any simulated run, so
// that their histories have no expiry and the store model needs no time.
const longLease = time.Hour

type holdState uint8

const (
	idle      holdState = iota
	held                // the client holds a lease (values says with which value)
	releasing           // a Release is in flight
	uncertain           // a Lock or Release had an unknown outcome: the client may hold the key with one of values
)

// holding is what one client believes about one key.
type holding struct {
	state      holdState
	lineage    int      // the id of the Lock this holding comes from
	values     []string // the values the key may hold for this client
	token      uint64   // the token of the last Lock or Update known to have succeeded
	validUntil time.Time
	lockAt     time.Time // client-local time the uncertain Lock was invoked
	lease      time.Duration
	retries    int
}

// client is one simulated user of the lock service, attached to one
// peer: it invokes at most one write at a time and uses the clock of its
// peer's machine.
type client struct {
	s       *Sim
	rng     *rand.Rand // the client's own choices: independent of the order answers arrive in
	id      int
	p       *peer
	busy    bool
	seq     int
	keys    map[string]*holding
	backoff int64 // after a failed write: think this much longer (real ns)
}

func (c *client) schedule() {
	d := c.rng.Int64N(int64(20*time.Millisecond)) + c.backoff
	c.backoff = 0
	c.s.push(&event{at: c.s.now + d, kind: evClient, client: c})
}

func (c *client) valid(h *holding) bool {
	return h.state == held && c.p.clock.Now().Before(h.validUntil)
}

// act chooses and starts the client's next action.
func (c *client) act() {
	s := c.s
	defer c.schedule()
	if c.busy || !c.p.available(s.now) {
		return // calls its peer also before the peer is configured: it must refuse (NotReady)
	}
	key := s.keyList[c.rng.IntN(len(s.keyList))]
	if c.rng.IntN(4) > 0 {
		// Mostly work on a key already held: holders finish and release.
		for _, k := range s.keyList {
			if c.keys[k].state != idle {
				key = k
				break
			}
		}
	}
	h := c.keys[key]
	ks := s.keys[key]
	now := c.p.clock.Now()
	c.seq++
	fresh := fmt.Sprintf("c%d.%d", c.id, c.seq)
	switch h.state {
	case idle:
		lease := longLease
		switch {
		case s.mixed[key] && c.rng.IntN(3) == 0:
			lease = c.drawLongLease()
		case !ks.long:
			lease = time.Duration(50+c.rng.IntN(750)) * time.Millisecond
		}
		c.submit(key, h, core.Op{Kind: messages.WriteKind_WRITE_KIND_LOCK, Key: key, Value: []byte(fresh), LeaseMs: lease.Milliseconds()})
	case held:
		v := h.values[c.rng.IntN(len(h.values))]
		if !c.valid(h) {
			// Past its lease: usually give up, sometimes try anyway, as a
			// holder back from a pause would (the masters must refuse if
			// someone else holds the key now).
			if c.rng.IntN(3) > 0 {
				*h = holding{}
				return
			}
		}
		switch r := c.rng.IntN(100); {
		case r < 30 && c.valid(h):
			// Write to the protected resource; the message may be slow
			// (a pause between the lease check and the write).
			d := c.rng.Int64N(int64(2 * time.Millisecond))
			if c.rng.IntN(20) == 0 {
				d = c.rng.Int64N(int64(2 * time.Second))
			}
			s.res.Operations++
			s.push(&event{at: s.now + d, kind: evResource, client: c, key: key, lineage: h.lineage, token: h.token})
		case r < 55:
			c.submit(key, h, core.Op{Kind: messages.WriteKind_WRITE_KIND_UPDATE, Key: key, Value: []byte(v), NewValue: []byte(fresh)})
		case r < 80:
			lease := longLease
			switch {
			case s.mixed[key] && h.lease > time.Minute:
				// A long lease stays long, and never shorter than what is
				// left of it: Extend counts from now.
				lease = c.maxLease()
			case !ks.long:
				lease = time.Duration(50+c.rng.IntN(750)) * time.Millisecond
				// Never shorten what was granted: Extend counts from now.
				if left := h.validUntil.Sub(now); left > 0 && lease < left {
					lease = left + lease
				}
			}
			c.submit(key, h, core.Op{Kind: messages.WriteKind_WRITE_KIND_EXTEND, Key: key, Value: []byte(v), LeaseMs: lease.Milliseconds()})
		default:
			h.state = releasing // no longer relies on the lease from now on
			c.submit(key, h, core.Op{Kind: messages.WriteKind_WRITE_KIND_RELEASE, Key: key, Value: []byte(v)})
		}
	case uncertain:
		// A lease longer than the run on a mixed key: keep trying to
		// release it (left alone, it would block the key for the rest
		// of the run).
		gaveUp := h.retries > 20 && !(s.mixed[key] && h.lease > time.Minute)
		if len(h.values) == 0 || gaveUp || (!ks.long && now.After(h.lockAt.Add(h.lease*2+time.Second))) {
			*h = holding{} // resolved, or expired everywhere by now
			return
		}
		h.retries++
		v := h.values[c.rng.IntN(len(h.values))]
		c.submit(key, h, core.Op{Kind: messages.WriteKind_WRITE_KIND_RELEASE, Key: key, Value: []byte(v)})
	}
}

// maxLease is the longest lease the peers accept (Core.MaxLease).
func (c *client) maxLease() time.Duration {
	if m := c.s.cfg.Core.MaxLease; m > 0 {
		return m
	}
	return core.DefaultMaxLease
}

// drawLongLease draws the lease of a long Lock of a mixed key: from half
// the maximum lease up to the maximum.
func (c *client) drawLongLease() time.Duration {
	m := c.maxLease()
	return (m/2 + time.Duration(c.rng.Int64N(int64(m/2)+1))).Truncate(time.Millisecond)
}

// submit invokes op on the client's peer and records it.
func (c *client) submit(key string, h *holding, op core.Op) {
	s := c.s
	c.busy = true
	s.res.Operations++
	invokeLocal := c.p.clock.Now()
	rec := s.invoke(c.id, s.keys[key].long, op, s.now)
	p := c.p
	s.note("client %d on %s invokes %v %q %q->%q lease %dms", c.id, p.addr, op.Kind, key, op.Value, op.NewValue, op.LeaseMs)
	reply := s.answerOnce(c.id, op, func(outs []core.Outcome) {
		c.busy = false
		o := outs[0]
		res := outcomeOf(o)
		if res != OK {
			// Back off, as a real client would, rather than keep the
			// contending writes' promises alive.
			if !s.cfg.NoBackoff {
				c.backoff = c.rng.Int64N(int64(200 * time.Millisecond))
			}
		}
		s.res.Outcomes[res.String()]++
		if o.NotReady {
			s.res.Outcomes[notReadyOutcome]++ // also counted as fail
		}
		s.hist.Finish(rec, res, o.Token, s.now)
		s.note("client %d: %v %q answered %v token %d votes %d commits %d reasons %v", c.id, op.Kind, key, res, o.Token, o.Votes, o.Commits, o.Reasons)
		c.answered(key, h, op, o, res, invokeLocal, rec)
	})
	p.await(p.core.Submit([]core.Op{op}), func(a core.Answer) { reply(a.Outcomes) })
	s.flush(p)
}

// Outcome is the outcome class of a write as a client sees it.
type Outcome = linearize.Outcome

// The outcome classes of a write.
const (
	Pending = linearize.Pending // not answered (yet)
	OK      = linearize.OK      // it took effect
	Failed  = linearize.Failed  // it did not take effect: nothing was committed
	Unknown = linearize.Unknown // it failed after commits went out: it may have taken effect
)

func outcomeOf(o core.Outcome) Outcome {
	switch {
	case o.OK:
		return OK
	case o.Phase == core.PhaseCommit:
		return Unknown
	}
	return Failed
}

// answered updates the client's belief after an answer and checks the
// answer against the key's history.
func (c *client) answered(key string, h *holding, op core.Op, o core.Outcome, res Outcome, invokeLocal time.Time, rec *Op) {
	s := c.s
	ks := s.keys[key]
	v := string(op.Value)
	lease := time.Duration(op.LeaseMs) * time.Millisecond
	until := invokeLocal.Add(time.Duration(float64(lease) * (1 - leaseMargin)))
	switch op.Kind {
	case messages.WriteKind_WRITE_KIND_LOCK:
		switch res {
		case OK:
			ks.granted(s, c, rec, o.Token)
			*h = holding{state: held, lineage: rec.ID, values: []string{v}, token: o.Token, validUntil: until, lease: lease}
		case Unknown:
			*h = holding{state: uncertain, lineage: rec.ID, values: []string{v}, lockAt: invokeLocal, lease: lease}
			if s.mixed[key] && lease < time.Minute && c.rng.IntN(2) == 0 {
				// Walk away, as a client that crashed would: whatever the
				// Lock left on the masters ends with its short lease.
				*h = holding{}
			}
		default:
			*h = holding{}
		}
	case messages.WriteKind_WRITE_KIND_UPDATE:
		if res == OK {
			ks.granted(s, c, rec, o.Token)
		}
		if h.state != held || !slices.Contains(h.values, v) {
			return
		}
		switch res {
		case OK:
			h.values, h.token = []string{string(op.NewValue)}, o.Token
		case Unknown:
			h.values = append(slices.DeleteFunc(h.values, func(x string) bool { return x != v }), string(op.NewValue))
		}
	case messages.WriteKind_WRITE_KIND_EXTEND:
		if res == OK && h.state == held {
			h.values = []string{v}
			if until.After(h.validUntil) {
				h.validUntil = until
			}
		}
	case messages.WriteKind_WRITE_KIND_RELEASE:
		switch {
		case res == OK:
			*h = holding{}
			ks.released[v] = true
		case h.state == releasing && res == Failed:
			h.state = held // nothing changed: the lease stands
		case h.state == releasing:
			h.state = uncertain
			h.lockAt, h.lease = invokeLocal, h.validUntil.Sub(invokeLocal)
		case h.state == uncertain && res == Failed && notHeld(o):
			h.values = slices.DeleteFunc(h.values, func(x string) bool { return x == v })
		}
	}
}

// notHeld reports whether a failed write was refused by a write quorum
// of masters because the key is absent or holds another value.
func notHeld(o core.Outcome) bool {
	n := 0
	for _, r := range o.Reasons {
		if r == messages.Reason_REASON_NOT_FOUND || r == messages.Reason_REASON_VALUE_DIFFERS {
			n++
		}
	}
	return o.Votes == 0 && n >= o.W
}
