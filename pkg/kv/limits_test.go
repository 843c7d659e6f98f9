package kv_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/kv"
)

func puts(n int) []kv.TxnOp {
	ops := make([]kv.TxnOp, n)
	for i := range ops {
		ops[i] = kv.OpPut([]byte{'k', byte(i)}, []byte("v"))
	}
	return ops
}

func TestCheckTxnCountsEachPart(t *testing.T) {
	t.Parallel()
	l := kv.Limits{MaxTxnOps: 2}
	cmp := kv.CompareExists([]byte("k"))
	require.NoError(t, l.CheckTxn(kv.TxnRequest{Compare: []kv.Compare{cmp, cmp}, Success: puts(2), Failure: puts(2)}),
		"each part is counted on its own")

	for _, tc := range []struct {
		req  kv.TxnRequest
		what string
	}{
		{kv.TxnRequest{Compare: []kv.Compare{cmp, cmp, cmp}}, "txn has 3 compares, max_txn_ops is 2"},
		{kv.TxnRequest{Success: puts(3)}, "txn has 3 success operations, max_txn_ops is 2"},
		{kv.TxnRequest{Failure: puts(4)}, "txn has 4 failure operations, max_txn_ops is 2"},
	} {
		err := l.CheckTxn(tc.req)
		require.ErrorIs(t, err, kv.ErrTooManyTxnOps)
		require.ErrorContains(t, err, tc.what)
	}
	require.NoError(t, kv.Limits{}.CheckTxn(kv.TxnRequest{Success: puts(200)}), "zero means no limit")
}

func TestCheckTxnValueSize(t *testing.T) {
	t.Parallel()
	l := kv.Limits{MaxValueSize: 4}
	require.NoError(t, l.CheckTxn(kv.TxnRequest{Success: []kv.TxnOp{kv.OpPut([]byte("k"), []byte("1234"))}}))
	err := l.CheckTxn(kv.TxnRequest{Failure: []kv.TxnOp{kv.OpGet([]byte("g")), kv.OpPut([]byte("big"), []byte("12345"))}})
	require.ErrorIs(t, err, kv.ErrValueTooLarge)
	require.ErrorContains(t, err, `value of key "big" is 5 bytes, max_metadata_value_size is 4 bytes`)
	require.NoError(t, kv.Limits{}.CheckTxn(kv.TxnRequest{Success: []kv.TxnOp{kv.OpPut([]byte("k"), bytes.Repeat([]byte("x"), 1<<20))}}))
}

func TestCheckTxnMalformed(t *testing.T) {
	t.Parallel()
	var l kv.Limits
	for _, tc := range []struct {
		req  kv.TxnRequest
		want error
		what string
	}{
		{kv.TxnRequest{Compare: []kv.Compare{kv.CompareAbsent(nil)}}, kv.ErrEmptyKey, "compare[0].key must not be empty"},
		{kv.TxnRequest{Success: []kv.TxnOp{kv.OpGet([]byte("a")), kv.OpDelete(nil)}}, kv.ErrEmptyKey, "success[1].key must not be empty"},
		{kv.TxnRequest{Failure: []kv.TxnOp{kv.OpPut([]byte{}, nil)}}, kv.ErrEmptyKey, "failure[0].key must not be empty"},
		{kv.TxnRequest{Compare: []kv.Compare{{Key: []byte("a"), Op: kv.CompareOp(7)}}}, kv.ErrInvalidArgument, "compare[0] has unknown operator 7"},
		{kv.TxnRequest{Success: []kv.TxnOp{{Kind: kv.TxnOpKind(5), Key: []byte("a")}}}, kv.ErrInvalidArgument, "success[0] has unknown operation kind 5"},
	} {
		err := l.CheckTxn(tc.req)
		require.ErrorIs(t, err, tc.want)
		require.ErrorContains(t, err, tc.what)
	}
}

func TestWithLimitsMessages(t *testing.T) {
	t.Parallel()
	b := kv.WithLimits(newRecorder(), kv.Limits{MaxValueSize: 2})
	ctx := t.Context()

	_, err := b.Range(ctx, kv.RangeRequest{Key: []byte("b"), RangeEnd: []byte("a")})
	require.ErrorIs(t, err, kv.ErrInvalidRange)
	require.ErrorContains(t, err, `range_end "a" sorts before key "b"`)

	_, err = b.BatchPut(ctx, kv.BatchPutRequest{Kvs: []kv.KeyValue{{Key: []byte("ok"), Value: []byte("1")}, {Key: nil, Value: []byte("1")}}})
	require.ErrorIs(t, err, kv.ErrEmptyKey)
	require.ErrorContains(t, err, "kvs[1].key must not be empty")

	_, err = b.CompareAndPut(ctx, kv.CompareAndPutRequest{Key: []byte("c"), Value: []byte("123")})
	require.ErrorIs(t, err, kv.ErrValueTooLarge)
	require.ErrorContains(t, err, "max_metadata_value_size is 2 bytes")

	_, err = b.BatchDelete(ctx, kv.BatchDeleteRequest{Keys: [][]byte{[]byte("a"), {}}})
	require.ErrorContains(t, err, "keys[1] must not be empty")
}

