package kv

import (
	"bytes"
	"context"
	"fmt"
)

// Limits bound what one request may carry. Zero fields mean "no limit".
type Limits struct {
	// MaxTxnOps caps the compares, the success ops and the failure ops of one
	// Txn, each counted on its own (etcd's --max-txn-ops rule).
	MaxTxnOps int
	// MaxValueSize caps the size in bytes of every value written.
	MaxValueSize int
}

// WithLimits returns a Backend that refuses requests breaking l, or carrying an
// empty key or an inverted range, before they reach b: a refused request
// changes nothing.
func WithLimits(b Backend, l Limits) Backend {
	return &limited{inner: b, l: l}
}

type limited struct {
	inner Backend
	l     Limits
}

func (b *limited) Name() string { return b.inner.Name() }

func checkKey(what string, key []byte) error {
	if len(key) == 0 {
		return fmt.Errorf("%w: %s must not be empty", ErrEmptyKey, what)
	}
	return nil
}

func checkRange(key, end []byte) error {
	if err := checkKey("key", key); err != nil {
		return err
	}
	if len(end) > 0 && !IsAllKeysFrom(end) && bytes.Compare(end, key) <= 0 {
		return fmt.Errorf("%w: range_end %q must sort after key %q (or be empty for one key, or \"\\x00\" for all keys from key)", ErrInvalidRange, end, key)
	}
	return nil
}

func (l Limits) checkValue(key, value []byte) error {
	if l.MaxValueSize > 0 && len(value) > l.MaxValueSize {
		return fmt.Errorf("%w: value of key %q is %d bytes, max_metadata_value_size is %d bytes", ErrValueTooLarge, key, len(value), l.MaxValueSize)
	}
	return nil
}

func (l Limits) checkOps(what string, n int) error {
	if l.MaxTxnOps > 0 && n > l.MaxTxnOps {
		return fmt.Errorf("%w: txn has %d %s, max_txn_ops is %d", ErrTooManyTxnOps, n, what, l.MaxTxnOps)
	}
	return nil
}

// CheckTxn validates a Txn request against l.
func (l Limits) CheckTxn(req TxnRequest) error {
	if err := l.checkOps("compares", len(req.Compare)); err != nil {
		return err
	}
	if err := l.checkOps("success operations", len(req.Success)); err != nil {
		return err
	}
	if err := l.checkOps("failure operations", len(req.Failure)); err != nil {
		return err
	}
	for i, c := range req.Compare {
		if err := checkKey(fmt.Sprintf("compare[%d].key", i), c.Key); err != nil {
			return err
		}
		if c.Op < CompareEqual || c.Op > CompareGreater {
			return fmt.Errorf("%w: compare[%d] has unknown operator %d", ErrInvalidArgument, i, int(c.Op))
		}
	}
	for _, branch := range []struct {
		name string
		ops  []TxnOp
	}{{"success", req.Success}, {"failure", req.Failure}} {
		for i, op := range branch.ops {
			if err := checkKey(fmt.Sprintf("%s[%d].key", branch.name, i), op.Key); err != nil {
				return err
			}
			switch op.Kind {
			case TxnPut:
				if err := l.checkValue(op.Key, op.Value); err != nil {
					return err
				}
			case TxnGet, TxnDelete:
			default:
				return fmt.Errorf("%w: %s[%d] has unknown operation kind %d", ErrInvalidArgument, branch.name, i, int(op.Kind))
			}
		}
	}
	return nil
}

func (b *limited) Range(ctx context.Context, req RangeRequest) (RangeResponse, error) {
	if err := checkRange(req.Key, req.RangeEnd); err != nil {
		return RangeResponse{}, err
	}
	if req.Limit < 0 {
		return RangeResponse{}, fmt.Errorf("%w: limit must be >= 0, got %d", ErrInvalidArgument, req.Limit)
	}
	return b.inner.Range(ctx, req)
}

func (b *limited) Put(ctx context.Context, req PutRequest) (PutResponse, error) {
	if err := checkKey("key", req.Key); err != nil {
		return PutResponse{}, err
	}
	if err := b.l.checkValue(req.Key, req.Value); err != nil {
		return PutResponse{}, err
	}
	return b.inner.Put(ctx, req)
}

func (b *limited) BatchGet(ctx context.Context, req BatchGetRequest) (BatchGetResponse, error) {
	for i, k := range req.Keys {
		if err := checkKey(fmt.Sprintf("keys[%d]", i), k); err != nil {
			return BatchGetResponse{}, err
		}
	}
	return b.inner.BatchGet(ctx, req)
}

func (b *limited) BatchPut(ctx context.Context, req BatchPutRequest) (BatchPutResponse, error) {
	for i, kv := range req.Kvs {
		if err := checkKey(fmt.Sprintf("kvs[%d].key", i), kv.Key); err != nil {
			return BatchPutResponse{}, err
		}
		if err := b.l.checkValue(kv.Key, kv.Value); err != nil {
			return BatchPutResponse{}, err
		}
	}
	return b.inner.BatchPut(ctx, req)
}

func (b *limited) BatchDelete(ctx context.Context, req BatchDeleteRequest) (BatchDeleteResponse, error) {
	for i, k := range req.Keys {
		if err := checkKey(fmt.Sprintf("keys[%d]", i), k); err != nil {
			return BatchDeleteResponse{}, err
		}
	}
	return b.inner.BatchDelete(ctx, req)
}

func (b *limited) DeleteRange(ctx context.Context, req DeleteRangeRequest) (DeleteRangeResponse, error) {
	if err := checkRange(req.Key, req.RangeEnd); err != nil {
		return DeleteRangeResponse{}, err
	}
	return b.inner.DeleteRange(ctx, req)
}

func (b *limited) CompareAndPut(ctx context.Context, req CompareAndPutRequest) (CompareAndPutResponse, error) {
	if err := checkKey("key", req.Key); err != nil {
		return CompareAndPutResponse{}, err
	}
	if err := b.l.checkValue(req.Key, req.Value); err != nil {
		return CompareAndPutResponse{}, err
	}
	return b.inner.CompareAndPut(ctx, req)
}

func (b *limited) Txn(ctx context.Context, req TxnRequest) (TxnResponse, error) {
	if err := b.l.CheckTxn(req); err != nil {
		return TxnResponse{}, err
	}
	return b.inner.Txn(ctx, req)
}
