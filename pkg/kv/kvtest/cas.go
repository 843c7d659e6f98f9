package kvtest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/kv"
)

func casCases() []testCase {
	return []testCase{
		{"AbsentKey", testCASAbsent},
		{"PresentKey", testCASPresent},
		{"EmptyValueIsNotAbsent", testCASEmptyValue},
	}
}

func cas(t *testing.T, b kv.Backend, key, expect, value string) kv.CompareAndPutResponse {
	t.Helper()
	resp, err := b.CompareAndPut(t.Context(), kv.CompareAndPutRequest{Key: []byte(key), Expect: []byte(expect), Value: []byte(value)})
	require.NoError(t, err, "compare and put %q", key)
	return resp
}

func testCASAbsent(t *testing.T, b kv.Backend) {
	resp := cas(t, b, "k", "something", "v")
	require.False(t, resp.Success, "a non-empty expect never matches an absent key")
	require.Nil(t, resp.PrevKv)
	requireAbsent(t, b, "k")

	resp = cas(t, b, "k", "", "v1")
	require.True(t, resp.Success, "an empty expect means: the key is absent")
	require.Nil(t, resp.PrevKv)
	requireValue(t, b, "k", "v1")
}

func testCASPresent(t *testing.T, b kv.Backend) {
	put(t, b, "k", "v1")

	resp := cas(t, b, "k", "", "x")
	require.False(t, resp.Success, "empty expect fails on a present key")
	require.NotNil(t, resp.PrevKv)
	require.Equal(t, pair{"k", "v1"}, pairsOf([]kv.KeyValue{*resp.PrevKv})[0], "a failed caller sees the current pair")

	resp = cas(t, b, "k", "v0", "x")
	require.False(t, resp.Success, "mismatch")
	require.NotNil(t, resp.PrevKv)
	require.Equal(t, "v1", string(resp.PrevKv.Value))
	requireValue(t, b, "k", "v1")

	resp = cas(t, b, "k", "v1", "v2")
	require.True(t, resp.Success, "match")
	require.NotNil(t, resp.PrevKv)
	require.Equal(t, pair{"k", "v1"}, pairsOf([]kv.KeyValue{*resp.PrevKv})[0], "the pair before the put")
	requireValue(t, b, "k", "v2")

	resp = cas(t, b, "k", "v2", "")
	require.True(t, resp.Success, "swap to an empty value")
	v, ok := get(t, b, "k")
	require.True(t, ok)
	require.Empty(t, v)
}

func testCASEmptyValue(t *testing.T, b kv.Backend) {
	put(t, b, "k", "")
	resp := cas(t, b, "k", "", "v")
	require.False(t, resp.Success, "a key holding an empty value is present, so 'expect absent' fails")
	require.NotNil(t, resp.PrevKv)
	require.Empty(t, resp.PrevKv.Value)
	requireValue(t, b, "k", "")
}
