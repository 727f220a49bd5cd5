package core

import (
	"bytes"
	"sync"
	"time"
)

// entry is one key as a peer holds it. A released key stays as a
// tombstone (deleted) until its old deadline, so that a late replication
// of the released value cannot bring it back.
type entry struct {
	value    []byte
	deadline int64 // monotonic nanoseconds (Clock base), exclusive
	token    uint64
	deleted  bool
	// shadow is the deadline of the tombstone this live state was
	// written over (the latest, when it replaced several), and
	// shadowToken its token (the largest): the tombstone stays under the
	// state. When this lease runs out before it, the entry becomes that
	// tombstone again instead of going, so that a stale copy of the
	// released lease (pushed or snapshotted by a master that missed its
	// Release) cannot come back once the newer state ended (sim seed
	// 4396); nor does a copy of it land under the live state, or lend it
	// its deadline. Copies carry it (Entry.shadow_ms).
	//
	// Only a tombstone makes a shadow, never a live state replaced: a
	// replica mirrors its masters' pushes, and the state a push replaces
	// there may be a lease a quorum holds (the residue of its holder's
	// Update on one master replaced it); a tombstone with its token would
	// hide it from every later copy (TestShadowOfAMirroredLeaseDoesNotHideIt).
	// The tombstone's token, not this lease's: this same lease may live
	// on, extended through another master, where the tombstone is copied.
	shadow      int64
	shadowToken uint64
	// On a replica: the masters (by slot, see follow.go) that pushed or
	// snapshotted this lease, or this tombstone, with this token and have
	// not shown since that they dropped it (vouch), and those that
	// confirmed it during the snapshot being taken from them (seen). Of
	// a tombstone, hid: the masters that sent the live lease of its very
	// token (which it replaced, or skipped since), who may hold it still.
	// Only the peer reads and writes them, without mu: readers never
	// touch them.
	vouch, seen, hid uint32
	// Of a tombstone on a replica, vend: when the tombstones its
	// vouchers announced end there, the latest, with a drift margin (0
	// when none did). A master's tombstone ends without a push, so past
	// vend none of them holds it any more (see vouchEnded).
	vend int64
}

// waiter is one blocked WaitFor or WaitForRelease call.
type waiter struct {
	// ch is closed when the waited-for change happened. A channel, not
	// an answer in the Core's output: the waiting caller is a goroutine
	// of the user's that selects on it together with its context, and
	// the Store has no owner loop to hand it on. Closing never blocks
	// the peer and wakes every waiter of a key at once.
	ch    chan struct{}
	value []byte // the value that arrived (WaitFor); written before ch is closed
}

// waitLists are the waiters of one key.
type waitLists struct {
	present  []*waiter
	released []*waiter
}

// Store is a peer's local table of leases. The peer (one goroutine) is
// its only writer; DirtyRead, WaitFor and WaitForRelease read it from any
// goroutine.
type Store struct {
	now func() int64 // monotonic nanoseconds

	// OnChange, when set, is told of every change to a key, on the
	// writer's goroutine, after the change is visible to readers. It must
	// not block and must not call back into the Store's writer.
	OnChange func(Change)

	// mu guards entries, waits and live: writes come from the peer's
	// goroutine only, reads from any caller of DirtyRead, which must stay
	// a few tens of nanoseconds, hence a read-write lock rather than a
	// round trip through the actor.
	mu      sync.RWMutex
	entries map[string]*entry
	waits   map[string]*waitLists
	live    int // entries that are not tombstones
	waiting int // registered waiters
}

// ChangeKind says how a key changed.
type ChangeKind uint8

// The kinds of change.
const (
	Written  ChangeKind = iota + 1 // locked, updated, extended or replicated
	Released                       // released by its holder
	Expired                        // its lease ran out here
)

// Change is one change of a key.
type Change struct {
	Kind  ChangeKind
	Key   string
	Value []byte // the new value (Written) or the last one (Released, Expired)
	Token uint64
	// New is true for a Written key that was not held with this value
	// before (a lock, an update, a first replication), false for a
	// renewal of the same value.
	New bool
}

func (s *Store) notify(ch Change) {
	if s.OnChange != nil {
		s.OnChange(ch)
	}
}

// NewStore returns an empty store that reads time from now.
func NewStore(now func() int64) *Store {
	return &Store{now: now, entries: map[string]*entry{}, waits: map[string]*waitLists{}}
}

// Read returns the value of key if it is held and its lease has not run
// out. The returned slice must not be modified.
func (s *Store) Read(key string) ([]byte, bool) {
	now := s.now()
	s.mu.RLock()
	e := s.entries[key]
	if e == nil || e.deleted || e.deadline <= now {
		s.mu.RUnlock()
		return nil, false
	}
	v := e.value
	s.mu.RUnlock()
	return v, true
}

// Counts returns how many live leases and waiters the store holds.
func (s *Store) Counts() (leases, waiters int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.live, s.waiting
}

