package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
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
	metricsURL := "http://" + n.srv.HTTPAddr().String() + "/metrics"
	for _, tc := range []struct {
		name, op string
		extra    []string
	}{
		{loadgen.OpPing, loadgen.OpPing, nil},
		{loadgen.OpPut, loadgen.OpPut, nil},
		{loadgen.OpGet, loadgen.OpGet, nil},
		{loadgen.OpRange, loadgen.OpRange, nil},
		{loadgen.OpCAS, loadgen.OpCAS, nil},
		{loadgen.OpTxn, loadgen.OpTxn, nil},
		{"txn3", loadgen.OpTxn, []string{"--txn-keys", "3"}},
	} {
		op := tc.op
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runCLI(append([]string{"bench", "kv", "--endpoints", addr, "--op", op,
				"-c", "4", "-d", "1s", "--keys", "500", "--value-size", "32", "--range-limit", "10",
				"--key-prefix", "bench-test/" + tc.name + "/", "--metrics-url", metricsURL, "-o", "json"}, tc.extra...)...)
			require.Equal(t, 0, code, stderr)
			var rep loadgen.KVReport
			require.NoError(t, json.Unmarshal([]byte(stdout), &rep), stdout)
			require.Equal(t, op, rep.Op)
			if tc.name == "txn3" {
				require.Equal(t, 3, rep.TxnKeys)
			}
			require.Len(t, rep.Results, 1)
			res := rep.Results[0]
			require.Equal(t, "metasrv", res.Target)
			require.Positive(t, res.Ops)
			require.Zero(t, res.Errors, res.FirstError)
			require.Positive(t, res.OpsPerSec)
			require.LessOrEqual(t, res.P50Ms, res.P99Ms)
			require.LessOrEqual(t, res.P99Ms, res.MaxMs)
			// The node's CPU, from its own /metrics; the subtests share the
			// node, so its gRPC calls are at least this run's.
			cpu := res.ServerCPU
			require.NotNil(t, cpu)
			require.True(t, cpu.Measured, cpu.Error)
			require.Equal(t, metricsURL, cpu.Source)
			require.GreaterOrEqual(t, cpu.Seconds, 0.0)
			require.NotNil(t, cpu.GRPCCalls)
			require.GreaterOrEqual(t, *cpu.GRPCCalls, res.Ops)
			require.Empty(t, cpu.Warning)
			if op == loadgen.OpPut || op == loadgen.OpPing {
				require.NotContains(t, stderr, "preloading")
			} else {
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
		{[]string{"--op", "scan"}, `--op "scan": expected ping, put, get, range, cas or txn`},
		{[]string{"-c", "0"}, "--clients 0"},
		{[]string{"--op", "range", "--keys", "10", "--range-limit", "11"}, "--range-limit 11"},
		{[]string{"--op", "cas", "--value-size", "2"}, "--value-size 2"},
		{[]string{"--op", "txn", "--keys", "3", "-c", "4"}, "--keys 3"},
		{[]string{"--table", "x; drop", "--compare-pg", "postgres://h/db"}, `--table "x; drop"`},
		{[]string{"--table", "t"}, "--table is only used with --compare-pg"},
		{[]string{"-o", "yaml"}, `--output "yaml"`},
		{[]string{"--op", "txn", "--txn-keys", "0"}, "--txn-keys 0: must be at least 1"},
		{[]string{"--op", "put", "--txn-keys", "2"}, "--txn-keys is only used with --op txn"},
		{[]string{"--op", "txn", "--txn-keys", "3", "-c", "4", "--keys", "11"}, "--keys 11: txn needs at least 3 keys per client"},
		{[]string{"--metrics-url", "ftp://h/metrics"}, `--metrics-url "ftp://h/metrics": expected an http(s) URL or host:port`},
		{[]string{"--rounds", "0"}, "--rounds 0: must be at least 1"},
		{[]string{"--rounds", "2", "--cpu-profile", "p.pprof"}, "--cpu-profile writes the profile of one run: use it with --rounds 1, not 2"},
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

// TestBenchKVTextServerCPU checks the text output: the server CPU column,
// and a /metrics that cannot be scraped said in the output without failing
// the run.
func TestBenchKVTextServerCPU(t *testing.T) {
	t.Parallel()
	n := startMemoryNode(t, config.Default())
	addr := n.srv.GRPCAddr().String()

	code, stdout, stderr := runCLI("bench", "kv", "--endpoints", addr, "--op", "ping", "-c", "2", "-d", "1s",
		"--metrics-url", n.srv.HTTPAddr().String())
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "bench kv: op=ping clients=2 duration=1s\n")
	require.Contains(t, stdout, "srv-cpu/1k-ops")
	require.Contains(t, stdout, "bench-cpu/1k-ops")
	require.Regexp(t, `server cpu \(metasrv\): \S+ in \S+ \(\d+\.\d\d cores\) from http://`+regexp.QuoteMeta(n.srv.HTTPAddr().String())+`/metrics, \d+ gRPC calls\n`, stdout)
	require.NotContains(t, stdout, "n/a")

	// Nothing listens on port 1.
	code, stdout, stderr = runCLI("bench", "kv", "--endpoints", addr, "--op", "ping", "-c", "2", "-d", "1s",
		"--metrics-url", "127.0.0.1:1")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "n/a")
	require.Contains(t, stdout, "server cpu (metasrv): not measured: before the run: Get \"http://127.0.0.1:1/metrics\"")

	// --metrics-url none: no column figure, no line.
	code, stdout, stderr = runCLI("bench", "kv", "--endpoints", addr, "--op", "ping", "-c", "2", "-d", "1s",
		"--metrics-url", "none", "-o", "json")
	require.Equal(t, 0, code, stderr)
	var rep loadgen.KVReport
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep), stdout)
	require.Nil(t, rep.Results[0].ServerCPU)
	// The load generator's own CPU is measured whatever the server's.
	require.NotNil(t, rep.Results[0].ClientCPUPer1k)
	require.Greater(t, *rep.Results[0].ClientCPUPer1k, 0.0)
}

