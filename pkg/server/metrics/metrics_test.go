package metrics_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/pgmetasrv/metasrv/internal/pgtest"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/server/metrics"
)

func TestMain(m *testing.M) { pgtest.MainCheckLeaks(m) }

func TestNewRegistry(t *testing.T) {
	t.Parallel()
	reg := metrics.NewRegistry()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	require.True(t, names["go_goroutines"])
	require.True(t, names["process_start_time_seconds"] || names["process_cpu_seconds_total"])
}

// serveHealth runs a gRPC health server instrumented by m and returns a client.
func serveHealth(t *testing.T, m *metrics.GRPC) healthpb.HealthClient {
	t.Helper()
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(m.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(m.StreamServerInterceptor()),
	)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = conn.Close()
		srv.Stop()
		<-done
	})
	return healthpb.NewHealthClient(conn)
}

func TestGRPCInterceptors(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := metrics.NewGRPC(reg)
	require.NoError(t, err)
	client := serveHealth(t, m)

	for range 2 {
		_, err := client.Check(t.Context(), &healthpb.HealthCheckRequest{})
		require.NoError(t, err)
	}
	_, err = client.Check(t.Context(), &healthpb.HealthCheckRequest{Service: "nope"})
	require.Equal(t, codes.NotFound, status.Code(err))

	ctx, cancel := context.WithCancel(t.Context())
	watch, err := client.Watch(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	_, err = watch.Recv()
	require.NoError(t, err)
	cancel()

	// The stream is recorded when its handler returns, after the cancel
	// reached the server.
	require.Eventually(t, func() bool {
		return gather(t, reg)[`metasrv_grpc_requests_total{code="Canceled",method="/grpc.health.v1.Health/Watch"}`] == 1
	}, waitFor, tick)
	got := gather(t, reg)
	require.Equal(t, 2.0, got[`metasrv_grpc_requests_total{code="OK",method="/grpc.health.v1.Health/Check"}`])
	require.Equal(t, 1.0, got[`metasrv_grpc_requests_total{code="NotFound",method="/grpc.health.v1.Health/Check"}`])
	require.Equal(t, 2.0, got[`metasrv_grpc_request_duration_seconds_count{code="OK",method="/grpc.health.v1.Health/Check"}`])
	require.Equal(t, 1.0, got[`metasrv_grpc_request_duration_seconds_count{code="Canceled",method="/grpc.health.v1.Health/Watch"}`])
	require.Len(t, withPrefix(got, "metasrv_grpc_request_duration_seconds_count"), 3, "one histogram per method and code")

	_, err = metrics.NewGRPC(reg)
	require.Error(t, err, "registering twice on one registry fails")
}

const (
	waitFor = 10 * time.Second
	tick    = 5 * time.Millisecond
)

type fakeProcedures struct{ s procedure.Stats }

func (f fakeProcedures) Stats() procedure.Stats { return f.s }

func TestProcedureCollector(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewProcedureCollector(fakeProcedures{procedure.Stats{
		Running:         true,
		Paused:          true,
		Active:          map[procedure.State]int{procedure.StateRunning: 4, procedure.StateRollingBack: 1},
		WaitingForLocks: 2,
		Unloadable:      1,
		Finished:        map[procedure.State]uint64{procedure.StateDone: 9, procedure.StateFailed: 1},
		Fenced:          3,
		Stalled:         5,
	}}))
	require.Equal(t, map[string]float64{
		`metasrv_procedures{state="running"}`:                    4,
		`metasrv_procedures{state="retrying"}`:                   0,
		`metasrv_procedures{state="rolling_back"}`:               1,
		`metasrv_procedures_finished_total{state="done"}`:        9,
		`metasrv_procedures_finished_total{state="rolled_back"}`: 0,
		`metasrv_procedures_finished_total{state="failed"}`:      1,
		`metasrv_procedures_waiting_for_locks`:                   2,
		`metasrv_procedures_unloadable`:                          1,
		`metasrv_procedure_manager_running`:                      1,
		`metasrv_procedure_manager_paused`:                       1,
		`metasrv_procedures_fenced_total`:                        3,
		`metasrv_procedures_stalled_total`:                       5,
	}, gather(t, reg))

	// A follower's empty stats still export every series, at zero.
	idle := prometheus.NewRegistry()
	idle.MustRegister(metrics.NewProcedureCollector(fakeProcedures{}))
	got := gather(t, idle)
	require.Len(t, got, 12)
	require.Equal(t, 0.0, got[`metasrv_procedure_manager_running`])
}

