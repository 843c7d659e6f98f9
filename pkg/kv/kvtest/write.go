package kvtest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/kv"
)

func putCases() []testCase {
	return []testCase{
		{"PrevKv", testPutPrevKv},
		{"Overwrite", testPutOverwrite},
	}
}

func testPutPrevKv(t *testing.T, b kv.Backend) {
	ctx := t.Context()
	resp, err := b.Put(ctx, kv.PutRequest{Key: []byte("k"), Value: []byte("v1"), PrevKv: true})
	require.NoError(t, err)
	require.Nil(t, resp.PrevKv, "no previous pair for an absent key")

	resp, err = b.Put(ctx, kv.PutRequest{Key: []byte("k"), Value: []byte("v2"), PrevKv: true})
	require.NoError(t, err)
	require.NotNil(t, resp.PrevKv)
	require.Equal(t, pair{"k", "v1"}, pairsOf([]kv.KeyValue{*resp.PrevKv})[0])

	resp, err = b.Put(ctx, kv.PutRequest{Key: []byte("k"), Value: []byte("v3")})
	require.NoError(t, err)
	require.Nil(t, resp.PrevKv, "prev_kv not asked for")

	put(t, b, "e", "")
	resp, err = b.Put(ctx, kv.PutRequest{Key: []byte("e"), Value: []byte("x"), PrevKv: true})
	require.NoError(t, err)
	require.NotNil(t, resp.PrevKv, "a key holding an empty value is present")
	require.Empty(t, resp.PrevKv.Value)
	require.Equal(t, "e", string(resp.PrevKv.Key))
}

func testPutOverwrite(t *testing.T, b kv.Backend) {
	put(t, b, "k", "old")
	put(t, b, "k", "new")
	put(t, b, "k\x00", "other")
	require.Equal(t, []pair{{"k", "new"}, {"k\x00", "other"}}, dump(t, b))
	put(t, b, "k", "")
	requireValue(t, b, "k", "")
}

func batchCases() []testCase {
	return []testCase{
		{"BatchGet", testBatchGet},
		{"BatchPut", testBatchPut},
		{"BatchPutDuplicateKeys", testBatchPutDuplicates},
		{"BatchDelete", testBatchDelete},
		{"Empty", testBatchEmpty},
	}
}

func testBatchGet(t *testing.T, b kv.Backend) {
	seed(t, b, "a", "b", "c", "\xff")
	put(t, b, "e", "")
	resp, err := b.BatchGet(t.Context(), kv.BatchGetRequest{Keys: keys("\xff", "missing", "c", "a", "c", "e", "a\x00")})
	require.NoError(t, err)
	require.Equal(t, []pair{{"a", valueOf("a")}, {"c", valueOf("c")}, {"e", ""}, {"\xff", valueOf("\xff")}}, pairsOf(resp.Kvs),
		"existing keys only, in key order, each once")
}

func testBatchPut(t *testing.T, b kv.Backend) {
	ctx := t.Context()
	seed(t, b, "b", "d")
	resp, err := b.BatchPut(ctx, kv.BatchPutRequest{
		Kvs:    []kv.KeyValue{{Key: []byte("d"), Value: []byte("d2")}, {Key: []byte("a"), Value: []byte("a2")}, {Key: []byte("b"), Value: []byte("b2")}, {Key: []byte("c"), Value: []byte("")}},
		PrevKv: true,
	})
	require.NoError(t, err)
	require.Equal(t, withValues("b", "d"), pairsOf(resp.PrevKvs), "previous pairs of the keys that existed, in key order")
	require.Equal(t, []pair{{"a", "a2"}, {"b", "b2"}, {"c", ""}, {"d", "d2"}}, dump(t, b))

	resp, err = b.BatchPut(ctx, kv.BatchPutRequest{Kvs: []kv.KeyValue{{Key: []byte("a"), Value: []byte("a3")}}})
	require.NoError(t, err)
	require.Empty(t, resp.PrevKvs, "prev_kv not asked for")
	requireValue(t, b, "a", "a3")
}

// testBatchPutDuplicates pins the rule for a key given twice in one batch: the
// last pair wins and the previous pair is reported once. (A PostgreSQL upsert
// must dedup first: ON CONFLICT cannot touch a row twice in one statement.)
func testBatchPutDuplicates(t *testing.T, b kv.Backend) {
	put(t, b, "k", "old")
	resp, err := b.BatchPut(t.Context(), kv.BatchPutRequest{
		Kvs:    []kv.KeyValue{{Key: []byte("k"), Value: []byte("first")}, {Key: []byte("n"), Value: []byte("n1")}, {Key: []byte("k"), Value: []byte("last")}, {Key: []byte("n"), Value: []byte("n2")}},
		PrevKv: true,
	})
	require.NoError(t, err)
	require.Equal(t, []pair{{"k", "old"}}, pairsOf(resp.PrevKvs))
	require.Equal(t, []pair{{"k", "last"}, {"n", "n2"}}, dump(t, b))
}