// WaitPresent returns the value of key if it is held; otherwise it
// registers a waiter that is woken when the key is written. Checking and
// registering happen under one lock, so no write slips between them.
func (s *Store) WaitPresent(key string) ([]byte, *Waiter) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.entries[key]; e != nil && !e.deleted && e.deadline > now {
		return e.value, nil
	}
	w := &waiter{ch: make(chan struct{})}
	l := s.lists(key)
	l.present = append(l.present, w)
	s.waiting++
	return nil, &Waiter{s: s, key: key, w: w}
}

// WaitAbsent registers a waiter that is woken when key is released or
// expires. It returns nil when the key is not held now.
func (s *Store) WaitAbsent(key string) *Waiter {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.entries[key]; e == nil || e.deleted || e.deadline <= now {
		return nil
	}
	w := &waiter{ch: make(chan struct{})}
	l := s.lists(key)
	l.released = append(l.released, w)
	s.waiting++
	return &Waiter{s: s, key: key, w: w}
}

// Waiter is a registered wait; Done is closed when it is satisfied.
type Waiter struct {
	s   *Store
	key string
	w   *waiter
}

// Done is closed when the awaited change happened.
func (w *Waiter) Done() <-chan struct{} { return w.w.ch }

// Value is the value that arrived; valid after Done is closed.
func (w *Waiter) Value() []byte { return w.w.value }

// Cancel unregisters the waiter if it is still waiting.
func (w *Waiter) Cancel() {
	s := w.s
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.waits[w.key]
	if l == nil {
		return
	}
	if i := indexOf(l.present, w.w); i >= 0 {
		l.present = append(l.present[:i], l.present[i+1:]...)
		s.waiting--
	} else if i := indexOf(l.released, w.w); i >= 0 {
		l.released = append(l.released[:i], l.released[i+1:]...)
		s.waiting--
	}
	if len(l.present) == 0 && len(l.released) == 0 {
		delete(s.waits, w.key)
	}
}

func indexOf(ws []*waiter, w *waiter) int {
	for i, x := range ws {
		if x == w {
			return i
		}
	}
	return -1
}

func (s *Store) lists(key string) *waitLists {
	l := s.waits[key]
	if l == nil {
		l = &waitLists{}
		s.waits[key] = l
	}
	return l
}

// Lease is what a store keeps for one key, for checkers.
type Lease struct {
	Value    []byte
	Token    uint64
	Left     time.Duration // until the deadline (<= 0: past it)
	Released bool          // a tombstone
}

// Lookup returns what the store keeps for key, tombstones and entries
// past their deadline included.
func (s *Store) Lookup(key string) (Lease, bool) {
	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := s.entries[key]
	if e == nil {
		return Lease{}, false
	}
	return Lease{Value: e.value, Token: e.token, Left: time.Duration(e.deadline - now), Released: e.deleted}, true
}

// under returns the tombstone e keeps under it (see entry.shadow), if it
// lasts past now: its deadline and token, or zeros.
func (e *entry) under(now int64) (int64, uint64) {
	if e == nil || e.deleted || e.shadow <= now {
		return 0, 0
	}
	return e.shadow, e.shadowToken
}

// get returns the live entry of key at now (nil when absent, released
// or expired). Only the peer calls it.
func (s *Store) get(key string, now int64) *entry {
	e := s.entries[key]
	if e == nil || e.deleted || e.deadline <= now {
		return nil
	}
	return e
}

// raw returns what the store keeps for key, tombstones and expired
// entries included. Only the peer calls it.
func (s *Store) raw(key string) *entry { return s.entries[key] }

// put stores a live value and wakes the key's WaitFor callers.
func (s *Store) put(key string, value []byte, deadline int64, token uint64) {
	now := s.now()
	s.mu.Lock()
	e := s.entries[key]
	fresh := e == nil || e.deleted || e.deadline <= now || !sameValue(e.value, value)
	var vouch, seen uint32
	var shadow int64
	var shadowToken uint64
	if e == nil {
		e = &entry{}
		s.entries[key] = e
		s.live++
	} else {
		shadow, shadowToken = e.shadow, e.shadowToken // what a live state was written over stays under the new one
		if e.deleted {
			s.live++
			// Written over a tombstone: it stays under the new state for
			// as long as a stale copy of the released lease may live.
			shadow, shadowToken = max(shadow, e.deadline), max(shadowToken, e.token)
		} else if e.token == token {
			vouch, seen = e.vouch, e.seen // the same lease, renewed: who vouched for it still does
		}
	}
	if shadow <= now {
		shadow, shadowToken = 0, 0
	}
	*e = entry{value: value, deadline: deadline, token: token, vouch: vouch, seen: seen, shadow: shadow, shadowToken: shadowToken}
	if l := s.waits[key]; l != nil && len(l.present) > 0 {
		for _, w := range l.present {
			w.value = value
			close(w.ch)
		}
		s.waiting -= len(l.present)
		l.present = nil
		if len(l.released) == 0 {
			delete(s.waits, key)
		}
	}
	s.mu.Unlock()
	s.notify(Change{Kind: Written, Key: key, Value: value, Token: token, New: fresh})
}

