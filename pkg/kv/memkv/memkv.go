// Package memkv is the in-memory ordered backend (memory_store): the whole
// store for single-node development, and the leader's resettable in-memory KV
// (node leases, stats) that is dropped on every leadership change.
package memkv

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/google/btree"

	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// Name is the backend name used in configuration, logs and metrics.
const Name = "memory_store"

// degree only affects speed; 32 keeps the tree shallow for the leader cache's
// hundreds of thousands of keys without making node splits expensive.
const degree = 32

// entry is one stored pair in a single allocation, key then value: the
// leader cache holds every key of the cluster, and one allocation and one
// slice header per pair instead of two cut its overhead per key by a third
// (BenchmarkHeapPerKey).
type entry struct {
	buf  []byte
	klen int
}

// probe is an entry to look key up by; it does not copy key.
func probe(key []byte) entry { return entry{buf: key, klen: len(key)} }

func (e entry) key() []byte   { return e.buf[:e.klen:e.klen] }
func (e entry) value() []byte { return e.buf[e.klen:] }

func lessEntry(a, b entry) bool { return bytes.Compare(a.key(), b.key()) < 0 }

// Store is an ordered key-value map guarded by one RWMutex, so every operation
// (including a whole Txn) is atomic and linearisable. Stored bytes are private
// copies: nothing a caller passes in or gets back aliases them, except the
// answers of reads that ask for them Shared. A stored entry is never written
// after it is made (a write replaces it with a new one), so a shared answer
// stays as it was read, whatever is written later.
type Store struct {
	mu    sync.RWMutex
	tree  *btree.BTreeG[entry]
	bytes int64 // sum of len(key)+len(value) over all entries
}

var _ kv.ResettableBackend = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{tree: btree.NewG(degree, lessEntry)}
}

func (s *Store) Name() string { return Name }

// Reset drops every key at once.
func (s *Store) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tree = btree.NewG(degree, lessEntry)
	s.bytes = 0
}

// Stats reports the number of keys and the bytes they hold (keys plus values),
// for memory reporting.
func (s *Store) Stats() (keys int, size int64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.tree.Len(), s.bytes
}

// copyBytes returns a private copy that is never nil, so an empty stored value
// stays distinguishable from an absent key.
func copyBytes(b []byte) []byte {
	out := make([]byte, len(b))
	copy(out, b)
	return out
}

// kv is a private copy of the pair, key and value in one allocation (each
// capped at its length, so an append to the key cannot write into the
// value).
func (e entry) kv() kv.KeyValue {
	buf := copyBytes(e.buf)
	return kv.KeyValue{Key: buf[:e.klen:e.klen], Value: buf[e.klen:]}
}

func (s *Store) get(key []byte) (entry, bool) {
	return s.tree.Get(probe(key))
}

// set stores a private copy of key and value and returns the previous entry.
func (s *Store) set(key, value []byte) (entry, bool) {
	buf := make([]byte, len(key)+len(value))
	copy(buf, key)
	copy(buf[len(key):], value)
	prev, ok := s.tree.ReplaceOrInsert(entry{buf: buf, klen: len(key)})
	if ok {
		s.bytes += int64(len(value) - len(prev.value()))
	} else {
		s.bytes += int64(len(key) + len(value))
	}
	return prev, ok
}

func (s *Store) remove(key []byte) (entry, bool) {
	prev, ok := s.tree.Delete(probe(key))
	if ok {
		s.bytes -= int64(len(prev.buf))
	}
	return prev, ok
}

// ascend calls fn for every entry in the range (key, end) under the kv range
// conventions, in key order, until fn returns false.
func (s *Store) ascend(key, end []byte, fn func(entry) bool) {
	switch {
	case len(end) == 0:
		if e, ok := s.get(key); ok {
			fn(e)
		}
	case kv.IsAllKeysFrom(end):
		s.tree.AscendGreaterOrEqual(probe(key), fn)
	case bytes.Compare(end, key) <= 0:
		// An inverted range selects nothing; kv.WithLimits refuses it earlier.
	default:
		s.tree.AscendRange(probe(key), probe(end), fn)
	}
}

