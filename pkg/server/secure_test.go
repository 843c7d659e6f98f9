package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/pgmetasrv/metasrv/pkg/election"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/memkv"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/server/admin"
	"github.com/pgmetasrv/metasrv/pkg/server/apierr"
	"github.com/pgmetasrv/metasrv/pkg/server/metrics"
)

func dialTLS(t *testing.T, s *Server, cfg *tls.Config) healthpb.HealthClient {
	t.Helper()
	conn, err := grpc.NewClient(s.GRPCAddr().String(), grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return healthpb.NewHealthClient(conn)
}

func TestGRPCTLSRequiresClientCert(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "metasrv")
	srvCert := ca.issue(t, "server", x509.ExtKeyUsageServerAuth)
	client := ca.issue(t, "client", x509.ExtKeyUsageClientAuth)
	stranger := newTestCA(t, "stranger").issue(t, "stranger", x509.ExtKeyUsageClientAuth)

	cfg, err := TLSFiles{Table: "grpc.tls", CertPath: srvCert.certPath, KeyPath: srvCert.keyPath, CACertPath: ca.path}.ServerConfig(RequireClientCerts)
	require.NoError(t, err)
	s := startServer(t, Options{GRPCTLS: cfg})

	check := func(h healthpb.HealthClient) error {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		_, err := h.Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}
	base := &tls.Config{RootCAs: ca.pool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}

	ok := base.Clone()
	ok.Certificates = []tls.Certificate{client.tls}
	require.NoError(t, check(dialTLS(t, s, ok)))

	err = check(dialTLS(t, s, base.Clone()))
	require.Equal(t, codes.Unavailable, status.Code(err), "no client certificate: %v", err)

	wrong := base.Clone()
	wrong.Certificates = []tls.Certificate{stranger.tls}
	err = check(dialTLS(t, s, wrong))
	require.Equal(t, codes.Unavailable, status.Code(err), "certificate from another CA: %v", err)

	// Plaintext is refused too.
	require.Error(t, check(healthpb.NewHealthClient(dial(t, s))))
}

func TestGRPCMaxRecvMsgSize(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{MaxRecvMsgSize: 1024})
	h := healthpb.NewHealthClient(dial(t, s))
	_, err := h.Check(t.Context(), &healthpb.HealthCheckRequest{Service: strings.Repeat("x", 2048)})
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
	_, err = h.Check(t.Context(), &healthpb.HealthCheckRequest{})
	require.NoError(t, err, "small messages still pass")
}

// adminNode is a single leader node over an in-memory store, enough to
// exercise the admin API through the real HTTP server.
type adminNode struct{ store kv.Backend }

func (n adminNode) Leader(context.Context) (election.Leader, error) {
	return election.Leader{Addr: "127.0.0.1:3002", Term: 1}, nil
}

func (n adminNode) Candidates(context.Context) ([]election.NodeInfo, error) {
	return []election.NodeInfo{{Addr: "127.0.0.1:3002"}}, nil
}

func (n adminNode) LeaderBackend(context.Context) (kv.Backend, error) { return n.store, nil }
func (n adminNode) SerializableBackend() kv.Backend                   { return n.store }

type stoppedProcedures struct{}

func (stoppedProcedures) Pause(context.Context) error          { return procedure.ErrNotRunning }
func (stoppedProcedures) Resume(context.Context) error         { return procedure.ErrNotRunning }
func (stoppedProcedures) Paused(context.Context) (bool, error) { return false, procedure.ErrNotRunning }
func (stoppedProcedures) Stats() procedure.Stats               { return procedure.Stats{} }

const adminToken = "test-admin-token-0123456789"

