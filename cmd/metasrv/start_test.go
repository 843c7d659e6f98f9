package main

import (
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/config"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

func TestNewBackendMemory(t *testing.T) {
	t.Parallel()
	o := config.Default()
	o.StoreKeyPrefix = "cluster-a/"
	o.MaxTxnOps = 2
	o.Procedure.MaxMetadataValueSize = 4
	log := slog.New(slog.DiscardHandler)
	b, err := newBackend(t.Context(), o, log)
	require.NoError(t, err)
	require.True(t, b.alwaysLeader)
	require.Equal(t, config.BackendMemory, b.store.Name())
	ctx := context.Background()

	// Limits judge the caller's key, before the prefix is added.
	_, err = b.store.Put(ctx, kv.PutRequest{Key: nil, Value: []byte("v")})
	require.ErrorIs(t, err, kv.ErrEmptyKey)
	_, err = b.store.Put(ctx, kv.PutRequest{Key: []byte("k"), Value: []byte("12345")})
	require.ErrorIs(t, err, kv.ErrValueTooLarge)
	_, err = b.store.Txn(ctx, kv.TxnRequest{Success: []kv.TxnOp{
		kv.OpGet([]byte("a")), kv.OpGet([]byte("b")), kv.OpGet([]byte("c")),
	}})
	require.ErrorIs(t, err, kv.ErrTooManyTxnOps)

	// The prefix is invisible to the caller.
	_, err = b.store.Put(ctx, kv.PutRequest{Key: []byte("k"), Value: []byte("v")})
	require.NoError(t, err)
	got, err := b.store.Range(ctx, kv.RangeRequest{Key: []byte("k")})
	require.NoError(t, err)
	require.Equal(t, []kv.KeyValue{{Key: []byte("k"), Value: []byte("v")}}, got.Kvs)
}

func TestNewBackendPostgresNotBuilt(t *testing.T) {
	t.Parallel()
	o := config.Default()
	o.Backend = config.BackendPostgres
	_, err := newBackend(t.Context(), o, slog.New(slog.DiscardHandler))
	require.ErrorIs(t, err, errPostgresNotBuilt)
}
