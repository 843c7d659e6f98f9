package kvtest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/kv"
)

func chrootCases() []testCase {
	return []testCase{
		{"Separation", testChrootSeparation},
		{"AllKeysStayInside", testChrootAllKeys},
		{"Operations", testChrootOperations},
		{"PatternPrefix", testChrootPatternPrefix},
		{"AllFFPrefix", testChrootAllFFPrefix},
		{"WithLimits", testChrootWithLimits},
	}
}

// seedNeighbours stores raw keys just outside the "tenant-a/" chroot on both
// sides (PrefixEnd("tenant-a/") is "tenant-a0"; "tenant-a." sorts just before)
// and returns them as dump would.
func seedNeighbours(t *testing.T, raw kv.Backend) []pair {
	t.Helper()
	ks := []string{"tenant-a", "tenant-a.", "tenant-a0", "tenant-a0/x", "tenant-b/k", "\xff"}
	seed(t, raw, ks...)
	return withValues(sortedKeys(ks...)...)
}

func testChrootSeparation(t *testing.T, raw kv.Backend) {
	a := kv.WithPrefix(raw, []byte("tenant-a/"))
	c := kv.WithPrefix(raw, []byte("tenant-c/"))
	put(t, a, "k", "from a")
	put(t, c, "k", "from c")
	put(t, a, "only-a", "1")

	requireValue(t, a, "k", "from a")
	requireValue(t, c, "k", "from c")
	requireAbsent(t, c, "only-a")
	require.Equal(t, []pair{{"k", "from a"}, {"only-a", "1"}}, dump(t, a), "keys come back without the prefix")
	require.Equal(t, []pair{{"k", "from c"}}, dump(t, c))
	require.Equal(t, []pair{{"tenant-a/k", "from a"}, {"tenant-a/only-a", "1"}, {"tenant-c/k", "from c"}}, dump(t, raw),
		"keys are stored under the prefix")
}

func testChrootAllKeys(t *testing.T, raw kv.Backend) {
	outside := seedNeighbours(t, raw)
	a := kv.WithPrefix(raw, []byte("tenant-a/"))
	seed(t, a, "\x00", "k1", "k2", "\xff")

	require.Equal(t, []string{"\x00", "k1", "k2", "\xff"}, scanKeys(t, a, "\x00", "\x00"), `"\x00".."\x00" is every key of the chroot, no more`)
	require.Equal(t, []string{"k2", "\xff"}, scanKeys(t, a, "k2", "\x00"))
	resp := scan(t, a, kv.RangeRequest{Key: []byte("k"), RangeEnd: []byte{0}, Limit: 3})
	require.Equal(t, []string{"k1", "k2", "\xff"}, keysOf(resp.Kvs))
	require.False(t, resp.More, "keys after the chroot do not count towards more")
	require.Equal(t, []string{"k1", "k2"}, prefixKeys(t, a, "k"))

	del := deleteRange(t, a, "k2", "\x00", true)
	require.EqualValues(t, 2, del.Deleted)
	require.Equal(t, []string{"k2", "\xff"}, keysOf(del.PrevKvs))
	del = deleteRange(t, a, "\x00", "\x00", false)
	require.EqualValues(t, 2, del.Deleted)
	require.Empty(t, dump(t, a))
	require.Equal(t, outside, dump(t, raw), "deleting everything in the chroot leaves the rest alone")
}

