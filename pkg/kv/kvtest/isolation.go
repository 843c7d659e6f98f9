package kvtest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/kv"
)

func isolationCases() []testCase {
	return []testCase{
		{"ReturnedBytesDoNotAlias", testReturnedBytesDoNotAlias},
		{"RequestBytesDoNotAlias", testRequestBytesDoNotAlias},
		{"CancelledContext", testCancelledContext},
		{"SharedReadsStayAsRead", testSharedReadsStayAsRead},
	}
}

func scribble(kvs ...kv.KeyValue) {
	for _, e := range kvs {
		for i := range e.Key {
			e.Key[i] = '#'
		}
		for i := range e.Value {
			e.Value[i] = '#'
		}
	}
}

// testReturnedBytesDoNotAlias: a caller scribbling over what a backend returned
// must not change what the backend stores.
func testReturnedBytesDoNotAlias(t *testing.T, b kv.Backend) {
	ctx := t.Context()
	seed(t, b, "a", "b")
	want := dump(t, b)

	r := scan(t, b, kv.RangeRequest{Key: []byte("a"), RangeEnd: []byte{0}})
	scribble(r.Kvs...)
	g, err := b.BatchGet(ctx, kv.BatchGetRequest{Keys: keys("a", "b")})
	require.NoError(t, err)
	scribble(g.Kvs...)
	e, err := kv.Get(ctx, b, []byte("a"))
	require.NoError(t, err)
	scribble(*e)
	tx := txn(t, b, kv.TxnRequest{Success: []kv.TxnOp{kv.OpGet([]byte("a")), kv.OpGet([]byte("b"))}})
	scribble(tx.Responses[0].Kvs...)
	scribble(tx.Responses[1].Kvs...)
	require.Equal(t, want, dump(t, b), "after scribbling over read results")

	p, err := b.Put(ctx, kv.PutRequest{Key: []byte("a"), Value: []byte(valueOf("a")), PrevKv: true})
	require.NoError(t, err)
	scribble(*p.PrevKv)
	bp, err := b.BatchPut(ctx, kv.BatchPutRequest{Kvs: []kv.KeyValue{{Key: []byte("b"), Value: []byte(valueOf("b"))}}, PrevKv: true})
	require.NoError(t, err)
	scribble(bp.PrevKvs...)
	c, err := b.CompareAndPut(ctx, kv.CompareAndPutRequest{Key: []byte("a"), Expect: []byte("nope"), Value: []byte("x")})
	require.NoError(t, err)
	scribble(*c.PrevKv)
	tx = txn(t, b, kv.TxnRequest{Success: []kv.TxnOp{kv.OpPut([]byte("b"), []byte(valueOf("b")))}})
	scribble(tx.Responses[0].Kvs...)
	require.Equal(t, want, dump(t, b), "after scribbling over previous pairs")
}

// testSharedReadsStayAsRead: a Shared read answers what a plain one does, and
// what it returned stays as it was read while the keys are written again or
// deleted; an append to a returned key does not write into its value.
func testSharedReadsStayAsRead(t *testing.T, b kv.Backend) {
	ctx := t.Context()
	seed(t, b, "a", "b", "c")
	plain := scan(t, b, kv.RangeRequest{Key: []byte("a"), RangeEnd: []byte{0}})
	shared := scan(t, b, kv.RangeRequest{Key: []byte("a"), RangeEnd: []byte{0}, Shared: true})
	require.Equal(t, plain.Kvs, shared.Kvs)
	keysOnly := scan(t, b, kv.RangeRequest{Key: []byte("a"), RangeEnd: []byte{0}, KeysOnly: true, Shared: true})
	require.Equal(t, scan(t, b, kv.RangeRequest{Key: []byte("a"), RangeEnd: []byte{0}, KeysOnly: true}).Kvs, keysOnly.Kvs)
	got, err := b.BatchGet(ctx, kv.BatchGetRequest{Keys: keys("c", "a", "missing"), Shared: true})
	require.NoError(t, err)
	require.Equal(t, []kv.KeyValue{plain.Kvs[0], plain.Kvs[2]}, got.Kvs)

	_, err = b.Put(ctx, kv.PutRequest{Key: []byte("a"), Value: []byte("overwritten")})
	require.NoError(t, err)
	_, err = b.BatchDelete(ctx, kv.BatchDeleteRequest{Keys: keys("b")})
	require.NoError(t, err)
	_ = append(shared.Kvs[2].Key, '#', '#', '#', '#')
	require.Equal(t, plain.Kvs, shared.Kvs, "a shared answer changed after the read")
	require.Equal(t, []kv.KeyValue{plain.Kvs[0], plain.Kvs[2]}, got.Kvs, "a shared answer changed after the read")
}

// testRequestBytesDoNotAlias: a caller reusing its buffers after a write must
// not change what the backend stored.
func testRequestBytesDoNotAlias(t *testing.T, b kv.Backend) {
	ctx := t.Context()
	k, v := []byte("put"), []byte("value")
	_, err := b.Put(ctx, kv.PutRequest{Key: k, Value: v})
	require.NoError(t, err)
	scribble(kv.KeyValue{Key: k, Value: v})

	batch := []kv.KeyValue{{Key: []byte("batch"), Value: []byte("value")}}
	_, err = b.BatchPut(ctx, kv.BatchPutRequest{Kvs: batch})
	require.NoError(t, err)
	scribble(batch...)

	k, v = []byte("cas"), []byte("value")
	_, err = b.CompareAndPut(ctx, kv.CompareAndPutRequest{Key: k, Value: v})
	require.NoError(t, err)
	scribble(kv.KeyValue{Key: k, Value: v})

	k, v = []byte("txn"), []byte("value")
	txn(t, b, kv.TxnRequest{Success: []kv.TxnOp{kv.OpPut(k, v)}})
	scribble(kv.KeyValue{Key: k, Value: v})

	require.Equal(t, []pair{{"batch", "value"}, {"cas", "value"}, {"put", "value"}, {"txn", "value"}}, dump(t, b))
}

// testCancelledContext: a request whose context is already done fails with
// the context's error and changes nothing.
func testCancelledContext(t *testing.T, b kv.Backend) {
	seed(t, b, "k")
	before := dump(t, b)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	v := []byte("v")

	_, err := b.Range(ctx, kv.RangeRequest{Key: []byte("k")})
	require.ErrorIs(t, err, context.Canceled, "range")
	_, err = b.Put(ctx, kv.PutRequest{Key: []byte("k"), Value: v})
	require.ErrorIs(t, err, context.Canceled, "put")
	_, err = b.BatchPut(ctx, kv.BatchPutRequest{Kvs: []kv.KeyValue{{Key: []byte("n"), Value: v}}})
	require.ErrorIs(t, err, context.Canceled, "batch put")
	_, err = b.BatchDelete(ctx, kv.BatchDeleteRequest{Keys: keys("k")})
	require.ErrorIs(t, err, context.Canceled, "batch delete")
	_, err = b.DeleteRange(ctx, kv.DeleteRangeRequest{Key: []byte("\x00"), RangeEnd: []byte{0}})
	require.ErrorIs(t, err, context.Canceled, "delete range")
	_, err = b.CompareAndPut(ctx, kv.CompareAndPutRequest{Key: []byte("k"), Expect: []byte(valueOf("k")), Value: v})
	require.ErrorIs(t, err, context.Canceled, "compare and put")
	_, err = b.Txn(ctx, kv.TxnRequest{Success: []kv.TxnOp{kv.OpDelete([]byte("k"))}})
	require.ErrorIs(t, err, context.Canceled, "txn")
	require.Equal(t, before, dump(t, b))
}