// TestBenchKVRoundsText checks the text output of several rounds: a round
// column, and each round's lines named by its round.
func TestBenchKVRoundsText(t *testing.T) {
	t.Parallel()
	n := startMemoryNode(t, config.Default())
	code, stdout, stderr := runCLI("bench", "kv", "--endpoints", n.srv.GRPCAddr().String(), "--op", "get",
		"--keys", "100", "-c", "2", "-d", "300ms", "--rounds", "2", "--key-prefix", "bench-rounds-text/",
		"--metrics-url", n.srv.HTTPAddr().String())
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "bench kv: op=get clients=2 duration=300ms keys=100 value_size=256 rounds=2\n")
	require.Regexp(t, `(?m)^\s+round\s+target\s+ops/s`, stdout)
	require.Regexp(t, `(?m)^\s+1\s+metasrv\s+\d`, stdout)
	require.Regexp(t, `(?m)^\s+2\s+metasrv\s+\d`, stdout)
	require.Contains(t, stdout, "server cpu (metasrv, round 1): ")
	require.Contains(t, stdout, "server cpu (metasrv, round 2): ")
	require.NotContains(t, stdout, "ratio metasrv/raw-pg", "no ratio without --compare-pg")
	// The second round preloaded again: the first deleted its keys.
	require.Equal(t, 2, strings.Count(stderr, "preloading"), stderr)
}

