package pgkv_test

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/pgkv"
)

// randomKey is n bytes that do not compress: PostgreSQL compresses long
// index entries, so repeated bytes would pass where real keys fail.
func randomKey(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	out := make([]byte, n)
	for i := range out {
		out[i] = byte(r.Uint32())
	}
	return out
}

// kv.MaxStoredKeySize is exactly what the primary key's B-tree accepts; one
// byte more is PostgreSQL's program_limit_exceeded (54000), which pgkv
// answers as the request's fault (kv.ErrInvalidArgument), not an internal
// error, on the plain and the batched path.
func TestKeyOverPostgresLimitIsInvalidArgument(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	s := db.newStore(t, pgkv.Options{})
	batched := startBatcher(t, s).WithFence(passFence)
	ctx := t.Context()
	for name, b := range map[string]kv.Backend{"plain": s, "batched": batched} {
		fits := randomKey(1, kv.MaxStoredKeySize)
		_, err := b.Put(ctx, kv.PutRequest{Key: fits, Value: []byte("v")})
		require.NoError(t, err, "%s: a key of kv.MaxStoredKeySize bytes fits", name)

		over := randomKey(2, kv.MaxStoredKeySize+1)
		calls := map[string]func() error{
			"put": func() error { _, err := b.Put(ctx, kv.PutRequest{Key: over, Value: []byte("v")}); return err },
			"batch put": func() error {
				_, err := b.BatchPut(ctx, kv.BatchPutRequest{Kvs: []kv.KeyValue{{Key: []byte("a"), Value: []byte("v")}, {Key: over, Value: []byte("v")}}})
				return err
			},
			"compare and put": func() error {
				_, err := b.CompareAndPut(ctx, kv.CompareAndPutRequest{Key: over, Value: []byte("v")})
				return err
			},
			"txn": func() error {
				_, err := b.Txn(ctx, kv.TxnRequest{Success: []kv.TxnOp{kv.OpPut(over, []byte("v"))}})
				return err
			},
		}
		for op, call := range calls {
			err := call()
			require.ErrorIs(t, err, kv.ErrInvalidArgument, "%s %s", name, op)
			require.NotErrorIs(t, err, kv.ErrUnavailable, "%s %s", name, op)
			require.ErrorContains(t, err, "max_key_size", "%s %s", name, op)
			var pgErr *pgconn.PgError
			require.ErrorAs(t, err, &pgErr, "%s %s: the PostgreSQL error stays wrapped", name, op)
			require.Equal(t, "54000", pgErr.Code)
		}
		requireAbsentKey(t, s, over)
		requireAbsentKey(t, s, []byte("a"))
	}
}

func requireAbsentKey(t *testing.T, b kv.Backend, key []byte) {
	t.Helper()
	got, err := kv.Get(t.Context(), b, key)
	require.NoError(t, err)
	require.Nil(t, got)
}

// The default max_key_size holds on PostgreSQL under the longest
// store_key_prefix the configuration allows (kv.MaxStoredKeySize -
// kv.DefaultMaxKeySize bytes), with incompressible keys, on every write path;
// the limits sit above the prefix as in the server.
func TestDefaultMaxKeySizeFitsUnderTheLongestPrefix(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	s := db.newStore(t, pgkv.Options{})
	prefix := randomKey(3, kv.MaxStoredKeySize-kv.DefaultMaxKeySize)
	ctx := t.Context()
	for i, raw := range []kv.Backend{s, startBatcher(t, s).WithFence(passFence)} {
		b := kv.WithLimits(kv.WithPrefix(raw, prefix), kv.Limits{})
		k := func(n uint64) []byte { return randomKey(10*uint64(i)+n, kv.DefaultMaxKeySize) }
		_, err := b.Put(ctx, kv.PutRequest{Key: k(1), Value: []byte("v")})
		require.NoError(t, err)
		_, err = b.BatchPut(ctx, kv.BatchPutRequest{Kvs: []kv.KeyValue{{Key: k(2), Value: []byte("v")}}, PrevKv: true})
		require.NoError(t, err)
		_, err = b.CompareAndPut(ctx, kv.CompareAndPutRequest{Key: k(3), Value: []byte("v")})
		require.NoError(t, err)
		_, err = b.Txn(ctx, kv.TxnRequest{Success: []kv.TxnOp{kv.OpPut(k(4), []byte("v"))}})
		require.NoError(t, err)
		for n := uint64(1); n <= 4; n++ {
			got, err := kv.Get(ctx, b, k(n))
			require.NoError(t, err)
			require.NotNil(t, got, "key %d", n)
			require.True(t, bytes.Equal(k(n), got.Key))
		}
		_, err = b.Put(ctx, kv.PutRequest{Key: randomKey(99, kv.DefaultMaxKeySize+1), Value: []byte("v")})
		require.ErrorIs(t, err, kv.ErrKeyTooLarge, "refused by the limit, before PostgreSQL")
	}
}
