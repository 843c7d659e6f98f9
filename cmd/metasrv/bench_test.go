package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

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
	for _, op := range []string{benchOpPut, benchOpGet, benchOpRange, benchOpCAS, benchOpTxn} {
		t.Run(op, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runCLI("bench", "kv", "--endpoints", addr, "--op", op,
				"-c", "4", "-d", "1s", "--keys", "500", "--value-size", "32", "--range-limit", "10",
				"--key-prefix", "bench-test/"+op+"/", "-o", "json")
			require.Equal(t, 0, code, stderr)
			var rep benchKVReport
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
			if op != benchOpPut {
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
	code, _, stderr := runCLI("bench", "failover", "--fault", "flood", "--store-addrs", "postgres://h/db")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, `--fault "flood"`)
	code, _, stderr = runCLI("bench", "failover")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "--store-addrs is required")
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

// TestBenchOnPostgres runs `bench kv --compare-pg` and a short `bench
// failover` (resign twice, kill once) on a real PostgreSQL, and checks both
// leave nothing behind: no scratch table, no schema, no processes.
func TestBenchOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and metasrv child processes")
	}
	t.Parallel()
	dsn := benchPG(t)

	t.Run("kv compare-pg", func(t *testing.T) {
		n := startMemoryNode(t, config.Default())
		code, stdout, stderr := runCLI("bench", "kv", "--endpoints", n.srv.GRPCAddr().String(), "--op", "get",
			"-c", "4", "-d", "1s", "--keys", "300", "--value-size", "16",
			"--compare-pg", dsn, "--table", "bench_test_scratch", "-o", "json")
		require.Equal(t, 0, code, stderr)
		var rep benchKVReport
		require.NoError(t, json.Unmarshal([]byte(stdout), &rep), stdout)
		require.Len(t, rep.Results, 2)
		require.Equal(t, "raw-pg", rep.Results[1].Target)
		require.Positive(t, rep.Results[1].Ops)
		require.Zero(t, rep.Results[1].Errors, rep.Results[1].FirstError)
		require.NotNil(t, rep.Ratio)
		require.Positive(t, rep.Ratio.OpsPerSec)
		require.False(t, relationExists(t, dsn, "bench_test_scratch"), "scratch table left behind")
	})

	for _, tc := range []struct {
		fault  string
		rounds int
	}{{faultResign, 2}, {faultKill, 1}} {
		t.Run("failover "+tc.fault, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, binary, "bench", "failover", "--store-addrs", dsn, "--nodes", "3",
				"--rounds", strconv.Itoa(tc.rounds), "--fault", tc.fault, "--binary", binary, "-o", "json")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			require.NoError(t, cmd.Run(), stderr.String())
			var rep failoverReport
			require.NoError(t, json.Unmarshal(stdout.Bytes(), &rep), stdout.String())
			require.Len(t, rep.Rounds, tc.rounds)
			require.Zero(t, rep.Timeouts)
			require.Zero(t, rep.Violations)
			for _, r := range rep.Rounds {
				require.NotEqual(t, r.OldLeader, r.NewLeader, "the faulted leader cannot lead the next term")
				require.Greater(t, r.NewTerm, r.OldTerm)
				require.Positive(t, r.TookMs)
			}
			require.Contains(t, stderr.String(), "round  1/")
			require.Zero(t, countBenchSchemas(t, dsn), "schema left behind")
		})
	}
}

func relationExists(t *testing.T, dsn, name string) bool {
	t.Helper()
	var exists bool
	queryOne(t, dsn, "SELECT to_regclass($1) IS NOT NULL", &exists, name)
	return exists
}

func countBenchSchemas(t *testing.T, dsn string) int {
	t.Helper()
	var n int
	queryOne(t, dsn, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'bench\\_%'", &n)
	return n
}

func queryOne(t *testing.T, dsn, sql string, dst any, args ...any) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	require.NoError(t, conn.QueryRow(t.Context(), sql, args...).Scan(dst))
}
