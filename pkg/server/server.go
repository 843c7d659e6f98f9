// Package server runs metasrv's network front: the gRPC server (standard
// health service, reflection, and whatever services the caller registers) and
// the HTTP admin server, each optionally over TLS (see TLSFiles).
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
)

// LeaderService is the health service name that is SERVING only on the
// leader, so a load balancer health-checking it routes to the leader.
const LeaderService = "metasrv.v1.Leader"

// DefaultShutdownTimeout bounds the graceful part of Stop.
const DefaultShutdownTimeout = 5 * time.Second

// Options configure a Server.
type Options struct {
	// GRPCAddr and HTTPAddr are the listen addresses (host:port; port 0 picks
	// a free port, see GRPCAddr/HTTPAddr on Server).
	GRPCAddr string
	HTTPAddr string
	// GRPCListener and HTTPListener, when set, are served instead of
	// listening on GRPCAddr and HTTPAddr: a caller that bound its addresses
	// early (pkg/node) hands them over, so the port is never released and
	// re-bound, which another process could take in between. The server owns
	// them from Start on and closes them on Stop.
	GRPCListener net.Listener
	HTTPListener net.Listener
	// Logger receives the server's logs; a "component" attribute is added.
	Logger *slog.Logger
	// Register, if set, registers further gRPC services before serving;
	// their unary methods are gated by the request memory bounds.
	Register func(grpc.ServiceRegistrar)
	// GRPCOptions are passed to grpc.NewServer, after the ones built from
	// the fields below.
	GRPCOptions []grpc.ServerOption
	// GRPCTLS, if set, serves gRPC over TLS only (see TLSFiles.ServerConfig).
	GRPCTLS *tls.Config
	// HTTPTLS, if set, serves HTTP over TLS only.
	HTTPTLS *tls.Config
	// MaxRecvMsgSize caps one received gRPC message in bytes; a larger one
	// fails with RESOURCE_EXHAUSTED before it is decoded. Zero keeps gRPC's
	// default (4MiB).
	MaxRecvMsgSize int
	// MaxSendMsgSize caps one sent gRPC message; zero keeps gRPC's default.
	MaxSendMsgSize int
	// MaxConcurrentReceives caps the unary requests being read and decoded
	// at once; others wait, holding at most one stream window of unread
	// data. Zero means DefaultMaxConcurrentReceives.
	MaxConcurrentReceives int
	// MaxInflightRequestBytes caps the decoded size of the requests that
	// running unary handlers hold; a call whose request does not fit waits
	// until it does. Zero means DefaultInflightRequestFactor x
	// MaxRecvMsgSize.
	MaxInflightRequestBytes int64
	// MaxConcurrentStreams caps the calls open on one connection. Zero means
	// DefaultMaxConcurrentStreams.
	MaxConcurrentStreams uint32
	// StreamWindowSize and ConnWindowSize are the fixed HTTP/2 flow-control
	// windows (at least 64KiB). Zero means DefaultStreamWindowSize and
	// DefaultConnWindowSize.
	StreamWindowSize int32
	ConnWindowSize   int32
	// LeaderCheck, if set, is asked at the moment of every health answer for
	// LeaderService: SERVING needs both SetLeader(true) and LeaderCheck()
	// true. It must answer from memory (the core's trust-window test).
	LeaderCheck func() bool
	// ShutdownTimeout bounds the graceful stop; in-flight calls still running
	// after it are cut. Zero means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
}

// Server is the gRPC and HTTP admin servers of one metasrv process.
type Server struct {
	opts   Options
	log    *slog.Logger
	grpc   *grpc.Server
	health *healthServer
	// admission bounds the request bytes of unary calls.
	admission *admission
	mux       *http.ServeMux
	http      *http.Server

	mu       sync.Mutex
	started  bool
	stopped  bool
	grpcLis  net.Listener
	httpLis  net.Listener
	serving  sync.WaitGroup
	failures chan error
}

