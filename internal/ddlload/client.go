package ddlload

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/pgmetasrv/metasrv/internal/greptimefake"
	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/statuscode"
)

// maxAttempts is GreptimeDB's DEFAULT_SUBMIT_DDL_MAX_RETRY: how many times
// its procedure client sends one DDL task before giving up.
const maxAttempts = 3

// labelAskLeader is the error label of a call that found no leader to send
// to.
const labelAskLeader = "ask_leader"

// frontendHeader is the request header of the frontend the clients play.
func frontendHeader() *metapb.RequestHeader {
	return &metapb.RequestHeader{ProtocolVersion: greptimefake.ProtocolVersion, Role: metapb.Role_FRONTEND}
}

// callError is a failed call, with the label it is counted under: the gRPC
// code, GreptimeDB's status code when the answer carried one.
type callError struct {
	label string
	err   error
}

func (e *callError) Error() string { return e.err.Error() }
func (e *callError) Unwrap() error { return e.err }

// labelOf is the label err is counted under.
func labelOf(err error) string {
	if ce, ok := errors.AsType[*callError](err); ok {
		return ce.label
	}
	return status.Code(err).String()
}

// client is the DDL side of one fake frontend: the leader it sends to,
// found with AskLeader and asked again when a call says it is not the
// leader.
type client struct {
	conns     *greptimefake.Conns
	endpoints []string
	timeout   time.Duration
	callOpts  []grpc.CallOption

	// asking serialises leader look-ups: the workers that see the same
	// stale leader ask once, not once each.
	asking sync.Mutex
	leader atomic.Pointer[string]

	notLeader, retries atomic.Uint64
}

func newClient(cfg Config, conns *greptimefake.Conns) *client {
	c := &client{conns: conns, endpoints: cfg.Endpoints, timeout: cfg.Timeout}
	if cfg.Compressor != "" {
		c.callOpts = []grpc.CallOption{grpc.UseCompressor(cfg.Compressor)}
	}
	return c
}

// currentLeader is the leader to send to, asked for when none is known.
func (c *client) currentLeader(ctx context.Context) (string, error) {
	if l := c.leader.Load(); l != nil {
		return *l, nil
	}
	return c.refresh(ctx, "")
}

// refresh asks for the leader again, unless another caller already replaced
// stale meanwhile.
func (c *client) refresh(ctx context.Context, stale string) (string, error) {
	c.asking.Lock()
	defer c.asking.Unlock()
	if l := c.leader.Load(); l != nil && *l != stale {
		return *l, nil
	}
	var err error
	for range greptimefake.AskLeaderMaxRetry {
		var leader string
		leader, err = greptimefake.AskLeader(ctx, c.conns, c.endpoints, frontendHeader(), greptimefake.HeartbeatTimeout, c.callOpts...)
		if err == nil {
			c.leader.Store(&leader)
			return leader, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return "", &callError{label: labelAskLeader, err: err}
}

// ddl submits req to the leader as GreptimeDB's procedure client does
// (with_retry): a NotLeader header or an Unavailable status asks for the
// leader again and retries. Unlike that client it does not retry its own
// DeadlineExceeded: the procedure may still be running, and a second
// create of the same table would only fail as already existing.
func (c *client) ddl(ctx context.Context, req *metapb.DdlTaskRequest) (*metapb.DdlTaskResponse, error) {
	var last error
	for attempt := range maxAttempts {
		if attempt > 0 {
			c.retries.Add(1)
		}
		leader, err := c.currentLeader(ctx)
		if err != nil {
			return nil, err
		}
		resp, err := c.send(ctx, leader, req)
		switch {
		case err == nil && resp.GetHeader().GetError().GetCode() == greptimefake.CodeNotLeader:
			c.notLeader.Add(1)
			last = fmt.Errorf("%s is not the leader", leader)
		case err == nil && resp.GetHeader().GetError() != nil:
			e := resp.GetHeader().GetError()
			return nil, &callError{label: fmt.Sprintf("header_error_%d", e.GetCode()),
				err: fmt.Errorf("%s answered header error %d: %s", leader, e.GetCode(), e.GetErrMsg())}
		case err == nil:
			return resp, nil
		case status.Code(err) == codes.Unavailable && ctx.Err() == nil:
			last = err
		default:
			return nil, err
		}
		if attempt+1 == maxAttempts {
			break
		}
		if _, err := c.refresh(ctx, leader); err != nil {
			return nil, err
		}
	}
	return nil, &callError{label: "retries_exhausted", err: fmt.Errorf("%d attempts: %w", maxAttempts, last)}
}

// send is one attempt, its failure labelled with the gRPC code and the
// x-greptime-err-code the answer carried.
func (c *client) send(ctx context.Context, leader string, req *metapb.DdlTaskRequest) (*metapb.DdlTaskResponse, error) {
	cc, err := c.conns.Get(leader)
	if err != nil {
		return nil, err
	}
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var hdr, trailer metadata.MD
	opts := append([]grpc.CallOption{grpc.Header(&hdr), grpc.Trailer(&trailer)}, c.callOpts...)
	resp, err := metapb.NewProcedureServiceClient(cc).Ddl(actx, req, opts...)
	if err == nil {
		return resp, nil
	}
	label := status.Code(err).String()
	if code, ok := statuscode.FromMetadata(trailer, hdr); ok {
		label = fmt.Sprintf("%s (greptime %d)", label, code)
	}
	return nil, &callError{label: label, err: fmt.Errorf("ddl on %s: %w", leader, err)}
}

// store is a Store client of the leader.
func (c *client) store(ctx context.Context) (metapb.StoreClient, error) {
	leader, err := c.currentLeader(ctx)
	if err != nil {
		return nil, err
	}
	cc, err := c.conns.Get(leader)
	if err != nil {
		return nil, err
	}
	return metapb.NewStoreClient(cc), nil
}
