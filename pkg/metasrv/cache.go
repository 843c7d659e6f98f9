package metasrv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pgmetasrv/metasrv/pkg/backoff"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/memkv"
)

// cacheLoadPage is how many pairs one scan of the cache load reads.
const cacheLoadPage = 10000

// leaderCache is one term's copy of the whole key space (under the key
// prefix). Each term builds its own, so a write of a finished term can never
// touch the cache of the next one.
type leaderCache struct {
	data  *memkv.Store
	locks *keyLocks
	ready atomic.Bool
	// unsure holds the keys of writes whose outcome is unknown and not yet
	// resolved: PostgreSQL may hold either value, so reads of them go to
	// PostgreSQL until the write can no longer commit and the keys were
	// re-read. unsureN lets reads skip the map while it is empty.
	unsureMu sync.Mutex
	unsure   map[string]int
	unsureN  atomic.Int64
}

func newLeaderCache() *leaderCache {
	return &leaderCache{data: memkv.New(), locks: newKeyLocks(), unsure: make(map[string]int)}
}

// markUnsure makes reads of keys bypass the cache until clearUnsure.
func (c *leaderCache) markUnsure(keys [][]byte) {
	c.unsureMu.Lock()
	defer c.unsureMu.Unlock()
	for _, k := range keys {
		c.unsure[string(k)]++
	}
	c.unsureN.Store(int64(len(c.unsure)))
}

func (c *leaderCache) clearUnsure(keys [][]byte) {
	c.unsureMu.Lock()
	defer c.unsureMu.Unlock()
	for _, k := range keys {
		if c.unsure[string(k)]--; c.unsure[string(k)] <= 0 {
			delete(c.unsure, string(k))
		}
	}
	c.unsureN.Store(int64(len(c.unsure)))
}

// unsureIn reports whether a key of unknown state falls in the range
// (key, end) or, with end nil and keys set, is one of keys.
func (c *leaderCache) unsureIn(key, end []byte, keys [][]byte) bool {
	if c.unsureN.Load() == 0 {
		return false
	}
	c.unsureMu.Lock()
	defer c.unsureMu.Unlock()
	if keys != nil {
		for _, k := range keys {
			if _, ok := c.unsure[string(k)]; ok {
				return true
			}
		}
		return false
	}
	for k := range c.unsure {
		if kv.InRange([]byte(k), key, end) {
			return true
		}
	}
	return false
}

// load replaces the cache's content with a full scan of src, page by page. The
// caller holds no key lock; load takes them all so no write interleaves.
func (c *leaderCache) load(ctx context.Context, src kv.Backend) (keys int, took time.Duration, err error) {
	held := c.locks.lockAll()
	defer held.unlock()
	return c.loadLocked(ctx, src)
}

func (c *leaderCache) loadLocked(ctx context.Context, src kv.Backend) (keys int, took time.Duration, err error) {
	start := time.Now()
	c.ready.Store(false)
	c.data.Reset()
	from := []byte{0}
	for {
		resp, err := src.Range(ctx, kv.RangeRequest{Key: from, RangeEnd: []byte{0}, Limit: cacheLoadPage})
		if err != nil {
			c.data.Reset()
			return 0, 0, fmt.Errorf("load leader cache: %w", err)
		}
		if len(resp.Kvs) > 0 {
			if _, err := c.data.BatchPut(ctx, kv.BatchPutRequest{Kvs: resp.Kvs}); err != nil {
				c.data.Reset()
				return 0, 0, fmt.Errorf("load leader cache: %w", err)
			}
			keys += len(resp.Kvs)
		}
		if !resp.More {
			break
		}
		last := resp.Kvs[len(resp.Kvs)-1].Key
		from = append(append(make([]byte, 0, len(last)+1), last...), 0)
	}
	c.ready.Store(true)
	return keys, time.Since(start), nil
}

