package pgkv

import (
	"bytes"
	"context"

	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// CompareAndPut implements kv.Backend with one READ COMMITTED statement per
// attempt (see queries.casAbsent/casPresent for why that is exact); fenced, the
// statement runs in the fence's transaction.
func (s *Store) CompareAndPut(ctx context.Context, req kv.CompareAndPutRequest) (kv.CompareAndPutResponse, error) {
	value := nonNil(req.Value)
	absent := len(req.Expect) == 0
	var resp kv.CompareAndPutResponse
	err := s.write(ctx, "compare_and_put", func(ctx context.Context, q querier) error {
		var applied bool
		var current []byte // nil: the key was absent at the statement's start
		var err error
		if absent {
			err = q.QueryRow(ctx, s.q.casAbsent, req.Key, value).Scan(&applied, &current)
		} else {
			err = q.QueryRow(ctx, s.q.casPresent, req.Key, req.Expect, value).Scan(&applied, &current)
		}
		if err != nil {
			return err
		}
		var r kv.CompareAndPutResponse
		r, err = casOutcome(req, applied, current)
		resp = r
		return err
	})
	if err != nil {
		return kv.CompareAndPutResponse{}, err
	}
	return resp, nil
}

// casOutcome turns what the statement did and the value its snapshot saw into
// the response, or errStaleSnapshot when the snapshot cannot explain the
// outcome: the write failed because of a change made after the snapshot was
// taken, so the statement must run again to learn the value that won.
func casOutcome(req kv.CompareAndPutRequest, applied bool, current []byte) (kv.CompareAndPutResponse, error) {
	absent := len(req.Expect) == 0
	switch {
	case applied && absent:
		return kv.CompareAndPutResponse{Success: true}, nil
	case applied:
		return kv.CompareAndPutResponse{Success: true, PrevKv: &kv.KeyValue{Key: req.Key, Value: bytes.Clone(req.Expect)}}, nil
	case absent && current == nil, !absent && current != nil && bytes.Equal(current, req.Expect):
		return kv.CompareAndPutResponse{}, errStaleSnapshot
	case current == nil:
		return kv.CompareAndPutResponse{}, nil
	default:
		return kv.CompareAndPutResponse{PrevKv: &kv.KeyValue{Key: req.Key, Value: current}}, nil
	}
}