// setValue replaces the value of a live entry, keeping its lease.
func (s *Store) setValue(key string, value []byte, token uint64) {
	s.mu.Lock()
	e := s.entries[key]
	ok := e != nil && !e.deleted
	if ok {
		e.value = value
		e.token = token
	}
	s.mu.Unlock()
	if ok {
		s.notify(Change{Kind: Written, Key: key, Value: value, Token: token, New: true})
	}
}

// tombstone marks key released with token, keeping the tombstone until
// the old deadline, and wakes the key's WaitForRelease callers.
func (s *Store) tombstone(key string, token uint64) {
	s.mu.Lock()
	var old []byte
	wasLive := false
	if e := s.entries[key]; e != nil {
		if !e.deleted {
			s.live--
			wasLive = true
		}
		old = e.value
		e.deleted = true
		e.value = nil
		if token > e.token {
			e.token = token
		}
		// Kept as long as the tombstone it was written over, if later.
		if e.shadow > e.deadline {
			e.deadline = e.shadow
			e.token = max(e.token, e.shadowToken)
		}
		e.shadow, e.shadowToken = 0, 0
	}
	s.wakeReleased(key)
	s.mu.Unlock()
	if wasLive {
		s.notify(Change{Kind: Released, Key: key, Value: old, Token: token})
	}
}

// keepTombstone makes the tombstone of key last until deadline at least,
// and makes one if key is absent. A live entry stays, with the tombstone
// under it (shadow) if it outlasts the entry. It reports
// whether the tombstone's deadline was set (to schedule expiry).
func (s *Store) keepTombstone(key string, token uint64, deadline int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[key]
	switch {
	case e == nil:
		s.entries[key] = &entry{deadline: deadline, token: token, deleted: true}
		return true
	case !e.deleted:
		if deadline > e.deadline {
			e.shadow = max(e.shadow, deadline)
			e.shadowToken = max(e.shadowToken, token)
		}
		return false
	}
	e.token = max(e.token, token)
	if e.deadline >= deadline {
		return false
	}
	e.deadline = deadline
	return true
}

// forget removes the tombstone of key, leaving the key absent: a
// replica learnt that no master holds it (see settle). It reports
// whether there was one.
func (s *Store) forget(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[key]
	if e == nil || !e.deleted {
		return false
	}
	delete(s.entries, key)
	return true
}

// expire removes key if its deadline is due at now, and wakes the key's
// WaitForRelease callers. A live entry written over a tombstone that
// outlasts it (shadow) becomes that tombstone again instead; the caller
// schedules its expiry. It reports whether a live entry expired.
func (s *Store) expire(key string, now int64) bool {
	s.mu.Lock()
	e := s.entries[key]
	if e == nil || e.deadline > now {
		s.mu.Unlock()
		return false
	}
	if e.deleted {
		delete(s.entries, key)
		s.mu.Unlock()
		return false
	}
	value, token := e.value, e.token
	if e.shadow > now {
		*e = entry{deadline: e.shadow, token: e.shadowToken, deleted: true}
	} else {
		delete(s.entries, key)
	}
	s.live--
	s.wakeReleased(key)
	s.mu.Unlock()
	s.notify(Change{Kind: Expired, Key: key, Value: value, Token: token})
	return true
}

// drop removes the live entry of key, leaving no tombstone, and wakes
// the key's WaitForRelease callers: a replica learnt that the masters
// no longer hold it (see follow.go). It reports whether it dropped one.
func (s *Store) drop(key string) bool {
	s.mu.Lock()
	e := s.entries[key]
	if e == nil || e.deleted {
		s.mu.Unlock()
		return false
	}
	delete(s.entries, key)
	s.live--
	s.wakeReleased(key)
	s.mu.Unlock()
	s.notify(Change{Kind: Released, Key: key, Value: e.value, Token: e.token})
	return true
}

// wakeReleased wakes WaitForRelease callers of key; s.mu is held.
func (s *Store) wakeReleased(key string) {
	l := s.waits[key]
	if l == nil || len(l.released) == 0 {
		return
	}
	for _, w := range l.released {
		close(w.ch)
	}
	s.waiting -= len(l.released)
	l.released = nil
	if len(l.present) == 0 {
		delete(s.waits, key)
	}
}

// wakeAll wakes every waiter (used when the peer stops).
func (s *Store) wakeAll() {
	s.mu.Lock()
	for k, l := range s.waits {
		for _, w := range l.present {
			close(w.ch)
		}
		for _, w := range l.released {
			close(w.ch)
		}
		delete(s.waits, k)
	}
	s.waiting = 0
	s.mu.Unlock()
}

// sameValue compares stored and expected values.
func sameValue(a, b []byte) bool { return bytes.Equal(a, b) }
