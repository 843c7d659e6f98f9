package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// testDatabase creates a fresh database on the test PostgreSQL and returns a
// DSN to it.
func testDatabase(t *testing.T) string {
	t.Helper()
	admin := benchPG(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	require.NoError(t, err)
	defer conn.Close(ctx)
	name := fmt.Sprintf("cmd_e2e_%d", time.Now().UnixNano())
	_, err = conn.Exec(ctx, "CREATE DATABASE "+name)
	require.NoError(t, err)
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), admin)
		if err == nil {
			_, _ = c.Exec(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)")
			_ = c.Close(context.Background())
		}
	})
	u, err := url.Parse(admin)
	require.NoError(t, err)
	u.Path = "/" + name
	return u.String()
}

type procNode struct {
	grpc, http string
	cmd        *exec.Cmd
	stderr     *syncBuffer
	exited     chan error
}

func startPGNode(t *testing.T, dsn string) *procNode {
	t.Helper()
	n := &procNode{grpc: freeAddr(t), http: freeAddr(t), stderr: &syncBuffer{}, exited: make(chan error, 1)}
	n.cmd = exec.Command(binary, "start", "--backend", "postgres_store", "--store-addrs", dsn,
		"--grpc-bind-addr", n.grpc, "--http-addr", n.http)
	n.cmd.Env = []string{"METASRV_ELECTION__LEASE=1s", "METASRV_ELECTION__CAMPAIGN_INTERVAL=100ms", "METASRV_ELECTION__CANDIDATE_LEASE=2s"}
	n.cmd.Stderr = n.stderr
	require.NoError(t, n.cmd.Start())
	go func() { n.exited <- n.cmd.Wait() }()
	t.Cleanup(func() {
		_ = n.cmd.Process.Kill()
		select {
		case <-n.exited:
		case <-time.After(10 * time.Second):
		}
	})
	return n
}

func (n *procNode) get(t *testing.T, path string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + n.http + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (n *procNode) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, n.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-n.exited:
		require.NoError(t, err, n.stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("node did not exit after SIGTERM:\n%s", n.stderr.String())
	}
}

func ctlBinary(t *testing.T, endpoints string, args ...string) result {
	t.Helper()
	return runBinary(t, nil, append([]string{"ctl", "--endpoints", endpoints, "--timeout", "20s"}, args...)...)
}

// Two nodes on PostgreSQL, driven through the real binary: ctl works through
// either endpoint order, prefix scans are exact, and every node's HTTP admin
// agrees with ctl on the leader.
func TestTwoNodesOnPostgres(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts PostgreSQL and two nodes")
	}
	dsn := testDatabase(t)
	a, b := startPGNode(t, dsn), startPGNode(t, dsn)
	both := a.grpc + "," + b.grpc
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node %s:\n%s", a.grpc, a.stderr.String())
			t.Logf("node %s:\n%s", b.grpc, b.stderr.String())
		}
	})

	// The second node may wait on the first's migration lock before serving.
	for _, n := range []*procNode{a, b} {
		require.Eventually(t, func() bool {
			code, _ := n.get(t, "/admin/ready") // liveness answers while the node still connects
			return code == http.StatusOK
		}, 60*time.Second, 20*time.Millisecond, "node %s never served:\n%s", n.grpc, n.stderr.String())
	}
	var leader string
	require.Eventually(t, func() bool {
		r := ctlBinary(t, both, "leader")
		leader = strings.TrimSpace(r.stdout)
		return r.code == 0 && (leader == a.grpc || leader == b.grpc)
	}, 60*time.Second, 50*time.Millisecond, "no leader:\n%s\n%s", a.stderr.String(), b.stderr.String())
	follower := a.grpc
	if leader == a.grpc {
		follower = b.grpc
	}

	for _, endpoints := range []string{follower + "," + leader, leader + "," + follower} {
		r := ctlBinary(t, endpoints, "kv", "put", "k", "v-"+endpoints)
		require.Equal(t, 0, r.code, r.stderr)
		r = ctlBinary(t, endpoints, "kv", "get", "k")
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, "v-"+endpoints, strings.TrimSpace(r.stdout))
	}

	for _, k := range []string{"a%_b", "a%_c", "axxb", "a%xb", "ab"} {
		r := ctlBinary(t, follower, "kv", "put", k, "x")
		require.Equal(t, 0, r.code, r.stderr)
	}
	r := ctlBinary(t, follower, "kv", "range", "--prefix", "--keys-only", "a%_")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, []string{"a%_b", "a%_c"}, strings.Fields(r.stdout))

	for _, n := range []*procNode{a, b} {
		code, body := n.get(t, "/admin/leader")
		require.Equal(t, http.StatusOK, code, body)
		require.Equal(t, leader, strings.TrimSpace(body))
		code, body = n.get(t, "/metrics")
		require.Equal(t, http.StatusOK, code)
		for _, m := range []string{"metasrv_is_leader", "metasrv_election_term", "metasrv_leader_changes_total",
			"metasrv_grpc_requests_total", "metasrv_kv_op_duration_seconds", "metasrv_pg_pool_", "metasrv_leader_cache_keys"} {
			require.Contains(t, body, m)
		}
	}

	st := runBinary(t, nil, "migrate", "status", "--store-addrs", dsn)
	require.Equal(t, 0, st.code, st.stderr)
	require.Contains(t, st.stdout, "00002_election.sql")
	require.NotContains(t, st.stdout, "pending")

	a.stop(t)
	b.stop(t)
}