// termStore is the leader's backend for one term: reads come from the cache
// while this node still trusts its leadership of the term; writes go to the
// durable store fenced by the term and, once their outcome is known, into the
// cache.
type termStore struct {
	m       *Metasrv
	lead    *leadTerm
	term    int64
	durable kv.Backend // prefixed, fenced by term
	cache   *leaderCache
	writes  *writeGate
	// settle waits until no fenced write of this node sent so far can still
	// commit; nil when writes cannot be of unknown outcome (memory_store).
	settle func(ctx context.Context) error
	// writeTimeout bounds one durable write, so a write on a connection that
	// hangs without breaking ends (with an unknown outcome) and frees its keys.
	writeTimeout time.Duration
	signals      *testSignals
}

var _ kv.Backend = (*termStore)(nil)

func (s *termStore) Name() string { return s.durable.Name() }

// check refuses service once the term is over, leadership is not trusted any
// more, or the cache is not (or no longer) complete. It is the term store's
// own check, on every call, because a handle can outlive its term: a caller
// may keep the store LeaderBackend gave it across a step-down.
func (s *termStore) check(ctx context.Context) error {
	if s.m.servesTerm(s.lead) && s.cache.ready.Load() {
		return nil
	}
	return s.m.notLeader(ctx)
}

func (s *termStore) Range(ctx context.Context, req kv.RangeRequest) (kv.RangeResponse, error) {
	if err := s.check(ctx); err != nil {
		return kv.RangeResponse{}, err
	}
	if s.cache.unsureIn(req.Key, req.RangeEnd, nil) {
		return s.durable.Range(ctx, req)
	}
	return s.cache.data.Range(ctx, req)
}

func (s *termStore) BatchGet(ctx context.Context, req kv.BatchGetRequest) (kv.BatchGetResponse, error) {
	if err := s.check(ctx); err != nil {
		return kv.BatchGetResponse{}, err
	}
	if s.cache.unsureIn(nil, nil, req.Keys) {
		return s.durable.BatchGet(ctx, req)
	}
	return s.cache.data.BatchGet(ctx, req)
}

