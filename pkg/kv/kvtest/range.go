package kvtest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// binaryKeys mixes 0x00 and 0xff bytes and keys that are prefixes of each
// other, where a backend comparing anything but raw bytes goes wrong.
func binaryKeys() []string {
	return []string{
		"\x00", "\x00\x00", "\x00\xff",
		"a", "a\x00", "ab", "a\xff", "a\xff\xff",
		"b",
		"\xfe\xff",
		"\xff", "\xff\x00", "\xff\xff", "\xff\xff\xff",
	}
}

// patternKeys hold LIKE wildcards and its escape character: a prefix scan
// built on LIKE would match extra keys.
func patternKeys() []string {
	return []string{
		"a", "a%", "a%%", "a%b", "a_", "a_b", "a\\", "a\\%", "a\\b", "a\\_", "ab", "abc", "aX", "a\\\\",
	}
}

func rangeCases() []testCase {
	return []testCase{
		{"SingleKey", testRangeSingleKey},
		{"BinaryKeysOrder", testRangeBinaryKeysOrder},
		{"BinaryPrefixes", testRangeBinaryPrefixes},
		{"ExplicitEnd", testRangeExplicitEnd},
		{"PatternCharacters", testRangePatternCharacters},
		{"AllFromKey", testRangeAllFromKey},
		{"LimitAndMore", testRangeLimitAndMore},
		{"KeysOnly", testRangeKeysOnly},
		{"EmptyValue", testRangeEmptyValue},
		{"EmptyStore", testRangeEmptyStore},
	}
}

func testRangeSingleKey(t *testing.T, b kv.Backend) {
	seed(t, b, "a", "a\x00", "ab", "b")

	resp := scan(t, b, kv.RangeRequest{Key: []byte("a")})
	require.Equal(t, withValues("a"), pairsOf(resp.Kvs), "an empty range_end selects exactly the key, not the keys it prefixes")
	require.False(t, resp.More)

	require.Empty(t, scan(t, b, kv.RangeRequest{Key: []byte("aa")}).Kvs, "absent key")
	requireValue(t, b, "a\x00", valueOf("a\x00"))
	requireAbsent(t, b, "c")
}

func testRangeBinaryKeysOrder(t *testing.T, b kv.Backend) {
	// Insert in reverse so an insertion-ordered backend would fail.
	ks := binaryKeys()
	for i := len(ks) - 1; i >= 0; i-- {
		seed(t, b, ks[i])
	}
	require.Equal(t, sortedKeys(ks...), scanKeys(t, b, "\x00", "\x00"), "every key, bytewise order")
	for _, k := range ks {
		requireValue(t, b, k, valueOf(k))
	}
}

func testRangeBinaryPrefixes(t *testing.T, b kv.Backend) {
	seed(t, b, binaryKeys()...)
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"\x00", []string{"\x00", "\x00\x00", "\x00\xff"}},
		{"\x00\x00", []string{"\x00\x00"}},
		{"a", []string{"a", "a\x00", "ab", "a\xff", "a\xff\xff"}},
		{"a\x00", []string{"a\x00"}},
		// A prefix ending in 0xff: its end is "b", not "a\x00"-anything.
		{"a\xff", []string{"a\xff", "a\xff\xff"}},
		{"\xfe", []string{"\xfe\xff"}},
		// All-0xff prefixes have no upper bound: every key >= the prefix.
		{"\xff", []string{"\xff", "\xff\x00", "\xff\xff", "\xff\xff\xff"}},
		{"\xff\xff", []string{"\xff\xff", "\xff\xff\xff"}},
		{"\xff\xff\xff", []string{"\xff\xff\xff"}},
		{"c", []string{}},
	} {
		require.Equal(t, tc.want, prefixKeys(t, b, tc.prefix), "prefix %q", tc.prefix)
	}
}

func testRangeExplicitEnd(t *testing.T, b kv.Backend) {
	seed(t, b, binaryKeys()...)
	require.Equal(t, []string{"a\x00", "ab", "a\xff", "a\xff\xff"}, scanKeys(t, b, "a\x00", "b"), "end is exclusive")
	require.Equal(t, []string{"a", "a\x00", "ab", "a\xff", "a\xff\xff", "b"}, scanKeys(t, b, "a", "b\x00"))
	require.Equal(t, []string{"\x00\xff", "a"}, scanKeys(t, b, "\x00\x01", "a\x00"))
	require.Equal(t, []string{}, scanKeys(t, b, "c", "d"))
}

