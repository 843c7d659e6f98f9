package hbload

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/pgmetasrv/metasrv/internal/greptimefake"
	"github.com/pgmetasrv/metasrv/internal/loadgen"
	"github.com/pgmetasrv/metasrv/pkg/config"
	"github.com/pgmetasrv/metasrv/pkg/grpczstd"
	"github.com/pgmetasrv/metasrv/pkg/metasrv"
	"github.com/pgmetasrv/metasrv/pkg/node"
)

// TestMain fails the run when goroutines outlive the tests: a run stops
// every node, watcher and connection it made.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memoryNode starts an in-process memory_store node telling nodes to beat
// every interval.
func memoryNode(t *testing.T, interval time.Duration) *node.Node {
	t.Helper()
	o := config.Default()
	o.GRPC.BindAddr, o.HTTP.Addr = "127.0.0.1:0", "127.0.0.1:0"
	o.HeartbeatInterval = interval
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := node.New(ctx, node.Config{Options: o, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, n.Stop(context.Background())) })
	require.NoError(t, n.Start(ctx))
	require.NoError(t, n.WaitState(ctx, metasrv.LeaderReady))
	return n
}

func TestRunAgainstMemoryNode(t *testing.T) {
	t.Parallel()
	n := memoryNode(t, 200*time.Millisecond)
	var progress strings.Builder
	rep, err := Run(t.Context(), Config{
		Endpoints: []string{n.GRPCAddr().String()}, Role: greptimefake.Datanode, Nodes: 30, ConnsPer: 10,
		Interval: 200 * time.Millisecond, Duration: 1500 * time.Millisecond, WarmupTimeout: 30 * time.Second,
		Compressor: grpczstd.Name, Metrics: &loadgen.Scraper{URL: "http://" + n.HTTPAddr().String() + "/metrics"},
		Progress: &progress,
	})
	require.NoError(t, err)
	require.Equal(t, 3, rep.Pools)
	require.Equal(t, 30, rep.Warmup.Handshaken)
	require.Positive(t, rep.Warmup.Seconds)
	require.Equal(t, map[string]uint64{"200ms": rep.Handshakes.Total}, rep.Handshakes.Intervals)
	require.Equal(t, map[string]uint64{n.Advertised(): rep.Handshakes.Total}, rep.Handshakes.Leaders)
	require.Empty(t, rep.Warnings)

	w := rep.Window
	require.Zero(t, w.Errors, w.FirstWarning)
	require.Zero(t, w.Reconnects)
	require.Zero(t, w.NotLeader)
	require.InDelta(t, 150.0, w.ExpectedPerSec, 0.01) // 30 nodes every 200ms
	// Every node beats about 7 times in the window; a loaded machine may
	// delay some beats, never the count to nothing.
	require.Greater(t, w.Responses, uint64(60))
	require.Positive(t, w.Latency.Count)
	require.LessOrEqual(t, w.Latency.Count, w.Responses)
	require.LessOrEqual(t, w.Latency.P50, w.Latency.P99)
	require.LessOrEqual(t, w.Latency.P99, w.Latency.Max)
	require.GreaterOrEqual(t, rep.WholeRun.Count, w.Latency.Count, "the nodes' own histograms hold the warm-up too")
	require.Contains(t, progress.String(), "heartbeat:   1s")

	require.NotNil(t, rep.ServerCPU)
	require.True(t, rep.ServerCPU.Measured, rep.ServerCPU.Error)
	require.Empty(t, rep.ServerCPU.Warning, "the memory node leads")
	require.NotNil(t, rep.ServerMemory)
	require.True(t, rep.ServerMemory.Measured, rep.ServerMemory.Error)
	require.Positive(t, rep.ServerMemory.BeforeBytes)
	require.Positive(t, rep.ServerMemory.AfterBytes)
}

func TestWarmupTimeout(t *testing.T) {
	t.Parallel()
	// Nothing listens on port 1: no node finds a leader.
	_, err := Run(t.Context(), Config{
		Endpoints: []string{"127.0.0.1:1"}, Role: greptimefake.Flownode, Nodes: 3, ConnsPer: 2,
		Interval: time.Second, Duration: time.Second, WarmupTimeout: 300 * time.Millisecond,
	})
	require.ErrorContains(t, err, "warm-up: only 0 of 3 nodes completed a handshake within 300ms")
}

func TestConfigCheck(t *testing.T) {
	t.Parallel()
	_, err := Run(t.Context(), Config{Role: 7})
	require.ErrorContains(t, err, "hbload: no endpoints; unknown role 7; Nodes 0 and ConnsPer 0 must be at least 1")
	require.Equal(t, 18*time.Second, RoleInterval(greptimefake.Frontend, 3*time.Second))
	require.Equal(t, 3*time.Second, RoleInterval(greptimefake.Flownode, 3*time.Second))
}

func parseSample(r io.Reader) (sample, error) {
	m, err := loadgen.ParseMetrics(r, metricRSS, metricIsLeader)
	if err != nil {
		return sample{}, err
	}
	return sampleOf(m), nil
}

func TestParseSample(t *testing.T) {
	t.Parallel()
	sm, err := parseSample(strings.NewReader(`# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.5
process_resident_memory_bytes 2.5165824e+07
metasrv_is_leader 1
metasrv_grpc_requests_total{code="OK",method="/x"} 3
`))
	require.NoError(t, err)
	require.Equal(t, sample{cpu: 12.5, rss: 25165824, hasRSS: true, isLeader: 1, hasLeader: true}, sm)

	_, err = parseSample(strings.NewReader("process_resident_memory_bytes 1\n"))
	require.ErrorContains(t, err, "no process_cpu_seconds_total")
	_, err = parseSample(strings.NewReader("process_cpu_seconds_total x\n"))
	require.ErrorContains(t, err, "malformed sample")
}

func TestWarningsKeepTheFirst(t *testing.T) {
	t.Parallel()
	w := &warnings{}
	log := w.logger().With("id", 7)
	log.Info("not counted")
	log.Warn("connect failed", "err", "refused")
	log.Warn("second")
	first, n := w.take()
	require.Equal(t, "connect failed id=7 err=refused", first)
	require.Equal(t, uint64(2), n)
	first, n = w.take()
	require.Empty(t, first)
	require.Zero(t, n)
}
