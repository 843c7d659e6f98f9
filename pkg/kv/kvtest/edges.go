package kvtest

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// Edge cases etcd (and GreptimeDB) answer, held here for every backend.

func edgeCases() []testCase {
	return []testCase{
		{"NoLimit", testEdgeNoLimit},
		{"EmptyInterval", testEdgeEmptyInterval},
		{"EmptyIntervalThroughLimits", testEdgeEmptyIntervalThroughLimits},
		{"InvertedRange", testEdgeInvertedRange},
		{"Paging", testEdgePaging},
	}
}

// A Limit of 0 or less is no limit, and so is math.MaxInt64, whose "one row
// more" must not overflow; with kv.WithLimits too.
func testEdgeNoLimit(t *testing.T, raw kv.Backend) {
	ks := []string{"k1", "k2", "k3"}
	seed(t, raw, ks...)
	for _, b := range []kv.Backend{raw, kv.WithLimits(raw, Limits())} {
		for _, limit := range []int64{0, -1, -2, math.MinInt64, math.MaxInt64, math.MaxInt64 - 1} {
			for _, end := range []string{"\x00", "l"} {
				for _, keysOnly := range []bool{false, true} {
					resp, err := b.Range(t.Context(), kv.RangeRequest{Key: []byte("k"), RangeEnd: []byte(end), Limit: limit, KeysOnly: keysOnly})
					require.NoError(t, err, "limit %d, range_end %q", limit, end)
					require.Equal(t, ks, keysOf(resp.Kvs), "limit %d, range_end %q", limit, end)
					require.False(t, resp.More, "limit %d, range_end %q", limit, end)
				}
			}
			resp, err := b.Range(t.Context(), kv.RangeRequest{Key: []byte("k2"), Limit: limit})
			require.NoError(t, err, "single key, limit %d", limit)
			require.Equal(t, []string{"k2"}, keysOf(resp.Kvs))
		}
	}
}

// [x, x) is empty: a Range returns nothing and a DeleteRange deletes nothing,
// on a backend called directly.
func testEdgeEmptyInterval(t *testing.T, b kv.Backend) {
	seed(t, b, "a", "b", "b\x00", "c")
	before := dump(t, b)
	for _, k := range []string{"a", "b", "bb", "z"} {
		resp := scan(t, b, kv.RangeRequest{Key: []byte(k), RangeEnd: []byte(k)})
		require.Empty(t, resp.Kvs, "range [%q, %q)", k, k)
		require.False(t, resp.More)
		del, err := b.DeleteRange(t.Context(), kv.DeleteRangeRequest{Key: []byte(k), RangeEnd: []byte(k), PrevKv: true})
		require.NoError(t, err, "delete range [%q, %q)", k, k)
		require.Zero(t, del.Deleted)
		require.Empty(t, del.PrevKvs)
	}
	require.Equal(t, before, dump(t, b), "an empty interval deleted something")
}

// kv.WithLimits passes [x, x) on: it is empty, not an error (etcd).
func testEdgeEmptyIntervalThroughLimits(t *testing.T, raw kv.Backend) {
	testEdgeEmptyInterval(t, kv.WithLimits(raw, Limits()))
}

// An inverted range (range_end before key, neither empty nor "\x00") stays
// an error: INVALID_ARGUMENT naming both bounds, nothing changed.
func testEdgeInvertedRange(t *testing.T, raw kv.Backend) {
	b := kv.WithLimits(raw, Limits())
	seed(t, b, "a", "b", "c")
	before := dump(t, b)
	for _, r := range []struct{ key, end string }{{"b", "a"}, {"b\x00", "b"}, {"c", "b\xff"}} {
		_, err := b.Range(t.Context(), kv.RangeRequest{Key: []byte(r.key), RangeEnd: []byte(r.end)})
		refused(t, b, err, kv.ErrInvalidRange, before, "range ["+r.key+", "+r.end+")")
		require.ErrorContains(t, err, "sorts before key")
		_, err = b.DeleteRange(t.Context(), kv.DeleteRangeRequest{Key: []byte(r.key), RangeEnd: []byte(r.end), PrevKv: true})
		refused(t, b, err, kv.ErrInvalidRange, before, "delete range ["+r.key+", "+r.end+")")
	}
}

// Paging with limit and more, going on from the last key + "\x00", visits
// every key once, the longest allowed ones included (the next start is then
// one byte over max_key_size: scan bounds are not capped).
func testEdgePaging(t *testing.T, raw kv.Backend) {
	b := kv.WithLimits(raw, Limits())
	var want []string
	for i := range 5 {
		k := "p/" + string(rune('a'+i)) + strings.Repeat("x", MaxKeySize-3)
		want = append(want, k)
		put(t, b, k, "v")
	}
	seed(t, b, "p/short", "q")
	want = append(want, "p/short")
	var got []string
	from, end := []byte("p/"), kv.PrefixEnd([]byte("p/"))
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10, "paging does not end")
		resp := scan(t, b, kv.RangeRequest{Key: from, RangeEnd: end, Limit: 2, KeysOnly: true})
		got = append(got, keysOf(resp.Kvs)...)
		if !resp.More {
			break
		}
		last := resp.Kvs[len(resp.Kvs)-1].Key
		from = append(bytes.Clone(last), 0)
	}
	require.Equal(t, want, got)
}

