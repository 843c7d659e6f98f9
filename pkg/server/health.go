package server

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// leaderRecheckInterval is how often a Watch of LeaderService re-evaluates
// the live leadership: trust can lapse without any event (a leader frozen
// past its lease), and a watcher must not keep SERVING from before.
const leaderRecheckInterval = 100 * time.Millisecond

// healthServer is grpc's health server with LeaderService answered live:
// SERVING only when the recorded status (SetLeader) is SERVING and the
// leadership check passes at the moment of the answer. A Check queued while
// the process was frozen is answered with what holds when it runs, not with
// what was recorded before the freeze.
type healthServer struct {
	*health.Server
	// leading is the live check; nil means the recorded status alone.
	leading func() bool

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every recorded change
}

func newHealthServer(leading func() bool) *healthServer {
	return &healthServer{Server: health.NewServer(), leading: leading, changed: make(chan struct{})}
}

// notify wakes the LeaderService watchers after a recorded change.
func (h *healthServer) notify() {
	h.mu.Lock()
	defer h.mu.Unlock()
	close(h.changed)
	h.changed = make(chan struct{})
}

func (h *healthServer) changes() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.changed
}

func (h *healthServer) setServingStatus(service string, st healthpb.HealthCheckResponse_ServingStatus) {
	h.SetServingStatus(service, st)
	h.notify()
}

func (h *healthServer) shutdown() {
	h.Shutdown()
	h.notify()
}

// leaderStatus is LeaderService's status now.
func (h *healthServer) leaderStatus(ctx context.Context) healthpb.HealthCheckResponse_ServingStatus {
	resp, err := h.Server.Check(ctx, &healthpb.HealthCheckRequest{Service: LeaderService})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return healthpb.HealthCheckResponse_NOT_SERVING
	}
	if h.leading != nil && !h.leading() {
		return healthpb.HealthCheckResponse_NOT_SERVING
	}
	return healthpb.HealthCheckResponse_SERVING
}

func (h *healthServer) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	if req.GetService() != LeaderService {
		return h.Server.Check(ctx, req)
	}
	return &healthpb.HealthCheckResponse{Status: h.leaderStatus(ctx)}, nil
}

func (h *healthServer) Watch(req *healthpb.HealthCheckRequest, stream grpc.ServerStreamingServer[healthpb.HealthCheckResponse]) error {
	if req.GetService() != LeaderService {
		return h.Server.Watch(req, stream)
	}
	ctx := stream.Context()
	ticker := time.NewTicker(leaderRecheckInterval)
	defer ticker.Stop()
	last := healthpb.HealthCheckResponse_ServingStatus(-1)
	for {
		// Taken before the evaluation, so a change recorded after it wakes
		// the next round.
		changed := h.changes()
		if st := h.leaderStatus(ctx); st != last {
			if err := stream.Send(&healthpb.HealthCheckResponse{Status: st}); err != nil {
				return err
			}
			last = st
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-ticker.C:
		}
	}
}
