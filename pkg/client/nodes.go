package client

import (
	"bytes"
	"context"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	metasrvv1 "github.com/pgmetasrv/metasrv/pkg/api/metasrv/v1"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/nodelist"
)

// Nodes lists the GreptimeDB nodes registered with the leader, sorted by
// role, then id. It reads the leader's in-memory KV with
// greptime.v1.meta.Cluster/Range, which only the leader serves: a node that
// answers NotLeader (header error code 2) is left for the leader the
// endpoints name next, as any leader-only call is. Its leases and node info
// are read in up to three ranges, each from whichever node leads then.
func (c *Client) Nodes(ctx context.Context, o nodelist.Options) ([]nodelist.Node, error) {
	return nodelist.List(ctx, c.rangeMemory, o)
}

// greptimeNotLeader is the header error code of a greptime.v1.meta call that
// reached a node that does not lead (GreptimeDB's ErrorCode::NotLeader).
const greptimeNotLeader = 2

// greptimeAnswer carries a greptime.v1.meta response through invoke. Its
// header names no leader and no term, so invoke learns nothing from it.
type greptimeAnswer[T any] struct{ resp T }

func (greptimeAnswer[T]) GetHeader() *metasrvv1.ResponseHeader { return nil }

// greptimeHeaderError is the failure a greptime.v1.meta response reports in
// its header under an OK status. NotLeader becomes metasrv.v1's NOT_LEADER
// refusal without a hint: the call then asks the endpoints who leads and
// tries there, as for any leader-only call, and GreptimeDB's own client does
// the same on code 2.
func greptimeHeaderError(h *metapb.ResponseHeader) error {
	e := h.GetError()
	if e == nil {
		return nil
	}
	if e.GetCode() == greptimeNotLeader {
		st := status.New(codes.Unavailable, fmt.Sprintf("not the leader (greptime.v1.meta header error %d: %s)", e.GetCode(), e.GetErrMsg()))
		if withInfo, err := st.WithDetails(&errdetails.ErrorInfo{Domain: metasrvv1.ErrorDomain, Reason: metasrvv1.ReasonNotLeader}); err == nil {
			st = withInfo
		}
		return st.Err()
	}
	return status.Errorf(codes.Unknown, "greptime.v1.meta header error %d: %s", e.GetCode(), e.GetErrMsg())
}

// rangeMemory reads every pair under prefix of the leader's in-memory KV,
// page after page while the server says there is more.
func (c *Client) rangeMemory(ctx context.Context, prefix []byte) ([]kv.KeyValue, error) {
	var out []kv.KeyValue
	key, end := prefix, kv.PrefixEnd(prefix)
	for {
		a, err := invoke(ctx, c, toLeader, idempotent, func(ctx context.Context, cc *grpc.ClientConn) (greptimeAnswer[*metapb.RangeResponse], error) {
			resp, err := metapb.NewClusterClient(cc).Range(ctx, &metapb.RangeRequest{
				Header: &metapb.RequestHeader{ProtocolVersion: 1}, Key: key, RangeEnd: end,
			})
			if err == nil {
				err = greptimeHeaderError(resp.GetHeader())
			}
			return greptimeAnswer[*metapb.RangeResponse]{resp}, err
		})
		if err != nil {
			return nil, err
		}
		kvs := a.resp.GetKvs()
		for _, p := range kvs {
			out = append(out, kv.KeyValue{Key: p.GetKey(), Value: p.GetValue()})
		}
		if !a.resp.GetMore() || len(kvs) == 0 {
			return out, nil
		}
		key = append(bytes.Clone(kvs[len(kvs)-1].GetKey()), 0)
	}
}