func testBatchDelete(t *testing.T, b kv.Backend) {
	ctx := t.Context()
	seed(t, b, "a", "b", "c", "d", "\x00")
	resp, err := b.BatchDelete(ctx, kv.BatchDeleteRequest{Keys: keys("c", "missing", "a", "c", "\x00"), PrevKv: true})
	require.NoError(t, err)
	require.Equal(t, withValues("\x00", "a", "c"), pairsOf(resp.PrevKvs), "deleted pairs in key order, each once")
	require.Equal(t, withValues("b", "d"), dump(t, b))

	resp, err = b.BatchDelete(ctx, kv.BatchDeleteRequest{Keys: keys("b")})
	require.NoError(t, err)
	require.Empty(t, resp.PrevKvs, "prev_kv not asked for")
	require.Equal(t, withValues("d"), dump(t, b))
}

func testBatchEmpty(t *testing.T, b kv.Backend) {
	ctx := t.Context()
	seed(t, b, "a")
	g, err := b.BatchGet(ctx, kv.BatchGetRequest{})
	require.NoError(t, err)
	require.Empty(t, g.Kvs)
	p, err := b.BatchPut(ctx, kv.BatchPutRequest{PrevKv: true})
	require.NoError(t, err)
	require.Empty(t, p.PrevKvs)
	d, err := b.BatchDelete(ctx, kv.BatchDeleteRequest{PrevKv: true})
	require.NoError(t, err)
	require.Empty(t, d.PrevKvs)
	require.Equal(t, withValues("a"), dump(t, b))
}

func deleteRangeCases() []testCase {
	return []testCase{
		{"SingleKey", testDeleteSingleKey},
		{"Prefix", testDeletePrefix},
		{"AllFromKey", testDeleteAllFromKey},
		{"Everything", testDeleteEverything},
		{"PatternCharacters", testDeletePatternCharacters},
	}
}

func deleteRange(t *testing.T, b kv.Backend, key, end string, prevKv bool) kv.DeleteRangeResponse {
	t.Helper()
	resp, err := b.DeleteRange(t.Context(), kv.DeleteRangeRequest{Key: []byte(key), RangeEnd: []byte(end), PrevKv: prevKv})
	require.NoError(t, err, "delete range [%q, %q)", key, end)
	return resp
}

func testDeleteSingleKey(t *testing.T, b kv.Backend) {
	seed(t, b, "a", "a\x00", "ab")
	resp := deleteRange(t, b, "a", "", true)
	require.EqualValues(t, 1, resp.Deleted)
	require.Equal(t, withValues("a"), pairsOf(resp.PrevKvs))
	require.Equal(t, withValues("a\x00", "ab"), dump(t, b), "only the one key")

	resp = deleteRange(t, b, "a", "", true)
	require.EqualValues(t, 0, resp.Deleted, "deleting an absent key")
	require.Empty(t, resp.PrevKvs)
}

func testDeletePrefix(t *testing.T, b kv.Backend) {
	seed(t, b, binaryKeys()...)
	resp := deleteRange(t, b, "a", string(kv.PrefixEnd([]byte("a"))), true)
	require.EqualValues(t, 5, resp.Deleted)
	require.Equal(t, withValues("a", "a\x00", "ab", "a\xff", "a\xff\xff"), pairsOf(resp.PrevKvs))

	resp = deleteRange(t, b, "\xff\xff", string(kv.PrefixEnd([]byte("\xff\xff"))), false)
	require.EqualValues(t, 2, resp.Deleted)
	require.Empty(t, resp.PrevKvs, "prev_kv not asked for")
	require.Equal(t, []string{"\x00", "\x00\x00", "\x00\xff", "b", "\xfe\xff", "\xff", "\xff\x00"}, scanKeys(t, b, "\x00", "\x00"))
}

func testDeleteAllFromKey(t *testing.T, b kv.Backend) {
	seed(t, b, binaryKeys()...)
	resp := deleteRange(t, b, "b", "\x00", true)
	require.EqualValues(t, 6, resp.Deleted)
	require.Equal(t, []string{"b", "\xfe\xff", "\xff", "\xff\x00", "\xff\xff", "\xff\xff\xff"}, keysOf(resp.PrevKvs))
	require.Equal(t, []string{"\x00", "\x00\x00", "\x00\xff", "a", "a\x00", "ab", "a\xff", "a\xff\xff"}, scanKeys(t, b, "\x00", "\x00"))
}

func testDeleteEverything(t *testing.T, b kv.Backend) {
	seed(t, b, binaryKeys()...)
	resp := deleteRange(t, b, "\x00", "\x00", false)
	require.EqualValues(t, len(binaryKeys()), resp.Deleted)
	require.Empty(t, dump(t, b))
	resp = deleteRange(t, b, "\x00", "\x00", true)
	require.EqualValues(t, 0, resp.Deleted)
	require.Empty(t, resp.PrevKvs)
}

func testDeletePatternCharacters(t *testing.T, b kv.Backend) {
	seed(t, b, patternKeys()...)
	for _, tc := range []struct {
		prefix  string
		deleted []string
	}{
		{"a%", []string{"a%", "a%%", "a%b"}},
		{"a_", []string{"a_", "a_b"}},
		{"a\\", []string{"a\\", "a\\%", "a\\\\", "a\\_", "a\\b"}},
	} {
		resp := deleteRange(t, b, tc.prefix, string(kv.PrefixEnd([]byte(tc.prefix))), true)
		require.Equal(t, tc.deleted, keysOf(resp.PrevKvs), "prefix %q", tc.prefix)
		require.EqualValues(t, len(tc.deleted), resp.Deleted, "prefix %q", tc.prefix)
	}
	require.Equal(t, []string{"a", "aX", "ab", "abc"}, scanKeys(t, b, "\x00", "\x00"))
}
