package main

import (
	"encoding/json"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/internal/hbload"
	"github.com/pgmetasrv/metasrv/pkg/config"
)

// heartbeatNode is a memory_store node that tells nodes to beat every
// 200ms.
func heartbeatNode(t *testing.T) *memoryNode {
	t.Helper()
	o := config.Default()
	o.HeartbeatInterval = 200 * time.Millisecond
	return startMemoryNode(t, o)
}

func TestBenchHeartbeatAgainstMemoryNode(t *testing.T) {
	t.Parallel()
	n := heartbeatNode(t)
	metricsURL := "http://" + n.srv.HTTPAddr().String() + "/metrics"
	code, stdout, stderr := runCLI("bench", "heartbeat", "--endpoints", n.srv.GRPCAddr().String(),
		"--nodes", "20", "--interval", "200ms", "-d", "2s", "--metrics-url", metricsURL, "-o", "json")
	require.Equal(t, 0, code, stderr)
	var rep hbload.Report
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep), stdout)
	require.Equal(t, "datanode", rep.Role)
	require.Equal(t, 20, rep.Nodes)
	require.Equal(t, 1, rep.Pools)
	require.Equal(t, "200ms", rep.Interval)
	require.Equal(t, "2s", rep.Duration)

	// Every node handshook, with the node's interval, before the window.
	require.Equal(t, 20, rep.Warmup.Handshaken)
	require.Equal(t, map[string]uint64{"200ms": rep.Handshakes.Total}, rep.Handshakes.Intervals)
	require.Empty(t, rep.Warnings)

	// Heartbeats were answered: 20 nodes every 200ms is 100/s; a loaded
	// machine may delay beats, not stop them.
	w := rep.Window
	require.InDelta(t, 100.0, w.ExpectedPerSec, 0.01)
	require.Greater(t, w.Responses, uint64(50))
	require.Positive(t, w.HeartbeatsPerSec)
	require.Zero(t, w.Errors, w.FirstWarning)
	require.Zero(t, w.Reconnects)
	require.Zero(t, w.NotLeader)
	require.Positive(t, w.Latency.Count)
	require.LessOrEqual(t, w.Latency.P50Ms, w.Latency.P99Ms)
	require.LessOrEqual(t, w.Latency.P99Ms, w.Latency.MaxMs)

	require.NotNil(t, rep.ServerCPU)
	require.True(t, rep.ServerCPU.Measured, rep.ServerCPU.Error)
	require.Equal(t, metricsURL, rep.ServerCPU.Source)
	require.GreaterOrEqual(t, rep.ServerCPU.SecondsPer1kOps, 0.0)
	require.NotNil(t, rep.ServerMemory)
	require.True(t, rep.ServerMemory.Measured, rep.ServerMemory.Error)
	require.Positive(t, rep.ServerMemory.AfterBytes)
	require.NotNil(t, rep.LoadCPU)
	require.Contains(t, stderr, "heartbeat:   1s")
}

// TestBenchHeartbeatText checks the text output, and the warning when
// --interval is not the server's heartbeat_interval.
func TestBenchHeartbeatText(t *testing.T) {
	t.Parallel()
	n := heartbeatNode(t)
	code, stdout, stderr := runCLI("bench", "heartbeat", "--endpoints", n.srv.GRPCAddr().String(),
		"--nodes", "6", "--conns-per", "4", "--role", "flownode", "--interval", "1s", "-d", "1s",
		"--metrics-url", n.srv.HTTPAddr().String())
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "bench heartbeat: role=flownode nodes=6 interval=1s duration=1s conns-per=4 (2 pools) ramp=0s\n")
	require.Regexp(t, `handshakes: \d+; heartbeat interval 200ms \(\d+\), retry interval 200ms \(\d+\); leader `+regexp.QuoteMeta(n.srv.Advertised()), stdout)
	require.Regexp(t, `warm-up: 6 of 6 nodes handshaken in \S+ \(0 errors, 0 reconnects, 0 not-leader\)`, stdout)
	require.Regexp(t, `hb/s\s+expected/s\s+srv-cpu/1k-hb\s+p50\s+p90\s+p99\s+max\s+responses\s+errors\s+reconnects\s+not-leader\n\s+\S+\s+6\.0\s`, stdout)
	require.Contains(t, stdout, "whole run, warm-up included (the nodes' histograms): p50 ")
	require.Regexp(t, `server cpu \(leader\): \S+ in \S+ \(\d+\.\d\d cores\) from http://`, stdout)
	require.Regexp(t, `server rss \(leader\): \S+ before the nodes, \S+ after the window \([+-]\S+ per node\)`, stdout)
	require.Regexp(t, `load generator cpu \(this process\): \S+ in \S+ \(\d+\.\d\d cores\)`, stdout)
	require.Regexp(t, `warning: \d+ handshakes returned heartbeat interval 200ms, not the 1s expected of a flownode with --interval 1s: --interval must match the server's heartbeat_interval`, stdout)
}

func TestBenchHeartbeatBadInput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--nodes", "0"}, "--nodes 0: must be at least 1"},
		{[]string{"--interval", "0s"}, "--interval 0s: must be positive"},
		{[]string{"-d", "-1s"}, "--duration -1s: must be positive"},
		{[]string{"--conns-per", "0"}, "--conns-per 0: must be at least 1"},
		{[]string{"--role", "metasrv"}, `--role "metasrv": expected datanode, frontend or flownode`},
		{[]string{"--ramp", "-1s"}, "--ramp -1s: must not be negative"},
		{[]string{"--ramp", "5s", "--warmup-timeout", "5s"}, "--warmup-timeout 5s: must be longer than --ramp (5s)"},
		{[]string{"-o", "yaml"}, `--output "yaml": expected text or json`},
		{[]string{"--metrics-url", "ftp://h/metrics"}, `--metrics-url "ftp://h/metrics": expected an http(s) URL or host:port`},
		{[]string{"--interval", "soon"}, `invalid argument "soon" for "--interval" flag`},
	} {
		code, _, stderr := runCLI(append([]string{"bench", "heartbeat", "--endpoints", "127.0.0.1:1"}, tc.args...)...)
		require.Equal(t, 1, code, tc.args)
		require.Contains(t, stderr, tc.want)
	}
}
