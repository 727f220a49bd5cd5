package core

// timerHeap orders timers by due time. Entries are never removed early:
// a timer whose reason is gone is ignored when it comes due.
//
// It is container/heap's algorithm written out for timer values, so that
// a push or pop neither boxes a timer into an interface nor calls through
// one; the order it pops equal times in is container/heap's.
type timerHeap []timer

func (h *timerHeap) push(t timer) {
	*h = append(*h, t)
	h.up(len(*h) - 1)
}

func (h *timerHeap) pop() timer {
	old := *h
	n := len(old) - 1
	old[0], old[n] = old[n], old[0]
	h.down(0, n)
	t := old[n]
	old[n] = timer{} // drop the key string for the collector
	*h = old[:n]
	return t
}

func (h timerHeap) up(j int) {
	for {
		i := (j - 1) / 2 // parent
		if i == j || h[j].at >= h[i].at {
			break
		}
		h[i], h[j] = h[j], h[i]
		j = i
	}
}

func (h timerHeap) down(i0, n int) {
	i := i0
	for {
		j1 := 2*i + 1
		if j1 >= n || j1 < 0 { // j1 < 0 after int overflow
			break
		}
		j := j1 // left child
		if j2 := j1 + 1; j2 < n && h[j2].at < h[j1].at {
			j = j2 // right child
		}
		if h[j].at >= h[i].at {
			break
		}
		h[i], h[j] = h[j], h[i]
		i = j
	}
}

// dueKey names the timer of one key's lease or write lock.
type dueKey struct {
	kind timerKind
	key  string
}

// scheduleKey makes sure a timer of kind (timerLease or timerLock) for
// key comes due at or before at. A key keeps at most one such timer in
// the heap: a later deadline (a renewed lease, a new promise) leaves the
// pending timer alone, and Tick schedules the key again when that timer
// finds the deadline moved on. Without this, every lock and promise left
// a timer behind until its old deadline, and a busy peer's heap grew
// with the write rate times the lease.
func (c *Core) scheduleKey(kind timerKind, key string, at int64) {
	k := dueKey{kind, key}
	if due, ok := c.due[k]; ok && due <= at {
		return
	}
	if c.due == nil {
		c.due = map[dueKey]int64{}
	}
	c.due[k] = at
	c.schedule(timer{at: at, kind: kind, key: key})
}

// fired forgets t as its key's pending timer, if it is that timer.
func (c *Core) fired(t timer) {
	k := dueKey{t.kind, t.key}
	if due, ok := c.due[k]; ok && due == t.at {
		delete(c.due, k)
	}
}
