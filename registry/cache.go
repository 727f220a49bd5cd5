package registry

import (
	"bytes"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/asynkron/protoactor-go/actor"
)

// entry is what WhereIs knows of a name: the store value it last saw
// and the PID decoded from it. An entry is in the cache while this
// node's store holds its value (the store's watch adds and drops it) or
// while this node's Registry holds the name. key, value and pid never
// change; a new value gets a new entry.
type entry struct {
	key   string // the store key
	value []byte
	pid   *actor.PID
	// ownedUntil is set while this node's Registry holds the name: the
	// end of the lease it last obtained (nanoseconds on the Registry's
	// monotonic clock), 0 otherwise. Until then, release and expiry
	// events of an earlier write of the same value (late replication, a
	// local apply after the quorum answered) do not drop the entry.
	ownedUntil atomic.Int64
}

// matches reports whether v is the entry's value, first by identity
// (the store hands out the slice it was given), then by content.
func (e *entry) matches(v []byte) bool {
	if len(v) != len(e.value) {
		return false
	}
	if len(v) > 0 && unsafe.SliceData(v) == unsafe.SliceData(e.value) {
		return true
	}
	return bytes.Equal(v, e.value)
}

const cacheShards = 64

// cache maps names to entries. It is sharded so that concurrent WhereIs
// calls on many cores do not contend on one lock.
type cache struct {
	seed   maphash.Seed
	shards [cacheShards]shard
}

type shard struct {
	// mu guards m: WhereIs reads it on every call from any goroutine;
	// the store's watch callback and Register write it.
	mu sync.RWMutex
	m  map[string]*entry
	_  [40]byte // keep shards on separate cache lines
}

func newCache() *cache {
	c := &cache{seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].m = map[string]*entry{}
	}
	return c
}

func (c *cache) shard(name string) *shard {
	return &c.shards[maphash.String(c.seed, name)%cacheShards]
}

func (c *cache) get(name string) *entry {
	s := c.shard(name)
	s.mu.RLock()
	e := s.m[name]
	s.mu.RUnlock()
	return e
}

// put stores an entry for value unless one with the same value is there;
// it returns the entry in place.
func (c *cache) put(name, key string, value []byte, pid *actor.PID) *entry {
	s := c.shard(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.m[name]; e != nil && e.matches(value) {
		return e
	}
	e := &entry{key: key, value: value, pid: pid}
	s.m[name] = e
	return e
}

// drop removes name's entry if it holds value and is not owned here.
func (c *cache) drop(name string, value []byte, now int64) {
	s := c.shard(name)
	s.mu.Lock()
	if e := s.m[name]; e != nil && e.matches(value) && e.ownedUntil.Load() <= now {
		delete(s.m, name)
	}
	s.mu.Unlock()
}

func (c *cache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
