package core

// RequestID is the handle of a request a Core answers later. Submit,
// SetNodes, SetW, ReadMaster and Reconfigure each return a new one, and
// the Answer to the request carries it. A Core numbers its requests from
// 1; 0 is no request. Handles of two Cores (a peer before and after a
// restart) are unrelated.
type RequestID uint64

// RequestKind says which call a request came from, and so which field
// of its Answer holds the result.
type RequestKind uint8

// The kinds of request.
const (
	KindWrite    RequestKind = iota + 1 // Submit: Answer.Outcomes
	KindAdmin                           // SetNodes or SetW: Answer.Admin
	KindRead                            // ReadMaster: Answer.Read
	KindReconfig                        // Reconfigure: Answer.Reconfig
)

// String returns the name of the call the request came from.
func (k RequestKind) String() string {
	switch k {
	case KindWrite:
		return "write"
	case KindAdmin:
		return "admin"
	case KindRead:
		return "read"
	case KindReconfig:
		return "reconfigure"
	}
	return "unknown"
}

// Answer is the result of one finished request. Only the field of its
// Kind is set.
type Answer struct {
	ID       RequestID
	Kind     RequestKind
	Outcomes []Outcome              // KindWrite: one per op, in the order of the ops
	Admin    map[string]AdminResult // KindAdmin: each peer's answer, by address
	Read     ReadResult             // KindRead
	Reconfig ReconfigResult         // KindReconfig
}

// Output is what a Core produced since its owner last took it: the
// messages to send to other peers and the answers to the requests that
// finished, each list in the order it was produced. Nothing in it is
// used by the Core again (unless its owner hands it back with Recycle):
// the owner may keep, change or hand on every slice and map.
type Output struct {
	Messages []Envelope
	Answers  []Answer
}

// TakeOutput returns what the Core produced since the last call and
// forgets it. The owner calls it after each input (Step, Tick,
// Unreachable, PushNow, Close and the calls that start a request),
// sends the messages and hands each answer to whoever waits for its
// request. It works on a closed Core too: Close answers every request
// still pending.
func (c *Core) TakeOutput() Output {
	o := Output{Messages: c.out, Answers: c.answers}
	c.out, c.answers = nil, nil
	return o
}

// Recycle hands back an Output its owner has finished with: the Core
// reuses the arrays of its two slices for later output instead of
// allocating new ones at nearly every step. After the call the owner
// must not use o.Messages or o.Answers (nor slices of them); what their
// elements referred to (messages, outcomes, maps) is the owner's to
// keep. Calling it is optional, and an Output may be recycled at most
// once.
func (c *Core) Recycle(o Output) {
	// No longer keep the messages and answers alive, the whole array
	// (the owner may have shortened the slices).
	clear(o.Messages[:cap(o.Messages)])
	clear(o.Answers[:cap(o.Answers)])
	if c.out == nil && cap(o.Messages) > 0 {
		c.out = o.Messages[:0]
	}
	if c.answers == nil && cap(o.Answers) > 0 {
		c.answers = o.Answers[:0]
	}
}

// newRequestID returns a new request handle. Handles have their own
// counter: drawing one changes no transaction id.
func (c *Core) newRequestID() RequestID {
	c.lastRequest++
	return c.lastRequest
}

// finish records the answer to a request, after those finished before.
func (c *Core) finish(a Answer) { c.answers = append(c.answers, a) }

func (c *Core) answerWrite(id RequestID, outs []Outcome) {
	c.finish(Answer{ID: id, Kind: KindWrite, Outcomes: outs})
}

func (c *Core) answerAdmin(id RequestID, res map[string]AdminResult) {
	c.finish(Answer{ID: id, Kind: KindAdmin, Admin: res})
}

func (c *Core) answerRead(id RequestID, r ReadResult) {
	c.finish(Answer{ID: id, Kind: KindRead, Read: r})
}

func (c *Core) answerReconfig(id RequestID, r ReconfigResult) {
	c.finish(Answer{ID: id, Kind: KindReconfig, Reconfig: r})
}
