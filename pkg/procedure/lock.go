package procedure

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// lockTable grants a procedure all of its lock keys at once, in strict FIFO
// order: a request never overtakes an earlier pending request it conflicts
// with on any key. So an exclusive waiter is never starved by a stream of
// shared holders, resumed procedures get their locks in submission order, and
// no two procedures can wait for each other (each waits only for holders and
// for earlier requests).
type lockTable struct {
	mu      sync.Mutex
	pending []*lockRequest // in arrival order
	held    map[string]*holders
}

type holders struct {
	shared    int
	exclusive bool
}

type lockRequest struct {
	keys    []LockKey
	ready   chan struct{} // closed once granted
	granted bool
}

func newLockTable() *lockTable { return &lockTable{held: make(map[string]*holders)} }

// mode ahead of a request on one key: 0 none, 1 shared, 2 exclusive.
func modeOf(exclusive bool) int {
	if exclusive {
		return 2
	}
	return 1
}

// enqueue queues a request for keys (already normalized), granting it at once
// when nothing holds or awaits a conflicting lock.
func (t *lockTable) enqueue(keys []LockKey) *lockRequest {
	r := &lockRequest{keys: keys, ready: make(chan struct{})}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pending = append(t.pending, r)
	t.grantLocked()
	return r
}

// wait blocks until r is granted, or withdraws r when ctx ends first.
func (t *lockTable) wait(ctx context.Context, r *lockRequest) error {
	select {
	case <-r.ready:
		return nil
	case <-ctx.Done():
		t.release(r)
		return ctx.Err()
	}
}

// release gives back a granted request's locks, or withdraws a pending one.
func (t *lockTable) release(r *lockRequest) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if r.granted {
		r.granted = false
		for _, k := range r.keys {
			h := t.held[k.Name]
			if k.Exclusive {
				h.exclusive = false
			} else {
				h.shared--
			}
			if !h.exclusive && h.shared == 0 {
				delete(t.held, k.Name)
			}
		}
	} else {
		t.pending = slices.DeleteFunc(t.pending, func(q *lockRequest) bool { return q == r })
	}
	t.grantLocked()
}

func (t *lockTable) grantLocked() {
	ahead := make(map[string]int)
	kept := t.pending[:0]
	for _, r := range t.pending {
		ok := true
		for _, k := range r.keys {
			if h := t.held[k.Name]; h != nil && (h.exclusive || (k.Exclusive && h.shared > 0)) {
				ok = false
			}
			if a := ahead[k.Name]; a == 2 || (a == 1 && k.Exclusive) {
				ok = false
			}
		}
		if !ok {
			kept = append(kept, r)
			for _, k := range r.keys {
				ahead[k.Name] = max(ahead[k.Name], modeOf(k.Exclusive))
			}
			continue
		}
		for _, k := range r.keys {
			h := t.held[k.Name]
			if h == nil {
				h = &holders{}
				t.held[k.Name] = h
			}
			if k.Exclusive {
				h.exclusive = true
			} else {
				h.shared++
			}
		}
		r.granted = true
		close(r.ready)
	}
	clear(t.pending[len(kept):])
	t.pending = kept
}

// waiting counts the requests not granted yet.
func (t *lockTable) waiting() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending)
}

// normalizeLockKeys validates keys, sorts them by name and merges duplicates
// (exclusive wins).
func normalizeLockKeys(keys []LockKey) ([]LockKey, error) {
	out := slices.Clone(keys)
	for i, k := range out {
		if k.Name == "" {
			return nil, invalidArgf("lock key %d has an empty name", i)
		}
	}
	slices.SortFunc(out, func(a, b LockKey) int { return strings.Compare(a.Name, b.Name) })
	merged := out[:0]
	for _, k := range out {
		if n := len(merged); n > 0 && merged[n-1].Name == k.Name {
			merged[n-1].Exclusive = merged[n-1].Exclusive || k.Exclusive
			continue
		}
		merged = append(merged, k)
	}
	return merged, nil
}

func (k LockKey) String() string {
	if k.Exclusive {
		return fmt.Sprintf("%s(exclusive)", k.Name)
	}
	return fmt.Sprintf("%s(shared)", k.Name)
}