func testChrootOperations(t *testing.T, raw kv.Backend) {
	ctx := t.Context()
	outside := seedNeighbours(t, raw)
	a := kv.WithPrefix(raw, []byte("tenant-a/"))

	p, err := a.Put(ctx, kv.PutRequest{Key: []byte("k"), Value: []byte("1")})
	require.NoError(t, err)
	require.Nil(t, p.PrevKv)
	p, err = a.Put(ctx, kv.PutRequest{Key: []byte("k"), Value: []byte("2"), PrevKv: true})
	require.NoError(t, err)
	require.Equal(t, []pair{{"k", "1"}}, pairsOf([]kv.KeyValue{*p.PrevKv}))

	bp, err := a.BatchPut(ctx, kv.BatchPutRequest{Kvs: []kv.KeyValue{{Key: []byte("k"), Value: []byte("3")}, {Key: []byte("j"), Value: []byte("j")}}, PrevKv: true})
	require.NoError(t, err)
	require.Equal(t, []pair{{"k", "2"}}, pairsOf(bp.PrevKvs))

	bg, err := a.BatchGet(ctx, kv.BatchGetRequest{Keys: keys("k", "j", "tenant-b/k")})
	require.NoError(t, err)
	require.Equal(t, []pair{{"j", "j"}, {"k", "3"}}, pairsOf(bg.Kvs))

	c, err := a.CompareAndPut(ctx, kv.CompareAndPutRequest{Key: []byte("k"), Expect: []byte("x"), Value: []byte("4")})
	require.NoError(t, err)
	require.False(t, c.Success)
	require.Equal(t, []pair{{"k", "3"}}, pairsOf([]kv.KeyValue{*c.PrevKv}))
	c, err = a.CompareAndPut(ctx, kv.CompareAndPutRequest{Key: []byte("new"), Value: []byte("n")})
	require.NoError(t, err)
	require.True(t, c.Success)

	tx, err := a.Txn(ctx, kv.TxnRequest{
		Compare: []kv.Compare{kv.CompareValue([]byte("k"), kv.CompareEqual, []byte("3")), kv.CompareAbsent([]byte("tenant-a0"))},
		Success: []kv.TxnOp{kv.OpPut([]byte("k"), []byte("5")), kv.OpGet([]byte("j")), kv.OpDelete([]byte("new"))},
	})
	require.NoError(t, err)
	require.True(t, tx.Succeeded, "compares see only keys inside the chroot")
	require.Equal(t, []pair{{"k", "3"}}, pairsOf(tx.Responses[0].Kvs))
	require.Equal(t, []pair{{"j", "j"}}, pairsOf(tx.Responses[1].Kvs))
	require.Equal(t, []pair{{"new", "n"}}, pairsOf(tx.Responses[2].Kvs))

	bd, err := a.BatchDelete(ctx, kv.BatchDeleteRequest{Keys: keys("j", "tenant-b/k"), PrevKv: true})
	require.NoError(t, err)
	require.Equal(t, []pair{{"j", "j"}}, pairsOf(bd.PrevKvs))

	require.Equal(t, []pair{{"k", "5"}}, dump(t, a))
	require.Equal(t, []pair{{"tenant-a", valueOf("tenant-a")}, {"tenant-a.", valueOf("tenant-a.")}, {"tenant-a/k", "5"}}, dump(t, raw)[:3])
	require.Equal(t, outside[2:], dump(t, raw)[3:], "keys outside the chroot are untouched")
}

// A prefix holding LIKE wildcards must not let a scan reach keys that merely
// match the pattern.
func testChrootPatternPrefix(t *testing.T, raw kv.Backend) {
	seed(t, raw, "a_b/k", "axb/k", "a%/k", "abc/k", "a\\/k", "a\\\\/k")
	for _, prefix := range []string{"a_b/", "a%/", "a\\/"} {
		c := kv.WithPrefix(raw, []byte(prefix))
		require.Equal(t, []string{"k"}, scanKeys(t, c, "\x00", "\x00"), "chroot %q", prefix)
	}
	c := kv.WithPrefix(raw, []byte("a%/"))
	del := deleteRange(t, c, "\x00", "\x00", false)
	require.EqualValues(t, 1, del.Deleted)
	require.Equal(t, []string{"a\\/k", "a\\\\/k", "a_b/k", "abc/k", "axb/k"}, scanKeys(t, raw, "\x00", "\x00"))
}

func testChrootAllFFPrefix(t *testing.T, raw kv.Backend) {
	seed(t, raw, "\xfe", "\xff", "\xff\xfe")
	c := kv.WithPrefix(raw, []byte("\xff\xff"))
	seed(t, c, "\x00", "k", "\xff")
	require.Equal(t, []string{"\x00", "k", "\xff"}, scanKeys(t, c, "\x00", "\x00"))
	del := deleteRange(t, c, "\x00", "\x00", false)
	require.EqualValues(t, 3, del.Deleted)
	require.Equal(t, withValues("\xfe", "\xff", "\xff\xfe"), dump(t, raw))
}

func testChrootWithLimits(t *testing.T, raw kv.Backend) {
	b := kv.WithLimits(kv.WithPrefix(raw, []byte("tenant-a/")), Limits())
	_, err := b.Put(t.Context(), kv.PutRequest{Key: nil, Value: []byte("v")})
	require.ErrorIs(t, err, kv.ErrEmptyKey, "an empty key in a chroot is still refused, not written at the bare prefix")
	require.Empty(t, dump(t, raw))
}
