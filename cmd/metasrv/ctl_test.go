package main

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/kv"
)

func TestCtlPutGetRoundTrip(t *testing.T) {
	t.Parallel()
	tc := newCtlCluster(t, 1)
	tc.elect(0)
	ep := tc.endpoints(0)

	require.Equal(t, "OK\n", ctl(t, ep, "kv", "put", "k", "v").ok(t).stdout)
	require.Equal(t, "v\n", ctl(t, ep, "kv", "get", "k").ok(t).stdout)
	require.Equal(t, "v\n", ctl(t, ep, "--consistency", "serializable", "kv", "get", "k").ok(t).stdout)

	// The value comes from stdin, byte for byte, when omitted or "-".
	ctlStdin(t, "line1\nline2\n", ep, "kv", "put", "multi").ok(t)
	ctlStdin(t, "dash", ep, "kv", "put", "d", "-").ok(t)
	got, err := kv.Get(t.Context(), tc.store, []byte("multi"))
	require.NoError(t, err)
	require.Equal(t, "line1\nline2\n", string(got.Value))
	require.Equal(t, `"line1\nline2\n"`+"\n", ctl(t, ep, "kv", "get", "multi").ok(t).stdout)
	require.Equal(t, "dash\n", ctl(t, ep, "kv", "get", "d").ok(t).stdout)

	// --hex applies to every command-line key and value.
	ctl(t, ep, "--hex", "kv", "put", "6869", "7468657265").ok(t)
	require.Equal(t, "there\n", ctl(t, ep, "kv", "get", "hi").ok(t).stdout)

	r := ctl(t, ep, "kv", "get", "absent").fails(t, `kv get "absent": key not found`)
	require.Empty(t, r.stdout)
}

func TestCtlGetJSON(t *testing.T) {
	t.Parallel()
	tc := newCtlCluster(t, 1)
	tc.elect(0)
	ep := tc.endpoints(0)
	ctl(t, ep, "kv", "put", "k", "<v&>").ok(t)

	var found map[string]any
	require.NoError(t, json.Unmarshal([]byte(ctl(t, ep, "-o", "json", "kv", "get", "k").ok(t).stdout), &found))
	require.Equal(t, map[string]any{"found": true, "key": "k", "key_b64": "aw==", "value": "<v&>", "value_b64": "PHYmPg=="}, found)

	r := ctl(t, ep, "-o", "json", "kv", "get", "nope").fails(t, "key not found")
	var missing map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &missing))
	require.Equal(t, map[string]any{"found": false, "key": "nope", "key_b64": "bm9wZQ=="}, missing)
}

func TestCtlEscapesNonPrintable(t *testing.T) {
	t.Parallel()
	tc := newCtlCluster(t, 1)
	tc.elect(0)
	ep := tc.endpoints(0)
	// key "k\x00\xff", value ESC [31m red \x07 (an ANSI colour and a bell).
	ctl(t, ep, "--hex", "kv", "put", "6b00ff", "1b5b33316d7265640a07").ok(t)
	ctl(t, ep, "kv", "put", "quoted", `"x"`).ok(t)
	ctl(t, ep, "kv", "put", "empty", "").ok(t)
	ctl(t, ep, "kv", "put", "utf8", "héllo wörld ✓").ok(t)

	get := ctl(t, ep, "--hex", "kv", "get", "6b00ff").ok(t).stdout
	require.Equal(t, `"\x1b[31mred\n\a"`+"\n", get)
	rng := ctl(t, ep, "kv", "range", "--from-key", "a").ok(t).stdout
	require.Equal(t, strings.Join([]string{
		`empty`, `""`,
		`"k\x00\xff"`, `"\x1b[31mred\n\a"`,
		`quoted`, `"\"x\""`,
		`utf8`, `héllo wörld ✓`,
	}, "\n")+"\n", rng)
	for _, out := range []string{get, rng} {
		for _, b := range []byte{0x00, 0x07, 0x1b, 0xff} {
			require.NotContains(t, out, string([]byte{b}), "raw byte %#x reached the output", b)
		}
	}

	// JSON: base64 always, the plain string only for valid UTF-8.
	var resp struct {
		Kvs   []map[string]any `json:"kvs"`
		Count int              `json:"count"`
		More  bool             `json:"more"`
	}
	require.NoError(t, json.Unmarshal([]byte(ctl(t, ep, "-o", "json", "kv", "range", "--prefix", "k").ok(t).stdout), &resp))
	require.Equal(t, 1, resp.Count)
	require.False(t, resp.More)
	require.Equal(t, map[string]any{
		"key_b64":   base64.StdEncoding.EncodeToString([]byte("k\x00\xff")),
		"value":     "\x1b[31mred\n\a",
		"value_b64": base64.StdEncoding.EncodeToString([]byte("\x1b[31mred\n\a")),
	}, resp.Kvs[0])
}

