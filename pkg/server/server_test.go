package server

import (
	"context"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func startServer(t *testing.T, opts Options) *Server {
	t.Helper()
	if opts.GRPCAddr == "" {
		opts.GRPCAddr = "127.0.0.1:0"
	}
	if opts.HTTPAddr == "" {
		opts.HTTPAddr = "127.0.0.1:0"
	}
	s := New(opts)
	require.NoError(t, s.Start(t.Context()))
	t.Cleanup(s.Stop)
	return s
}

func dial(t *testing.T, s *Server) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(s.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func httpGet(t *testing.T, method, url string) (int, string) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	require.NoError(t, err)
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

func healthStatus(t *testing.T, conn *grpc.ClientConn, service string) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	resp, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{Service: service})
	require.NoError(t, err)
	return resp.GetStatus()
}

func TestGRPCHealthAndReflection(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{})
	conn := dial(t, s)

	require.Equal(t, healthpb.HealthCheckResponse_SERVING, healthStatus(t, conn, ""))
	require.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, healthStatus(t, conn, LeaderService))
	s.SetLeader(true)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, healthStatus(t, conn, LeaderService))
	s.SetLeader(false)
	require.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, healthStatus(t, conn, LeaderService))

	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(t.Context())
	require.NoError(t, err)
	require.NoError(t, stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	}))
	resp, err := stream.Recv()
	require.NoError(t, err)
	var names []string
	for _, svc := range resp.GetListServicesResponse().GetService() {
		names = append(names, svc.GetName())
	}
	require.Contains(t, names, "grpc.health.v1.Health")
	require.NoError(t, stream.CloseSend())
}

func TestHTTPAdminHealth(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{})
	base := "http://" + s.HTTPAddr().String()

	code, body := httpGet(t, http.MethodGet, base+"/admin/health")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "OK", body)

	code, _ = httpGet(t, http.MethodPost, base+"/admin/health")
	require.Equal(t, http.StatusMethodNotAllowed, code)

	code, _ = httpGet(t, http.MethodGet, base+"/admin/nothing")
	require.Equal(t, http.StatusNotFound, code)
}

func TestRegisterHooks(t *testing.T) {
	t.Parallel()
	extra := extraService{}
	s := New(Options{
		GRPCAddr: "127.0.0.1:0",
		HTTPAddr: "127.0.0.1:0",
		Register: func(g grpc.ServiceRegistrar) {
			g.RegisterService(&grpc.ServiceDesc{ServiceName: "test.Extra", HandlerType: (*any)(nil)}, extra)
		},
	})
	s.HTTPMux().HandleFunc("GET /admin/extra", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("extra"))
	})
	require.NoError(t, s.Start(t.Context()))
	t.Cleanup(s.Stop)
	_, ok := s.grpc.GetServiceInfo()["test.Extra"]
	require.True(t, ok)
	code, body := httpGet(t, http.MethodGet, "http://"+s.HTTPAddr().String()+"/admin/extra")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "extra", body)
}

// extraService stands for a service a later package registers through the hook.
type extraService struct{}

func TestStartPortInUse(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()

	t.Run("grpc", func(t *testing.T) {
		s := New(Options{GRPCAddr: busy.Addr().String(), HTTPAddr: "127.0.0.1:0"})
		err := s.Start(t.Context())
		require.ErrorIs(t, err, syscall.EADDRINUSE)
		require.ErrorContains(t, err, "gRPC listen on "+busy.Addr().String())
		require.Nil(t, s.HTTPAddr())
		s.Stop()
	})

	t.Run("http closes the grpc listener", func(t *testing.T) {
		grpcAddr := freeAddr(t)
		s := New(Options{GRPCAddr: grpcAddr, HTTPAddr: busy.Addr().String()})
		err := s.Start(t.Context())
		require.ErrorIs(t, err, syscall.EADDRINUSE)
		require.ErrorContains(t, err, "HTTP listen on "+busy.Addr().String())
		// The gRPC port bound first was released.
		l, err := net.Listen("tcp", grpcAddr)
		require.NoError(t, err)
		require.NoError(t, l.Close())
		s.Stop()
	})
}

// freeAddr returns an address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func TestStopIdempotent(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{})
	addr := s.HTTPAddr().String()
	s.Stop()
	s.Stop()
	_, err := net.DialTimeout("tcp", addr, time.Second)
	require.Error(t, err)
	require.Error(t, s.Start(t.Context()), "a stopped server does not restart")

	never := New(Options{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"})
	never.Stop()
	never.Stop()
}

func TestStartTwice(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{})
	require.Error(t, s.Start(t.Context()))
}

func TestStopCutsLongCalls(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{ShutdownTimeout: 50 * time.Millisecond})
	conn := dial(t, s)
	// A Watch stream never ends on its own, so graceful stop cannot finish.
	watch, err := healthpb.NewHealthClient(conn).Watch(context.Background(), &healthpb.HealthCheckRequest{Service: ""})
	require.NoError(t, err)
	first, err := watch.Recv()
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, first.GetStatus())

	s.Stop()
	for {
		msg, err := watch.Recv()
		if err != nil {
			break
		}
		require.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, msg.GetStatus())
	}
}
