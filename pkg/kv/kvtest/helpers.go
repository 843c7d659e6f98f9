package kvtest

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// pair is a KeyValue as strings, so expectations read naturally and failures
// print readably (binary bytes show as escapes).
type pair struct {
	Key, Value string
}

func (p pair) String() string { return fmt.Sprintf("%q=%q", p.Key, p.Value) }

func pairsOf(kvs []kv.KeyValue) []pair {
	out := make([]pair, 0, len(kvs))
	for _, e := range kvs {
		out = append(out, pair{string(e.Key), string(e.Value)})
	}
	return out
}

func keysOf(kvs []kv.KeyValue) []string {
	out := make([]string, 0, len(kvs))
	for _, e := range kvs {
		out = append(out, string(e.Key))
	}
	return out
}

// valueOf is the value every seeded key gets, so expectations can be derived
// from key lists.
func valueOf(key string) string { return "v:" + key }

func withValues(keys ...string) []pair {
	out := make([]pair, 0, len(keys))
	for _, k := range keys {
		out = append(out, pair{k, valueOf(k)})
	}
	return out
}

// sortedKeys returns keys in the bytewise order every backend must return.
func sortedKeys(keys ...string) []string {
	out := slices.Clone(keys)
	slices.SortFunc(out, func(a, b string) int { return bytes.Compare([]byte(a), []byte(b)) })
	return out
}

func put(t *testing.T, b kv.Backend, key, value string) {
	t.Helper()
	_, err := b.Put(t.Context(), kv.PutRequest{Key: []byte(key), Value: []byte(value)})
	require.NoError(t, err, "put %q", key)
}

// seed stores each key with valueOf(key).
func seed(t *testing.T, b kv.Backend, keys ...string) {
	t.Helper()
	for _, k := range keys {
		put(t, b, k, valueOf(k))
	}
}

// get returns the value of key and whether it is present.
func get(t *testing.T, b kv.Backend, key string) ([]byte, bool) {
	t.Helper()
	e, err := kv.Get(t.Context(), b, []byte(key))
	require.NoError(t, err, "get %q", key)
	if e == nil {
		return nil, false
	}
	require.Equal(t, key, string(e.Key))
	return e.Value, true
}

func requireValue(t *testing.T, b kv.Backend, key, want string) {
	t.Helper()
	v, ok := get(t, b, key)
	require.True(t, ok, "key %q must be present", key)
	require.Equal(t, want, string(v), "value of %q", key)
}

func requireAbsent(t *testing.T, b kv.Backend, key string) {
	t.Helper()
	_, ok := get(t, b, key)
	require.False(t, ok, "key %q must be absent", key)
}

func scan(t *testing.T, b kv.Backend, req kv.RangeRequest) kv.RangeResponse {
	t.Helper()
	resp, err := b.Range(t.Context(), req)
	require.NoError(t, err, "range [%q, %q)", req.Key, req.RangeEnd)
	return resp
}

func scanKeys(t *testing.T, b kv.Backend, key, end string) []string {
	t.Helper()
	return keysOf(scan(t, b, kv.RangeRequest{Key: []byte(key), RangeEnd: []byte(end)}).Kvs)
}

func prefixKeys(t *testing.T, b kv.Backend, prefix string) []string {
	t.Helper()
	return scanKeys(t, b, prefix, string(kv.PrefixEnd([]byte(prefix))))
}

// dump returns every pair in the backend.
func dump(t *testing.T, b kv.Backend) []pair {
	t.Helper()
	return pairsOf(scan(t, b, kv.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}}).Kvs)
}

func keys(ks ...string) [][]byte {
	out := make([][]byte, 0, len(ks))
	for _, k := range ks {
		out = append(out, []byte(k))
	}
	return out
}
