package kv

import (
	"bytes"
	"context"
	"fmt"
)

const (
	// DefaultMaxKeySize is max_key_size, the longest key a request may name,
	// when Limits.MaxKeySize is zero: 2 KiB, below what PostgreSQL's B-tree
	// index on the table's primary key accepts (MaxStoredKeySize) with 644
	// bytes to spare for store_key_prefix.
	DefaultMaxKeySize = 2048
	// MaxStoredKeySize is the longest key, store_key_prefix included, that the
	// B-tree index of "(k bytea PRIMARY KEY, v bytea)" always accepts with
	// PostgreSQL's 8 KiB pages: an index row is at most 2704 bytes (btree
	// version 4), of which 8 are the row header and 4 the bytea length.
	// Longer keys may still fit when they compress; nothing relies on that.
	// max_key_size plus the length of store_key_prefix must not exceed it.
	MaxStoredKeySize = 2692
)

// Limits bound what one request may carry. Zero fields mean "no limit",
// except MaxKeySize.
type Limits struct {
	// MaxTxnOps caps the compares, the success ops and the failure ops of one
	// Txn, each counted on its own (etcd's --max-txn-ops rule).
	MaxTxnOps int
	// MaxValueSize caps the size in bytes of every value written.
	MaxValueSize int
	// MaxKeySize caps the size in bytes of every key a request names: each
	// key written, deleted, compared or read by name (a Range or DeleteRange
	// without RangeEnd is one key). The bounds of a scan (Key and RangeEnd of
	// a Range or DeleteRange with a RangeEnd) are not keys and are not
	// capped, so a scan can go on from the longest key + "\x00". Zero (or
	// less) means DefaultMaxKeySize.
	MaxKeySize int
}

// maxKeySize is the effective key limit.
func (l Limits) maxKeySize() int {
	if l.MaxKeySize <= 0 {
		return DefaultMaxKeySize
	}
	return l.MaxKeySize
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

// shownKeyBytes is how much of an over-long key an error quotes.
const shownKeyBytes = 32

// shortKey quotes key for an error message, cut after its first 32 bytes.
func shortKey(key []byte) string {
	if len(key) <= shownKeyBytes {
		return fmt.Sprintf("%q", key)
	}
	return fmt.Sprintf("%q...", key[:shownKeyBytes])
}

func checkNotEmpty(what string, key []byte) error {
	if len(key) == 0 {
		return fmt.Errorf("%w: %s must not be empty", ErrEmptyKey, what)
	}
	return nil
}

// checkKey validates a key the request names: not empty, within max_key_size.
func (l Limits) checkKey(what string, key []byte) error {
	if err := checkNotEmpty(what, key); err != nil {
		return err
	}
	if limit := l.maxKeySize(); len(key) > limit {
		return fmt.Errorf("%w: %s %s is %d bytes, max_key_size is %d bytes", ErrKeyTooLarge, what, shortKey(key), len(key), limit)
	}
	return nil
}

// checkRange validates the range of a Range or DeleteRange. A RangeEnd equal
// to Key is the empty interval [key, key), which selects nothing, as in
// etcd; one sorting before Key is refused.
func (l Limits) checkRange(key, end []byte) error {
	if len(end) == 0 {
		return l.checkKey("key", key)
	}
	if err := checkNotEmpty("key", key); err != nil {
		return err
	}
	if !IsAllKeysFrom(end) && bytes.Compare(end, key) < 0 {
		return fmt.Errorf("%w: range_end %s sorts before key %s (want range_end >= key, or empty for one key, or \"\\x00\" for all keys from key)", ErrInvalidRange, shortKey(end), shortKey(key))
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
		if err := l.checkKey(fmt.Sprintf("compare[%d].key", i), c.Key); err != nil {
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
			if err := l.checkKey(fmt.Sprintf("%s[%d].key", branch.name, i), op.Key); err != nil {
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
	// A negative Limit is no limit, as in etcd; every backend reads it so.
	if err := b.l.checkRange(req.Key, req.RangeEnd); err != nil {
		return RangeResponse{}, err
	}
	return b.inner.Range(ctx, req)
}

func (b *limited) Put(ctx context.Context, req PutRequest) (PutResponse, error) {
	if err := b.l.checkKey("key", req.Key); err != nil {
		return PutResponse{}, err
	}
	if err := b.l.checkValue(req.Key, req.Value); err != nil {
		return PutResponse{}, err
	}
	return b.inner.Put(ctx, req)
}

func (b *limited) BatchGet(ctx context.Context, req BatchGetRequest) (BatchGetResponse, error) {
	for i, k := range req.Keys {
		if err := b.l.checkKey(fmt.Sprintf("keys[%d]", i), k); err != nil {
			return BatchGetResponse{}, err
		}
	}
	return b.inner.BatchGet(ctx, req)
}

func (b *limited) BatchPut(ctx context.Context, req BatchPutRequest) (BatchPutResponse, error) {
	for i, kv := range req.Kvs {
		if err := b.l.checkKey(fmt.Sprintf("kvs[%d].key", i), kv.Key); err != nil {
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
		if err := b.l.checkKey(fmt.Sprintf("keys[%d]", i), k); err != nil {
			return BatchDeleteResponse{}, err
		}
	}
	return b.inner.BatchDelete(ctx, req)
}

func (b *limited) DeleteRange(ctx context.Context, req DeleteRangeRequest) (DeleteRangeResponse, error) {
	if err := b.l.checkRange(req.Key, req.RangeEnd); err != nil {
		return DeleteRangeResponse{}, err
	}
	return b.inner.DeleteRange(ctx, req)
}

func (b *limited) CompareAndPut(ctx context.Context, req CompareAndPutRequest) (CompareAndPutResponse, error) {
	if err := b.l.checkKey("key", req.Key); err != nil {
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
