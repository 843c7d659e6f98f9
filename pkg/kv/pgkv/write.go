package pgkv

import (
	"bytes"
	"context"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// Put implements kv.Backend.
func (s *Store) Put(ctx context.Context, req kv.PutRequest) (kv.PutResponse, error) {
	value := nonNil(req.Value)
	if !req.PrevKv {
		err := s.write(ctx, "put", func(ctx context.Context, q querier) error {
			_, err := q.Exec(ctx, s.q.put, req.Key, value)
			return err
		})
		return kv.PutResponse{}, err
	}
	prev, err := s.putReturningPrev(ctx, "put", [][]byte{req.Key}, [][]byte{value})
	if err != nil || len(prev) == 0 {
		return kv.PutResponse{}, err
	}
	return kv.PutResponse{PrevKv: &prev[0]}, nil
}

// BatchPut implements kv.Backend. A key given twice takes its last value:
// PostgreSQL's upsert cannot touch one row twice in a statement, and the last
// write is what applying the pairs in order would leave.
func (s *Store) BatchPut(ctx context.Context, req kv.BatchPutRequest) (kv.BatchPutResponse, error) {
	if len(req.Kvs) == 0 {
		return kv.BatchPutResponse{}, nil
	}
	keys, values := dedupeLastWins(req.Kvs)
	if !req.PrevKv {
		err := s.write(ctx, "batch_put", func(ctx context.Context, q querier) error {
			_, err := q.Exec(ctx, s.q.batchPut, keys, values)
			return err
		})
		return kv.BatchPutResponse{}, err
	}
	prev, err := s.putReturningPrev(ctx, "batch_put", keys, values)
	if err != nil {
		return kv.BatchPutResponse{}, err
	}
	return kv.BatchPutResponse{PrevKvs: prev}, nil
}

// putReturningPrev upserts the pairs and returns the values they replaced, in
// key order. The previous values are read FOR UPDATE in the same REPEATABLE
// READ transaction as the upsert: a row changed or inserted by someone else
// after the snapshot fails the transaction with 40001 (and it is retried), so
// what is returned is exactly what was overwritten.
func (s *Store) putReturningPrev(ctx context.Context, op string, keys, values [][]byte) ([]kv.KeyValue, error) {
	var prev []kv.KeyValue
	err := s.writeAtomic(ctx, op, func(b *pgx.Batch) {
		prev = nil
		b.Queue(s.q.lockPrev, keys).Query(func(rows pgx.Rows) error {
			var err error
			prev, err = collect(rows, false, len(keys))
			return err
		})
		b.Queue(s.q.batchPut, keys, values)
	})
	if err != nil {
		return nil, err
	}
	return prev, nil
}

// BatchDelete implements kv.Backend.
func (s *Store) BatchDelete(ctx context.Context, req kv.BatchDeleteRequest) (kv.BatchDeleteResponse, error) {
	if len(req.Keys) == 0 {
		return kv.BatchDeleteResponse{}, nil
	}
	var resp kv.BatchDeleteResponse
	err := s.write(ctx, "batch_delete", func(ctx context.Context, q querier) error {
		if !req.PrevKv {
			_, err := q.Exec(ctx, s.q.batchDelete, req.Keys)
			return err
		}
		rows, err := q.Query(ctx, s.q.batchDeletePrev, req.Keys)
		if err != nil {
			return err
		}
		resp.PrevKvs, err = collect(rows, false, 0)
		return err
	})
	if err != nil {
		return kv.BatchDeleteResponse{}, err
	}
	return resp, nil
}

// DeleteRange implements kv.Backend.
func (s *Store) DeleteRange(ctx context.Context, req kv.DeleteRangeRequest) (kv.DeleteRangeResponse, error) {
	var sql string
	args := []any{req.Key}
	switch {
	case len(req.RangeEnd) == 0:
		sql = pick(req.PrevKv, s.q.deleteOnePrev, s.q.deleteOne)
	case kv.IsAllKeysFrom(req.RangeEnd):
		sql = pick(req.PrevKv, s.q.deleteFromPrev, s.q.deleteFrom)
	default:
		sql = pick(req.PrevKv, s.q.deleteBetweenPrev, s.q.deleteBetween)
		args = append(args, req.RangeEnd)
	}
	var resp kv.DeleteRangeResponse
	err := s.write(ctx, "delete_range", func(ctx context.Context, q querier) error {
		if !req.PrevKv {
			tag, err := q.Exec(ctx, sql, args...)
			resp.Deleted = tag.RowsAffected()
			return err
		}
		rows, err := q.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		resp.PrevKvs, err = collect(rows, false, 0)
		resp.Deleted = int64(len(resp.PrevKvs))
		return err
	})
	if err != nil {
		return kv.DeleteRangeResponse{}, err
	}
	return resp, nil
}

func pick(cond bool, yes, no string) string {
	if cond {
		return yes
	}
	return no
}

// nonNil maps a nil value to an empty one: pgx sends a nil []byte as NULL,
// and a stored value is never NULL.
func nonNil(v []byte) []byte {
	if v == nil {
		return []byte{}
	}
	return v
}

// dedupeLastWins returns the keys of kvs sorted and without repeats, each with
// the last value given for it. Sorted keys also make concurrent batches lock
// their rows in the same order, so they wait for each other instead of
// deadlocking.
func dedupeLastWins(kvs []kv.KeyValue) (keys, values [][]byte) {
	idx := make([]int, len(kvs))
	for i := range idx {
		idx[i] = i
	}
	// Stable, so among equal keys the later request position sorts later.
	slices.SortStableFunc(idx, func(a, b int) int { return bytes.Compare(kvs[a].Key, kvs[b].Key) })
	keys = make([][]byte, 0, len(kvs))
	values = make([][]byte, 0, len(kvs))
	for _, i := range idx {
		if n := len(keys); n > 0 && bytes.Equal(keys[n-1], kvs[i].Key) {
			values[n-1] = nonNil(kvs[i].Value)
			continue
		}
		keys = append(keys, kvs[i].Key)
		values = append(values, nonNil(kvs[i].Value))
	}
	return keys, values
}
