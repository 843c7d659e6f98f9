package metasrvapi_test

import (
	"context"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	metasrvv1 "github.com/pgmetasrv/metasrv/pkg/api/metasrv/v1"
	"github.com/pgmetasrv/metasrv/pkg/election"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/memkv"
	"github.com/pgmetasrv/metasrv/pkg/metasrv"
	"github.com/pgmetasrv/metasrv/pkg/server/apierr"
	"github.com/pgmetasrv/metasrv/pkg/server/metasrvapi"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	maxTxnOps    = 4
	maxValueSize = 16
)

// router routes like the metasrv core: the leader serves from its backend,
// a follower refuses with the leader's address; serializable reads go to the
// shared durable store on any node.
type router struct {
	backend    kv.Backend
	leader     atomic.Bool
	leaderAddr string
}

func (r *router) LeaderBackend(context.Context) (kv.Backend, error) {
	if !r.leader.Load() {
		return nil, &election.NotLeaderError{Leader: r.leaderAddr}
	}
	return r.backend, nil
}

func (r *router) SerializableBackend() kv.Backend { return r.backend }

func (r *router) HeaderInfo() metasrv.HeaderInfo {
	return metasrv.HeaderInfo{NodeAddr: "self:1", LeaderAddr: r.leaderAddr, Term: 7}
}

// serveGRPC serves what register adds, with the production error
// interceptor, on 127.0.0.1:0 and returns a connection to it; both end with
// the test.
func serveGRPC(t *testing.T, register func(grpc.ServiceRegistrar)) *grpc.ClientConn {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(apierr.UnaryServerInterceptor(logger)))
	register(srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = cc.Close()
		srv.Stop()
		<-done
	})
	return cc
}

// serveStore runs the Store service for r and returns a client of it.
func serveStore(t *testing.T, r metasrvapi.Router) metasrvv1.StoreClient {
	t.Helper()
	return metasrvv1.NewStoreClient(serveGRPC(t, metasrvapi.NewStore(r).Register))
}

func newLeader(t *testing.T) (*router, metasrvv1.StoreClient) {
	r := &router{
		backend:    kv.WithLimits(memkv.New(), kv.Limits{MaxTxnOps: maxTxnOps, MaxValueSize: maxValueSize}),
		leaderAddr: "self:1",
	}
	r.leader.Store(true)
	return r, serveStore(t, r)
}

func TestStoreOperations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, c := newLeader(t)

	put, err := c.Put(ctx, &metasrvv1.PutRequest{Key: []byte("a%"), Value: []byte("1")})
	require.NoError(t, err)
	require.Equal(t, "self:1", put.GetHeader().GetLeaderAddr())
	require.Equal(t, int64(7), put.GetHeader().GetTerm())
	require.Nil(t, put.GetPrevKv())

	put, err = c.Put(ctx, &metasrvv1.PutRequest{Key: []byte("a%"), Value: []byte("2"), PrevKv: true})
	require.NoError(t, err)
	require.Equal(t, []byte("1"), put.GetPrevKv().GetValue())

	_, err = c.BatchPut(ctx, &metasrvv1.BatchPutRequest{Kvs: []*metasrvv1.KeyValue{
		{Key: []byte("a_"), Value: []byte("3")}, {Key: []byte("ab"), Value: []byte("4")}, {Key: []byte("b"), Value: []byte("5")},
	}})
	require.NoError(t, err)

	// A prefix holding LIKE wildcards matches only itself.
	rng, err := c.Range(ctx, &metasrvv1.RangeRequest{Key: []byte("a%"), RangeEnd: []byte("a&")})
	require.NoError(t, err)
	require.Len(t, rng.GetKvs(), 1)
	require.NotNil(t, rng.GetHeader())

	rng, err = c.Range(ctx, &metasrvv1.RangeRequest{Key: []byte("a"), RangeEnd: []byte("b"), Limit: 2, KeysOnly: true})
	require.NoError(t, err)
	require.True(t, rng.GetMore())
	require.Len(t, rng.GetKvs(), 2)
	require.Empty(t, rng.GetKvs()[0].GetValue())

	bg, err := c.BatchGet(ctx, &metasrvv1.BatchGetRequest{Keys: [][]byte{[]byte("b"), []byte("zz")}, Consistency: metasrvv1.Consistency_CONSISTENCY_SERIALIZABLE})
	require.NoError(t, err)
	require.Len(t, bg.GetKvs(), 1)

	cas, err := c.CompareAndPut(ctx, &metasrvv1.CompareAndPutRequest{Key: []byte("b"), Expect: []byte("nope"), Value: []byte("6")})
	require.NoError(t, err)
	require.False(t, cas.GetSuccess())
	require.Equal(t, []byte("5"), cas.GetPrevKv().GetValue())

	txn, err := c.Txn(ctx, &metasrvv1.TxnRequest{
		Compare: []*metasrvv1.Compare{{Key: []byte("b"), Op: metasrvv1.CompareOp_COMPARE_OP_EQUAL, Target: []byte("5")}},
		Success: []*metasrvv1.TxnOp{
			{Kind: metasrvv1.TxnOpKind_TXN_OP_KIND_PUT, Key: []byte("b"), Value: []byte("7")},
			{Kind: metasrvv1.TxnOpKind_TXN_OP_KIND_GET, Key: []byte("b")},
		},
	})
	require.NoError(t, err)
	require.True(t, txn.GetSucceeded())
	require.Equal(t, []byte("7"), txn.GetResponses()[1].GetKvs()[0].GetValue())

	bd, err := c.BatchDelete(ctx, &metasrvv1.BatchDeleteRequest{Keys: [][]byte{[]byte("b")}, PrevKv: true})
	require.NoError(t, err)
	require.Len(t, bd.GetPrevKvs(), 1)

	dr, err := c.DeleteRange(ctx, &metasrvv1.DeleteRangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
	require.NoError(t, err)
	require.Equal(t, int64(3), dr.GetDeleted())
}

