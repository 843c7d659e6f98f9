package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/internal/loadgen"
	"github.com/pgmetasrv/metasrv/internal/pgtest"
	"github.com/pgmetasrv/metasrv/pkg/client"
	"github.com/pgmetasrv/metasrv/pkg/config"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// runCLI runs the CLI in-process and returns its exit code and output.
func runCLI(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(args, nil, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestBenchKVAgainstMemoryNode(t *testing.T) {
	t.Parallel()
	n := startMemoryNode(t, config.Default())
	addr := n.srv.GRPCAddr().String()
	for _, op := range []string{loadgen.OpPut, loadgen.OpGet, loadgen.OpRange, loadgen.OpCAS, loadgen.OpTxn} {
		t.Run(op, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runCLI("bench", "kv", "--endpoints", addr, "--op", op,
				"-c", "4", "-d", "1s", "--keys", "500", "--value-size", "32", "--range-limit", "10",
				"--key-prefix", "bench-test/"+op+"/", "-o", "json")
			require.Equal(t, 0, code, stderr)
			var rep loadgen.KVReport
			require.NoError(t, json.Unmarshal([]byte(stdout), &rep), stdout)
			require.Equal(t, op, rep.Op)
			require.Len(t, rep.Results, 1)
			res := rep.Results[0]
			require.Equal(t, "metasrv", res.Target)
			require.Positive(t, res.Ops)
			require.Zero(t, res.Errors, res.FirstError)
			require.Positive(t, res.OpsPerSec)
			require.LessOrEqual(t, res.P50Ms, res.P99Ms)
			require.LessOrEqual(t, res.P99Ms, res.MaxMs)
			if op != loadgen.OpPut {
				require.Contains(t, stderr, "preloading 500 keys")
			}
		})
	}
	// The benchmark's keys are gone afterwards.
	t.Cleanup(func() {
		c, err := client.New(context.Background(), client.Config{Endpoints: []string{addr}}, slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		defer c.Close()
		resp, err := c.Range(context.Background(), kv.RangeRequest{Key: []byte("bench-test/"), RangeEnd: kv.PrefixEnd([]byte("bench-test/")), KeysOnly: true})
		require.NoError(t, err)
		require.Empty(t, resp.Kvs)
	})
}

func TestBenchKVBadInput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--op", "scan"}, `--op "scan": expected put, get, range, cas or txn`},
		{[]string{"-c", "0"}, "--clients 0"},
		{[]string{"--op", "range", "--keys", "10", "--range-limit", "11"}, "--range-limit 11"},
		{[]string{"--op", "cas", "--value-size", "2"}, "--value-size 2"},
		{[]string{"--op", "txn", "--keys", "3", "-c", "4"}, "--keys 3"},
		{[]string{"--table", "x; drop", "--compare-pg", "postgres://h/db"}, `--table "x; drop"`},
		{[]string{"--table", "t"}, "--table is only used with --compare-pg"},
		{[]string{"-o", "yaml"}, `--output "yaml"`},
	} {
		code, _, stderr := runCLI(append([]string{"bench", "kv", "--endpoints", "127.0.0.1:1"}, tc.args...)...)
		require.Equal(t, 1, code)
		require.Contains(t, stderr, tc.want)
	}
	// The failover benchmark lives in cmd/metasrv-bench, outside the
	// production binary.
	code, _, stderr := runCLI("bench", "failover")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, `unknown command "failover"`)
}

// benchPG is a PostgreSQL superuser DSN for the bench tests: the server in
// METASRV_TEST_PG_DSN, else a dedicated throwaway cluster.
func benchPG(t *testing.T) string {
	t.Helper()
	if dsn := os.Getenv(pgtest.EnvDSN); dsn != "" {
		return dsn
	}
	return pgtest.NewCluster(t, pgtest.ClusterOptions{}).DSN()
}

// TestBenchKVComparePG runs `bench kv --compare-pg` on a real PostgreSQL
// and checks it leaves no scratch table behind.
func TestBenchKVComparePG(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	t.Parallel()
	dsn := benchPG(t)
	n := startMemoryNode(t, config.Default())
	code, stdout, stderr := runCLI("bench", "kv", "--endpoints", n.srv.GRPCAddr().String(), "--op", "get",
		"-c", "4", "-d", "1s", "--keys", "300", "--value-size", "16",
		"--compare-pg", dsn, "--table", "bench_test_scratch", "-o", "json")
	require.Equal(t, 0, code, stderr)
	var rep loadgen.KVReport
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep), stdout)
	require.Len(t, rep.Results, 2)
	require.Equal(t, "raw-pg", rep.Results[1].Target)
	require.Positive(t, rep.Results[1].Ops)
	require.Zero(t, rep.Results[1].Errors, rep.Results[1].FirstError)
	require.NotNil(t, rep.Ratio)
	require.Positive(t, rep.Ratio.OpsPerSec)
	require.False(t, relationExists(t, dsn, "bench_test_scratch"), "scratch table left behind")
}

func relationExists(t *testing.T, dsn, name string) bool {
	t.Helper()
	var exists bool
	queryOne(t, dsn, "SELECT to_regclass($1) IS NOT NULL", &exists, name)
	return exists
}

func queryOne(t *testing.T, dsn, sql string, dst any, args ...any) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	require.NoError(t, conn.QueryRow(t.Context(), sql, args...).Scan(dst))
}
