package main

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/internal/failoverbench"
	"github.com/pgmetasrv/metasrv/internal/pgtest"
)

func TestFailoverBadInput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--fault", "flood", "--store-addrs", "postgres://h/db"}, `--fault "flood"`},
		{nil, "--store-addrs is required"},
		{[]string{"--store-addrs", "postgres://h/db", "--nodes", "1"}, "--nodes 1"},
		{[]string{"--store-addrs", "postgres://h/db", "-o", "yaml"}, `--output "yaml"`},
	} {
		code, _, stderr := runCLI(append([]string{"failover"}, tc.args...)...)
		require.Equal(t, 1, code)
		require.Contains(t, stderr, tc.want)
	}
	code, _, stderr := runCLI("flood")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, `unknown command "flood"`)
}

// benchPG is a PostgreSQL superuser DSN: the server in METASRV_TEST_PG_DSN,
// else a dedicated throwaway cluster.
func benchPG(t *testing.T) string {
	t.Helper()
	if dsn := os.Getenv(pgtest.EnvDSN); dsn != "" {
		return dsn
	}
	return pgtest.NewCluster(t, pgtest.ClusterOptions{}).DSN()
}

// TestFailoverOnPostgres runs a short `failover` (resign twice, kill once,
// partition once) on a real PostgreSQL, and checks it leaves nothing
// behind: no schema, no processes.
func TestFailoverOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and metasrv child processes")
	}
	t.Parallel()
	dsn := benchPG(t)
	for _, tc := range []struct {
		fault  string
		rounds int
	}{{failoverbench.FaultResign, 2}, {failoverbench.FaultKill, 1}, {failoverbench.FaultPartition, 1}} {
		t.Run(tc.fault, func(t *testing.T) {
			code, stdout, stderr := runCLI("failover", "--store-addrs", dsn, "--nodes", "3",
				"--rounds", strconv.Itoa(tc.rounds), "--fault", tc.fault, "--binary", metasrvBin, "-o", "json")
			require.Equal(t, 0, code, stderr)
			var rep failoverbench.Report
			require.NoError(t, json.Unmarshal([]byte(stdout), &rep), stdout)
			require.Len(t, rep.Rounds, tc.rounds)
			require.Zero(t, rep.Timeouts)
			require.Zero(t, rep.Violations)
			for _, r := range rep.Rounds {
				require.NotEqual(t, r.OldLeader, r.NewLeader, "the faulted leader cannot lead the next term")
				require.Greater(t, r.NewTerm, r.OldTerm)
				require.Positive(t, r.TookMs)
			}
			require.Contains(t, stderr, "round  1/")
			require.Zero(t, countBenchSchemas(t, dsn), "schema left behind")
		})
	}
}

func countBenchSchemas(t *testing.T, dsn string) int {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var n int
	require.NoError(t, conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'bench\\_%'").Scan(&n))
	return n
}