// LIKE metacharacters in a prefix select exactly the keys that start with
// those bytes.
func TestCtlRangePrefixWithLikeMetacharacters(t *testing.T) {
	t.Parallel()
	tc := newCtlCluster(t, 1)
	tc.elect(0)
	ep := tc.endpoints(0)
	for _, k := range []string{"a%_b/1", "a%_b/2", "aX_b/1", "a%Xb/1", "a%_c", `a\%_b/1`, "a%_b", "b"} {
		ctl(t, ep, "kv", "put", k, "v-"+k).ok(t)
	}
	require.Equal(t, "a%_b/1\na%_b/2\n", ctl(t, ep, "kv", "range", "--prefix", "--keys-only", "a%_b/").ok(t).stdout)
	require.Equal(t, "a%_b/1\nv-a%_b/1\na%_b/2\nv-a%_b/2\n", ctl(t, ep, "kv", "range", "--prefix", "a%_b/").ok(t).stdout)

	// An explicit END is exclusive; --limit cuts and says so on stderr.
	require.Equal(t, "a%_b\na%_b/1\n", ctl(t, ep, "kv", "range", "--keys-only", "a%_b", "a%_b/2").ok(t).stdout)
	r := ctl(t, ep, "kv", "range", "--keys-only", "--limit", "2", "--prefix", "a")
	require.Zero(t, r.code)
	require.Equal(t, "a%Xb/1\na%_b\n", r.stdout)
	require.Equal(t, "(more keys after these: --limit 2 reached)\n", r.stderr)

	// An empty prefix lists everything; a plain KEY is that one key.
	all := ctl(t, ep, "kv", "range", "--keys-only", "--prefix", "").ok(t).stdout
	require.Len(t, strings.Split(strings.TrimSpace(all), "\n"), 8)
	require.Equal(t, "b\nv-b\n", ctl(t, ep, "kv", "range", "b").ok(t).stdout)
}

func TestCtlDel(t *testing.T) {
	t.Parallel()
	tc := newCtlCluster(t, 1)
	tc.elect(0)
	ep := tc.endpoints(0)
	for _, k := range []string{"p/1", "p/2", "p/3", "p0", "q"} {
		ctl(t, ep, "kv", "put", k, "v").ok(t)
	}
	require.Equal(t, "3\n", ctl(t, ep, "kv", "del", "--prefix", "p/").ok(t).stdout)
	require.Equal(t, "0\n", ctl(t, ep, "kv", "del", "missing").ok(t).stdout)
	require.Equal(t, `{
  "deleted": 1
}
`, ctl(t, ep, "-o", "json", "kv", "del", "q").ok(t).stdout)
	require.Equal(t, "p0\n", ctl(t, ep, "kv", "range", "--keys-only", "--prefix", "").ok(t).stdout)

	// Deleting everything is not one empty argument away.
	ctl(t, ep, "kv", "del", "--prefix", "").fails(t, "KEY is empty")
	require.Equal(t, "p0\n", ctl(t, ep, "kv", "range", "--keys-only", "--prefix", "").ok(t).stdout)
}

func TestCtlCompareAndPut(t *testing.T) {
	t.Parallel()
	tc := newCtlCluster(t, 1)
	tc.elect(0)
	ep := tc.endpoints(0)

	require.Equal(t, "OK\n", ctl(t, ep, "kv", "cas", "k", "", "v1").ok(t).stdout)
	r := ctl(t, ep, "kv", "cas", "k", "", "v2").fails(t, `kv cas "k": compare failed`)
	require.Equal(t, "FAILED current value: v1\n", r.stdout)
	r = ctl(t, ep, "kv", "cas", "k", "wrong", "v2").fails(t, "compare failed")
	require.Equal(t, "FAILED current value: v1\n", r.stdout)
	require.Equal(t, "OK\n", ctl(t, ep, "kv", "cas", "k", "v1", "v2").ok(t).stdout)
	require.Equal(t, "v2\n", ctl(t, ep, "kv", "get", "k").ok(t).stdout)

	r = ctl(t, ep, "kv", "cas", "absent", "x", "y").fails(t, "compare failed")
	require.Equal(t, "FAILED key absent\n", r.stdout)

	var out map[string]any
	r = ctl(t, ep, "-o", "json", "kv", "cas", "k", "", "v3").fails(t, "compare failed")
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	require.Equal(t, map[string]any{"succeeded": false, "current": map[string]any{"key": "k", "key_b64": "aw==", "value": "v2", "value_b64": "djI="}}, out)
	r = ctl(t, ep, "-o", "json", "kv", "cas", "k", "v2", "v3").ok(t)
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	require.Equal(t, map[string]any{"succeeded": true, "current": nil}, out)
}

