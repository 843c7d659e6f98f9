package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// A range larger than the server may send in one message is listed whole:
// ctl pages through it (limit + more, from the last key + "\x00"), halving a
// page gRPC refuses to send, in text and in JSON; --limit still caps it.
func TestCtlRangePagesPastTheMessageSizeLimit(t *testing.T) {
	t.Parallel()
	tc := newCtlCluster(t, 1, grpc.MaxSendMsgSize(8<<10))
	tc.elect(0)
	ep := tc.endpoints(0)
	value := strings.Repeat("v", 1000)
	var keys []string
	for i := range 60 {
		k := fmt.Sprintf("big/%03d", i)
		keys = append(keys, k)
		ctl(t, ep, "kv", "put", k, value).ok(t)
	}
	ctl(t, ep, "kv", "put", "bigger", "outside the prefix").ok(t)

	var want strings.Builder
	for _, k := range keys {
		want.WriteString(k + "\n" + value + "\n")
	}
	r := ctl(t, ep, "kv", "range", "--prefix", "big/").ok(t)
	require.Equal(t, want.String(), r.stdout)
	require.Empty(t, r.stderr)
	require.Equal(t, strings.Join(keys, "\n")+"\n", ctl(t, ep, "kv", "range", "--keys-only", "--prefix", "big/").ok(t).stdout)

	var resp struct {
		Kvs []struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		} `json:"kvs"`
		Count int  `json:"count"`
		More  bool `json:"more"`
	}
	require.NoError(t, json.Unmarshal([]byte(ctl(t, ep, "-o", "json", "kv", "range", "--prefix", "big/").ok(t).stdout), &resp))
	require.Equal(t, 60, resp.Count)
	require.False(t, resp.More)
	require.Len(t, resp.Kvs, 60)
	for i, p := range resp.Kvs {
		require.Equal(t, keys[i], p.Key)
		require.Equal(t, value, p.Value)
	}

	// --limit caps the listing across pages, and says when it cut.
	r = ctl(t, ep, "kv", "range", "--keys-only", "--limit", "25", "--prefix", "big/")
	require.Zero(t, r.code, r.stderr)
	require.Equal(t, strings.Join(keys[:25], "\n")+"\n", r.stdout)
	require.Equal(t, "(more keys after these: --limit 25 reached)\n", r.stderr)
	r = ctl(t, ep, "kv", "range", "--limit", "60", "--prefix", "big/").ok(t)
	require.Equal(t, want.String(), r.stdout)
	require.Empty(t, r.stderr, "limit == count: nothing was cut")
	resp.Kvs = nil
	require.NoError(t, json.Unmarshal([]byte(ctl(t, ep, "-o", "json", "kv", "range", "--limit", "30", "--prefix", "big/").ok(t).stdout), &resp))
	require.Equal(t, 30, resp.Count)
	require.True(t, resp.More)
}

// The streamed JSON keeps writeJSON's layout, empty listings included.
func TestCtlRangeJSONLayout(t *testing.T) {
	t.Parallel()
	tc := newCtlCluster(t, 1)
	tc.elect(0)
	ep := tc.endpoints(0)
	require.Equal(t, "{\n  \"kvs\": [],\n  \"count\": 0,\n  \"more\": false\n}\n", ctl(t, ep, "-o", "json", "kv", "range", "--prefix", "none").ok(t).stdout)
	ctl(t, ep, "kv", "put", "a", "<1>").ok(t)
	ctl(t, ep, "kv", "put", "b", "2").ok(t)
	var buf strings.Builder
	require.NoError(t, writeJSON(&buf, map[string]any{
		"kvs": []jsonKV{jsonPair(kvPair("a", "<1>"), true), jsonPair(kvPair("b", "2"), true)}, "count": 2, "more": false,
	}))
	var want, got any
	out := ctl(t, ep, "-o", "json", "kv", "range", "--prefix", "").ok(t).stdout
	require.NoError(t, json.Unmarshal([]byte(buf.String()), &want))
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	require.Equal(t, want, got)
	require.Contains(t, out, "{\n  \"kvs\": [\n    {\n      \"key\": \"a\",\n")
	require.Contains(t, out, "\"value\": \"<1>\"", "no HTML escaping")
	require.True(t, strings.HasSuffix(out, "\n  ],\n  \"count\": 2,\n  \"more\": false\n}\n"), out)
}

func kvPair(k, v string) kv.KeyValue { return kv.KeyValue{Key: []byte(k), Value: []byte(v)} }