func (s *Store) Range(ctx context.Context, req kv.RangeRequest) (kv.RangeResponse, error) {
	if err := ctx.Err(); err != nil {
		return kv.RangeResponse{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var (
		resp    kv.RangeResponse
		entries []entry
		size    int
	)
	if req.Limit > 0 {
		entries = make([]entry, 0, min(req.Limit, maxPrealloc))
	}
	s.ascend(req.Key, req.RangeEnd, func(e entry) bool {
		if req.Limit > 0 && int64(len(entries)) == req.Limit {
			resp.More = true
			return false
		}
		entries = append(entries, e)
		if req.KeysOnly {
			size += e.klen
		} else {
			size += len(e.buf)
		}
		return true
	})
	if req.Shared {
		resp.Kvs = shareOut(entries, req.KeysOnly)
	} else {
		resp.Kvs = copyOut(entries, size, req.KeysOnly)
	}
	return resp, nil
}

// shareOut is copyOut for a Shared read: the pairs are the entries' own
// bytes, each capped at its length so an append cannot write past it.
func shareOut(entries []entry, keysOnly bool) []kv.KeyValue {
	if len(entries) == 0 {
		return nil
	}
	out := make([]kv.KeyValue, len(entries))
	for i, e := range entries {
		out[i].Key = e.key()
		if !keysOnly {
			out[i].Value = e.buf[e.klen:len(e.buf):len(e.buf)]
		}
	}
	return out
}

// maxPrealloc caps the pairs a limited range makes room for up front.
const maxPrealloc = 1024

// copyOut copies entries (size bytes of keys, and values unless keysOnly)
// into one allocation: a range of 100 pairs costs three allocations, not
// two hundred. Each key and value is capped at its length, so an append
// to one never writes into the next; the pairs of one range share the
// allocation, which stays alive while any of them is held.
func copyOut(entries []entry, size int, keysOnly bool) []kv.KeyValue {
	if len(entries) == 0 {
		return nil
	}
	buf := make([]byte, 0, size)
	out := make([]kv.KeyValue, len(entries))
	for i, e := range entries {
		if keysOnly {
			at := len(buf)
			buf = append(buf, e.key()...)
			out[i].Key = buf[at:len(buf):len(buf)]
			continue
		}
		at := len(buf)
		buf = append(buf, e.buf...)
		out[i].Key = buf[at : at+e.klen : at+e.klen]
		out[i].Value = buf[at+e.klen : len(buf) : len(buf)]
	}
	return out
}

func (s *Store) Put(ctx context.Context, req kv.PutRequest) (kv.PutResponse, error) {
	if err := ctx.Err(); err != nil {
		return kv.PutResponse{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	prev, ok := s.set(req.Key, req.Value)
	var resp kv.PutResponse
	if ok && req.PrevKv {
		p := prev.kv()
		resp.PrevKv = &p
	}
	return resp, nil
}

// uniqueSorted returns the distinct keys in key order, so batch results come
// out ordered and without duplicates whatever the request held. It sorts a
// copy: the caller's slice keeps its order.
func uniqueSorted(keys [][]byte) [][]byte {
	if len(keys) < 2 {
		// The sizing read before every CompareAndPut and the one-key
		// BatchGet: nothing to order.
		return keys
	}
	out := slices.Clone(keys)
	slices.SortFunc(out, bytes.Compare)
	return slices.CompactFunc(out, bytes.Equal)
}

func (s *Store) BatchGet(ctx context.Context, req kv.BatchGetRequest) (kv.BatchGetResponse, error) {
	if err := ctx.Err(); err != nil {
		return kv.BatchGetResponse{}, err
	}
	keys := uniqueSorted(req.Keys)
	s.mu.RLock()
	defer s.mu.RUnlock()
	var resp kv.BatchGetResponse
	for _, k := range keys {
		e, ok := s.get(k)
		switch {
		case !ok:
		case req.Shared:
			resp.Kvs = append(resp.Kvs, kv.KeyValue{Key: e.key(), Value: e.buf[e.klen:len(e.buf):len(e.buf)]})
		default:
			resp.Kvs = append(resp.Kvs, e.kv())
		}
	}
	return resp, nil
}

// BatchPut writes every pair; when a key appears more than once the last pair
// wins and PrevKvs reports the key once, with its value from before the call.
func (s *Store) BatchPut(ctx context.Context, req kv.BatchPutRequest) (kv.BatchPutResponse, error) {
	if err := ctx.Err(); err != nil {
		return kv.BatchPutResponse{}, err
	}
	pairs := lastOfEach(req.Kvs)
	s.mu.Lock()
	defer s.mu.Unlock()
	var resp kv.BatchPutResponse
	for _, p := range pairs {
		prev, ok := s.set(p.Key, p.Value)
		if ok && req.PrevKv {
			resp.PrevKvs = append(resp.PrevKvs, prev.kv())
		}
	}
	return resp, nil
}

// lastOfEach returns the pairs in key order, each key once with the last
// value the request gave it. It sorts a copy, stably, so of equal keys the
// last one given is the last of its run.
func lastOfEach(kvs []kv.KeyValue) []kv.KeyValue {
	if len(kvs) < 2 {
		return kvs
	}
	out := slices.Clone(kvs)
	slices.SortStableFunc(out, func(a, b kv.KeyValue) int { return bytes.Compare(a.Key, b.Key) })
	n := 0
	for i, p := range out {
		if i+1 < len(out) && bytes.Equal(p.Key, out[i+1].Key) {
			continue
		}
		out[n] = p
		n++
	}
	return out[:n]
}

func (s *Store) BatchDelete(ctx context.Context, req kv.BatchDeleteRequest) (kv.BatchDeleteResponse, error) {
	if err := ctx.Err(); err != nil {
		return kv.BatchDeleteResponse{}, err
	}
	keys := uniqueSorted(req.Keys)
	s.mu.Lock()
	defer s.mu.Unlock()
	var resp kv.BatchDeleteResponse
	for _, k := range keys {
		if prev, ok := s.remove(k); ok && req.PrevKv {
			resp.PrevKvs = append(resp.PrevKvs, prev.kv())
		}
	}
	return resp, nil
}

func (s *Store) DeleteRange(ctx context.Context, req kv.DeleteRangeRequest) (kv.DeleteRangeResponse, error) {
	if err := ctx.Err(); err != nil {
		return kv.DeleteRangeResponse{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Collect first: the tree must not change while it is being iterated.
	var victims []entry
	s.ascend(req.Key, req.RangeEnd, func(e entry) bool {
		victims = append(victims, e)
		return true
	})
	resp := kv.DeleteRangeResponse{Deleted: int64(len(victims))}
	for _, e := range victims {
		s.remove(e.key())
		if req.PrevKv {
			resp.PrevKvs = append(resp.PrevKvs, e.kv())
		}
	}
	return resp, nil
}

func (s *Store) CompareAndPut(ctx context.Context, req kv.CompareAndPutRequest) (kv.CompareAndPutResponse, error) {
	if err := ctx.Err(); err != nil {
		return kv.CompareAndPutResponse{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, present := s.get(req.Key)
	var resp kv.CompareAndPutResponse
	if present {
		p := cur.kv()
		resp.PrevKv = &p
	}
	if len(req.Expect) == 0 {
		resp.Success = !present
	} else {
		resp.Success = present && bytes.Equal(cur.value(), req.Expect)
	}
	if resp.Success {
		s.set(req.Key, req.Value)
	}
	return resp, nil
}

// validateTxn refuses unknown compare operators and op kinds before anything is
// applied, so a malformed Txn never half-applies.
func validateTxn(req kv.TxnRequest) error {
	for i, c := range req.Compare {
		if c.Op < kv.CompareEqual || c.Op > kv.CompareGreater {
			return fmt.Errorf("%w: compare[%d] has unknown operator %d", kv.ErrInvalidArgument, i, int(c.Op))
		}
	}
	for _, branch := range []struct {
		name string
		ops  []kv.TxnOp
	}{{"success", req.Success}, {"failure", req.Failure}} {
		for i, op := range branch.ops {
			switch op.Kind {
			case kv.TxnPut, kv.TxnGet, kv.TxnDelete:
			default:
				return fmt.Errorf("%w: %s[%d] has unknown operation kind %d", kv.ErrInvalidArgument, branch.name, i, int(op.Kind))
			}
		}
	}
	return nil
}

func (s *Store) Txn(ctx context.Context, req kv.TxnRequest) (kv.TxnResponse, error) {
	if err := ctx.Err(); err != nil {
		return kv.TxnResponse{}, err
	}
	if err := validateTxn(req); err != nil {
		return kv.TxnResponse{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	resp := kv.TxnResponse{Succeeded: true}
	for _, c := range req.Compare {
		cur, present := s.get(c.Key)
		if !c.Holds(cur.value(), present) {
			resp.Succeeded = false
			break
		}
	}
	ops := req.Success
	if !resp.Succeeded {
		ops = req.Failure
	}
	resp.Responses = make([]kv.TxnOpResponse, 0, len(ops))
	for _, op := range ops {
		r := kv.TxnOpResponse{Kind: op.Kind}
		var (
			e  entry
			ok bool
		)
		switch op.Kind {
		case kv.TxnPut:
			e, ok = s.set(op.Key, op.Value)
		case kv.TxnGet:
			e, ok = s.get(op.Key)
		case kv.TxnDelete:
			e, ok = s.remove(op.Key)
			if ok {
				r.Deleted = 1
			}
		}
		if ok {
			r.Kvs = []kv.KeyValue{e.kv()}
		}
		resp.Responses = append(resp.Responses, r)
	}
	return resp, nil
}