// The pool collector reads a real pool on a real PostgreSQL.
func TestPoolCollector(t *testing.T) {
	t.Parallel()
	cfg, err := pgxpool.ParseConfig(pgtest.NewDatabase(t))
	require.NoError(t, err)
	cfg.MaxConns = 3
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewPoolCollector("kv", pool))

	conn, err := pool.Acquire(t.Context())
	require.NoError(t, err)
	got := gather(t, reg)
	require.Len(t, got, 13, "every pool statistic is exported")
	require.Equal(t, 1.0, got[`metasrv_pg_pool_acquired_conns{pool="kv"}`])
	require.Equal(t, 3.0, got[`metasrv_pg_pool_max_conns{pool="kv"}`])
	require.Equal(t, 0.0, got[`metasrv_pg_pool_idle_conns{pool="kv"}`])
	require.Equal(t, 1.0, got[`metasrv_pg_pool_conns{pool="kv"}`])
	conn.Release()

	got = gather(t, reg)
	require.Equal(t, 0.0, got[`metasrv_pg_pool_acquired_conns{pool="kv"}`])
	require.Equal(t, 1.0, got[`metasrv_pg_pool_idle_conns{pool="kv"}`])
	require.Equal(t, 1.0, got[`metasrv_pg_pool_acquires_total{pool="kv"}`])
	require.Equal(t, 1.0, got[`metasrv_pg_pool_new_conns_total{pool="kv"}`])
	require.Equal(t, 1.0, got[`metasrv_pg_pool_empty_acquires_total{pool="kv"}`], "the first acquire found no idle connection")
	require.Greater(t, got[`metasrv_pg_pool_acquire_duration_seconds_total{pool="kv"}`], 0.0)
}

// gather returns every sample of reg as name{label="value",...} -> value;
// histograms give their _count and _sum.
func gather(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := make([]string, 0, len(m.GetLabel()))
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			suffix := ""
			if len(labels) > 0 {
				suffix = "{" + strings.Join(labels, ",") + "}"
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[mf.GetName()+suffix] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[mf.GetName()+suffix] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[mf.GetName()+"_count"+suffix] = float64(m.GetHistogram().GetSampleCount())
				out[mf.GetName()+"_sum"+suffix] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}

func withPrefix(m map[string]float64, prefix string) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		if strings.HasPrefix(k, prefix) {
			out[k] = v
		}
	}
	return out
}

// A call whose caller went away is counted as Canceled (or
// DeadlineExceeded), whatever code the error mapping gave the handler's
// error: the caller's departure is not a server failure.
func TestGRPCCallerDepartureIsNotUnavailable(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := metrics.NewGRPC(reg)
	require.NoError(t, err)
	unavailable := func(context.Context, any) (any, error) {
		return nil, status.Error(codes.Unavailable, "backend unavailable: context canceled")
	}
	const method = "/metasrv.v1.Store/Range"
	info := &grpc.UnaryServerInfo{FullMethod: method}

	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = m.UnaryServerInterceptor()(canceled, nil, info, unavailable)
	require.Equal(t, codes.Unavailable, status.Code(err), "the error itself is passed on unchanged")

	expired, cancelExpired := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancelExpired()
	_, _ = m.UnaryServerInterceptor()(expired, nil, info, unavailable)

	stream := &grpc.StreamServerInfo{FullMethod: "/metasrv.v1.Heartbeat/Stream"}
	_ = m.StreamServerInterceptor()(nil, fakeStream{ctx: canceled}, stream, func(any, grpc.ServerStream) error {
		return status.Error(codes.Unavailable, "gone")
	})

	// A live caller's Unavailable is still one.
	_, _ = m.UnaryServerInterceptor()(t.Context(), nil, info, unavailable)

	got := gather(t, reg)
	require.Equal(t, 1.0, got[`metasrv_grpc_requests_total{code="Canceled",method="`+method+`"}`])
	require.Equal(t, 1.0, got[`metasrv_grpc_requests_total{code="DeadlineExceeded",method="`+method+`"}`])
	require.Equal(t, 1.0, got[`metasrv_grpc_requests_total{code="Unavailable",method="`+method+`"}`])
	require.Equal(t, 1.0, got[`metasrv_grpc_requests_total{code="Canceled",method="/metasrv.v1.Heartbeat/Stream"}`])
}

type fakeStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s fakeStream) Context() context.Context { return s.ctx }