func TestFollowerAnswersNotLeader(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := &router{backend: memkv.New(), leaderAddr: "10.0.0.9:3002"}
	_, err := r.backend.Put(ctx, kv.PutRequest{Key: []byte("k"), Value: []byte("v")})
	require.NoError(t, err)
	c := serveStore(t, r)

	requireNotLeader := func(err error) {
		t.Helper()
		require.Equal(t, codes.Unavailable, status.Code(err))
		info, ok := metasrvv1.ErrorInfoOf(err)
		require.True(t, ok)
		require.Equal(t, metasrvv1.ReasonNotLeader, info.GetReason())
		require.Equal(t, metasrvv1.ErrorDomain, info.GetDomain())
		require.Equal(t, "10.0.0.9:3002", info.GetMetadata()[metasrvv1.MetadataLeader])
	}
	_, err = c.Put(ctx, &metasrvv1.PutRequest{Key: []byte("k"), Value: []byte("w")})
	requireNotLeader(err)
	_, err = c.Txn(ctx, &metasrvv1.TxnRequest{})
	requireNotLeader(err)
	_, err = c.Range(ctx, &metasrvv1.RangeRequest{Key: []byte("k")})
	requireNotLeader(err)
	_, err = c.Range(ctx, &metasrvv1.RangeRequest{Key: []byte("k"), Consistency: metasrvv1.Consistency_CONSISTENCY_LINEARIZABLE})
	requireNotLeader(err)

	// Serializable reads are served by any node.
	rng, err := c.Range(ctx, &metasrvv1.RangeRequest{Key: []byte("k"), Consistency: metasrvv1.Consistency_CONSISTENCY_SERIALIZABLE})
	require.NoError(t, err)
	require.Equal(t, []byte("v"), rng.GetKvs()[0].GetValue())

	// The refused put changed nothing.
	got, err := kv.Get(ctx, r.backend, []byte("k"))
	require.NoError(t, err)
	require.Equal(t, []byte("v"), got.Value)
}

func TestBadInputIsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, c := newLeader(t)

	cases := []struct {
		name string
		call func() error
		want string
	}{
		{"value too large", func() error {
			_, err := c.Put(ctx, &metasrvv1.PutRequest{Key: []byte("big"), Value: make([]byte, maxValueSize+1)})
			return err
		}, "max_metadata_value_size"},
		{"value too large in batch", func() error {
			_, err := c.BatchPut(ctx, &metasrvv1.BatchPutRequest{Kvs: []*metasrvv1.KeyValue{{Key: []byte("big"), Value: make([]byte, maxValueSize+1)}}})
			return err
		}, "max_metadata_value_size"},
		{"too many txn ops", func() error {
			ops := make([]*metasrvv1.TxnOp, maxTxnOps+1)
			for i := range ops {
				ops[i] = &metasrvv1.TxnOp{Kind: metasrvv1.TxnOpKind_TXN_OP_KIND_PUT, Key: []byte("big"), Value: []byte("v")}
			}
			_, err := c.Txn(ctx, &metasrvv1.TxnRequest{Success: ops})
			return err
		}, "max_txn_ops"},
		{"empty key", func() error {
			_, err := c.Put(ctx, &metasrvv1.PutRequest{Value: []byte("v")})
			return err
		}, "key must not be empty"},
		{"inverted range", func() error {
			_, err := c.Range(ctx, &metasrvv1.RangeRequest{Key: []byte("b"), RangeEnd: []byte("a")})
			return err
		}, "range_end"},
		{"unknown compare op", func() error {
			_, err := c.Txn(ctx, &metasrvv1.TxnRequest{Compare: []*metasrvv1.Compare{{Key: []byte("big"), Op: 12}}})
			return err
		}, "compare[0].op"},
		{"unspecified txn op kind", func() error {
			_, err := c.Txn(ctx, &metasrvv1.TxnRequest{Success: []*metasrvv1.TxnOp{{Key: []byte("big"), Value: []byte("v")}}})
			return err
		}, "success[0].kind"},
		{"unknown consistency", func() error {
			_, err := c.BatchGet(ctx, &metasrvv1.BatchGetRequest{Keys: [][]byte{[]byte("big")}, Consistency: 5})
			return err
		}, "consistency"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
			require.Contains(t, status.Convert(err).Message(), tc.want)
		})
	}
	// Nothing was written by any refused request.
	got, err := kv.Get(ctx, r.backend, []byte("big"))
	require.NoError(t, err)
	require.Nil(t, got)
}

// resigning is a leader that steps down while its write is being applied:
// its header says term 0 from then on.
type resigning struct {
	router
	term atomic.Int64
}

func (r *resigning) HeaderInfo() metasrv.HeaderInfo {
	return metasrv.HeaderInfo{NodeAddr: "self:1", LeaderAddr: r.leaderAddr, Term: r.term.Load()}
}

type resignOnPut struct {
	kv.Backend
	r *resigning
}

func (b resignOnPut) Put(ctx context.Context, req kv.PutRequest) (kv.PutResponse, error) {
	resp, err := b.Backend.Put(ctx, req)
	b.r.term.Store(0)
	return resp, err
}

// A write acknowledged while the leader resigns carries the term it was
// admitted in, not the 0 of the moment after.
func TestWriteHeaderCarriesTheAdmittingTerm(t *testing.T) {
	t.Parallel()
	r := &resigning{router: router{leaderAddr: "self:1"}}
	r.backend = resignOnPut{Backend: memkv.New(), r: r}
	r.leader.Store(true)
	r.term.Store(9)
	c := serveStore(t, r)
	put, err := c.Put(context.Background(), &metasrvv1.PutRequest{Key: []byte("k"), Value: []byte("v")})
	require.NoError(t, err)
	require.Equal(t, int64(9), put.GetHeader().GetTerm())
}

// A request header whose client_id is not UTF-8 is refused as invalid, and
// nothing is applied; a UTF-8 one passes.
func TestClientIDMustBeUTF8(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, c := newLeader(t)
	_, err := c.Put(ctx, &metasrvv1.PutRequest{
		Header: &metasrvv1.RequestHeader{ClientId: []byte{0xff, 0xfe, 'x'}},
		Key:    []byte("k"), Value: []byte("v"),
	})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "client_id")
	got, err := kv.Get(ctx, r.backend, []byte("k"))
	require.NoError(t, err)
	require.Nil(t, got, "a refused request applies nothing")

	_, err = c.Put(ctx, &metasrvv1.PutRequest{
		Header: &metasrvv1.RequestHeader{ClientId: []byte("ctl-ümlaut")},
		Key:    []byte("k"), Value: []byte("v"),
	})
	require.NoError(t, err)
}
