package kv_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// recorder is a Backend that keeps the requests it receives and answers with
// pairs echoing the keys it was given, so a test can see both directions of a
// wrapper's key mapping.
type recorder struct {
	calls []string
	last  any
}

func newRecorder() *recorder { return &recorder{} }

func (r *recorder) note(call string, req any) {
	r.calls = append(r.calls, call)
	r.last = req
}

func echo(k []byte) kv.KeyValue { return kv.KeyValue{Key: k, Value: []byte("v")} }

func (r *recorder) Name() string { return "recorder" }

func (r *recorder) Range(_ context.Context, req kv.RangeRequest) (kv.RangeResponse, error) {
	r.note("range", req)
	return kv.RangeResponse{Kvs: []kv.KeyValue{echo(req.Key)}}, nil
}

func (r *recorder) Put(_ context.Context, req kv.PutRequest) (kv.PutResponse, error) {
	r.note("put", req)
	e := echo(req.Key)
	return kv.PutResponse{PrevKv: &e}, nil
}

func (r *recorder) BatchGet(_ context.Context, req kv.BatchGetRequest) (kv.BatchGetResponse, error) {
	r.note("batch_get", req)
	return kv.BatchGetResponse{Kvs: []kv.KeyValue{echo(req.Keys[0])}}, nil
}

func (r *recorder) BatchPut(_ context.Context, req kv.BatchPutRequest) (kv.BatchPutResponse, error) {
	r.note("batch_put", req)
	return kv.BatchPutResponse{PrevKvs: []kv.KeyValue{echo(req.Kvs[0].Key)}}, nil
}

func (r *recorder) BatchDelete(_ context.Context, req kv.BatchDeleteRequest) (kv.BatchDeleteResponse, error) {
	r.note("batch_delete", req)
	return kv.BatchDeleteResponse{PrevKvs: []kv.KeyValue{echo(req.Keys[0])}}, nil
}

func (r *recorder) DeleteRange(_ context.Context, req kv.DeleteRangeRequest) (kv.DeleteRangeResponse, error) {
	r.note("delete_range", req)
	return kv.DeleteRangeResponse{Deleted: 1, PrevKvs: []kv.KeyValue{echo(req.Key)}}, nil
}

func (r *recorder) CompareAndPut(_ context.Context, req kv.CompareAndPutRequest) (kv.CompareAndPutResponse, error) {
	r.note("compare_and_put", req)
	e := echo(req.Key)
	return kv.CompareAndPutResponse{PrevKv: &e}, nil
}

func (r *recorder) Txn(_ context.Context, req kv.TxnRequest) (kv.TxnResponse, error) {
	r.note("txn", req)
	var resp kv.TxnResponse
	for _, op := range req.Success {
		resp.Responses = append(resp.Responses, kv.TxnOpResponse{Kind: op.Kind, Kvs: []kv.KeyValue{echo(op.Key)}})
	}
	return resp, nil
}

func TestWithPrefixEmptyIsIdentity(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	require.Same(t, rec, kv.WithPrefix(rec, nil))
}

func TestChrootRangeMapping(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	rec := newRecorder()
	c := kv.WithPrefix(rec, []byte("p/"))
	for _, tc := range []struct {
		name             string
		key, end         string
		wantKey, wantEnd string
	}{
		{"single key", "k", "", "p/k", ""},
		{"explicit end", "a", "b", "p/a", "p/b"},
		{"all from key stays in the prefix", "a", "\x00", "p/a", "p0"},
		{"everything", "\x00", "\x00", "p/\x00", "p0"},
	} {
		resp, err := c.Range(ctx, kv.RangeRequest{Key: []byte(tc.key), RangeEnd: []byte(tc.end), Limit: 3, KeysOnly: true})
		require.NoError(t, err)
		got := rec.last.(kv.RangeRequest)
		require.Equal(t, tc.wantKey, string(got.Key), tc.name)
		require.Equal(t, tc.wantEnd, string(got.RangeEnd), tc.name)
		require.EqualValues(t, 3, got.Limit)
		require.True(t, got.KeysOnly)
		require.Equal(t, tc.key, string(resp.Kvs[0].Key), "%s: the prefix is stripped", tc.name)

		_, err = c.DeleteRange(ctx, kv.DeleteRangeRequest{Key: []byte(tc.key), RangeEnd: []byte(tc.end)})
		require.NoError(t, err)
		del := rec.last.(kv.DeleteRangeRequest)
		require.Equal(t, tc.wantKey, string(del.Key), tc.name)
		require.Equal(t, tc.wantEnd, string(del.RangeEnd), tc.name)
	}
}

