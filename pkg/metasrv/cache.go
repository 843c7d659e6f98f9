package metasrv

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

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
}

func newLeaderCache() *leaderCache {
	return &leaderCache{data: memkv.New(), locks: newKeyLocks()}
}

// load replaces the cache's content with a full scan of src, page by page. The
// caller holds no key lock; load takes them all so no write interleaves.
func (c *leaderCache) load(ctx context.Context, src kv.Backend) (keys int, took time.Duration, err error) {
	unlock := c.locks.lockAll()
	defer unlock()
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
// durable store fenced by the term and, once committed, into the cache.
type termStore struct {
	m       *Metasrv
	term    int64
	durable kv.Backend // prefixed, fenced by term
	cache   *leaderCache
}

var _ kv.Backend = (*termStore)(nil)

func (s *termStore) Name() string { return s.durable.Name() }

// check refuses service once the term is over, leadership is not trusted any
// more, or the cache is not (or no longer) complete.
func (s *termStore) check(ctx context.Context) error {
	if s.m.servesTerm(s.term) && s.cache.ready.Load() {
		return nil
	}
	return s.m.notLeader(ctx)
}

func (s *termStore) Range(ctx context.Context, req kv.RangeRequest) (kv.RangeResponse, error) {
	if err := s.check(ctx); err != nil {
		return kv.RangeResponse{}, err
	}
	return s.cache.data.Range(ctx, req)
}

func (s *termStore) BatchGet(ctx context.Context, req kv.BatchGetRequest) (kv.BatchGetResponse, error) {
	if err := s.check(ctx); err != nil {
		return kv.BatchGetResponse{}, err
	}
	return s.cache.data.BatchGet(ctx, req)
}

// write runs one durable write with its keys locked, then applies it to the
// cache. When PostgreSQL may have applied the write without telling us
// (ErrOutcomeUnknown), the keys are re-read so the cache follows the truth; if
// even that fails the cache is reloaded before it serves again.
func (s *termStore) write(ctx context.Context, keys [][]byte, do func() error, apply func() error) error {
	unlock := s.cache.locks.lock(keys...)
	defer unlock()
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := do(); err != nil {
		if errors.Is(err, kv.ErrOutcomeUnknown) {
			s.refresh(ctx, keys)
		}
		return err
	}
	if err := apply(); err != nil {
		// The cache cannot disagree with a committed write: reload it.
		s.m.invalidateCache(s.term, fmt.Errorf("apply committed write to cache: %w", err))
	}
	return nil
}

// refreshTimeout bounds the re-read after a write of unknown outcome.
const refreshTimeout = 5 * time.Second

func (s *termStore) refresh(ctx context.Context, keys [][]byte) {
	// The caller may have left (its deadline is often why the outcome is
	// unknown); the cache must be mended all the same.
	ctx, cancel := context.WithTimeout(cacheCtx(ctx), refreshTimeout)
	defer cancel()
	resp, err := s.durable.BatchGet(ctx, kv.BatchGetRequest{Keys: keys})
	if err != nil {
		s.m.invalidateCache(s.term, fmt.Errorf("re-read keys after a write of unknown outcome: %w", err))
		return
	}
	if _, err := s.cache.data.BatchDelete(ctx, kv.BatchDeleteRequest{Keys: keys}); err != nil {
		s.m.invalidateCache(s.term, err)
		return
	}
	if len(resp.Kvs) > 0 {
		if _, err := s.cache.data.BatchPut(ctx, kv.BatchPutRequest{Kvs: resp.Kvs}); err != nil {
			s.m.invalidateCache(s.term, err)
		}
	}
}

// cacheCtx is used to apply committed writes to the cache even when the
// caller's context ended meanwhile: skipping it would leave the cache stale.
func cacheCtx(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

func (s *termStore) Put(ctx context.Context, req kv.PutRequest) (resp kv.PutResponse, err error) {
	err = s.write(ctx, [][]byte{req.Key},
		func() (err error) { resp, err = s.durable.Put(ctx, req); return err },
		func() error {
			_, err := s.cache.data.Put(cacheCtx(ctx), kv.PutRequest{Key: req.Key, Value: req.Value})
			return err
		})
	return resp, err
}

func (s *termStore) BatchPut(ctx context.Context, req kv.BatchPutRequest) (resp kv.BatchPutResponse, err error) {
	keys := make([][]byte, len(req.Kvs))
	for i, p := range req.Kvs {
		keys[i] = p.Key
	}
	err = s.write(ctx, keys,
		func() (err error) { resp, err = s.durable.BatchPut(ctx, req); return err },
		func() error {
			_, err := s.cache.data.BatchPut(cacheCtx(ctx), kv.BatchPutRequest{Kvs: req.Kvs})
			return err
		})
	return resp, err
}

func (s *termStore) BatchDelete(ctx context.Context, req kv.BatchDeleteRequest) (resp kv.BatchDeleteResponse, err error) {
	err = s.write(ctx, req.Keys,
		func() (err error) { resp, err = s.durable.BatchDelete(ctx, req); return err },
		func() error {
			_, err := s.cache.data.BatchDelete(cacheCtx(ctx), kv.BatchDeleteRequest{Keys: req.Keys})
			return err
		})
	return resp, err
}

// DeleteRange cannot name its keys in advance, so it excludes every other
// write while it runs.
func (s *termStore) DeleteRange(ctx context.Context, req kv.DeleteRangeRequest) (kv.DeleteRangeResponse, error) {
	unlock := s.cache.locks.lockAll()
	defer unlock()
	if err := s.check(ctx); err != nil {
		return kv.DeleteRangeResponse{}, err
	}
	resp, err := s.durable.DeleteRange(ctx, req)
	if err != nil {
		if errors.Is(err, kv.ErrOutcomeUnknown) {
			s.m.invalidateCache(s.term, fmt.Errorf("delete range of unknown outcome: %w", err))
		}
		return resp, err
	}
	if _, err := s.cache.data.DeleteRange(cacheCtx(ctx), kv.DeleteRangeRequest{Key: req.Key, RangeEnd: req.RangeEnd}); err != nil {
		s.m.invalidateCache(s.term, err)
	}
	return resp, nil
}

func (s *termStore) CompareAndPut(ctx context.Context, req kv.CompareAndPutRequest) (resp kv.CompareAndPutResponse, err error) {
	err = s.write(ctx, [][]byte{req.Key},
		func() (err error) { resp, err = s.durable.CompareAndPut(ctx, req); return err },
		func() error {
			if !resp.Success {
				return nil
			}
			_, err := s.cache.data.Put(cacheCtx(ctx), kv.PutRequest{Key: req.Key, Value: req.Value})
			return err
		})
	return resp, err
}

func (s *termStore) Txn(ctx context.Context, req kv.TxnRequest) (resp kv.TxnResponse, err error) {
	keys := make([][]byte, 0, len(req.Compare)+len(req.Success)+len(req.Failure))
	for _, c := range req.Compare {
		keys = append(keys, c.Key)
	}
	for _, ops := range [][]kv.TxnOp{req.Success, req.Failure} {
		for _, op := range ops {
			keys = append(keys, op.Key)
		}
	}
	err = s.write(ctx, keys,
		func() (err error) { resp, err = s.durable.Txn(ctx, req); return err },
		func() error {
			branch := req.Failure
			if resp.Succeeded {
				branch = req.Success
			}
			var writes []kv.TxnOp
			for _, op := range branch {
				if op.Kind != kv.TxnGet {
					writes = append(writes, op)
				}
			}
			if len(writes) == 0 {
				return nil
			}
			_, err := s.cache.data.Txn(cacheCtx(ctx), kv.TxnRequest{Success: writes})
			return err
		})
	return resp, err
}
