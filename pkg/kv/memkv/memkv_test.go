package memkv_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/kvtest"
	"github.com/pgmetasrv/metasrv/pkg/kv/memkv"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestConformance(t *testing.T) {
	t.Parallel()
	kvtest.Run(t, func(*testing.T) kv.Backend { return memkv.New() })
}

func TestName(t *testing.T) {
	t.Parallel()
	require.Equal(t, "memory_store", memkv.New().Name())
}

func TestReset(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := memkv.New()
	_, err := s.BatchPut(ctx, kv.BatchPutRequest{Kvs: []kv.KeyValue{
		{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("b"), Value: []byte("22")},
	}})
	require.NoError(t, err)

	s.Reset()
	resp, err := s.Range(ctx, kv.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
	require.NoError(t, err)
	require.Empty(t, resp.Kvs)
	keys, size := s.Stats()
	require.Zero(t, keys)
	require.Zero(t, size)

	_, err = s.Put(ctx, kv.PutRequest{Key: []byte("a"), Value: []byte("again")})
	require.NoError(t, err, "the store is usable after a reset")
	got, err := kv.Get(ctx, s, []byte("a"))
	require.NoError(t, err)
	require.Equal(t, "again", string(got.Value))
}

func TestStats(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := memkv.New()
	keys, size := s.Stats()
	require.Zero(t, keys)
	require.Zero(t, size)

	_, err := s.Put(ctx, kv.PutRequest{Key: []byte("ab"), Value: []byte("123")})
	require.NoError(t, err)
	_, err = s.Put(ctx, kv.PutRequest{Key: []byte("c"), Value: []byte("")})
	require.NoError(t, err)
	keys, size = s.Stats()
	require.Equal(t, 2, keys)
	require.EqualValues(t, 2+3+1, size)

	_, err = s.Put(ctx, kv.PutRequest{Key: []byte("ab"), Value: []byte("1")})
	require.NoError(t, err)
	_, size = s.Stats()
	require.EqualValues(t, 2+1+1, size, "an overwrite counts the new value only")

	_, err = s.Txn(ctx, kv.TxnRequest{Success: []kv.TxnOp{kv.OpDelete([]byte("ab")), kv.OpPut([]byte("dd"), []byte("xy"))}})
	require.NoError(t, err)
	_, err = s.DeleteRange(ctx, kv.DeleteRangeRequest{Key: []byte("c")})
	require.NoError(t, err)
	keys, size = s.Stats()
	require.Equal(t, 1, keys)
	require.EqualValues(t, 2+2, size)
}

// TestUnknownTxnKindAppliesNothing covers the backend's own guard for requests
// that did not go through kv.WithLimits.
func TestUnknownTxnKindAppliesNothing(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := memkv.New()
	_, err := s.Txn(ctx, kv.TxnRequest{Success: []kv.TxnOp{
		kv.OpPut([]byte("a"), []byte("1")),
		{Kind: kv.TxnOpKind(42), Key: []byte("b")},
	}})
	require.ErrorIs(t, err, kv.ErrInvalidArgument)
	require.Contains(t, err.Error(), "success[1]")
	keys, _ := s.Stats()
	require.Zero(t, keys)

	_, err = s.Txn(ctx, kv.TxnRequest{Compare: []kv.Compare{{Key: []byte("a"), Op: kv.CompareOp(9)}}})
	require.ErrorIs(t, err, kv.ErrInvalidArgument)
}

// Pairs read share one allocation per read, but are the caller's: an append
// to a key does not reach its value or the next pair, and writing into
// what was read leaves the store as it was.
func TestReadPairsAreTheCallers(t *testing.T) {
	t.Parallel()
	s := memkv.New()
	ctx := t.Context()
	for _, k := range []string{"a", "b"} {
		_, err := s.Put(ctx, kv.PutRequest{Key: []byte(k), Value: []byte(k + "-value")})
		require.NoError(t, err)
	}
	r, err := s.Range(ctx, kv.RangeRequest{Key: []byte("a"), RangeEnd: []byte("c"), Limit: 10})
	require.NoError(t, err)
	require.Len(t, r.Kvs, 2)
	_ = append(r.Kvs[0].Key, 'X')
	_ = append(r.Kvs[0].Value, 'Y')
	require.Equal(t, "a-value", string(r.Kvs[0].Value))
	require.Equal(t, "b", string(r.Kvs[1].Key))
	r.Kvs[1].Value[0] = 'Z'

	got, err := kv.Get(ctx, s, []byte("a"))
	require.NoError(t, err)
	_ = append(got.Key, 'X')
	require.Equal(t, "a-value", string(got.Value))
	got.Value[0] = 'Z'

	r, err = s.Range(ctx, kv.RangeRequest{Key: []byte("a"), RangeEnd: []byte("c")})
	require.NoError(t, err)
	require.Equal(t, "a-value", string(r.Kvs[0].Value))
	require.Equal(t, "b-value", string(r.Kvs[1].Value))

	keys, err := s.Range(ctx, kv.RangeRequest{Key: []byte("a"), RangeEnd: []byte("c"), KeysOnly: true})
	require.NoError(t, err)
	_ = append(keys.Kvs[0].Key, 'X')
	require.Equal(t, "b", string(keys.Kvs[1].Key))
}
