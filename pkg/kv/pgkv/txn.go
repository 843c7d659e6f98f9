package pgkv

import (
	"bytes"
	"context"
	"maps"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// Txn implements kv.Backend in a SERIALIZABLE transaction: it reads every key
// the request names, evaluates the compares and the chosen branch in Go, and
// writes the branch's net effect (one upsert, one delete). PostgreSQL aborts
// the transaction with 40001 if a concurrent one made that outcome
// impossible, and it is retried from the read.
func (s *Store) Txn(ctx context.Context, req kv.TxnRequest) (kv.TxnResponse, error) {
	keys := txnKeys(req)
	var resp kv.TxnResponse
	err := s.run(ctx, "txn", txOp, func(ctx context.Context) error {
		return s.inTx(ctx, pgx.Serializable, func(ctx context.Context, q querier) error {
			current := map[string][]byte{}
			if len(keys) > 0 {
				rows, err := q.Query(ctx, s.q.batchGet, keys)
				if err != nil {
					return err
				}
				kvs, err := collect(rows, false, len(keys))
				if err != nil {
					return err
				}
				for _, p := range kvs {
					current[string(p.Key)] = nonNil(p.Value)
				}
			}
			var puts, deletes [][]byte
			var putValues [][]byte
			resp, puts, putValues, deletes = evalTxn(req, current)
			b := &pgx.Batch{}
			if len(puts) > 0 {
				b.Queue(s.q.batchPut, puts, putValues)
			}
			if len(deletes) > 0 {
				b.Queue(s.q.batchDelete, deletes)
			}
			if b.Len() == 0 {
				return nil
			}
			return q.SendBatch(ctx, b).Close()
		})
	})
	if err != nil {
		return kv.TxnResponse{}, err
	}
	return resp, nil
}

// txnKeys lists, sorted and without repeats, every key a Txn may read.
func txnKeys(req kv.TxnRequest) [][]byte {
	keys := make([][]byte, 0, len(req.Compare)+len(req.Success)+len(req.Failure))
	for _, c := range req.Compare {
		keys = append(keys, c.Key)
	}
	for _, op := range req.Success {
		keys = append(keys, op.Key)
	}
	for _, op := range req.Failure {
		keys = append(keys, op.Key)
	}
	slices.SortFunc(keys, bytes.Compare)
	return slices.CompactFunc(keys, bytes.Equal)
}

// evalTxn runs req against current (key -> value of the keys that exist) and
// returns the response and the writes that leave the table as applying the
// branch's operations in order would: the keys to upsert with their values
// and the keys to delete, each sorted.
func evalTxn(req kv.TxnRequest, current map[string][]byte) (resp kv.TxnResponse, putKeys, putValues, delKeys [][]byte) {
	resp.Succeeded = true
	for _, c := range req.Compare {
		v, ok := current[string(c.Key)]
		if !c.Holds(v, ok) {
			resp.Succeeded = false
			break
		}
	}
	ops := req.Failure
	if resp.Succeeded {
		ops = req.Success
	}
	touched := map[string]bool{}
	resp.Responses = make([]kv.TxnOpResponse, 0, len(ops))
	for _, op := range ops {
		k := string(op.Key)
		r := kv.TxnOpResponse{Kind: op.Kind}
		old, existed := current[k]
		if existed {
			r.Kvs = []kv.KeyValue{{Key: bytes.Clone(op.Key), Value: old}}
		}
		switch op.Kind {
		case kv.TxnPut:
			current[k] = nonNil(bytes.Clone(op.Value))
			touched[k] = true
		case kv.TxnDelete:
			if existed {
				r.Deleted = 1
				delete(current, k)
				touched[k] = true
			}
		}
		resp.Responses = append(resp.Responses, r)
	}
	for _, k := range slices.Sorted(maps.Keys(touched)) {
		if v, ok := current[k]; ok {
			putKeys, putValues = append(putKeys, []byte(k)), append(putValues, v)
		} else {
			delKeys = append(delKeys, []byte(k))
		}
	}
	return resp, putKeys, putValues, delKeys
}