func TestChrootAllFFPrefix(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	c := kv.WithPrefix(rec, []byte("\xff\xff"))
	_, err := c.Range(t.Context(), kv.RangeRequest{Key: []byte("a"), RangeEnd: []byte{0}})
	require.NoError(t, err)
	got := rec.last.(kv.RangeRequest)
	require.Equal(t, []byte("\xff\xffa"), got.Key)
	require.Equal(t, []byte{0}, got.RangeEnd, "an all-0xff prefix has no end: every key after it starts with it")
}

func TestChrootKeyMapping(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	rec := newRecorder()
	prefix := []byte("p/")
	c := kv.WithPrefix(rec, prefix)
	prefix[0] = 'X' // the chroot keeps its own copy

	p, err := c.Put(ctx, kv.PutRequest{Key: []byte("k"), Value: []byte("v"), PrevKv: true})
	require.NoError(t, err)
	require.Equal(t, "p/k", string(rec.last.(kv.PutRequest).Key))
	require.Equal(t, "k", string(p.PrevKv.Key))

	reqKeys := [][]byte{[]byte("a"), []byte("b")}
	g, err := c.BatchGet(ctx, kv.BatchGetRequest{Keys: reqKeys})
	require.NoError(t, err)
	require.Equal(t, [][]byte{[]byte("p/a"), []byte("p/b")}, rec.last.(kv.BatchGetRequest).Keys)
	require.Equal(t, "a", string(g.Kvs[0].Key))
	require.Equal(t, [][]byte{[]byte("a"), []byte("b")}, reqKeys, "the caller's request is not rewritten")

	bp, err := c.BatchPut(ctx, kv.BatchPutRequest{Kvs: []kv.KeyValue{{Key: []byte("a"), Value: []byte("1")}}, PrevKv: true})
	require.NoError(t, err)
	sent := rec.last.(kv.BatchPutRequest)
	require.Equal(t, "p/a", string(sent.Kvs[0].Key))
	require.Equal(t, "1", string(sent.Kvs[0].Value))
	require.True(t, sent.PrevKv)
	require.Equal(t, "a", string(bp.PrevKvs[0].Key))

	bd, err := c.BatchDelete(ctx, kv.BatchDeleteRequest{Keys: [][]byte{[]byte("d")}})
	require.NoError(t, err)
	require.Equal(t, "p/d", string(rec.last.(kv.BatchDeleteRequest).Keys[0]))
	require.Equal(t, "d", string(bd.PrevKvs[0].Key))

	cp, err := c.CompareAndPut(ctx, kv.CompareAndPutRequest{Key: []byte("c"), Expect: []byte("e"), Value: []byte("v")})
	require.NoError(t, err)
	sentCAS := rec.last.(kv.CompareAndPutRequest)
	require.Equal(t, "p/c", string(sentCAS.Key))
	require.Equal(t, "e", string(sentCAS.Expect), "values are not prefixed")
	require.Equal(t, "c", string(cp.PrevKv.Key))

	tx, err := c.Txn(ctx, kv.TxnRequest{
		Compare: []kv.Compare{kv.CompareValue([]byte("x"), kv.CompareGreater, []byte("t"))},
		Success: []kv.TxnOp{kv.OpPut([]byte("y"), []byte("v")), kv.OpGet([]byte("z"))},
		Failure: []kv.TxnOp{kv.OpDelete([]byte("w"))},
	})
	require.NoError(t, err)
	sentTxn := rec.last.(kv.TxnRequest)
	require.Equal(t, "p/x", string(sentTxn.Compare[0].Key))
	require.Equal(t, "t", string(sentTxn.Compare[0].Target))
	require.Equal(t, kv.CompareGreater, sentTxn.Compare[0].Op)
	require.Equal(t, "p/y", string(sentTxn.Success[0].Key))
	require.Equal(t, "p/z", string(sentTxn.Success[1].Key))
	require.Equal(t, "p/w", string(sentTxn.Failure[0].Key))
	require.Equal(t, "y", string(tx.Responses[0].Kvs[0].Key))
	require.Equal(t, "z", string(tx.Responses[1].Kvs[0].Key))
}
