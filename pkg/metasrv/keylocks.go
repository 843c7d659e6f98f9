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

// lock takes the stripes of keys in index order (so two writers never wait on
// each other in a cycle) and returns the function that releases them.
func (l *keyLocks) lock(keys ...[]byte) (unlock func()) {
	idx := make([]int, 0, len(keys))
	for _, k := range keys {
		idx = append(idx, l.stripe(k))
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	l.all.RLock()
	for _, i := range idx {
		l.stripes[i].Lock()
	}
	return func() {
		for j := len(idx) - 1; j >= 0; j-- {
			l.stripes[idx[j]].Unlock()
		}
		l.all.RUnlock()
	}
}

// stripe is the index of key's lock.
func (l *keyLocks) stripe(key []byte) int { return int(maphash.Bytes(l.seed, key) % lockStripes) }

// lockAll excludes every other writer.
func (l *keyLocks) lockAll() (unlock func()) {
	l.all.Lock()
	return l.all.Unlock
}