// write runs one durable write and applies its outcome to the cache. keys are
// the keys it may change; nil means any key (a range delete), which excludes
// every other write.
//
// The write runs in a goroutine of its own, on a context only the term's end
// cancels, holding its keys' locks from before its statement until its
// outcome is in the cache. The caller waits for it or for ctx: a caller that
// leaves before the write was sent gets ctx's error and the write is dropped
// unsent; one that leaves later gets kv.ErrOutcomeUnknown while the write goes
// on. So the cache follows the write's own outcome, never the caller's
// departure.
func (s *termStore) write(ctx context.Context, keys [][]byte, do func(ctx context.Context) error, apply func(ctx context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.check(ctx); err != nil {
		return err
	}
	wctx, leave, ok := s.writes.enter(ctx)
	if !ok {
		return s.m.notLeader(ctx)
	}
	w := &pendingWrite{done: make(chan struct{})}
	go func() {
		defer leave()
		w.answer(s.run(wctx, w, keys, do, apply))
	}()
	select {
	case <-w.done:
		return w.err
	case <-ctx.Done():
	}
	if w.state.CompareAndSwap(writeWaiting, writeAbandoned) {
		return fmt.Errorf("metasrv: write not sent: %w", ctx.Err())
	}
	select {
	case <-w.done:
		return w.err
	default:
	}
	return fmt.Errorf("metasrv: %w: the caller left while its write was in flight; the write goes on and may or may not commit: %w",
		kv.ErrOutcomeUnknown, ctx.Err())
}

// run is the body of one write, on the write's own context.
func (s *termStore) run(ctx context.Context, w *pendingWrite, keys [][]byte, do func(ctx context.Context) error, apply func(ctx context.Context) error) error {
	if s.signals != nil {
		signal(s.signals.locking, keys)
	}
	var held heldLocks
	if keys == nil {
		held = s.cache.locks.lockAll()
	} else {
		held = s.cache.locks.lock(keys...)
	}
	defer held.unlock()
	if !w.state.CompareAndSwap(writeWaiting, writeSent) {
		return nil // abandoned: the caller has its answer already
	}
	if err := s.check(ctx); err != nil {
		return err
	}
	if s.signals != nil {
		signal(s.signals.sent, keys)
	}
	dctx, cancel := context.WithTimeout(ctx, s.writeTimeout)
	err := do(dctx)
	cancel()
	if err != nil {
		if errors.Is(err, kv.ErrOutcomeUnknown) {
			w.answer(err)
			s.resolve(ctx, keys, err)
		}
		return err
	}
	if err := apply(ctx); err != nil {
		// The cache cannot disagree with a committed write: reload it.
		s.m.invalidateCache(s.term, fmt.Errorf("apply committed write to cache: %w", err))
	}
	return nil
}

// resolve brings the cache back to PostgreSQL after a write of unknown
// outcome, with the write's keys still locked. Until it has, reads of those
// keys go to PostgreSQL, which holds one outcome or the other and never
// returns to the old value once the new one is there. Only after settle (the
// write can no longer commit) is a re-read final; it is retried until it
// succeeds or the term ends. A range delete's keys are unknown: the whole
// cache is refused until a reload, which settles first.
func (s *termStore) resolve(ctx context.Context, keys [][]byte, cause error) {
	if ctx.Err() != nil {
		// Only the term's end cancels a write: its cache goes with it.
		return
	}
	if keys == nil {
		s.m.invalidateCache(s.term, fmt.Errorf("range delete of unknown outcome: %w", cause))
		return
	}
	s.cache.markUnsure(keys)
	if s.signals != nil {
		signal(s.signals.unsure, keys)
	}
	pause := backoff.Policy{Base: 20 * time.Millisecond, Max: time.Second}
	for attempt := 1; ; attempt++ {
		err := s.reread(ctx, keys)
		if err == nil {
			s.cache.clearUnsure(keys)
			return
		}
		if ctx.Err() != nil {
			return
		}
		s.m.logger.Warn("re-reading the keys of a write of unknown outcome failed; retrying",
			"term", s.term, "keys", len(keys), "attempt", attempt, "err", err)
		if backoff.Sleep(ctx, pause.Delay(attempt)) != nil {
			return
		}
	}
}

// reread waits until the write can no longer commit, then copies keys from
// PostgreSQL into the cache.
func (s *termStore) reread(ctx context.Context, keys [][]byte) error {
	if s.settle != nil {
		if err := s.settle(ctx); err != nil {
			return err
		}
	}
	resp, err := s.durable.BatchGet(ctx, kv.BatchGetRequest{Keys: keys})
	if err != nil {
		return fmt.Errorf("re-read keys after a write of unknown outcome: %w", err)
	}
	if _, err := s.cache.data.BatchDelete(ctx, kv.BatchDeleteRequest{Keys: keys}); err != nil {
		return err
	}
	if len(resp.Kvs) > 0 {
		if _, err := s.cache.data.BatchPut(ctx, kv.BatchPutRequest{Kvs: resp.Kvs}); err != nil {
			return err
		}
	}
	return nil
}

func (s *termStore) Put(ctx context.Context, req kv.PutRequest) (resp kv.PutResponse, err error) {
	var out kv.PutResponse
	err = s.write(ctx, [][]byte{req.Key},
		func(ctx context.Context) (err error) { out, err = s.durable.Put(ctx, req); return err },
		func(ctx context.Context) error {
			_, err := s.cache.data.Put(ctx, kv.PutRequest{Key: req.Key, Value: req.Value})
			return err
		})
	if err != nil {
		return kv.PutResponse{}, err
	}
	return out, nil
}

func (s *termStore) BatchPut(ctx context.Context, req kv.BatchPutRequest) (kv.BatchPutResponse, error) {
	keys := make([][]byte, len(req.Kvs))
	for i, p := range req.Kvs {
		keys[i] = p.Key
	}
	var out kv.BatchPutResponse
	err := s.write(ctx, keys,
		func(ctx context.Context) (err error) { out, err = s.durable.BatchPut(ctx, req); return err },
		func(ctx context.Context) error {
			_, err := s.cache.data.BatchPut(ctx, kv.BatchPutRequest{Kvs: req.Kvs})
			return err
		})
	if err != nil {
		return kv.BatchPutResponse{}, err
	}
	return out, nil
}

func (s *termStore) BatchDelete(ctx context.Context, req kv.BatchDeleteRequest) (kv.BatchDeleteResponse, error) {
	var out kv.BatchDeleteResponse
	err := s.write(ctx, req.Keys,
		func(ctx context.Context) (err error) { out, err = s.durable.BatchDelete(ctx, req); return err },
		func(ctx context.Context) error {
			_, err := s.cache.data.BatchDelete(ctx, kv.BatchDeleteRequest{Keys: req.Keys})
			return err
		})
	if err != nil {
		return kv.BatchDeleteResponse{}, err
	}
	return out, nil
}

// DeleteRange cannot name its keys in advance, so it excludes every other
// write while it runs.
func (s *termStore) DeleteRange(ctx context.Context, req kv.DeleteRangeRequest) (kv.DeleteRangeResponse, error) {
	var out kv.DeleteRangeResponse
	err := s.write(ctx, nil,
		func(ctx context.Context) (err error) { out, err = s.durable.DeleteRange(ctx, req); return err },
		func(ctx context.Context) error {
			_, err := s.cache.data.DeleteRange(ctx, kv.DeleteRangeRequest{Key: req.Key, RangeEnd: req.RangeEnd})
			return err
		})
	if err != nil {
		return kv.DeleteRangeResponse{}, err
	}
	return out, nil
}

// CompareAndPut is decided on the cache: under the key's lock the cache holds
// exactly what PostgreSQL committed for the key (every write of it in this
// term goes through that lock, a key of unknown state is resolved before the
// lock is released, and no other node writes in our term), so the compare
// needs no round trip. A compare that fails is answered from memory, like a
// read; one that holds becomes a plain put, which the group commit batches
// with other writes, fenced by the term as every leader write is.
func (s *termStore) CompareAndPut(ctx context.Context, req kv.CompareAndPutRequest) (kv.CompareAndPutResponse, error) {
	var out kv.CompareAndPutResponse
	err := s.write(ctx, [][]byte{req.Key},
		func(ctx context.Context) error {
			cur, err := kv.Get(ctx, s.cache.data, req.Key)
			if err != nil {
				return err
			}
			if !casHolds(req.Expect, cur) {
				out = kv.CompareAndPutResponse{PrevKv: cur}
				return nil
			}
			if _, err := s.durable.Put(ctx, kv.PutRequest{Key: req.Key, Value: req.Value}); err != nil {
				return err
			}
			out = kv.CompareAndPutResponse{Success: true, PrevKv: cur}
			return nil
		},
		func(ctx context.Context) error {
			if !out.Success {
				return nil
			}
			_, err := s.cache.data.Put(ctx, kv.PutRequest{Key: req.Key, Value: req.Value})
			return err
		})
	if err != nil {
		return kv.CompareAndPutResponse{}, err
	}
	return out, nil
}

// casHolds is CompareAndPut's condition: an empty expect means "absent",
// any other must equal the current value.
func casHolds(expect []byte, cur *kv.KeyValue) bool {
	if len(expect) == 0 {
		return cur == nil
	}
	return cur != nil && bytes.Equal(cur.Value, expect)
}

// Txn is decided on the cache, as CompareAndPut is: under the locks of every
// key it names, the cache holds what PostgreSQL committed for them, so the
// transaction runs on a scratch copy of those keys, which yields its answer
// and its net effect. A transaction that writes nothing (failed compares
// with a read-only branch, or only gets) costs no round trip; one whose net
// effect is only puts or only deletes joins the group commit; one that both
// puts and deletes runs as one durable transaction of its writes, without
// compares. Either way the writes are atomic and fenced by the term.
func (s *termStore) Txn(ctx context.Context, req kv.TxnRequest) (kv.TxnResponse, error) {
	keys := txnKeys(req)
	var out kv.TxnResponse
	var effect txnEffect
	err := s.write(ctx, keys,
		func(ctx context.Context) error {
			resp, eff, err := s.decideTxn(ctx, req, keys)
			if err != nil {
				return err
			}
			if err := s.applyDurable(ctx, eff); err != nil {
				return err
			}
			out, effect = resp, eff
			return nil
		},
		func(ctx context.Context) error { return effect.apply(ctx, s.cache.data) })
	if err != nil {
		return kv.TxnResponse{}, err
	}
	return out, nil
}

func txnKeys(req kv.TxnRequest) [][]byte {
	keys := make([][]byte, 0, len(req.Compare)+len(req.Success)+len(req.Failure))
	for _, c := range req.Compare {
		keys = append(keys, c.Key)
	}
	for _, ops := range [][]kv.TxnOp{req.Success, req.Failure} {
		for _, op := range ops {
			keys = append(keys, op.Key)
		}
	}
	return keys
}

// txnEffect is what a transaction leaves behind: the final value of every
// key its branch put, and the keys it deleted and did not put again.
type txnEffect struct {
	puts    []kv.KeyValue
	deletes [][]byte
}

// decideTxn runs req on a scratch copy of its keys taken from the cache
// (the caller holds their locks) and returns the answer and the net effect.
func (s *termStore) decideTxn(ctx context.Context, req kv.TxnRequest, keys [][]byte) (kv.TxnResponse, txnEffect, error) {
	cur, err := s.cache.data.BatchGet(ctx, kv.BatchGetRequest{Keys: keys})
	if err != nil {
		return kv.TxnResponse{}, txnEffect{}, err
	}
	scratch := memkv.New()
	if len(cur.Kvs) > 0 {
		if _, err := scratch.BatchPut(ctx, kv.BatchPutRequest{Kvs: cur.Kvs}); err != nil {
			return kv.TxnResponse{}, txnEffect{}, err
		}
	}
	resp, err := scratch.Txn(ctx, req)
	if err != nil {
		return kv.TxnResponse{}, txnEffect{}, err
	}
	branch := req.Failure
	if resp.Succeeded {
		branch = req.Success
	}
	var written [][]byte
	seen := map[string]bool{}
	for _, op := range branch {
		if op.Kind != kv.TxnGet && !seen[string(op.Key)] {
			seen[string(op.Key)] = true
			written = append(written, op.Key)
		}
	}
	var eff txnEffect
	if len(written) == 0 {
		return resp, eff, nil
	}
	final, err := scratch.BatchGet(ctx, kv.BatchGetRequest{Keys: written})
	if err != nil {
		return kv.TxnResponse{}, txnEffect{}, err
	}
	present := map[string]bool{}
	for _, p := range final.Kvs {
		present[string(p.Key)] = true
	}
	eff.puts = final.Kvs
	for _, k := range written {
		if !present[string(k)] {
			eff.deletes = append(eff.deletes, k)
		}
	}
	return resp, eff, nil
}

// applyDurable writes eff to PostgreSQL in one transaction.
func (s *termStore) applyDurable(ctx context.Context, eff txnEffect) error {
	switch {
	case len(eff.puts) == 0 && len(eff.deletes) == 0:
		return nil
	case len(eff.deletes) == 0:
		_, err := s.durable.BatchPut(ctx, kv.BatchPutRequest{Kvs: eff.puts})
		return err
	case len(eff.puts) == 0:
		_, err := s.durable.BatchDelete(ctx, kv.BatchDeleteRequest{Keys: eff.deletes})
		return err
	}
	ops := make([]kv.TxnOp, 0, len(eff.puts)+len(eff.deletes))
	for _, p := range eff.puts {
		ops = append(ops, kv.OpPut(p.Key, p.Value))
	}
	for _, k := range eff.deletes {
		ops = append(ops, kv.OpDelete(k))
	}
	_, err := s.durable.Txn(ctx, kv.TxnRequest{Success: ops})
	return err
}

// apply writes eff into the cache once PostgreSQL committed it.
func (e txnEffect) apply(ctx context.Context, data *memkv.Store) error {
	if len(e.puts) > 0 {
		if _, err := data.BatchPut(ctx, kv.BatchPutRequest{Kvs: e.puts}); err != nil {
			return err
		}
	}
	if len(e.deletes) > 0 {
		if _, err := data.BatchDelete(ctx, kv.BatchDeleteRequest{Keys: e.deletes}); err != nil {
			return err
		}
	}
	return nil
}
