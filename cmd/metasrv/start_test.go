package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pgmetasrv/metasrv/pkg/client"
	"github.com/pgmetasrv/metasrv/pkg/config"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/metasrv"
	"github.com/pgmetasrv/metasrv/pkg/node"
)

// memoryNode is a started memory_store node of pkg/node (the field's name is
// what bench_test.go reads the address through).
type memoryNode struct{ srv *node.Node }

// startMemoryNode runs a memory_store node in-process on free ports, built
// by pkg/node as `metasrv start` builds it, and waits until it leads.
func startMemoryNode(t *testing.T, o config.Options) *memoryNode {
	t.Helper()
	o.GRPC.BindAddr, o.HTTP.Addr = "127.0.0.1:0", "127.0.0.1:0"
	ctx := context.Background()
	n, err := node.New(ctx, node.Config{Options: o, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, n.Stop(context.Background())) })
	require.NoError(t, n.Start(ctx))
	<-n.ReadyNotify()
	require.Eventually(t, func() bool { return n.State() == metasrv.LeaderReady }, 10*time.Second, time.Millisecond)
	return &memoryNode{srv: n}
}

func TestMemoryNodeServesTheStoreWithLimitsAndPrefix(t *testing.T) {
	t.Parallel()
	o := config.Default()
	o.StoreKeyPrefix = "cluster-a/"
	o.MaxTxnOps = 2
	o.Procedure.MaxMetadataValueSize = 32 // fits the default schema value, {"ttl":null,"extra_options":{}}
	n := startMemoryNode(t, o)
	ctx := context.Background()
	c, err := client.New(ctx, client.Config{Endpoints: []string{n.srv.GRPCAddr().String()}}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })

	_, err = c.Put(ctx, kv.PutRequest{Key: []byte("k"), Value: []byte("v")})
	require.NoError(t, err)
	got, err := c.Range(ctx, kv.RangeRequest{Key: []byte("k")})
	require.NoError(t, err)
	require.Equal(t, []kv.KeyValue{{Key: []byte("k"), Value: []byte("v")}}, got.Kvs)

	// Limits are answered with INVALID_ARGUMENT naming them; nothing is written.
	_, err = c.Put(ctx, kv.PutRequest{Key: []byte("big"), Value: []byte(strings.Repeat("x", 33))})
	require.ErrorIs(t, err, kv.ErrInvalidArgument)
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	require.ErrorContains(t, err, "max_metadata_value_size")
	_, err = c.Txn(ctx, kv.TxnRequest{Success: []kv.TxnOp{kv.OpGet([]byte("a")), kv.OpGet([]byte("b")), kv.OpGet([]byte("c"))}})
	require.ErrorContains(t, err, "max_txn_ops")
	_, err = c.Put(ctx, kv.PutRequest{Value: []byte("v")})
	require.ErrorIs(t, err, kv.ErrInvalidArgument)
	resp, err := c.Range(ctx, kv.RangeRequest{Key: []byte("big")})
	require.NoError(t, err)
	require.Empty(t, resp.Kvs)

	// The default catalog and schemas exist; the key prefix is invisible to clients.
	all, err := c.Range(ctx, kv.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, KeysOnly: true})
	require.NoError(t, err)
	var keys []string
	for _, p := range all.Kvs {
		keys = append(keys, string(p.Key))
	}
	require.Equal(t, []string{"__catalog_name/greptime", "__schema_name/greptime/greptime_private",
		"__schema_name/greptime/information_schema", "__schema_name/greptime/public", "k"}, keys)

	leader, err := c.Leader(ctx)
	require.NoError(t, err)
	require.Equal(t, n.srv.GRPCAddr().String(), leader.Addr)
}
