package pgkv

import (
	"context"
	"math"

	"github.com/jackc/pgx/v5"

	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// Range implements kv.Backend. Reads are retried on connection failures: they
// change nothing, and the rows are only returned once all were read.
func (s *Store) Range(ctx context.Context, req kv.RangeRequest) (kv.RangeResponse, error) {
	sql, args := s.rangeQuery(req)
	var resp kv.RangeResponse
	err := s.run(ctx, "range", readOp, func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		resp.Kvs, err = collect(rows, req.KeysOnly, sizeHint(req.Limit))
		return err
	})
	if err != nil {
		return kv.RangeResponse{}, err
	}
	if req.Limit > 0 && int64(len(resp.Kvs)) > req.Limit {
		resp.Kvs, resp.More = resp.Kvs[:req.Limit], true
	}
	return resp, nil
}

// sizeHint is the number of rows to make room for: the limit (plus the one
// that tells whether it cut), at most 1024; a Limit of 0 or less (no limit)
// gives no hint.
func sizeHint(limit int64) int {
	if limit <= 0 {
		return 0
	}
	return int(min(limit, 1023) + 1)
}

// rangeQuery picks the statement for the shape of the range. A limited scan
// asks for one row more than the limit, to learn whether the limit cut it. A
// Limit of 0 or less is no limit (NULL: LIMIT ALL), and so is math.MaxInt64,
// whose one row more would overflow: no table holds that many rows.
func (s *Store) rangeQuery(req kv.RangeRequest) (string, []any) {
	var limit *int64
	if req.Limit > 0 && req.Limit < math.MaxInt64 {
		n := req.Limit + 1
		limit = &n
	}
	pick := func(kvs, keys string) string {
		if req.KeysOnly {
			return keys
		}
		return kvs
	}
	switch {
	case len(req.RangeEnd) == 0:
		return pick(s.q.rangeOne, s.q.rangeOneKeys), []any{req.Key}
	case kv.IsAllKeysFrom(req.RangeEnd):
		return pick(s.q.rangeFrom, s.q.rangeFromKeys), []any{req.Key, limit}
	default:
		return pick(s.q.rangeBetween, s.q.rangeBetweenKeys), []any{req.Key, req.RangeEnd, limit}
	}
}

// BatchGet implements kv.Backend.
func (s *Store) BatchGet(ctx context.Context, req kv.BatchGetRequest) (kv.BatchGetResponse, error) {
	if len(req.Keys) == 0 {
		return kv.BatchGetResponse{}, nil
	}
	var resp kv.BatchGetResponse
	err := s.run(ctx, "batch_get", readOp, func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, s.q.batchGet, req.Keys)
		if err != nil {
			return err
		}
		resp.Kvs, err = collect(rows, false, min(len(req.Keys), 1024))
		return err
	})
	if err != nil {
		return kv.BatchGetResponse{}, err
	}
	return resp, nil
}

// collect reads (k) or (k, v) rows and closes rows; sizeHint is the
// expected number of rows, when known.
func collect(rows pgx.Rows, keysOnly bool, sizeHint int) ([]kv.KeyValue, error) {
	defer rows.Close()
	var out []kv.KeyValue
	if sizeHint > 0 {
		out = make([]kv.KeyValue, 0, sizeHint)
	}
	for rows.Next() {
		var p kv.KeyValue
		var err error
		if keysOnly {
			err = rows.Scan(&p.Key)
		} else {
			err = rows.Scan(&p.Key, &p.Value)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}