// incompressible returns n bytes that do not compress (PostgreSQL compresses
// a long index entry, so repeated bytes would hide the B-tree limit),
// starting with prefix.
func incompressible(prefix string, n int) []byte {
	r := rand.New(rand.NewPCG(uint64(len(prefix)), uint64(n)))
	out := make([]byte, n)
	for i := range out {
		out[i] = byte(r.Uint32())
	}
	copy(out, prefix)
	return out
}

// Keys up to max_key_size are accepted by every operation, longer ones are
// refused by every operation that names a key, with an error naming the
// limit and the key's size, and nothing changed.
func testLimitKeySize(t *testing.T, raw kv.Backend) {
	ctx := t.Context()
	b := kv.WithLimits(raw, Limits())
	seed(t, b, "k")
	before := dump(t, b)
	long := incompressible("long/", MaxKeySize+1)
	v := []byte("v")

	calls := map[string]func() error{
		"get": func() error { _, err := kv.Get(ctx, b, long); return err },
		"put": func() error { _, err := b.Put(ctx, kv.PutRequest{Key: long, Value: v}); return err },
		"batch get": func() error {
			_, err := b.BatchGet(ctx, kv.BatchGetRequest{Keys: [][]byte{[]byte("k"), long}})
			return err
		},
		"batch put": func() error {
			_, err := b.BatchPut(ctx, kv.BatchPutRequest{Kvs: []kv.KeyValue{{Key: []byte("a"), Value: v}, {Key: long, Value: v}}})
			return err
		},
		"batch delete": func() error {
			_, err := b.BatchDelete(ctx, kv.BatchDeleteRequest{Keys: [][]byte{[]byte("k"), long}})
			return err
		},
		"delete one key": func() error {
			_, err := b.DeleteRange(ctx, kv.DeleteRangeRequest{Key: long})
			return err
		},
		"compare and put": func() error {
			_, err := b.CompareAndPut(ctx, kv.CompareAndPutRequest{Key: long, Value: v})
			return err
		},
		"txn compare": func() error {
			_, err := b.Txn(ctx, kv.TxnRequest{Compare: []kv.Compare{kv.CompareAbsent(long)}, Success: []kv.TxnOp{kv.OpPut([]byte("a"), v)}})
			return err
		},
		"txn success op": func() error {
			_, err := b.Txn(ctx, kv.TxnRequest{Success: []kv.TxnOp{kv.OpPut([]byte("a"), v), kv.OpPut(long, v)}})
			return err
		},
		"txn failure op": func() error {
			_, err := b.Txn(ctx, kv.TxnRequest{Compare: []kv.Compare{kv.CompareAbsent([]byte("k"))}, Failure: []kv.TxnOp{kv.OpGet(long)}})
			return err
		},
	}
	for name, call := range calls {
		err := call()
		refused(t, b, err, kv.ErrKeyTooLarge, before, name)
		require.ErrorContains(t, err, "is 2049 bytes, max_key_size is 2048 bytes", name)
	}

	// Scan bounds are not keys: a scan may start or end past max_key_size.
	require.Empty(t, scan(t, b, kv.RangeRequest{Key: long, RangeEnd: []byte{0}}).Kvs)
	require.Equal(t, []string{"k"}, keysOf(scan(t, b, kv.RangeRequest{Key: []byte("k"), RangeEnd: long}).Kvs))
	_, err := b.DeleteRange(ctx, kv.DeleteRangeRequest{Key: long, RangeEnd: append(bytes.Clone(long), 0)})
	require.NoError(t, err)

	testExactKeySize(t, b, before)
}

// testExactKeySize: exactly max_key_size passes everywhere, incompressible
// bytes included. before is b's content, which the test leaves as it found
// it but for one key.
func testExactKeySize(t *testing.T, b kv.Backend, before []pair) {
	ctx := t.Context()
	v := []byte("v")
	exact := [][]byte{incompressible("e1/", MaxKeySize), incompressible("e2/", MaxKeySize), incompressible("e3/", MaxKeySize), incompressible("e4/", MaxKeySize)}
	_, err := b.Put(ctx, kv.PutRequest{Key: exact[0], Value: v})
	require.NoError(t, err, "put of a key of max_key_size")
	_, err = b.BatchPut(ctx, kv.BatchPutRequest{Kvs: []kv.KeyValue{{Key: exact[1], Value: v}}})
	require.NoError(t, err, "batch put")
	cas, err := b.CompareAndPut(ctx, kv.CompareAndPutRequest{Key: exact[2], Value: v})
	require.NoError(t, err, "compare and put")
	require.True(t, cas.Success)
	txn, err := b.Txn(ctx, kv.TxnRequest{Compare: []kv.Compare{kv.CompareAbsent(exact[3])}, Success: []kv.TxnOp{kv.OpPut(exact[3], v)}})
	require.NoError(t, err, "txn")
	require.True(t, txn.Succeeded)
	got, err := b.BatchGet(ctx, kv.BatchGetRequest{Keys: exact})
	require.NoError(t, err)
	require.Len(t, got.Kvs, len(exact))
	for _, k := range exact {
		e, err := kv.Get(ctx, b, k)
		require.NoError(t, err)
		require.NotNil(t, e)
		require.Equal(t, k, e.Key)
	}
	_, err = b.BatchDelete(ctx, kv.BatchDeleteRequest{Keys: exact[:2]})
	require.NoError(t, err)
	dr, err := b.DeleteRange(ctx, kv.DeleteRangeRequest{Key: exact[2]})
	require.NoError(t, err)
	require.Equal(t, int64(1), dr.Deleted)
	require.ElementsMatch(t, append(before, pair{string(exact[3]), "v"}), dump(t, b))
}
