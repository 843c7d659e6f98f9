package metrics

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// GRPC counts and times gRPC calls by full method and status code.
//
// Its interceptors must run outside the one that maps Go errors to statuses
// (apierr): chained first, they see the code the client gets.
type GRPC struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewGRPC registers metasrv_grpc_requests_total and
// metasrv_grpc_request_duration_seconds on reg.
func NewGRPC(reg prometheus.Registerer) (*GRPC, error) {
	m := &GRPC{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "metasrv_grpc_requests_total",
			Help: "gRPC calls handled, by full method and status code.",
		}, []string{"method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "metasrv_grpc_request_duration_seconds",
			Help:    "Time to handle a gRPC call (a stream: its whole life), by full method and status code.",
			Buckets: LatencyBuckets,
		}, []string{"method", "code"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: register gRPC metrics: %w", err)
		}
	}
	return m, nil
}

// observe records a finished call. A call that failed after its caller
// cancelled it or let its deadline pass is counted as Canceled or
// DeadlineExceeded, whatever code the handler's error was mapped to (a
// backend call cut by the context often maps to Unavailable): the caller's
// departure is not a server failure, and must not look like one on a
// dashboard.
func (m *GRPC) observe(ctx context.Context, method string, start time.Time, err error) {
	c := status.Code(err)
	if err != nil && ctx.Err() != nil {
		c = status.FromContextError(ctx.Err()).Code()
	}
	code := c.String()
	m.requests.WithLabelValues(method, code).Inc()
	m.duration.WithLabelValues(method, code).Observe(time.Since(start).Seconds())
}

// UnaryServerInterceptor records every unary call.
func (m *GRPC) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		m.observe(ctx, info.FullMethod, start, err)
		return resp, err
	}
}

// StreamServerInterceptor records every streaming call when it ends.
func (m *GRPC) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		err := handler(srv, ss)
		m.observe(ss.Context(), info.FullMethod, start, err)
		return err
	}
}
