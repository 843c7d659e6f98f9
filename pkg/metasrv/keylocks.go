package metasrv

import (
	"hash/maphash"
	"slices"
	"sync"
)

const lockStripes = 256

// keyLocks orders the leader's writes per key so the cache is written through
// in the order PostgreSQL committed: two writes of one key hold the same stripe
// from before their statement until after their cache update. Writes of
// unrelated keys run in parallel. A range delete or a cache reload takes every
// key at once.
type keyLocks struct {
	seed    maphash.Seed
	all     sync.RWMutex
	stripes [lockStripes]sync.Mutex
}

func newKeyLocks() *keyLocks { return &keyLocks{seed: maphash.MakeSeed()} }

// heldLocks is what lock or lockAll took; unlock releases it. A value, not a
// closure, so taking one key's lock allocates nothing.
type heldLocks struct {
	l    *keyLocks
	all  bool
	one  int   // the one stripe, when many is nil
	many []int // the stripes of several keys, in index order
}

// lock takes the stripes of keys in index order (so two writers never wait on
// each other in a cycle).
func (l *keyLocks) lock(keys ...[]byte) heldLocks {
	h := heldLocks{l: l}
	if len(keys) == 1 {
		h.one = l.stripe(keys[0])
	} else {
		h.many = make([]int, 0, len(keys))
		for _, k := range keys {
			h.many = append(h.many, l.stripe(k))
		}
		slices.Sort(h.many)
		h.many = slices.Compact(h.many)
	}
	l.all.RLock()
	if h.many == nil {
		l.stripes[h.one].Lock()
	}
	for _, i := range h.many {
		l.stripes[i].Lock()
	}
	return h
}

// lockAll excludes every other writer.
func (l *keyLocks) lockAll() heldLocks {
	l.all.Lock()
	return heldLocks{l: l, all: true}
}

func (h heldLocks) unlock() {
	if h.all {
		h.l.all.Unlock()
		return
	}
	if h.many == nil {
		h.l.stripes[h.one].Unlock()
	}
	for j := len(h.many) - 1; j >= 0; j-- {
		h.l.stripes[h.many[j]].Unlock()
	}
	h.l.all.RUnlock()
}

// stripe is the index of key's lock.
func (l *keyLocks) stripe(key []byte) int { return int(maphash.Bytes(l.seed, key) % lockStripes) }