// Writes and linearizable reads reach the leader whichever endpoint comes
// first; serializable reads work on a follower with no leader at all.
func TestCtlEndpointsFollowerOrLeaderFirst(t *testing.T) {
	t.Parallel()
	tc := newCtlCluster(t, 2)
	tc.elect(1)
	for i, ep := range []string{tc.endpoints(0, 1), tc.endpoints(1, 0)} {
		key := []string{"follower-first", "leader-first"}[i]
		ctl(t, ep, "kv", "put", key, "v").ok(t)
		require.Equal(t, "v\n", ctl(t, ep, "kv", "get", key).ok(t).stdout)
	}
	// The follower alone forwards the client to the leader.
	require.Equal(t, "v\n", ctl(t, tc.endpoints(0), "kv", "get", "leader-first").ok(t).stdout)

	// The endpoints may come from the environment.
	r := ctlEnv(t, []string{envCtlEndpoints + "=" + tc.endpoints(0)}, "ctl", "kv", "get", "follower-first").ok(t)
	require.Equal(t, "v\n", r.stdout)

	tc.elect(-1)
	require.Equal(t, "v\n", ctl(t, tc.endpoints(0), "--consistency", "serializable", "kv", "get", "follower-first").ok(t).stdout)
	ctlEnv(t, nil, "ctl", "--endpoints", tc.endpoints(0), "--timeout", "300ms", "kv", "put", "x", "y").fails(t, "--timeout 300ms")
}

func TestCtlLeaderAndMembers(t *testing.T) {
	t.Parallel()
	tc := newCtlCluster(t, 2)
	tc.elect(1)
	leader := tc.nodes[1].addr
	for _, ep := range []string{tc.endpoints(0), tc.endpoints(1)} {
		require.Equal(t, leader+"\n", ctl(t, ep, "leader").ok(t).stdout)
	}
	var l map[string]any
	require.NoError(t, json.Unmarshal([]byte(ctl(t, tc.endpoints(0), "-o", "json", "leader").ok(t).stdout), &l))
	require.Equal(t, map[string]any{"addr": leader, "term": float64(1)}, l)

	text := ctl(t, tc.endpoints(0), "members").ok(t).stdout
	lines := strings.Split(strings.TrimSpace(text), "\n")
	require.Len(t, lines, 3)
	require.Regexp(t, `^ADDR\s+LEADER\s+VERSION`, lines[0])
	require.Regexp(t, "^"+tc.nodes[0].addr+`\s+v-test\s+abc123\s+"host\\x1b\[31m"\s+2023-11-14T22:13:20Z\s+0/2000\s+0B/8.0GiB$`, lines[1])
	require.Regexp(t, "^"+leader+`\s+\*\s+v-test`, lines[2])
	require.NotContains(t, text, "\x1b")

	var m struct {
		Members []struct {
			Addr     string `json:"addr"`
			IsLeader bool   `json:"is_leader"`
			Hostname string `json:"hostname"`
		} `json:"members"`
	}
	require.NoError(t, json.Unmarshal([]byte(ctl(t, tc.endpoints(1), "-o", "json", "members").ok(t).stdout), &m))
	require.Len(t, m.Members, 2)
	require.Equal(t, leader, m.Members[1].Addr)
	require.True(t, m.Members[1].IsLeader)
	require.False(t, m.Members[0].IsLeader)

	tc.elect(-1)
	// The answer is definite, so the timeout only bounds a slow machine.
	ctl(t, tc.endpoints(0), "--timeout", "5s", "leader").fails(t, "no leader is elected right now")
}