func TestHTTPSAdminAuthAndLimits(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "metasrv")
	srvCert := ca.issue(t, "server", x509.ExtKeyUsageServerAuth)
	operator := ca.issue(t, "operator", x509.ExtKeyUsageClientAuth)
	stranger := newTestCA(t, "stranger").issue(t, "stranger", x509.ExtKeyUsageClientAuth)

	cfg, err := TLSFiles{Table: "http.tls", CertPath: srvCert.certPath, KeyPath: srvCert.keyPath, CACertPath: ca.path}.ServerConfig(VerifyClientCertsIfGiven)
	require.NoError(t, err)
	s := New(Options{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", HTTPTLS: cfg})
	node := adminNode{store: memkv.New()}
	require.NoError(t, admin.Register(s.HTTPMux(), admin.Deps{
		Logger:       slog.New(slog.DiscardHandler),
		Cluster:      node,
		Store:        node,
		Procedures:   stoppedProcedures{},
		RenderConfig: func() ([]byte, error) { return []byte("x = 1\n"), nil },
		Metrics:      metrics.NewRegistry(),
		Auth:         admin.Auth{Token: adminToken, ClientCerts: true},
		MaxBodySize:  128,
	}))
	require.NoError(t, s.Start(t.Context()))
	t.Cleanup(s.Stop)
	base := "https://" + s.HTTPAddr().String()

	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			DisableKeepAlives: true,
			TLSClientConfig:   &tls.Config{RootCAs: ca.pool(), Certificates: certs, MinVersion: tls.VersionTLS12},
		}}
	}
	do := func(c *http.Client, method, path, token, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, base+path, strings.NewReader(body))
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	anon := client()

	// Reads need no certificate: a load balancer's health check works.
	code, body := do(anon, http.MethodGet, "/admin/health", "", "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "OK", body)

	code, body = do(anon, http.MethodPost, "/admin/maintenance/enable", "", "")
	require.Equal(t, http.StatusUnauthorized, code, body)
	code, _ = do(anon, http.MethodPost, "/admin/maintenance/enable", "not-the-token-000000", "")
	require.Equal(t, http.StatusUnauthorized, code)
	// crypto/tls sends no certificate the server's CA list would not accept,
	// so the stranger arrives anonymous...
	code, _ = do(client(stranger.tls), http.MethodPost, "/admin/maintenance/enable", "", "")
	require.Equal(t, http.StatusUnauthorized, code)
	// ...and one that insists on sending it fails the handshake.
	forced := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		TLSClientConfig: &tls.Config{RootCAs: ca.pool(), MinVersion: tls.VersionTLS12,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &stranger.tls, nil }},
	}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/admin/maintenance/enable", nil)
	require.NoError(t, err)
	resp, err := forced.Do(req)
	if err == nil {
		_ = resp.Body.Close()
		require.NotEqual(t, http.StatusOK, resp.StatusCode)
	}
	on, err := admin.MaintenanceEnabled(t.Context(), node.store)
	require.NoError(t, err)
	require.False(t, on, "refused requests changed nothing")

	code, body = do(anon, http.MethodPost, "/admin/maintenance/enable", adminToken, "")
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{"enabled":true}`, body)

	code, body = do(client(operator.tls), http.MethodPost, "/admin/maintenance", "", `{"enabled":false}`)
	require.Equal(t, http.StatusOK, code, "a verified client certificate authorises: %s", body)
	require.JSONEq(t, `{"enabled":false}`, body)

	code, body = do(anon, http.MethodPost, "/admin/maintenance", adminToken, `{"enabled":true,"pad":"`+strings.Repeat("x", 200)+`"}`)
	require.Equal(t, http.StatusRequestEntityTooLarge, code)
	require.Contains(t, body, "http.body_limit")

	code, body = do(anon, http.MethodPost, "/admin/procedure-manager/pause", adminToken, "")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, `"leader":"127.0.0.1:3002"`)
}

func TestPlainHTTPRefusedOnTLSPort(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "metasrv")
	srvCert := ca.issue(t, "server", x509.ExtKeyUsageServerAuth)
	cfg, err := TLSFiles{Table: "http.tls", CertPath: srvCert.certPath, KeyPath: srvCert.keyPath}.ServerConfig(VerifyClientCertsIfGiven)
	require.NoError(t, err)
	s := startServer(t, Options{HTTPTLS: cfg})
	code, _ := httpGet(t, http.MethodGet, "http://"+s.HTTPAddr().String()+"/admin/health")
	require.Equal(t, http.StatusBadRequest, code, "Go answers plain HTTP on a TLS port with 400")
}

func TestMetricsShowGRPCCalls(t *testing.T) {
	t.Parallel()
	reg := metrics.NewRegistry()
	grpcMetrics, err := metrics.NewGRPC(reg)
	require.NoError(t, err)
	logger := slog.New(slog.DiscardHandler)
	s := New(Options{
		GRPCAddr: "127.0.0.1:0",
		HTTPAddr: "127.0.0.1:0",
		GRPCOptions: []grpc.ServerOption{
			// Metrics outermost, so they see the code apierr mapped.
			grpc.ChainUnaryInterceptor(grpcMetrics.UnaryServerInterceptor(), apierr.UnaryServerInterceptor(logger)),
			grpc.ChainStreamInterceptor(grpcMetrics.StreamServerInterceptor(), apierr.StreamServerInterceptor(logger)),
		},
	})
	node := adminNode{store: memkv.New()}
	require.NoError(t, admin.Register(s.HTTPMux(), admin.Deps{
		Logger: logger, Cluster: node, Store: node, Procedures: stoppedProcedures{},
		RenderConfig: func() ([]byte, error) { return nil, nil }, Metrics: reg,
	}))
	require.NoError(t, s.Start(t.Context()))
	t.Cleanup(s.Stop)

	h := healthpb.NewHealthClient(dial(t, s))
	_, err = h.Check(t.Context(), &healthpb.HealthCheckRequest{})
	require.NoError(t, err)

	code, body := httpGet(t, http.MethodGet, "http://"+s.HTTPAddr().String()+"/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `metasrv_grpc_requests_total{code="OK",method="/grpc.health.v1.Health/Check"} 1`)
	require.Contains(t, body, `metasrv_grpc_request_duration_seconds_count{code="OK",method="/grpc.health.v1.Health/Check"} 1`)
	require.True(t, bytes.Contains([]byte(body), []byte("go_goroutines")))
}
