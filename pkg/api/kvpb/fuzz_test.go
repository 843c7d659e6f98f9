package kvpb_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pgmetasrv/metasrv/pkg/api/kvpb"
	metasrvv1 "github.com/pgmetasrv/metasrv/pkg/api/metasrv/v1"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// The fuzz targets feed arbitrary bytes through the server's decoding path:
// protobuf unmarshal, then conversion and validation. Whatever the bytes,
// decoding must not panic, must refuse with an error wrapping
// kv.ErrInvalidArgument, or must produce a request that survives the
// client's encoding unchanged (so client and server agree on it).

func FuzzTxnRequest(f *testing.F) {
	addSeeds(f,
		&metasrvv1.TxnRequest{},
		kvpb.TxnRequestToPB(kv.TxnRequest{
			Compare: []kv.Compare{kv.CompareValue([]byte("k"), kv.CompareGreater, []byte("v")), kv.CompareAbsent([]byte("x"))},
			Success: []kv.TxnOp{kv.OpPut([]byte("k"), []byte("v")), kv.OpGet([]byte("k"))},
			Failure: []kv.TxnOp{kv.OpDelete([]byte("k"))},
		}),
		&metasrvv1.TxnRequest{Compare: []*metasrvv1.Compare{{Key: []byte("k"), Op: 99}}},
	)
	f.Fuzz(func(t *testing.T, data []byte) {
		var in metasrvv1.TxnRequest
		if proto.Unmarshal(data, &in) != nil {
			return
		}
		req, err := kvpb.TxnRequestFromPB(&in)
		if err != nil {
			requireInvalid(t, err)
			return
		}
		again, err := kvpb.TxnRequestFromPB(kvpb.TxnRequestToPB(req))
		require.NoError(t, err)
		require.Equal(t, normalizeTxn(req), normalizeTxn(again))
	})
}

func FuzzRangeRequest(f *testing.F) {
	addSeeds(f,
		&metasrvv1.RangeRequest{},
		kvpb.RangeRequestToPB(kv.RangeRequest{Key: []byte("a%_\\"), RangeEnd: []byte{0}, Limit: 10, KeysOnly: true}, true),
		&metasrvv1.RangeRequest{Key: []byte("k"), Limit: -5, Consistency: 3},
	)
	f.Fuzz(func(t *testing.T, data []byte) {
		var in metasrvv1.RangeRequest
		if proto.Unmarshal(data, &in) != nil {
			return
		}
		req, ser, err := kvpb.RangeRequestFromPB(&in)
		if err != nil {
			requireInvalid(t, err)
			return
		}
		again, ser2, err := kvpb.RangeRequestFromPB(kvpb.RangeRequestToPB(req, ser))
		require.NoError(t, err)
		require.Equal(t, ser, ser2)
		require.Equal(t, string(req.Key), string(again.Key))
		require.Equal(t, string(req.RangeEnd), string(again.RangeEnd))
		require.Equal(t, req.Limit, again.Limit)
		require.Equal(t, req.KeysOnly, again.KeysOnly)
	})
}

func FuzzBatchPutRequest(f *testing.F) {
	addSeeds(f,
		&metasrvv1.BatchPutRequest{},
		kvpb.BatchPutRequestToPB(kv.BatchPutRequest{Kvs: []kv.KeyValue{{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("b")}}, PrevKv: true}),
	)
	f.Fuzz(func(t *testing.T, data []byte) {
		var in metasrvv1.BatchPutRequest
		if proto.Unmarshal(data, &in) != nil {
			return
		}
		req, err := kvpb.BatchPutRequestFromPB(&in)
		if err != nil {
			requireInvalid(t, err)
			return
		}
		again, err := kvpb.BatchPutRequestFromPB(kvpb.BatchPutRequestToPB(req))
		require.NoError(t, err)
		require.Len(t, again.Kvs, len(req.Kvs))
		require.Equal(t, req.PrevKv, again.PrevKv)
	})
}

func addSeeds(f *testing.F, msgs ...proto.Message) {
	for _, m := range msgs {
		b, err := proto.Marshal(m)
		require.NoError(f, err)
		f.Add(b)
	}
}

func requireInvalid(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, kv.ErrInvalidArgument) {
		t.Fatalf("decode error %v does not wrap kv.ErrInvalidArgument", err)
	}
}

// normalizeTxn makes nil and empty byte slices compare equal: the wire does
// not tell them apart.
func normalizeTxn(r kv.TxnRequest) kv.TxnRequest {
	norm := func(b []byte) []byte {
		if len(b) == 0 {
			return nil
		}
		return b
	}
	out := kv.TxnRequest{}
	for _, c := range r.Compare {
		out.Compare = append(out.Compare, kv.Compare{Key: norm(c.Key), Op: c.Op, Target: norm(c.Target), TargetAbsent: c.TargetAbsent})
	}
	for _, o := range r.Success {
		out.Success = append(out.Success, kv.TxnOp{Kind: o.Kind, Key: norm(o.Key), Value: norm(o.Value)})
	}
	for _, o := range r.Failure {
		out.Failure = append(out.Failure, kv.TxnOp{Kind: o.Kind, Key: norm(o.Key), Value: norm(o.Value)})
	}
	return out
}
