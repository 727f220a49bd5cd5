package core

import (
	"maps"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/protoactor-locker/locker/messages"
)

// Admin changes (SetNodes, SetW) and master reads (ReadMaster): the
// peer that asks, and every peer's answer.

// request is an admin change or a master read this peer waits answers
// for, or a query of configurations (then).
type request struct {
	id       uint64
	deadline int64
	pending  map[string]bool
	results  map[string]AdminResult
	kind     RequestKind // KindAdmin or KindRead; 0 for a query of configurations
	handle   RequestID   // the call it answers (KindAdmin, KindRead)
	master   string
	replied  bool
	// heard and then: a query of configurations (see queryConfigs):
	// each peer's epoch as it answered, and what to do once every peer
	// answered or the deadline passed.
	heard map[string]uint64
	then  func(heard map[string]uint64)
}

func (r *request) waiting(addr string) bool { return r.pending[addr] }

// answer records addr's reply (nil: unreachable) and replies when complete.
func (r *request) answer(c *Core, addr string, msg any) {
	if !r.pending[addr] {
		return
	}
	delete(r.pending, addr)
	if r.then != nil {
		r.heardFrom(c, addr, msg)
		return
	}
	switch m := msg.(type) {
	case *messages.AdminReply:
		r.results[addr] = AdminResult{Reason: m.GetReason(), Message: m.GetMessage()}
	case *messages.ReadReply:
		r.replied = true
		delete(c.reqs, r.id)
		c.answerRead(r.handle, ReadResult{Master: addr, Found: m.GetFound(), Value: m.GetValue(), Token: m.GetToken()})
		return
	default:
		if r.kind == KindRead {
			r.replied = true
			delete(c.reqs, r.id)
			c.answerRead(r.handle, ReadResult{Master: addr, Failure: messages.Reason_REASON_UNREACHABLE})
			return
		}
		r.results[addr] = AdminResult{Reason: messages.Reason_REASON_UNREACHABLE, Message: "no answer"}
	}
	if len(r.pending) == 0 {
		r.replied = true
		delete(c.reqs, r.id)
		c.answerAdmin(r.handle, r.results)
	}
}

// stop answers r as stopped (Close).
func (r *request) stop(c *Core) {
	if r.replied {
		return
	}
	r.replied = true
	if r.then != nil {
		r.then(r.heard) // the silent peers count as not answering
		return
	}
	if r.kind == KindRead {
		c.answerRead(r.handle, ReadResult{Stopped: true, Failure: messages.Reason_REASON_UNREACHABLE})
		return
	}
	for addr := range r.pending {
		r.results[addr] = AdminResult{Reason: messages.Reason_REASON_UNREACHABLE, Message: "peer stopped"}
	}
	c.answerAdmin(r.handle, r.results)
}

func (c *Core) requestDeadline(r *request) {
	for _, addr := range slices.Sorted(maps.Keys(r.pending)) {
		r.answer(c, addr, nil)
	}
}

// SetNodes asks every peer in cluster to make masters and replicas its
// configuration, under an epoch one higher than this peer's. Each
// peer's answer comes in an Answer of KindAdmin with the returned
// handle. A peer with no configuration asks the others for theirs first
// (see firstSetNodes).
func (c *Core) SetNodes(cluster, masters, replicas []string) RequestID {
	id := c.newRequestID()
	if c.member.Load().Epoch == 0 && !c.cfg.Standalone && !c.closed {
		c.firstSetNodes(id, cluster, masters, replicas)
		return id
	}
	c.setNodes(id, cluster, masters, replicas)
	return id
}

// setNodes sends SetNodes under this peer's epoch plus one, for the
// call handle.
func (c *Core) setNodes(handle RequestID, cluster, masters, replicas []string) {
	epoch := c.member.Load().Epoch + 1
	c.admin(handle, cluster, func(id uint64) proto.Message {
		return &messages.SetNodes{Request: id, Epoch: epoch, Masters: masters, Replicas: replicas}
	})
}

// SetW asks every peer in cluster to make w its write quorum. Each
// peer's answer comes in an Answer of KindAdmin with the returned
// handle.
func (c *Core) SetW(cluster []string, w int) RequestID {
	handle := c.newRequestID()
	c.admin(handle, cluster, func(id uint64) proto.Message {
		return &messages.SetW{Request: id, W: int32(w)}
	})
	return handle
}

func (c *Core) admin(handle RequestID, cluster []string, build func(id uint64) proto.Message) {
	if c.closed {
		res := map[string]AdminResult{}
		for _, a := range cluster {
			res[a] = AdminResult{Reason: messages.Reason_REASON_UNREACHABLE, Message: "peer stopped"}
		}
		c.answerAdmin(handle, res)
		return
	}
	r := &request{id: c.id(), pending: map[string]bool{}, results: map[string]AdminResult{}, kind: KindAdmin, handle: handle}
	if !c.ask(r, cluster, build(r.id)) {
		c.answerAdmin(handle, r.results)
	}
}

