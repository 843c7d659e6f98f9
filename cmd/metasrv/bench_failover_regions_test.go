package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/internal/regionfailoverbench"
	"github.com/pgmetasrv/metasrv/pkg/config"
)

// failoverOptions are a memory node with region failover on and a detector
// that judges a datanode failed within about a second.
func failoverOptions() config.Options {
	o := config.Default()
	o.HeartbeatInterval = 200 * time.Millisecond
	o.EnableRegionFailover, o.AllowRegionFailoverOnLocalWAL = true, true
	o.RegionFailureDetectorInitializationDelay = 0
	o.FailureDetector.AcceptableHeartbeatPause = 500 * time.Millisecond
	o.FailureDetector.FirstHeartbeatEstimate = 200 * time.Millisecond
	return o
}

func TestBenchFailoverRegionsAgainstMemoryNode(t *testing.T) {
	t.Parallel()
	n := startMemoryNode(t, failoverOptions())
	code, stdout, stderr := runCLI("bench", "failover-regions", "--endpoints", n.srv.GRPCAddr().String(), "--rounds", "2", "--regions", "6",
		"--failure-detector-acceptable-heartbeat-pause", "500ms", "--failure-detector-first-heartbeat-estimate", "200ms", "-o", "json")
	require.Equal(t, 0, code, stderr)
	var rep regionfailoverbench.Report
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep), stdout)
	require.Equal(t, n.srv.Advertised(), rep.Leader)
	require.Regexp(t, `^bench_[0-9a-f]{8}$`, rep.Schema)
	require.Equal(t, 3, rep.Datanodes)
	require.EqualValues(t, 200, rep.HeartbeatIntervalMs)
	require.EqualValues(t, 500, rep.Detector.AcceptableHeartbeatPauseMs)
	require.Empty(t, rep.DropDatabaseError)

	require.Len(t, rep.Measured, 2)
	for i, r := range rep.Measured {
		require.Equal(t, i+1, r.Round)
		require.Equal(t, 6, r.Regions)
		require.Positive(t, r.Heartbeats, "the victim beat with its regions before it stopped")
		require.Positive(t, r.Floor)
		// Each region is opened, then upgraded, then granted Leader.
		require.Positive(t, r.Detected)
		require.LessOrEqual(t, r.Detected, r.UpgradedMax)
		require.LessOrEqual(t, r.UpgradedMax, r.LeaderMax)
		require.LessOrEqual(t, r.Detected, r.LeaderMedian)
		require.LessOrEqual(t, r.LeaderMedian, r.LeaderMax)
	}
	s := rep.Summary
	require.LessOrEqual(t, s.LeaderMax.Median, s.LeaderMax.P99)
	require.InDelta(t, max(rep.Measured[0].LeaderMax, rep.Measured[1].LeaderMax), s.LeaderMax.P99, 1e-9, "p99 of two rounds: the worse")
	require.True(t, rep.Leases.OK(), "%v", rep.Leases.Problems)
	require.Positive(t, rep.Leases.LeaderGrants)
	require.EqualValues(t, 1, rep.Leases.LeaseSeconds, "3 x 200ms + 1s, truncated")
	require.Contains(t, stderr, "round 2/2: 6 regions, floor ")
}

func TestBenchFailoverRegionsText(t *testing.T) {
	t.Parallel()
	n := startMemoryNode(t, failoverOptions())
	code, stdout, stderr := runCLI("bench", "failover-regions", "--endpoints", n.srv.GRPCAddr().String(), "--rounds", "1", "--regions", "2",
		"--datanodes", "2", "--schema", "bench_fo_text",
		"--failure-detector-acceptable-heartbeat-pause", "500ms", "--failure-detector-first-heartbeat-estimate", "200ms")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "bench failover-regions: rounds=1 regions=2 datanodes=2 database=greptime.bench_fo_text leader="+n.srv.Advertised()+" heartbeat_interval=200ms\n")
	require.Contains(t, stdout, "failure detector (for the floor): threshold=8 min_std_deviation=100ms acceptable_heartbeat_pause=500ms first_heartbeat_estimate=200ms\n")
	require.Regexp(t, `round\s+regions\s+beats\s+floor\s+detected\s+upgraded\s+leader p50\s+leader max\s+move\n\s+1\s+2\s+\d+(\s+-?\d+\.\d{3}){6}\n`, stdout)
	require.Regexp(t, `median(\s+-?\d+\.\d{3}){6}\n\s*p99(\s+-?\d+\.\d{3}){6}\n`, stdout)
	require.Regexp(t, `regions writable elsewhere \(leader max over 1 rounds\): median \S+, p99 \S+\n`, stdout)
	require.Regexp(t, `last region upgraded \(.*\): median \S+, p99 \S+; upgraded - floor: median \S+, p99 \S+\n`, stdout)
	require.Regexp(t, `lease check: \d+ leader grants \(lease_seconds 1\), no region leader on two datanodes at once: ok\n`, stdout)
}

func TestBenchFailoverRegionsBadInput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--rounds", "0"}, "--rounds 0: must be at least 1"},
		{[]string{"--regions", "0"}, "--regions 0: must be at least 1"},
		{[]string{"--datanodes", "1"}, "--datanodes 1: must be at least 2"},
		{[]string{"--catalog", ""}, "--catalog: must not be empty"},
		{[]string{"--datanode-host", ""}, "--datanode-host: must not be empty"},
		{[]string{"--lease-timeout", "0s"}, "--lease-timeout 0s: must be positive"},
		{[]string{"--round-timeout", "0s"}, "--round-timeout 0s: must be positive"},
		{[]string{"--timeout", "500ms"}, "--timeout 500ms: must be at least 1s"},
		{[]string{"-o", "yaml"}, `--output "yaml": expected text or json`},
		{[]string{"--failure-detector-threshold", "0"}, "--failure-detector-*: region: PhiAccrualOptions.Threshold is 0"},
		{[]string{"--failure-detector-min-std-deviation", "0s"}, "--failure-detector-*: region: PhiAccrualOptions.MinStdDeviation is 0s"},
	} {
		code, _, stderr := runCLI(append([]string{"bench", "failover-regions", "--endpoints", "127.0.0.1:1"}, tc.args...)...)
		require.Equal(t, 1, code, tc.args)
		require.Contains(t, stderr, tc.want)
	}
}
