package greptimeapi

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/heartbeat"
)

// heartbeatService is greptime.v1.meta.Heartbeat.
type heartbeatService struct {
	metapb.UnimplementedHeartbeatServer
	core     Core
	leaders  *leaderLookup
	sessions *heartbeat.Service
}

// AskLeader names the leader from any node (see leaderAddr). With no leader
// the answer is UNAVAILABLE; GreptimeDB's client ignores a failed peer and
// asks again, whatever the code.
func (s *heartbeatService) AskLeader(ctx context.Context, _ *metapb.AskLeaderRequest) (*metapb.AskLeaderResponse, error) {
	addr, err := s.leaderAddr(ctx)
	if err != nil {
		return nil, err
	}
	return &metapb.AskLeaderResponse{Header: okHeader(), Leader: &metapb.Peer{Addr: addr}}, nil
}

// notLeaderStatus ends a stream that reached, or outlived, a node that does
// not lead: GreptimeDB's nodes reconnect on it.
func notLeaderStatus(addr string) error {
	return status.Error(codes.Aborted, fmt.Sprintf("The requested metasrv node is not leader, node addr: %s", addr))
}

// Heartbeat serves one node's stream: the handshake (first request) is
// answered with the heartbeat config, then every request with the chain's
// response, and between them the responses the mailbox pushes to the node.
// Only this goroutine sends on the stream, so answers and pushes never
// interleave. The stream ends with ABORTED after a NotLeader answer, and
// when the session's term ends or the node registered again on another
// stream.
func (s *heartbeatService) Heartbeat(stream metapb.Heartbeat_HeartbeatServer) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		return err
	}
	sess, err := s.sessions.Open(first.GetHeader())
	var bad *heartbeat.RequestError
	if errors.As(err, &bad) {
		return status.Error(codes.InvalidArgument, bad.Msg)
	}
	if err != nil {
		return err
	}
	defer sess.Close()

	reqs, recvErr := receive(ctx, stream)

	addr := s.core.HeaderInfo().NodeAddr
	answer := func(req *metapb.HeartbeatRequest, handshake bool) error {
		resp := sess.Handle(ctx, req, handshake)
		if err := stream.Send(resp); err != nil {
			return err
		}
		if heartbeat.IsNotLeader(resp) {
			return notLeaderStatus(addr)
		}
		return nil
	}
	if err := answer(first, true); err != nil {
		return err
	}
	for {
		select {
		case req := <-reqs:
			if err := answer(req, false); err != nil {
				return err
			}
		case resp := <-sess.Pushed():
			// Checked here, not when queued: a leader deposed since then
			// delivers nothing.
			if !sess.Deliverable() {
				continue
			}
			if err := stream.Send(resp); err != nil {
				return err
			}
		case err := <-recvErr:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case <-sess.Done():
			return notLeaderStatus(addr)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// receive reads the stream's requests on a goroutine of their own, so that
// the end of the session's term, or a pushed message, is acted on while the
// node is between heartbeats. The goroutine ends with the stream, which
// returning from the handler causes.
func receive(ctx context.Context, stream metapb.Heartbeat_HeartbeatServer) (<-chan *metapb.HeartbeatRequest, <-chan error) {
	reqs := make(chan *metapb.HeartbeatRequest)
	recvErr := make(chan error, 1)
	go func() {
		for {
			req, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case reqs <- req:
			case <-ctx.Done():
				return
			}
		}
	}()
	return reqs, recvErr
}
