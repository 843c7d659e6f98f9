// Package kv defines the key-value contract every metasrv storage backend
// implements: the request and response types, the range conventions, the
// sentinel errors and the wrappers shared by all backends (key prefix chroot,
// request limits).
//
// Keys and values are arbitrary bytes. Ranges follow etcd's conventions:
//
//   - RangeEnd empty: the single key Key.
//   - RangeEnd == "\x00": every key >= Key (with Key "\x00" too: every key).
//   - otherwise: keys in [Key, RangeEnd), compared bytewise. RangeEnd == Key
//     is the empty interval: it selects (and deletes) nothing, as in etcd. A
//     RangeEnd sorting before Key is refused by WithLimits (ErrInvalidRange);
//     a backend given one directly selects nothing.
//
// A Range's Limit of 0 or less is no limit (etcd treats a negative limit so).
//
// PrefixEnd(p) gives the RangeEnd that selects exactly the keys starting with p.
package kv

import (
	"bytes"
	"context"
)

// KeyValue is one stored pair.
type KeyValue struct {
	Key   []byte
	Value []byte
}

// Backend is a key-value store. Every method is atomic: it either applies
// completely or not at all, and a successful return means the change is durable
// in the backend's sense (committed, for PostgreSQL).
type Backend interface {
	// Name identifies the backend in logs and metrics (memory_store, postgres_store).
	Name() string
	Range(ctx context.Context, req RangeRequest) (RangeResponse, error)
	Put(ctx context.Context, req PutRequest) (PutResponse, error)
	BatchGet(ctx context.Context, req BatchGetRequest) (BatchGetResponse, error)
	BatchPut(ctx context.Context, req BatchPutRequest) (BatchPutResponse, error)
	BatchDelete(ctx context.Context, req BatchDeleteRequest) (BatchDeleteResponse, error)
	DeleteRange(ctx context.Context, req DeleteRangeRequest) (DeleteRangeResponse, error)
	// CompareAndPut stores Value under Key if the current value equals Expect;
	// an empty Expect means "the key is absent".
	CompareAndPut(ctx context.Context, req CompareAndPutRequest) (CompareAndPutResponse, error)
	// Txn evaluates every Compare; if all hold it applies Success, else Failure,
	// all in one atomic step.
	Txn(ctx context.Context, req TxnRequest) (TxnResponse, error)
}

// ResettableBackend is a backend that can drop all of its content at once; the
// leader's in-memory KV is one.
type ResettableBackend interface {
	Backend
	Reset()
}

// RangeRequest selects keys; see the package comment for RangeEnd.
type RangeRequest struct {
	Key      []byte
	RangeEnd []byte
	// Limit caps the number of returned pairs; 0 or less means no limit.
	Limit int64
	// KeysOnly leaves Value nil in the result.
	KeysOnly bool
	// Shared lets the backend answer with pairs that share its own memory
	// instead of copies, for a caller that only reads them (the API
	// servers marshal them into a response and drop them). Such a caller
	// must never write into them. A backend without memory of its own
	// (PostgreSQL) ignores it.
	Shared bool
}

// RangeResponse holds the selected pairs in key order.
type RangeResponse struct {
	Kvs []KeyValue
	// More is true when Limit cut the result: more keys match.
	More bool
}

type PutRequest struct {
	Key   []byte
	Value []byte
	// PrevKv asks for the value the key held before the put.
	PrevKv bool
}

type PutResponse struct {
	// PrevKv is the previous pair when requested and the key existed.
	PrevKv *KeyValue
}

type BatchGetRequest struct {
	Keys [][]byte
	// Shared is RangeRequest.Shared.
	Shared bool
}

// BatchGetResponse holds the pairs that exist, in key order; missing keys are
// left out.
type BatchGetResponse struct {
	Kvs []KeyValue
}

type BatchPutRequest struct {
	Kvs    []KeyValue
	PrevKv bool
}

// BatchPutResponse holds, when requested, the previous pairs of the keys that
// existed, in key order.
type BatchPutResponse struct {
	PrevKvs []KeyValue
}

type BatchDeleteRequest struct {
	Keys   [][]byte
	PrevKv bool
}

// BatchDeleteResponse holds, when requested, the deleted pairs in key order.
type BatchDeleteResponse struct {
	PrevKvs []KeyValue
}

type DeleteRangeRequest struct {
	Key      []byte
	RangeEnd []byte
	PrevKv   bool
}

// DeleteRangeResponse reports how many keys were deleted and, when requested,
// the deleted pairs in key order.
type DeleteRangeResponse struct {
	Deleted int64
	PrevKvs []KeyValue
}

type CompareAndPutRequest struct {
	Key []byte
	// Expect is the value the key must hold; empty means the key must be absent.
	Expect []byte
	Value  []byte
}

type CompareAndPutResponse struct {
	Success bool
	// PrevKv is the pair as it was before the call (nil if the key was absent),
	// so a failed caller sees what won.
	PrevKv *KeyValue
}

// Get returns the pair stored under key, or nil when the key is absent.
func Get(ctx context.Context, b Backend, key []byte) (*KeyValue, error) {
	resp, err := b.Range(ctx, RangeRequest{Key: key})
	if err != nil {
		return nil, err
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	return &resp.Kvs[0], nil
}

// PrefixEnd returns the RangeEnd that, with Key = prefix, selects every key that
// starts with prefix: the prefix with its last byte below 0xff incremented and
// the 0xff bytes after it dropped. A prefix made only of 0xff bytes (or empty)
// has no upper bound, so the result is "\x00" (every key >= prefix).
func PrefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return []byte{0}
}

// InRange reports whether key falls in the range described by (start, end)
// under the package's RangeEnd conventions. Backends that filter in Go use it so
// they all agree on the edge cases.
func InRange(key, start, end []byte) bool {
	switch {
	case len(end) == 0:
		return bytes.Equal(key, start)
	case len(end) == 1 && end[0] == 0:
		return bytes.Compare(key, start) >= 0
	default:
		return bytes.Compare(key, start) >= 0 && bytes.Compare(key, end) < 0
	}
}

// IsAllKeysFrom reports whether end means "no upper bound".
func IsAllKeysFrom(end []byte) bool {
	return len(end) == 1 && end[0] == 0
}