func TestWithLimitsPassesValidRequests(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	b := kv.WithLimits(rec, kv.Limits{MaxTxnOps: 1, MaxValueSize: 1})
	ctx := t.Context()
	_, err := b.Range(ctx, kv.RangeRequest{Key: []byte("a"), RangeEnd: []byte{0}})
	require.NoError(t, err)
	_, err = b.Put(ctx, kv.PutRequest{Key: []byte("a"), Value: []byte("1")})
	require.NoError(t, err)
	_, err = b.DeleteRange(ctx, kv.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte("b")})
	require.NoError(t, err)
	_, err = b.Txn(ctx, kv.TxnRequest{Success: puts(1)})
	require.NoError(t, err)
	require.Equal(t, []string{"range", "put", "delete_range", "txn"}, rec.calls)
	require.Equal(t, "recorder", b.Name())
}

func TestMaxKeySize(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	at := func(n int) []byte { return bytes.Repeat([]byte("k"), n) }

	// Zero is the default, 2048 bytes: below what PostgreSQL's index takes
	// with room left for store_key_prefix.
	require.Equal(t, 2048, kv.DefaultMaxKeySize)
	require.Less(t, kv.DefaultMaxKeySize, kv.MaxStoredKeySize)
	for _, l := range []kv.Limits{{}, {MaxKeySize: -1}} {
		b := kv.WithLimits(newRecorder(), l)
		_, err := b.Put(ctx, kv.PutRequest{Key: at(kv.DefaultMaxKeySize)})
		require.NoError(t, err)
		_, err = b.Put(ctx, kv.PutRequest{Key: at(kv.DefaultMaxKeySize + 1)})
		require.ErrorIs(t, err, kv.ErrKeyTooLarge)
		require.ErrorIs(t, err, kv.ErrInvalidArgument)
		require.ErrorContains(t, err, `key "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"... is 2049 bytes, max_key_size is 2048 bytes`)
	}

	b := kv.WithLimits(newRecorder(), kv.Limits{MaxKeySize: 4})
	_, err := b.BatchPut(ctx, kv.BatchPutRequest{Kvs: []kv.KeyValue{{Key: at(4)}, {Key: at(5)}}})
	require.ErrorContains(t, err, `kvs[1].key "kkkkk" is 5 bytes, max_key_size is 4 bytes`)
	err = kv.Limits{MaxKeySize: 4}.CheckTxn(kv.TxnRequest{Compare: []kv.Compare{kv.CompareExists(at(5))}})
	require.ErrorIs(t, err, kv.ErrKeyTooLarge)
	require.ErrorContains(t, err, "compare[0].key")
	err = kv.Limits{MaxKeySize: 4}.CheckTxn(kv.TxnRequest{Failure: []kv.TxnOp{kv.OpGet(at(4)), kv.OpDelete(at(6))}})
	require.ErrorContains(t, err, "failure[1].key")

	// A key read or deleted by name is a key; the bounds of a scan are not.
	_, err = b.Range(ctx, kv.RangeRequest{Key: at(5)})
	require.ErrorIs(t, err, kv.ErrKeyTooLarge)
	_, err = b.DeleteRange(ctx, kv.DeleteRangeRequest{Key: at(5)})
	require.ErrorIs(t, err, kv.ErrKeyTooLarge)
	_, err = b.Range(ctx, kv.RangeRequest{Key: at(5), RangeEnd: at(9)})
	require.NoError(t, err)
	_, err = b.DeleteRange(ctx, kv.DeleteRangeRequest{Key: at(5), RangeEnd: []byte{0}})
	require.NoError(t, err)
}

// etcd's edge cases: [x, x) is empty, not an error; a negative limit is no
// limit. Both reach the backend, which answers them.
func TestWithLimitsPassesEtcdEdgeCases(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	rec := newRecorder()
	b := kv.WithLimits(rec, kv.Limits{})
	_, err := b.Range(ctx, kv.RangeRequest{Key: []byte("x"), RangeEnd: []byte("x")})
	require.NoError(t, err)
	_, err = b.DeleteRange(ctx, kv.DeleteRangeRequest{Key: []byte("x"), RangeEnd: []byte("x")})
	require.NoError(t, err)
	_, err = b.Range(ctx, kv.RangeRequest{Key: []byte("x"), RangeEnd: []byte{0}, Limit: -1})
	require.NoError(t, err)
	require.Equal(t, []string{"range", "delete_range", "range"}, rec.calls)

	_, err = b.DeleteRange(ctx, kv.DeleteRangeRequest{Key: []byte("x\x00"), RangeEnd: []byte("x")})
	require.ErrorIs(t, err, kv.ErrInvalidRange, "an inverted range stays an error")
}
