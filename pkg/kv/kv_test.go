package kv_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/kv"
)

func TestPrefixEnd(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		prefix, want string
	}{
		{"a", "b"},
		{"abc", "abd"},
		{"a\x00", "a\x01"},
		{"a\xfe", "a\xff"},
		{"a\xff", "b"},
		{"a\xff\xff", "b"},
		{"a\xfe\xff", "a\xff"},
		{"\x00", "\x01"},
		{"\xff", "\x00"},
		{"\xff\xff\xff", "\x00"},
		{"", "\x00"},
	} {
		require.Equal(t, []byte(tc.want), kv.PrefixEnd([]byte(tc.prefix)), "PrefixEnd(%q)", tc.prefix)
	}
}

func TestPrefixEndDoesNotModifyInput(t *testing.T) {
	t.Parallel()
	p := []byte("a\xff")
	kv.PrefixEnd(p)
	require.Equal(t, []byte("a\xff"), p)
}

func TestInRange(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		key, start, end string
		want            bool
	}{
		{"a", "a", "", true},
		{"a\x00", "a", "", false},
		{"b", "a", "", false},
		{"a", "a", "\x00", true},
		{"\xff\xff", "a", "\x00", true},
		{"\x00", "a", "\x00", false},
		{"\x00", "\x00", "\x00", true},
		{"a", "a", "b", true},
		{"a\xff\xff", "a", "b", true},
		{"b", "a", "b", false},
		{"`", "a", "b", false},
		{"a%", "a%", "a&", true},
		{"ab", "a%", "a&", false},
		{"\x00\x00", "\x00", "\x00\x01", true},
	} {
		require.Equal(t, tc.want, kv.InRange([]byte(tc.key), []byte(tc.start), []byte(tc.end)), "InRange(%q, %q, %q)", tc.key, tc.start, tc.end)
	}
}

func TestIsAllKeysFrom(t *testing.T) {
	t.Parallel()
	require.True(t, kv.IsAllKeysFrom([]byte{0}))
	require.False(t, kv.IsAllKeysFrom(nil))
	require.False(t, kv.IsAllKeysFrom([]byte{0, 0}))
	require.False(t, kv.IsAllKeysFrom([]byte{1}))
}

func TestCompareHolds(t *testing.T) {
	t.Parallel()
	key := []byte("k")
	type state struct {
		value   string
		present bool
	}
	absent, empty, m := state{}, state{"", true}, state{"m", true}
	for _, tc := range []struct {
		c    kv.Compare
		s    state
		want bool
	}{
		{kv.CompareValue(key, kv.CompareEqual, []byte("m")), m, true},
		{kv.CompareValue(key, kv.CompareEqual, []byte("n")), m, false},
		{kv.CompareValue(key, kv.CompareNotEqual, []byte("n")), m, true},
		{kv.CompareValue(key, kv.CompareLess, []byte("n")), m, true},
		{kv.CompareValue(key, kv.CompareLess, []byte("m")), m, false},
		{kv.CompareValue(key, kv.CompareGreater, []byte("l")), m, true},
		{kv.CompareValue(key, kv.CompareGreater, []byte("m")), m, false},
		// An absent key sorts before every value, the empty one included.
		{kv.CompareValue(key, kv.CompareEqual, nil), absent, false},
		{kv.CompareValue(key, kv.CompareLess, nil), absent, true},
		{kv.CompareValue(key, kv.CompareNotEqual, []byte("x")), absent, true},
		{kv.CompareValue(key, kv.CompareGreater, []byte("x")), absent, false},
		{kv.CompareValue(key, kv.CompareEqual, nil), empty, true},
		{kv.CompareValue(key, kv.CompareEqual, []byte{}), empty, true},
		{kv.CompareExists(key), m, true},
		{kv.CompareExists(key), empty, true},
		{kv.CompareExists(key), absent, false},
		{kv.CompareAbsent(key), absent, true},
		{kv.CompareAbsent(key), empty, false},
		{kv.Compare{Key: key, Op: kv.CompareGreater, TargetAbsent: true}, empty, true},
		{kv.Compare{Key: key, Op: kv.CompareLess, TargetAbsent: true}, absent, false},
		{kv.Compare{Key: key, Op: kv.CompareOp(42), Target: []byte("m")}, m, false},
	} {
		require.Equal(t, tc.want, tc.c.Holds([]byte(tc.s.value), tc.s.present), "%+v against %+v", tc.c, tc.s)
	}
}

func TestStringers(t *testing.T) {
	t.Parallel()
	require.Equal(t, "<", kv.CompareLess.String())
	require.Equal(t, "CompareOp(9)", kv.CompareOp(9).String())
	require.Equal(t, "delete", kv.TxnDelete.String())
	require.Equal(t, "TxnOpKind(7)", kv.TxnOpKind(7).String())
}

func TestSentinelsAreInvalidArguments(t *testing.T) {
	t.Parallel()
	for _, err := range []error{kv.ErrEmptyKey, kv.ErrTooManyTxnOps, kv.ErrValueTooLarge, kv.ErrInvalidRange} {
		require.ErrorIs(t, err, kv.ErrInvalidArgument, err.Error())
	}
	require.NotErrorIs(t, kv.ErrUnavailable, kv.ErrInvalidArgument)
	require.NotErrorIs(t, kv.ErrEmptyKey, kv.ErrTooManyTxnOps)
}
