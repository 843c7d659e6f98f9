package kvpb_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/api/kvpb"
	metasrvv1 "github.com/pgmetasrv/metasrv/pkg/api/metasrv/v1"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

func TestTxnRoundTrip(t *testing.T) {
	t.Parallel()
	req := kv.TxnRequest{
		Compare: []kv.Compare{
			kv.CompareValue([]byte("a"), kv.CompareEqual, []byte("1")),
			kv.CompareValue([]byte("b"), kv.CompareNotEqual, []byte("2")),
			kv.CompareValue([]byte("c"), kv.CompareLess, []byte("3")),
			kv.CompareValue([]byte("d"), kv.CompareGreater, []byte("4")),
			kv.CompareAbsent([]byte("e")),
			kv.CompareExists([]byte("f")),
		},
		Success: []kv.TxnOp{kv.OpPut([]byte("a"), []byte("x")), kv.OpGet([]byte("a")), kv.OpDelete([]byte("b"))},
		Failure: []kv.TxnOp{kv.OpGet([]byte("z"))},
	}
	got, err := kvpb.TxnRequestFromPB(kvpb.TxnRequestToPB(req))
	require.NoError(t, err)
	require.Equal(t, req, got)

	resp := kv.TxnResponse{Succeeded: true, Responses: []kv.TxnOpResponse{
		{Kind: kv.TxnPut, Kvs: []kv.KeyValue{{Key: []byte("a"), Value: []byte("0")}}},
		{Kind: kv.TxnGet, Kvs: []kv.KeyValue{{Key: []byte("a"), Value: []byte("x")}}},
		{Kind: kv.TxnDelete, Deleted: 1},
	}}
	require.Equal(t, resp, kvpb.TxnResponseFromPB(kvpb.TxnResponseToPB(resp)))
}

func TestRequestRoundTrips(t *testing.T) {
	t.Parallel()
	rr := kv.RangeRequest{Key: []byte("a"), RangeEnd: []byte("b"), Limit: 3, KeysOnly: true}
	gotRange, ser, err := kvpb.RangeRequestFromPB(kvpb.RangeRequestToPB(rr, true))
	require.NoError(t, err)
	require.True(t, ser)
	require.Equal(t, rr, gotRange)

	bg := kv.BatchGetRequest{Keys: [][]byte{[]byte("a"), []byte("b")}}
	gotBG, ser, err := kvpb.BatchGetRequestFromPB(kvpb.BatchGetRequestToPB(bg, false))
	require.NoError(t, err)
	require.False(t, ser)
	require.Equal(t, bg, gotBG)

	bp := kv.BatchPutRequest{Kvs: []kv.KeyValue{{Key: []byte("a"), Value: []byte("1")}}, PrevKv: true}
	gotBP, err := kvpb.BatchPutRequestFromPB(kvpb.BatchPutRequestToPB(bp))
	require.NoError(t, err)
	require.Equal(t, bp, gotBP)

	cas := kv.CompareAndPutRequest{Key: []byte("k"), Expect: []byte("e"), Value: []byte("v")}
	gotCAS, err := kvpb.CompareAndPutRequestFromPB(kvpb.CompareAndPutRequestToPB(cas))
	require.NoError(t, err)
	require.Equal(t, cas, gotCAS)

	dr := kv.DeleteRangeResponse{Deleted: 2, PrevKvs: []kv.KeyValue{{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("b"), Value: []byte("2")}}}
	require.Equal(t, dr, kvpb.DeleteRangeResponseFromPB(kvpb.DeleteRangeResponseToPB(dr)))

	put := kv.PutResponse{PrevKv: &kv.KeyValue{Key: []byte("k"), Value: []byte("old")}}
	require.Equal(t, put, kvpb.PutResponseFromPB(kvpb.PutResponseToPB(put)))
	require.Nil(t, kvpb.PutResponseFromPB(kvpb.PutResponseToPB(kv.PutResponse{})).PrevKv)
}

// A negative limit is no limit (etcd, GreptimeDB): it decodes as it is, and
// so does the largest one.
func TestRangeLimitPassesThrough(t *testing.T) {
	t.Parallel()
	for _, limit := range []int64{-1, math.MinInt64, math.MaxInt64} {
		got, _, err := kvpb.RangeRequestFromPB(&metasrvv1.RangeRequest{Key: []byte("k"), RangeEnd: []byte{0}, Limit: limit})
		require.NoError(t, err, "limit %d", limit)
		require.Equal(t, limit, got.Limit)
	}
}

func TestDecodeRefusesBadInput(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		decode func() error
		want   string
	}{
		{"nil txn", func() error { _, err := kvpb.TxnRequestFromPB(nil); return err }, "txn request must be set"},
		{"nil range", func() error { _, _, err := kvpb.RangeRequestFromPB(nil); return err }, "range request must be set"},
		{"unspecified compare op", func() error {
			_, err := kvpb.TxnRequestFromPB(&metasrvv1.TxnRequest{Compare: []*metasrvv1.Compare{{Key: []byte("k")}}})
			return err
		}, "compare[0].op: unknown value 0"},
		{"unknown compare op", func() error {
			_, err := kvpb.TxnRequestFromPB(&metasrvv1.TxnRequest{Compare: []*metasrvv1.Compare{
				{Key: []byte("k"), Op: metasrvv1.CompareOp_COMPARE_OP_EQUAL}, {Key: []byte("k"), Op: 42},
			}})
			return err
		}, "compare[1].op: unknown value 42"},
		{"nil compare", func() error {
			_, err := kvpb.TxnRequestFromPB(&metasrvv1.TxnRequest{Compare: []*metasrvv1.Compare{nil}})
			return err
		}, "compare[0] must be set"},
		{"target with target_absent", func() error {
			_, err := kvpb.TxnRequestFromPB(&metasrvv1.TxnRequest{Compare: []*metasrvv1.Compare{
				{Key: []byte("k"), Op: metasrvv1.CompareOp_COMPARE_OP_EQUAL, TargetAbsent: true, Target: []byte("x")},
			}})
			return err
		}, "compare[0].target must be empty when target_absent is set"},
		{"unknown op kind", func() error {
			_, err := kvpb.TxnRequestFromPB(&metasrvv1.TxnRequest{Failure: []*metasrvv1.TxnOp{{Key: []byte("k"), Kind: 9}}})
			return err
		}, "failure[0].kind: unknown value 9"},
		{"nil op", func() error {
			_, err := kvpb.TxnRequestFromPB(&metasrvv1.TxnRequest{Success: []*metasrvv1.TxnOp{nil}})
			return err
		}, "success[0] must be set"},
		{"value on get", func() error {
			_, err := kvpb.TxnRequestFromPB(&metasrvv1.TxnRequest{Success: []*metasrvv1.TxnOp{
				{Kind: metasrvv1.TxnOpKind_TXN_OP_KIND_GET, Key: []byte("k"), Value: []byte("v")},
			}})
			return err
		}, "success[0].value is set on a get operation"},
		{"unknown consistency", func() error {
			_, _, err := kvpb.RangeRequestFromPB(&metasrvv1.RangeRequest{Key: []byte("k"), Consistency: 7})
			return err
		}, "consistency: unknown value 7"},
		{"nil batch put pair", func() error {
			_, err := kvpb.BatchPutRequestFromPB(&metasrvv1.BatchPutRequest{Kvs: []*metasrvv1.KeyValue{{Key: []byte("a")}, nil}})
			return err
		}, "kvs[1] must be set"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := c.decode()
			require.ErrorIs(t, err, kv.ErrInvalidArgument)
			require.ErrorContains(t, err, c.want)
		})
	}
}
