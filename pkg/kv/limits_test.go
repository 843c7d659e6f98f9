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
	require.ErrorContains(t, err, `range_end "a" must sort after key "b"`)

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
