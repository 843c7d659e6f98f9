package main

import (
	"encoding/json"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/internal/ddlload"
	"github.com/pgmetasrv/metasrv/pkg/config"
)

func TestBenchDDLAgainstMemoryNode(t *testing.T) {
	t.Parallel()
	n := startMemoryNode(t, config.Default())
	metricsURL := "http://" + n.srv.HTTPAddr().String() + "/metrics"
	code, stdout, stderr := runCLI("bench", "ddl", "--endpoints", n.srv.GRPCAddr().String(),
		"-c", "4", "--tables", "20", "--datanodes", "2", "--partitions", "2", "--drop", "--metrics-url", metricsURL, "-o", "json")
	require.Equal(t, 0, code, stderr)
	var rep ddlload.Report
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep), stdout)
	require.Equal(t, n.srv.Advertised(), rep.Leader)
	require.Equal(t, "greptime", rep.Catalog)
	require.Regexp(t, `^bench_[0-9a-f]{8}$`, rep.Schema)
	require.Equal(t, 4, rep.Clients)
	require.Equal(t, 2, rep.Warmup.Leased)

	for _, p := range []ddlload.Phase{rep.Create, *rep.Drop} {
		require.Equal(t, 20, p.Requested, p.Op)
		require.Equal(t, uint64(20), p.Succeeded, p.Op)
		require.Zero(t, p.Errors, p.FirstError)
		require.Equal(t, uint64(20), p.Latency.Count, p.Op)
		require.Positive(t, p.Latency.P50Ms, p.Op)
		require.LessOrEqual(t, p.Latency.P50Ms, p.Latency.P99Ms, p.Op)
		require.LessOrEqual(t, p.Latency.P99Ms, p.Latency.MaxMs, p.Op)
		require.Positive(t, p.PerSec, p.Op)
		require.NotNil(t, p.ServerCPU, p.Op)
		require.True(t, p.ServerCPU.Measured, p.ServerCPU.Error)
		require.Equal(t, metricsURL, p.ServerCPU.Source)
	}
	// Two regions per table on two datanodes: the round-robin selector
	// puts one of each table's regions on each.
	require.True(t, rep.CreateCheck.OK(), "%v", rep.CreateCheck.Problems)
	require.Equal(t, 20, rep.CreateCheck.TableNames)
	require.Equal(t, 20, rep.CreateCheck.Routes)
	require.Equal(t, []int{20, 20}, rep.CreateCheck.RegionsPerDatanode)
	require.True(t, rep.DropCheck.OK(), "%v", rep.DropCheck.Problems)
	require.Zero(t, rep.DropCheck.TableNames)
	require.Zero(t, rep.DropCheck.Regions)
	require.Empty(t, rep.DropDatabaseError)
	require.NotContains(t, stderr, "level=WARN", "the datanodes warned of nothing")
}

func TestBenchDDLText(t *testing.T) {
	t.Parallel()
	n := startMemoryNode(t, config.Default())
	code, stdout, stderr := runCLI("bench", "ddl", "--endpoints", n.srv.GRPCAddr().String(),
		"-c", "2", "--tables", "3", "--datanodes", "1", "--schema", "bench_text", "--metrics-url", n.srv.HTTPAddr().String())
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "bench ddl: clients=2 tables=3 datanodes=1 partitions=1 database=greptime.bench_text leader="+n.srv.Advertised()+"\n")
	require.Contains(t, stdout, "connection: "+ddlload.Connection+"\n")
	require.Regexp(t, `warm-up: 1 of 1 datanodes got their first region lease in \S+\n`, stdout)
	require.Regexp(t, `op\s+tables/s\s+srv-cpu/1k\s+p50\s+p90\s+p99\s+max\s+succeeded\s+errors\s+not-leader\s+retries\n\s+create table\s+\S+\s+\S+\s+\S+\s+\S+\s+\S+\s+\S+\s+3\s+0\s+0\s+0\n`, stdout)
	require.NotContains(t, stdout, "drop table")
	require.Contains(t, stdout, "check after create table: 3 table names (expected 3), 3 routes as created, 3 regions on the datanodes (3 per datanode): ok\n")
	require.Regexp(t, `server cpu \(leader, create table\): \S+ in \S+ \(\d+\.\d\d cores\) from http://`, stdout)
	require.Contains(t, stdout, "database greptime.bench_text and its tables are left in place (--drop removes them)\n")

	// The database exists now: a second run cannot make it.
	code, _, stderr = runCLI("bench", "ddl", "--endpoints", n.srv.GRPCAddr().String(), "--tables", "1", "--datanodes", "1", "--schema", "bench_text")
	require.Equal(t, 1, code)
	require.Regexp(t, regexp.QuoteMeta("metasrv: ddlload: create database greptime.bench_text: ")+`.*Schema already exists`, stderr)
}

func TestBenchDDLBadInput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-c", "0"}, "--clients 0: must be at least 1"},
		{[]string{"--tables", "0"}, "--tables 0: must be at least 1"},
		{[]string{"--datanodes", "0"}, "--datanodes 0: must be at least 1"},
		{[]string{"--partitions", "0"}, "--partitions 0: must be at least 1"},
		{[]string{"--catalog", ""}, "--catalog: must not be empty"},
		{[]string{"--datanode-host", ""}, "--datanode-host: must not be empty"},
		{[]string{"--lease-timeout", "0s"}, "--lease-timeout 0s: must be positive"},
		{[]string{"--timeout", "500ms"}, "--timeout 500ms: must be at least 1s"},
		{[]string{"-o", "yaml"}, `--output "yaml": expected text or json`},
		{[]string{"--metrics-url", "ftp://h/metrics"}, `--metrics-url "ftp://h/metrics": expected an http(s) URL or host:port`},
	} {
		code, _, stderr := runCLI(append([]string{"bench", "ddl", "--endpoints", "127.0.0.1:1"}, tc.args...)...)
		require.Equal(t, 1, code, tc.args)
		require.Contains(t, stderr, tc.want)
	}
}