// TestBenchKVCPUProfile checks --cpu-profile writes a pprof profile (gzip)
// of the run, and that a file it cannot create fails the command by name.
func TestBenchKVCPUProfile(t *testing.T) {
	t.Parallel()
	n := startMemoryNode(t, config.Default())
	addr := n.srv.GRPCAddr().String()
	path := filepath.Join(t.TempDir(), "bench.pprof")
	code, _, stderr := runCLI("bench", "kv", "--endpoints", addr, "--op", "put", "--keys", "100", "-c", "2", "-d", "500ms",
		"--metrics-url", "none", "--cpu-profile", path)
	require.Equal(t, 0, code, stderr)
	prof, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Greater(t, len(prof), 2)
	require.Equal(t, []byte{0x1f, 0x8b}, prof[:2], "pprof profiles are gzipped")

	code, _, stderr = runCLI("bench", "kv", "--endpoints", addr, "--op", "ping", "-c", "1", "-d", "100ms",
		"--metrics-url", "none", "--cpu-profile", filepath.Join(t.TempDir(), "missing", "bench.pprof"))
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "--cpu-profile: open ")
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
	for _, tc := range []struct {
		name   string
		args   []string
		rounds int
	}{
		{"get", []string{"--op", "get"}, 1},
		{"ping", []string{"--op", "ping"}, 1},
		{"txn3", []string{"--op", "txn", "--txn-keys", "3"}, 1},
		// The second round's compares hold only if both targets start it
		// from freshly preloaded keys again.
		{"cas_rounds", []string{"--op", "cas", "--rounds", "2"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			table := "bench_test_scratch_" + tc.name
			code, stdout, stderr := runCLI(append([]string{"bench", "kv", "--endpoints", n.srv.GRPCAddr().String(),
				"-c", "4", "-d", "1s", "--keys", "300", "--value-size", "16", "--key-prefix", "bench-pg-test/" + tc.name + "/",
				"--metrics-url", n.srv.HTTPAddr().String(),
				"--compare-pg", dsn, "--table", table, "-o", "json"}, tc.args...)...)
			require.Equal(t, 0, code, stderr)
			var rep loadgen.KVReport
			require.NoError(t, json.Unmarshal([]byte(stdout), &rep), stdout)
			require.Len(t, rep.Results, 2*tc.rounds)
			var ratios []loadgen.Ratio
			for i := 0; i < len(rep.Results); i += 2 {
				m, raw := rep.Results[i], rep.Results[i+1]
				require.Equal(t, "metasrv", m.Target)
				require.Positive(t, m.Ops)
				require.Zero(t, m.Errors, m.FirstError)
				require.True(t, m.ServerCPU.Measured, m.ServerCPU.Error)
				require.Equal(t, "raw-pg", raw.Target)
				require.Positive(t, raw.Ops)
				require.Zero(t, raw.Errors, raw.FirstError)
				require.Nil(t, raw.ServerCPU, "PostgreSQL's CPU is not measured")
				if tc.rounds > 1 {
					require.Equal(t, i/2+1, m.Round)
					require.Equal(t, i/2+1, raw.Round)
				}
				// The durations are not in the JSON: the ratio from its
				// milliseconds, to rounding.
				ratios = append(ratios, loadgen.Ratio{OpsPerSec: m.OpsPerSec / raw.OpsPerSec, P99: m.P99Ms / raw.P99Ms})
			}
			require.NotNil(t, rep.Ratio)
			require.Positive(t, rep.Ratio.OpsPerSec)
			want := &ratios[0]
			if tc.rounds > 1 {
				require.Equal(t, tc.rounds, rep.Rounds)
				require.Len(t, rep.RoundRatios, tc.rounds)
				for i, r := range ratios {
					requireRatio(t, r, rep.RoundRatios[i])
				}
				want = loadgen.MedianRatio(ratios)
			} else {
				require.Zero(t, rep.Rounds)
				require.Empty(t, rep.RoundRatios)
			}
			requireRatio(t, *want, *rep.Ratio)
			require.False(t, relationExists(t, dsn, table), "scratch table left behind")
		})
	}
}

func requireRatio(t *testing.T, want, got loadgen.Ratio) {
	t.Helper()
	require.InEpsilon(t, want.OpsPerSec, got.OpsPerSec, 1e-6)
	// The p99 comes back in rounded milliseconds.
	require.InEpsilon(t, want.P99, got.P99, 0.01)
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
