package kvtest

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/kv"
)

func limitCases() []testCase {
	return []testCase{
		{"TooManyTxnOps", testLimitTxnOps},
		{"ValueTooLarge", testLimitValueSize},
		{"KeyTooLarge", testLimitKeySize},
		{"EmptyKey", testLimitEmptyKey},
		{"InvalidRange", testLimitInvalidRange},
	}
}

// refused asserts that err is the sentinel want, is an ErrInvalidArgument, and
// that the store still holds exactly before.
func refused(t *testing.T, b kv.Backend, err, want error, before []pair, what string) {
	t.Helper()
	require.ErrorIs(t, err, want, what)
	require.ErrorIs(t, err, kv.ErrInvalidArgument, what)
	require.Equal(t, before, dump(t, b), "%s changed the store", what)
}

func nOps(n int, op func(i int) kv.TxnOp) []kv.TxnOp {
	ops := make([]kv.TxnOp, n)
	for i := range ops {
		ops[i] = op(i)
	}
	return ops
}

func nCompares(n int, c kv.Compare) []kv.Compare {
	cs := make([]kv.Compare, n)
	for i := range cs {
		cs[i] = c
	}
	return cs
}

func numberedKey(prefix string, i int) []byte {
	return []byte(prefix + string(rune('a'+i)))
}

func testLimitTxnOps(t *testing.T, raw kv.Backend) {
	ctx := t.Context()
	b := kv.WithLimits(raw, Limits())
	seed(t, b, "k")
	before := dump(t, b)
	putOp := func(i int) kv.TxnOp { return kv.OpPut(numberedKey("p", i), []byte("v")) }
	exists := kv.CompareExists([]byte("k"))

	for name, req := range map[string]kv.TxnRequest{
		"success": {Compare: []kv.Compare{exists}, Success: nOps(MaxTxnOps+1, putOp)},
		// The failure branch counts too, even when the success branch would run.
		"failure": {Compare: []kv.Compare{exists}, Success: nOps(1, putOp), Failure: nOps(MaxTxnOps+1, putOp)},
		"compares": {
			Compare: nCompares(MaxTxnOps+1, exists),
			Success: nOps(1, putOp),
		},
	} {
		_, err := b.Txn(ctx, req)
		refused(t, b, err, kv.ErrTooManyTxnOps, before, "txn with too many "+name)
		require.Contains(t, err.Error(), "max_txn_ops", "the error names the limit")
	}

	resp, err := b.Txn(ctx, kv.TxnRequest{
		Compare: nCompares(MaxTxnOps, exists),
		Success: nOps(MaxTxnOps, putOp),
		Failure: nOps(MaxTxnOps, putOp),
	})
	require.NoError(t, err, "exactly max_txn_ops in each part is allowed")
	require.True(t, resp.Succeeded)
	require.Len(t, dump(t, b), 1+MaxTxnOps)
}

func testLimitValueSize(t *testing.T, raw kv.Backend) {
	ctx := t.Context()
	b := kv.WithLimits(raw, Limits())
	seed(t, b, "k")
	before := dump(t, b)
	big := bytes.Repeat([]byte("x"), MaxValueSize+1)

	_, err := b.Put(ctx, kv.PutRequest{Key: []byte("big"), Value: big})
	refused(t, b, err, kv.ErrValueTooLarge, before, "put")
	require.Contains(t, err.Error(), "big", "the error names the key")

	_, err = b.BatchPut(ctx, kv.BatchPutRequest{Kvs: []kv.KeyValue{
		{Key: []byte("a"), Value: []byte("small")}, {Key: []byte("big"), Value: big}, {Key: []byte("z"), Value: []byte("small")},
	}})
	refused(t, b, err, kv.ErrValueTooLarge, before, "batch put with one large value")

	_, err = b.CompareAndPut(ctx, kv.CompareAndPutRequest{Key: []byte("k"), Expect: []byte(valueOf("k")), Value: big})
	refused(t, b, err, kv.ErrValueTooLarge, before, "compare and put")

	_, err = b.Txn(ctx, kv.TxnRequest{
		Success: []kv.TxnOp{kv.OpPut([]byte("a"), []byte("small")), kv.OpPut([]byte("big"), big)},
	})
	refused(t, b, err, kv.ErrValueTooLarge, before, "txn put")

	_, err = b.Txn(ctx, kv.TxnRequest{
		Compare: []kv.Compare{kv.CompareAbsent([]byte("k"))},
		Failure: []kv.TxnOp{kv.OpPut([]byte("big"), big)},
	})
	refused(t, b, err, kv.ErrValueTooLarge, before, "txn put in the failure branch")

	exact := bytes.Repeat([]byte("y"), MaxValueSize)
	_, err = b.Put(ctx, kv.PutRequest{Key: []byte("exact"), Value: exact})
	require.NoError(t, err, "a value of exactly the maximum size is allowed")
	requireValue(t, b, "exact", string(exact))
}

func testLimitEmptyKey(t *testing.T, raw kv.Backend) {
	ctx := t.Context()
	b := kv.WithLimits(raw, Limits())
	seed(t, b, "k")
	before := dump(t, b)
	empty := []byte{}
	v := []byte("v")

	calls := map[string]func() error{
		"range": func() error { _, err := b.Range(ctx, kv.RangeRequest{Key: empty, RangeEnd: []byte{0}}); return err },
		"put":   func() error { _, err := b.Put(ctx, kv.PutRequest{Key: nil, Value: v}); return err },
		"batch get": func() error {
			_, err := b.BatchGet(ctx, kv.BatchGetRequest{Keys: [][]byte{[]byte("k"), empty}})
			return err
		},
		"batch put": func() error {
			_, err := b.BatchPut(ctx, kv.BatchPutRequest{Kvs: []kv.KeyValue{{Key: []byte("a"), Value: v}, {Key: empty, Value: v}}})
			return err
		},
		"batch delete": func() error {
			_, err := b.BatchDelete(ctx, kv.BatchDeleteRequest{Keys: [][]byte{[]byte("k"), empty}})
			return err
		},
		"delete range": func() error {
			_, err := b.DeleteRange(ctx, kv.DeleteRangeRequest{Key: empty, RangeEnd: []byte{0}})
			return err
		},
		"compare and put": func() error {
			_, err := b.CompareAndPut(ctx, kv.CompareAndPutRequest{Key: empty, Value: v})
			return err
		},
		"txn compare": func() error {
			_, err := b.Txn(ctx, kv.TxnRequest{Compare: []kv.Compare{kv.CompareAbsent(empty)}, Success: []kv.TxnOp{kv.OpPut([]byte("a"), v)}})
			return err
		},
		"txn op": func() error {
			_, err := b.Txn(ctx, kv.TxnRequest{Success: []kv.TxnOp{kv.OpPut([]byte("a"), v), kv.OpDelete(empty)}})
			return err
		},
	}
	for name, call := range calls {
		refused(t, b, call(), kv.ErrEmptyKey, before, name)
	}
}

func testLimitInvalidRange(t *testing.T, raw kv.Backend) {
	testEdgeInvertedRange(t, raw)
}