// New builds a Server; nothing listens until Start.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = DefaultShutdownTimeout
	}
	opts = withDefaults(opts)
	adm := newAdmission(opts.MaxConcurrentReceives, opts.MaxInflightRequestBytes)
	s := &Server{
		opts:      opts,
		log:       opts.Logger.With("component", "server"),
		grpc:      grpc.NewServer(grpcServerOptions(opts)...),
		health:    newHealthServer(opts.LeaderCheck),
		mux:       http.NewServeMux(),
		failures:  make(chan error, 2),
		admission: adm,
	}
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.health.SetServingStatus(LeaderService, healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	if opts.Register != nil {
		opts.Register(gatedRegistrar{srv: s.grpc, adm: adm})
	}
	s.mux.HandleFunc("GET /admin/health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("OK"))
	})
	s.http = &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 10 * time.Second,
		// Admin bodies are small (http.body_limit); a client trickling one
		// must not hold a connection open indefinitely.
		ReadTimeout: 30 * time.Second,
		IdleTimeout: 2 * time.Minute,
		ErrorLog:    slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	if opts.HTTPTLS != nil {
		s.http.TLSConfig = opts.HTTPTLS.Clone()
	}
	return s
}

// withDefaults fills in the zero limits.
func withDefaults(opts Options) Options {
	if opts.MaxRecvMsgSize <= 0 {
		opts.MaxRecvMsgSize = grpcDefaultMaxRecvMsgSize
	}
	if opts.MaxConcurrentReceives <= 0 {
		opts.MaxConcurrentReceives = DefaultMaxConcurrentReceives
	}
	if opts.MaxInflightRequestBytes <= 0 {
		opts.MaxInflightRequestBytes = DefaultInflightRequestFactor * int64(opts.MaxRecvMsgSize)
	}
	if opts.MaxConcurrentStreams == 0 {
		opts.MaxConcurrentStreams = DefaultMaxConcurrentStreams
	}
	if opts.StreamWindowSize <= 0 {
		opts.StreamWindowSize = DefaultStreamWindowSize
	}
	if opts.ConnWindowSize <= 0 {
		opts.ConnWindowSize = DefaultConnWindowSize
	}
	return opts
}