func TestCtlProcedures(t *testing.T) {
	t.Parallel()
	tc := newCtlCluster(t, 2)
	tc.elect(1)
	ep := tc.endpoints(0, 1)

	id := strings.TrimSpace(ctl(t, ep, "procedure", "submit", echoType, `{"n":1}`).ok(t).stdout)
	require.NotEmpty(t, id)
	wait := ctl(t, ep, "procedure", "wait", id).ok(t).stdout
	require.Contains(t, wait, "state:     done")
	require.Contains(t, wait, `output:    {"n":1}`)

	var p map[string]any
	require.NoError(t, json.Unmarshal([]byte(ctl(t, ep, "-o", "json", "procedure", "get", id).ok(t).stdout), &p))
	require.Equal(t, id, p["id"])
	require.Equal(t, "done", p["state"])
	require.Equal(t, map[string]any{"n": float64(1)}, p["output"])

	// A procedure that fails: submit --wait shows it and exits non-zero.
	r := ctlStdin(t, `{"fail":true}`, ep, "procedure", "submit", "--wait", echoType, "-")
	require.NotZero(t, r.code)
	require.Contains(t, r.stdout, "state:     rolled_back")
	require.Contains(t, r.stdout, "asked to fail")
	require.Contains(t, r.stderr, "procedure did not complete")

	list := ctl(t, ep, "procedure", "list", "--state", "done", "--type", echoType).ok(t).stdout
	lines := strings.Split(strings.TrimSpace(list), "\n")
	require.Len(t, lines, 2)
	require.Regexp(t, `^ID\s+TYPE\s+STATE`, lines[0])
	require.Regexp(t, "^"+id+`\s+echo\s+done\s+`, lines[1])

	var all struct {
		Procedures []map[string]any `json:"procedures"`
	}
	require.NoError(t, json.Unmarshal([]byte(ctl(t, ep, "-o", "json", "procedure", "list").ok(t).stdout), &all))
	require.Len(t, all.Procedures, 2)
	require.NoError(t, json.Unmarshal([]byte(ctl(t, ep, "-o", "json", "procedure", "list", "--limit", "1").ok(t).stdout), &all))
	require.Len(t, all.Procedures, 1)

	ctl(t, ep, "procedure", "get", "no-such-id").fails(t, "NotFound")
	ctl(t, ep, "procedure", "submit", "no-such-type").fails(t, `procedure submit "no-such-type": the server has no procedure type "no-such-type": the metasrv binary registers no procedure type`)
	ctl(t, ep, "procedure", "submit", echoType, "{not json").fails(t, "is not valid JSON")
	ctl(t, ep, "procedure", "list", "--state", "sleeping").fails(t, `--state "sleeping": expected one of running, retrying`)
}

// Bad input is refused with one line naming what was wrong, and writes nothing.
func TestCtlBadInput(t *testing.T) {
	t.Parallel()
	tc := newCtlCluster(t, 1)
	tc.elect(0)
	ep := tc.endpoints(0)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-o", "yaml", "kv", "put", "k", "v"}, `--output "yaml": expected text or json`},
		{[]string{"--consistency", "eventual", "kv", "get", "k"}, `--consistency "eventual"`},
		{[]string{"--hex", "kv", "put", "zz", "00"}, `KEY "zz" is not valid hex`},
		{[]string{"--hex", "kv", "put", "00", "0"}, `VALUE "0" is not valid hex`},
		{[]string{"kv", "put", "", "v"}, "KEY is empty"},
		{[]string{"kv", "get", ""}, "KEY is empty"},
		{[]string{"kv", "range", ""}, "KEY is empty"},
		{[]string{"kv", "put", "big", strings.Repeat("x", 2000)}, "InvalidArgument"},
		{[]string{"kv", "range", "--prefix", "a", "b"}, "give END or one of --prefix / --from-key, not both"},
		{[]string{"kv", "range", "--limit", "-1", "a"}, "--limit -1"},
		{[]string{"kv", "cas", "k", "v"}, "accepts 3 arg(s), received 2"},
		{[]string{"kv", "frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"--tls-cert", "c.pem", "leader"}, "--tls-cert and --tls-key go together"},
		{[]string{"--tls-ca", "/nonexistent/ca.pem", "leader"}, "--tls-ca"},
	} {
		ctl(t, ep, c.args...).fails(t, c.want)
	}
	ctlEnv(t, nil, "ctl", "--endpoints", "a,,b", "leader").fails(t, "--endpoints: endpoint 2 is empty")
	ctlEnv(t, []string{envCtlEndpoints + "=,"}, "ctl", "leader").fails(t, envCtlEndpoints+": endpoint 1 is empty")
	require.Equal(t, "", ctl(t, ep, "kv", "range", "--keys-only", "--prefix", "").ok(t).stdout, "nothing was written")
}

func TestCtlDisplay(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"plain":      "plain",
		"with space": "with space",
		"":           `""`,
		" pad":       `" pad"`,
		"pad\t":      `"pad\t"`,
		`"q"`:        `"\"q\""`,
		"a\x00b":     `"a\x00b"`,
		"\xff":       `"\xff"`,
		"é✓":         "é✓",
		"\u00a0":     `"\u00a0"`,
		"\u202e":     `"\u202e"`, // right-to-left override: printable to no one
	} {
		require.Equal(t, want, display([]byte(in)), "display(%q)", in)
	}
}
