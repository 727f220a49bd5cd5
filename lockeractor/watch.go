package lockeractor

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/protoactor-locker/locker/internal/core"
)

// ChangeKind says how a key changed on this peer.
type ChangeKind uint8

// The kinds of change a watcher sees.
const (
	// KeyWritten: the key was locked, updated, extended or replicated here.
	KeyWritten ChangeKind = ChangeKind(core.Written)
	// KeyReleased: its holder released the key.
	KeyReleased ChangeKind = ChangeKind(core.Released)
	// KeyExpired: the key's lease ran out here.
	KeyExpired ChangeKind = ChangeKind(core.Expired)
)

// String names the kind.
func (k ChangeKind) String() string {
	switch k {
	case KeyWritten:
		return "written"
	case KeyReleased:
		return "released"
	case KeyExpired:
		return "expired"
	}
	return "unknown"
}

// Change is one change of a key as this peer saw it.
type Change struct {
	Kind  ChangeKind
	Key   string
	Value []byte // the new value, or the last one for released and expired keys; do not modify
	Token uint64
	// New is true when a written key was not held with this value before
	// (a lock, an update, a first replication); false for a lease renewal.
	New bool
}

type watcher struct {
	prefix string
	fn     func(Change)
}

// watchers is the copy-on-write list of a Locker's watchers.
type watchers struct {
	mu   sync.Mutex // serialises writers of list
	list atomic.Pointer[[]*watcher]
}

func (ws *watchers) notify(ch core.Change) {
	p := ws.list.Load()
	if p == nil {
		return
	}
	for _, w := range *p {
		if strings.HasPrefix(ch.Key, w.prefix) {
			w.fn(Change{Kind: ChangeKind(ch.Kind), Key: ch.Key, Value: ch.Value, Token: ch.Token, New: ch.New})
		}
	}
}

// Watch calls fn for every change of a key that starts with prefix on
// this peer (writes, releases, expiries), until the returned cancel is
// called. fn runs on the peer's goroutine: it must return quickly and
// must not call the Locker's blocking methods.
func (l *Locker) Watch(prefix string, fn func(Change)) (cancel func()) {
	if fn == nil {
		return func() {}
	}
	w := &watcher{prefix: prefix, fn: fn}
	ws := &l.watchers
	ws.mu.Lock()
	var next []*watcher
	if p := ws.list.Load(); p != nil {
		next = append(next, *p...)
	}
	next = append(next, w)
	ws.list.Store(&next)
	ws.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			ws.mu.Lock()
			defer ws.mu.Unlock()
			var rest []*watcher
			for _, x := range *ws.list.Load() {
				if x != w {
					rest = append(rest, x)
				}
			}
			ws.list.Store(&rest)
		})
	}
}