func grpcServerOptions(opts Options) []grpc.ServerOption {
	out := []grpc.ServerOption{
		// Refused while being read: a message over the cap is never buffered.
		grpc.MaxRecvMsgSize(opts.MaxRecvMsgSize),
		grpc.MaxConcurrentStreams(opts.MaxConcurrentStreams),
		grpc.InitialWindowSize(opts.StreamWindowSize),
		grpc.InitialConnWindowSize(opts.ConnWindowSize),
		// GreptimeDB's nodes ping their metasrv connections every 15s (the
		// heartbeat channel) or 30s (the others), idle or not. gRPC's default
		// policy (one ping per 5 minutes, none without a stream) would answer
		// that with GOAWAY "too_many_pings" and cut every such connection.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	}
	if opts.GRPCTLS != nil {
		out = append(out, grpc.Creds(credentials.NewTLS(opts.GRPCTLS)))
	}
	if opts.MaxSendMsgSize > 0 {
		out = append(out, grpc.MaxSendMsgSize(opts.MaxSendMsgSize))
	}
	return append(out, opts.GRPCOptions...)
}

// HTTPMux is the admin server's router, for further handlers (Go 1.22
// patterns such as "GET /admin/leader"). Safe to use before and after Start.
func (s *Server) HTTPMux() *http.ServeMux { return s.mux }

// SetLeader records the health status of LeaderService: SERVING while this
// node is the leader. With Options.LeaderCheck, an answer is SERVING only if
// the check also passes when it is given.
func (s *Server) SetLeader(leader bool) {
	status := healthpb.HealthCheckResponse_NOT_SERVING
	if leader {
		status = healthpb.HealthCheckResponse_SERVING
	}
	s.health.setServingStatus(LeaderService, status)
}

// Start binds both listeners, then serves in the background. A listen failure
// (such as a port in use) is returned naming the address, and leaves nothing
// open. Start may be called once; the context bounds only the binding.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.stopped {
		return errors.New("server: already started")
	}
	grpcLis, err := listen(ctx, s.opts.GRPCListener, s.opts.GRPCAddr)
	if err != nil {
		if s.opts.HTTPListener != nil {
			_ = s.opts.HTTPListener.Close()
		}
		return fmt.Errorf("server: gRPC listen on %s: %w", s.opts.GRPCAddr, err)
	}
	httpLis, err := listen(ctx, s.opts.HTTPListener, s.opts.HTTPAddr)
	if err != nil {
		_ = grpcLis.Close()
		return fmt.Errorf("server: HTTP listen on %s: %w", s.opts.HTTPAddr, err)
	}
	s.started = true
	s.grpcLis, s.httpLis = grpcLis, httpLis

	s.serving.Add(2)
	go func() {
		defer s.serving.Done()
		if err := s.grpc.Serve(grpcLis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			s.fail(fmt.Errorf("server: gRPC serve on %s: %w", grpcLis.Addr(), err))
		}
	}()
	go func() {
		defer s.serving.Done()
		var err error
		if s.http.TLSConfig != nil {
			// The certificate is in TLSConfig; ServeTLS adds h2 to its protocols.
			err = s.http.ServeTLS(httpLis, "", "")
		} else {
			err = s.http.Serve(httpLis)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.fail(fmt.Errorf("server: HTTP serve on %s: %w", httpLis.Addr(), err))
		}
	}()
	s.log.Info("serving",
		"grpc_addr", grpcLis.Addr().String(), "grpc_tls", s.opts.GRPCTLS != nil,
		"http_addr", httpLis.Addr().String(), "http_tls", s.opts.HTTPTLS != nil)
	return nil
}

// listen returns the handed-over listener, or binds addr.
func listen(ctx context.Context, given net.Listener, addr string) (net.Listener, error) {
	if given != nil {
		return given, nil
	}
	var lc net.ListenConfig
	return lc.Listen(ctx, "tcp", addr)
}

func (s *Server) fail(err error) {
	s.log.Error("server failed", "err", err)
	select {
	case s.failures <- err:
	default:
	}
}

// Failed delivers an error if a server stops serving on its own (not through
// Stop); the process should then shut down.
func (s *Server) Failed() <-chan error { return s.failures }

// GRPCAddr is the bound gRPC address (useful with port 0); nil before Start.
func (s *Server) GRPCAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.grpcLis == nil {
		return nil
	}
	return s.grpcLis.Addr()
}

// HTTPAddr is the bound HTTP address; nil before Start.
func (s *Server) HTTPAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.httpLis == nil {
		return nil
	}
	return s.httpLis.Addr()
}

// Stop reports NOT_SERVING, stops accepting, lets in-flight calls finish for up
// to ShutdownTimeout, then cuts the rest. It returns once both servers'
// goroutines have ended. Safe to call more than once, and before Start.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	s.stopped = true
	if !s.started {
		s.grpc.Stop()
		return
	}
	// Health watchers and load balancers see NOT_SERVING before the listener goes.
	s.health.shutdown()

	ctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.http.Shutdown(ctx); err != nil {
			s.log.Warn("HTTP graceful shutdown cut short", "err", err)
			_ = s.http.Close()
		}
	})
	wg.Go(func() {
		done := make(chan struct{})
		go func() {
			s.grpc.GracefulStop()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			s.log.Warn("gRPC graceful stop timed out; closing remaining calls", "timeout", s.opts.ShutdownTimeout.String())
			s.grpc.Stop()
			<-done
		}
	})
	wg.Wait()
	s.serving.Wait()
	s.log.Info("stopped")
}
