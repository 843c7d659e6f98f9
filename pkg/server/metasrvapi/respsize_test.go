package metasrvapi_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pgmetasrv/metasrv/pkg/client"
	"github.com/pgmetasrv/metasrv/pkg/election"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/memkv"
	"github.com/pgmetasrv/metasrv/pkg/server/apierr"
	"github.com/pgmetasrv/metasrv/pkg/server/metasrvapi"
)

const (
	maxSend = 8 << 10 // the server's max send message size in these tests
	valSize = 1 << 10
	nKeys   = 12 // 12 values of 1KiB: over maxSend together, each one fits
)

// serveLimited runs the Store service over backend on a gRPC server whose
// max send size is maxSend, told to the service or not, and returns a
// client of package client.
func serveLimited(t *testing.T, backend kv.Backend, tellService bool) *client.Client {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	r := &router{backend: backend, leaderAddr: "self:1"}
	r.leader.Store(true)
	srv := grpc.NewServer(grpc.MaxSendMsgSize(maxSend), grpc.ChainUnaryInterceptor(apierr.UnaryServerInterceptor(logger)))
	var opts []metasrvapi.StoreOption
	if tellService {
		opts = append(opts, metasrvapi.MaxResponseSize(maxSend))
	}
	metasrvapi.NewStore(r, opts...).Register(srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	// The client finds the leader through the Cluster service.
	metasrvapi.NewCluster(soleLeader(lis.Addr().String()), r).Register(srv)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	c, err := client.New(t.Context(), client.Config{Endpoints: []string{lis.Addr().String()}, RequestTimeout: 30 * time.Second, AttemptTimeout: 20 * time.Second}, logger)
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = c.Close()
		srv.Stop()
		<-done
	})
	return c
}

// soleLeader is a one-node election led by addr.
type soleLeader string

func (l soleLeader) Leader(context.Context) (election.Leader, error) {
	return election.Leader{Addr: string(l), Term: 7}, nil
}

func (l soleLeader) Candidates(context.Context) ([]election.NodeInfo, error) {
	return []election.NodeInfo{{Addr: string(l)}}, nil
}

func fill(t *testing.T, b kv.Backend) [][]byte {
	t.Helper()
	keys := make([][]byte, nKeys)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "/big/%02d", i)
		_, err := b.Put(t.Context(), kv.PutRequest{Key: keys[i], Value: make([]byte, valSize)})
		require.NoError(t, err)
	}
	return keys
}

func requireAllPresent(t *testing.T, b kv.Backend, keys [][]byte) {
	t.Helper()
	resp, err := b.BatchGet(t.Context(), kv.BatchGetRequest{Keys: keys})
	require.NoError(t, err)
	require.Len(t, resp.Kvs, len(keys), "nothing was applied")
}

func TestWritesWhosePreviousValuesCannotBeSentAreRefusedUnapplied(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	store := kv.WithLimits(memkv.New(), kv.Limits{MaxTxnOps: 64, MaxValueSize: 4 * valSize})
	keys := fill(t, store)
	c := serveLimited(t, store, true)

	refused := func(err error) {
		t.Helper()
		require.ErrorIs(t, err, kv.ErrInvalidArgument)
		require.NotErrorIs(t, err, kv.ErrOutcomeUnknown)
		require.Contains(t, err.Error(), "grpc.max_send_message_size is 8192 bytes")
		require.Contains(t, err.Error(), "nothing was applied")
		requireAllPresent(t, store, keys)
	}
	_, err := c.DeleteRange(ctx, kv.DeleteRangeRequest{Key: []byte("/big/"), RangeEnd: []byte("/big0"), PrevKv: true})
	refused(err)
	_, err = c.DeleteRange(ctx, kv.DeleteRangeRequest{Key: []byte("/big/"), RangeEnd: []byte{0}, PrevKv: true})
	refused(err)
	_, err = c.BatchDelete(ctx, kv.BatchDeleteRequest{Keys: keys, PrevKv: true})
	refused(err)
	batch := make([]kv.KeyValue, len(keys))
	for i, k := range keys {
		batch[i] = kv.KeyValue{Key: k, Value: []byte("small")}
	}
	_, err = c.BatchPut(ctx, kv.BatchPutRequest{Kvs: batch, PrevKv: true})
	refused(err)
	gets := make([]kv.TxnOp, len(keys))
	for i, k := range keys {
		gets[i] = kv.OpGet(k)
	}
	_, err = c.Txn(ctx, kv.TxnRequest{Failure: gets})
	refused(err)
	// Puts of the same branch count too: the later get returns their value.
	_, err = c.Txn(ctx, kv.TxnRequest{Success: []kv.TxnOp{
		kv.OpPut([]byte("/new"), make([]byte, 4*valSize)), kv.OpGet([]byte("/new")), kv.OpGet([]byte("/new")),
	}})
	refused(err)

	// What fits passes: one previous value, or no previous values at all.
	put, err := c.Put(ctx, kv.PutRequest{Key: keys[0], Value: make([]byte, valSize), PrevKv: true})
	require.NoError(t, err)
	require.Len(t, put.PrevKv.Value, valSize)
	_, err = c.Txn(ctx, kv.TxnRequest{Success: gets[:4]})
	require.NoError(t, err)
	del, err := c.DeleteRange(ctx, kv.DeleteRangeRequest{Key: []byte("/big/"), RangeEnd: []byte("/big0")})
	require.NoError(t, err)
	require.Equal(t, int64(nKeys), del.Deleted)
}

// hiddenValues answers reads without their values, as if every value grew
// between the sizing of a response and the write's commit.
type hiddenValues struct{ kv.Backend }

func (b hiddenValues) Range(ctx context.Context, req kv.RangeRequest) (kv.RangeResponse, error) {
	req.KeysOnly = true
	return b.Backend.Range(ctx, req)
}

func (b hiddenValues) BatchGet(ctx context.Context, req kv.BatchGetRequest) (kv.BatchGetResponse, error) {
	resp, err := b.Backend.BatchGet(ctx, req)
	for i := range resp.Kvs {
		resp.Kvs[i].Value = nil
	}
	return resp, err
}

func TestAppliedWriteWithUnsendableResponseIsOutcomeUnknown(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	store := memkv.New()
	keys := fill(t, store)
	c := serveLimited(t, hiddenValues{store}, true)

	_, err := c.DeleteRange(ctx, kv.DeleteRangeRequest{Key: []byte("/big/"), RangeEnd: []byte("/big0"), PrevKv: true})
	require.ErrorIs(t, err, kv.ErrOutcomeUnknown, "an error after the commit never reads as not applied: %v", err)
	require.NotErrorIs(t, err, kv.ErrInvalidArgument)
	require.Equal(t, codes.Unknown, status.Code(err))
	require.Contains(t, err.Error(), "was applied")
	require.Contains(t, err.Error(), "grpc.max_send_message_size")
	resp, err := store.BatchGet(ctx, kv.BatchGetRequest{Keys: keys})
	require.NoError(t, err)
	require.Empty(t, resp.Kvs, "the delete was applied")

	keys = fill(t, store)
	_, err = c.BatchDelete(ctx, kv.BatchDeleteRequest{Keys: keys, PrevKv: true})
	require.ErrorIs(t, err, kv.ErrOutcomeUnknown, "%v", err)
}