// ask sends msg to every peer of to, and keeps r waiting for their
// answers until a request timeout from now. It returns false, sending
// nothing, when to is empty.
func (c *Core) ask(r *request, to []string, msg proto.Message) bool {
	r.deadline = c.now() + int64(c.cfg.RequestTimeout)
	for _, a := range to {
		r.pending[a] = true
	}
	if len(r.pending) == 0 {
		return false
	}
	c.reqs[r.id] = r
	c.schedule(timer{at: r.deadline, kind: timerRequest, id: r.id})
	for _, a := range slices.Sorted(maps.Keys(r.pending)) {
		c.send(a, msg)
	}
	c.drain()
	return true
}

// ReadMaster reads key on a master: this peer if it is one, else the
// masters in turn, one per call. The result comes in an Answer of
// KindRead with the returned handle.
func (c *Core) ReadMaster(key string) RequestID {
	handle := c.newRequestID()
	if c.closed {
		c.answerRead(handle, ReadResult{Stopped: true, Failure: messages.Reason_REASON_UNREACHABLE})
		return handle
	}
	m := c.member.Load()
	master := c.cfg.Self
	if !m.IsMaster(master) && len(m.Masters) > 0 {
		master = m.Masters[int(c.nextID%uint64(len(m.Masters)))]
	}
	r := &request{id: c.id(), pending: map[string]bool{master: true}, kind: KindRead, handle: handle, master: master}
	r.deadline = c.now() + int64(c.cfg.RequestTimeout)
	c.reqs[r.id] = r
	c.schedule(timer{at: r.deadline, kind: timerRequest, id: r.id})
	c.send(master, &messages.Read{Request: r.id, Key: key})
	c.drain()
	return handle
}

func (c *Core) onAdminReply(from string, a *messages.AdminReply) {
	if r := c.reqs[a.GetRequest()]; r != nil && r.kind == KindAdmin {
		r.answer(c, from, a)
		return
	}
	c.onReconfAck(from, a)
}

func (c *Core) onReadReply(from string, a *messages.ReadReply) {
	if r := c.reqs[a.GetRequest()]; r != nil && r.kind == KindRead {
		r.answer(c, from, a)
	}
}

func (c *Core) onSetNodes(from string, s *messages.SetNodes) {
	cur := c.member.Load()
	masters, replicas := SortedSet(s.GetMasters()), SortedSet(s.GetReplicas())
	reply := &messages.AdminReply{Request: s.GetRequest()}
	if msg := CheckNodes(masters, replicas, cur.W); msg != "" {
		reply.Reason, reply.Message = messages.Reason_REASON_INVALID_ARGUMENT, msg
	} else {
		epoch := cur.Epoch
		if s.GetEpoch() > epoch {
			epoch = s.GetEpoch()
		}
		// Through adopt even at the same epoch: a fresh peer made a master
		// catches up first, and a change of masters drops older promises.
		// From epoch 0 to 1 it counts as a new cluster's first
		// configuration: SetNodes is unsafe, and run again from a
		// restarted peer it starts the peers it reaches over (see adopt).
		first := cur.Epoch == 0 && epoch == 1
		c.adopt(&Membership{Epoch: epoch, Masters: masters, Replicas: replicas, W: c.firstW(cur.W, masters, first)}, first)
	}
	reply.Configuration = c.configuration()
	c.send(from, reply)
}

func (c *Core) onSetW(from string, s *messages.SetW) {
	cur := c.member.Load()
	reply := &messages.AdminReply{Request: s.GetRequest()}
	if msg := CheckW(int(s.GetW()), len(cur.Masters)); msg != "" {
		reply.Reason, reply.Message = messages.Reason_REASON_INVALID_ARGUMENT, msg
	} else {
		c.member.Store(&Membership{Epoch: cur.Epoch, Masters: cur.Masters, Replicas: cur.Replicas, W: int(s.GetW())})
	}
	reply.Configuration = c.configuration()
	c.send(from, reply)
}

func (c *Core) configuration() *messages.Configuration {
	m := c.member.Load()
	return &messages.Configuration{Epoch: m.Epoch, Masters: m.Masters, Replicas: m.Replicas, W: int32(m.W)}
}

func (c *Core) onRead(from string, r *messages.Read) {
	reply := &messages.ReadReply{Request: r.GetRequest()}
	if e := c.store.get(r.GetKey(), c.now()); e != nil {
		reply.Found, reply.Value, reply.Token = true, e.value, e.token
	}
	c.send(from, reply)
}
