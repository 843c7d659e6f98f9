package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// parseKV parses as bench kv's scrape does.
func parseKV(r io.Reader) (metricsSample, error) {
	m, err := ParseMetrics(r, metricGRPCRequests)
	if err != nil {
		return metricsSample{}, err
	}
	calls, ok := m[metricGRPCRequests]
	return metricsSample{cpu: m[MetricProcessCPU], grpcCalls: calls, hasGRPC: ok}, nil
}

func TestParseMetrics(t *testing.T) {
	t.Parallel()
	body := `# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.5
process_cpu_seconds_total_other 99
go_goroutines 40
metasrv_grpc_requests_total{code="OK",method="/metasrv.v1.Store/Put"} 100
metasrv_grpc_requests_total{code="OK",method="/grpc.health.v1.Health/Check"} 20 1700000000000
`
	sm, err := parseKV(strings.NewReader(body))
	require.NoError(t, err)
	require.Equal(t, 12.5, sm.cpu)
	require.True(t, sm.hasGRPC)
	require.Equal(t, 120.0, sm.grpcCalls)

	// OpenMetrics spells a counter's sample the same way.
	sm, err = parseKV(strings.NewReader("# TYPE process_cpu_seconds counter\nprocess_cpu_seconds_total 3e-1\n# EOF\n"))
	require.NoError(t, err)
	require.Equal(t, 0.3, sm.cpu)
	require.False(t, sm.hasGRPC)

	_, err = parseKV(strings.NewReader("go_goroutines 4\n"))
	require.ErrorContains(t, err, "no process_cpu_seconds_total")
	_, err = parseKV(strings.NewReader("process_cpu_seconds_total abc\n"))
	require.ErrorContains(t, err, "malformed sample")
	_, err = parseKV(strings.NewReader(`metasrv_grpc_requests_total{code="OK" 1` + "\nprocess_cpu_seconds_total 1\n"))
	require.ErrorContains(t, err, "malformed sample")
}

// fakeMetrics serves a /metrics whose CPU counter grows by cpuStep and whose
// gRPC counter grows by callStep on every scrape after the first.
func fakeMetrics(t *testing.T, cpuStep float64, callStep int) *httptest.Server {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		i := n.Add(1) - 1
		fmt.Fprintf(w, "process_cpu_seconds_total %g\n", 10+float64(i)*cpuStep)
		fmt.Fprintf(w, "metasrv_grpc_requests_total{code=\"OK\",method=\"/m\"} %d\n", 5+int(i)*callStep)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func fakeRun(ops uint64) func() (Result, error) {
	return func() (Result, error) { return Result{Target: "metasrv", Ops: ops, Elapsed: 2 * time.Second}, nil }
}

func TestMeasureServerCPU(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	srv := fakeMetrics(t, 0.5, 4000)
	res, err := measure(ctx, &Scraper{URL: srv.URL + "/metrics"}, fakeRun(2000))
	require.NoError(t, err)
	c := res.ServerCPU
	require.NotNil(t, c)
	require.True(t, c.Measured, c.Error)
	require.Equal(t, srv.URL+"/metrics", c.Source)
	require.InDelta(t, 0.5, c.Seconds, 1e-9)
	require.InDelta(t, 0.25, c.SecondsPer1kOps, 1e-9)
	require.InDelta(t, 0.25, c.Cores, 1e-9)
	require.NotNil(t, c.GRPCCalls)
	require.Equal(t, uint64(4000), *c.GRPCCalls)
	require.Empty(t, c.Warning)

	// A node that served few of the calls is not the leader.
	srv = fakeMetrics(t, 0.1, 10)
	res, err = measure(ctx, &Scraper{URL: srv.URL + "/metrics"}, fakeRun(2000))
	require.NoError(t, err)
	require.True(t, res.ServerCPU.Measured)
	require.Contains(t, res.ServerCPU.Warning, "probably not the leader")

	// A counter going down: the node restarted.
	srv = fakeMetrics(t, -1, 0)
	res, err = measure(ctx, &Scraper{URL: srv.URL + "/metrics"}, fakeRun(10))
	require.NoError(t, err)
	require.False(t, res.ServerCPU.Measured)
	require.Contains(t, res.ServerCPU.Error, "restarted")

	// No /metrics there: said, with the hint, and the run still counts.
	res, err = measure(ctx, &Scraper{URL: srv.URL + "/nothing", Hint: "the hint"}, fakeRun(10))
	require.NoError(t, err)
	require.Equal(t, uint64(10), res.Ops)
	require.False(t, res.ServerCPU.Measured)
	require.Contains(t, res.ServerCPU.Error, "before the run: GET "+srv.URL+"/nothing: 404 Not Found (the hint)")

	// Nothing listening.
	srv.Close()
	res, err = measure(ctx, &Scraper{URL: srv.URL + "/metrics"}, fakeRun(10))
	require.NoError(t, err)
	require.False(t, res.ServerCPU.Measured)
	require.Contains(t, res.ServerCPU.Error, "before the run:")

	// Without a scraper nothing is attached; a failed run stays failed.
	res, err = measure(ctx, nil, fakeRun(10))
	require.NoError(t, err)
	require.Nil(t, res.ServerCPU)
	boom := errors.New("boom")
	_, err = measure(ctx, &Scraper{URL: srv.URL}, func() (Result, error) { return Result{}, boom })
	require.ErrorIs(t, err, boom)
}

// ownedN draws distinct keys the worker owns, ascending.
func TestOwnedN(t *testing.T) {
	t.Parallel()
	k := &KV{Op: OpTxn, Clients: 4, Keys: 14, TxnKeys: 3}
	for id := range k.Clients {
		w := k.newWorker(id)
		for range 200 {
			nums, slots := k.ownedN(w, 3)
			require.Len(t, nums, 3)
			for j, i := range nums {
				require.Equal(t, id, i%k.Clients)
				require.Less(t, i, k.Keys)
				require.Equal(t, slots[j]*k.Clients+id, i)
				if j > 0 {
					require.Less(t, nums[j-1], i)
				}
			}
		}
	}
}
