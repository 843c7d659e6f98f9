package regionfailoverbench

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pgmetasrv/metasrv/internal/greptimefake"
	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
)

// maxAttempts is GreptimeDB's DEFAULT_SUBMIT_DDL_MAX_RETRY.
const maxAttempts = 3

func frontendHeader() *metapb.RequestHeader {
	return &metapb.RequestHeader{ProtocolVersion: greptimefake.ProtocolVersion, Role: metapb.Role_FRONTEND}
}

// client is the frontend side of the run: DDL and metadata reads sent to
// the leader, which is asked for again after a NotLeader answer or an
// Unavailable error. It is used by the run's goroutine only.
type client struct {
	conns     *greptimefake.Conns
	endpoints []string
	timeout   time.Duration
	opts      []grpc.CallOption
	leader    string
}

func newClient(cfg Config, conns *greptimefake.Conns) *client {
	c := &client{conns: conns, endpoints: cfg.Endpoints, timeout: cfg.Timeout}
	if cfg.Compressor != "" {
		c.opts = []grpc.CallOption{grpc.UseCompressor(cfg.Compressor)}
	}
	return c
}

// findLeader asks the endpoints for the leader.
func (c *client) findLeader(ctx context.Context) error {
	var err error
	for range greptimefake.AskLeaderMaxRetry {
		var leader string
		if leader, err = greptimefake.AskLeader(ctx, c.conns, c.endpoints, frontendHeader(), greptimefake.HeartbeatTimeout, c.opts...); err == nil {
			c.leader = leader
			return nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("regionfailoverbench: find the leader: %w", err)
}

// call runs one request on the leader, retried on another leader as
// GreptimeDB's clients do; do returns the answer and its header.
func call[T any](ctx context.Context, c *client, op string, do func(ctx context.Context, cc *grpc.ClientConn) (T, *metapb.ResponseHeader, error)) (T, error) {
	var zero T
	var last error
	for attempt := range maxAttempts {
		if c.leader == "" || attempt > 0 {
			if err := c.findLeader(ctx); err != nil {
				return zero, err
			}
		}
		cc, err := c.conns.Get(c.leader)
		if err != nil {
			return zero, err
		}
		actx, cancel := context.WithTimeout(ctx, c.timeout)
		resp, hdr, err := do(actx, cc)
		cancel()
		switch {
		case err == nil && hdr.GetError().GetCode() == greptimefake.CodeNotLeader:
			last = fmt.Errorf("%s is not the leader", c.leader)
		case err == nil && hdr.GetError() != nil:
			return zero, fmt.Errorf("regionfailoverbench: %s: %s answered header error %d: %s", op, c.leader, hdr.GetError().GetCode(), hdr.GetError().GetErrMsg())
		case err == nil:
			return resp, nil
		case status.Code(err) == codes.Unavailable && ctx.Err() == nil:
			last = err
		default:
			return zero, fmt.Errorf("regionfailoverbench: %s on %s: %w", op, c.leader, err)
		}
	}
	return zero, fmt.Errorf("regionfailoverbench: %s: %d attempts: %w", op, maxAttempts, last)
}

// ddl submits one DDL task and waits for its answer.
func (c *client) ddl(ctx context.Context, op string, req *metapb.DdlTaskRequest) (*metapb.DdlTaskResponse, error) {
	req.TimeoutSecs = uint32((c.timeout + time.Second - 1) / time.Second)
	return call(ctx, c, op, func(ctx context.Context, cc *grpc.ClientConn) (*metapb.DdlTaskResponse, *metapb.ResponseHeader, error) {
		resp, err := metapb.NewProcedureServiceClient(cc).Ddl(ctx, req, c.opts...)
		return resp, resp.GetHeader(), err
	})
}

// get reads one key's value, nil when it is absent.
func (c *client) get(ctx context.Context, key []byte) ([]byte, error) {
	resp, err := call(ctx, c, "read "+string(key), func(ctx context.Context, cc *grpc.ClientConn) (*metapb.RangeResponse, *metapb.ResponseHeader, error) {
		resp, err := metapb.NewStoreClient(cc).Range(ctx, &metapb.RangeRequest{Header: frontendHeader(), Key: key}, c.opts...)
		return resp, resp.GetHeader(), err
	})
	if err != nil || len(resp.GetKvs()) == 0 {
		return nil, err
	}
	return resp.GetKvs()[0].GetValue(), nil
}