func testRangePatternCharacters(t *testing.T, b kv.Backend) {
	seed(t, b, patternKeys()...)
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"a%", []string{"a%", "a%%", "a%b"}},
		{"a%%", []string{"a%%"}},
		{"a_", []string{"a_", "a_b"}},
		{"a\\", []string{"a\\", "a\\%", "a\\\\", "a\\_", "a\\b"}},
		{"a\\%", []string{"a\\%"}},
		{"a\\_", []string{"a\\_"}},
		{"%", []string{}},
		{"_", []string{}},
	} {
		require.Equal(t, tc.want, prefixKeys(t, b, tc.prefix), "prefix %q", tc.prefix)
	}
	for _, k := range []string{"a%", "a_", "a\\", "a\\%"} {
		require.Equal(t, []string{k}, scanKeys(t, b, k, ""), "single key %q", k)
	}
	requireAbsent(t, b, "a_x")
	requireAbsent(t, b, "%")
}

func testRangeAllFromKey(t *testing.T, b kv.Backend) {
	seed(t, b, binaryKeys()...)
	all := sortedKeys(binaryKeys()...)
	require.Equal(t, all, scanKeys(t, b, "\x00", "\x00"), `key "\x00" with range_end "\x00" is every key`)
	require.Equal(t, []string{"b", "\xfe\xff", "\xff", "\xff\x00", "\xff\xff", "\xff\xff\xff"}, scanKeys(t, b, "b", "\x00"))
	require.Equal(t, []string{"b", "\xfe\xff", "\xff", "\xff\x00", "\xff\xff", "\xff\xff\xff"}, scanKeys(t, b, "a\xff\xff\x00", "\x00"), "start key need not exist")
	require.Equal(t, []string{"\xff\xff\xff"}, scanKeys(t, b, "\xff\xff\xff", "\x00"))
	require.Equal(t, []string{}, scanKeys(t, b, "\xff\xff\xff\x00", "\x00"))
}

func testRangeLimitAndMore(t *testing.T, b kv.Backend) {
	ks := []string{"k1", "k2", "k3", "k4", "k5"}
	seed(t, b, ks...)
	seed(t, b, "l1") // outside the scanned prefix: must not count towards more
	for _, tc := range []struct {
		limit int64
		want  []string
		more  bool
	}{
		{0, ks, false},
		{1, ks[:1], true},
		{2, ks[:2], true},
		{4, ks[:4], true},
		{5, ks, false}, // limit == count: nothing was cut
		{6, ks, false},
	} {
		resp := scan(t, b, kv.RangeRequest{Key: []byte("k"), RangeEnd: kv.PrefixEnd([]byte("k")), Limit: tc.limit})
		require.Equal(t, withValues(tc.want...), pairsOf(resp.Kvs), "limit %d", tc.limit)
		require.Equal(t, tc.more, resp.More, "more with limit %d", tc.limit)
	}

	resp := scan(t, b, kv.RangeRequest{Key: []byte("k3"), Limit: 1})
	require.Equal(t, []string{"k3"}, keysOf(resp.Kvs))
	require.False(t, resp.More, "a single-key range with limit 1 is not cut")

	resp = scan(t, b, kv.RangeRequest{Key: []byte("k4"), RangeEnd: []byte{0}, Limit: 2})
	require.Equal(t, []string{"k4", "k5"}, keysOf(resp.Kvs))
	require.True(t, resp.More, `"l1" is left after the limit`)

	resp = scan(t, b, kv.RangeRequest{Key: []byte("k"), RangeEnd: kv.PrefixEnd([]byte("k")), Limit: 2, KeysOnly: true})
	require.Equal(t, []string{"k1", "k2"}, keysOf(resp.Kvs))
	require.True(t, resp.More, "keys_only with a limit")
}

func testRangeKeysOnly(t *testing.T, b kv.Backend) {
	seed(t, b, "a", "b")
	put(t, b, "c", "")
	resp := scan(t, b, kv.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, KeysOnly: true})
	require.Equal(t, []string{"a", "b", "c"}, keysOf(resp.Kvs), "keys_only still lists keys with empty values")
	for _, e := range resp.Kvs {
		require.Nil(t, e.Value, "keys_only leaves values nil (key %q)", e.Key)
	}
	require.False(t, resp.More)
}

func testRangeEmptyValue(t *testing.T, b kv.Backend) {
	_, err := b.Put(t.Context(), kv.PutRequest{Key: []byte("empty"), Value: []byte{}})
	require.NoError(t, err)
	_, err = b.Put(t.Context(), kv.PutRequest{Key: []byte("nil"), Value: nil})
	require.NoError(t, err, "a nil value is stored as an empty one")

	for _, k := range []string{"empty", "nil"} {
		v, ok := get(t, b, k)
		require.True(t, ok, "key %q with an empty value is present, not absent", k)
		require.Empty(t, v)
	}
	require.Equal(t, []pair{{"empty", ""}, {"nil", ""}}, dump(t, b))
	requireAbsent(t, b, "other")
}

func testRangeEmptyStore(t *testing.T, b kv.Backend) {
	resp := scan(t, b, kv.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, Limit: 10})
	require.Empty(t, resp.Kvs)
	require.False(t, resp.More)
	requireAbsent(t, b, "a")
}
