package client

import (
	"context"

	"google.golang.org/grpc"

	"github.com/pgmetasrv/metasrv/pkg/api/kvpb"
	metasrvv1 "github.com/pgmetasrv/metasrv/pkg/api/metasrv/v1"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// The Client is a kv.Backend: code written against the backend contract
// runs unchanged against a remote cluster. Its reads are linearizable.
var _ kv.Backend = (*Client)(nil)

// Name identifies the client as a backend in logs.
func (c *Client) Name() string { return "metasrv" }

// Serializable returns a view of the client whose reads (Range, BatchGet,
// Get) are served by any node straight from the durable store: they see
// every committed write and work without a leader, but may miss a write
// acknowledged a moment ago by the leader's cache. Writes still go to the
// leader.
func (c *Client) Serializable() kv.Backend { return serializable{c} }

type serializable struct{ *Client }

func (s serializable) Range(ctx context.Context, req kv.RangeRequest) (kv.RangeResponse, error) {
	return s.rangeWith(ctx, req, true)
}

func (s serializable) BatchGet(ctx context.Context, req kv.BatchGetRequest) (kv.BatchGetResponse, error) {
	return s.batchGetWith(ctx, req, true)
}

func (c *Client) store(cc *grpc.ClientConn) metasrvv1.StoreClient {
	return metasrvv1.NewStoreClient(cc)
}

func readRoute(serializable bool) route {
	if serializable {
		return toAny
	}
	return toLeader
}

// Get returns the pair stored under key (linearizable), or nil when absent.
func (c *Client) Get(ctx context.Context, key []byte) (*kv.KeyValue, error) {
	return kv.Get(ctx, c, key)
}

func (c *Client) Range(ctx context.Context, req kv.RangeRequest) (kv.RangeResponse, error) {
	return c.rangeWith(ctx, req, false)
}

func (c *Client) rangeWith(ctx context.Context, req kv.RangeRequest, serializable bool) (kv.RangeResponse, error) {
	in := kvpb.RangeRequestToPB(req, serializable)
	in.Header = c.reqHeader
	resp, err := invoke(ctx, c, readRoute(serializable), idempotent, func(ctx context.Context, cc *grpc.ClientConn) (*metasrvv1.RangeResponse, error) {
		return c.store(cc).Range(ctx, in)
	})
	if err != nil {
		return kv.RangeResponse{}, err
	}
	return kvpb.RangeResponseFromPB(resp), nil
}

func (c *Client) BatchGet(ctx context.Context, req kv.BatchGetRequest) (kv.BatchGetResponse, error) {
	return c.batchGetWith(ctx, req, false)
}

func (c *Client) batchGetWith(ctx context.Context, req kv.BatchGetRequest, serializable bool) (kv.BatchGetResponse, error) {
	in := kvpb.BatchGetRequestToPB(req, serializable)
	in.Header = c.reqHeader
	resp, err := invoke(ctx, c, readRoute(serializable), idempotent, func(ctx context.Context, cc *grpc.ClientConn) (*metasrvv1.BatchGetResponse, error) {
		return c.store(cc).BatchGet(ctx, in)
	})
	if err != nil {
		return kv.BatchGetResponse{}, err
	}
	return kvpb.BatchGetResponseFromPB(resp), nil
}

func (c *Client) Put(ctx context.Context, req kv.PutRequest) (kv.PutResponse, error) {
	in := kvpb.PutRequestToPB(req)
	in.Header = c.reqHeader
	resp, err := invoke(ctx, c, toLeader, mutating, func(ctx context.Context, cc *grpc.ClientConn) (*metasrvv1.PutResponse, error) {
		return c.store(cc).Put(ctx, in)
	})
	if err != nil {
		return kv.PutResponse{}, err
	}
	return kvpb.PutResponseFromPB(resp), nil
}

func (c *Client) BatchPut(ctx context.Context, req kv.BatchPutRequest) (kv.BatchPutResponse, error) {
	in := kvpb.BatchPutRequestToPB(req)
	in.Header = c.reqHeader
	resp, err := invoke(ctx, c, toLeader, mutating, func(ctx context.Context, cc *grpc.ClientConn) (*metasrvv1.BatchPutResponse, error) {
		return c.store(cc).BatchPut(ctx, in)
	})
	if err != nil {
		return kv.BatchPutResponse{}, err
	}
	return kvpb.BatchPutResponseFromPB(resp), nil
}

func (c *Client) BatchDelete(ctx context.Context, req kv.BatchDeleteRequest) (kv.BatchDeleteResponse, error) {
	in := kvpb.BatchDeleteRequestToPB(req)
	in.Header = c.reqHeader
	resp, err := invoke(ctx, c, toLeader, mutating, func(ctx context.Context, cc *grpc.ClientConn) (*metasrvv1.BatchDeleteResponse, error) {
		return c.store(cc).BatchDelete(ctx, in)
	})
	if err != nil {
		return kv.BatchDeleteResponse{}, err
	}
	return kvpb.BatchDeleteResponseFromPB(resp), nil
}

func (c *Client) DeleteRange(ctx context.Context, req kv.DeleteRangeRequest) (kv.DeleteRangeResponse, error) {
	in := kvpb.DeleteRangeRequestToPB(req)
	in.Header = c.reqHeader
	resp, err := invoke(ctx, c, toLeader, mutating, func(ctx context.Context, cc *grpc.ClientConn) (*metasrvv1.DeleteRangeResponse, error) {
		return c.store(cc).DeleteRange(ctx, in)
	})
	if err != nil {
		return kv.DeleteRangeResponse{}, err
	}
	return kvpb.DeleteRangeResponseFromPB(resp), nil
}

func (c *Client) CompareAndPut(ctx context.Context, req kv.CompareAndPutRequest) (kv.CompareAndPutResponse, error) {
	in := kvpb.CompareAndPutRequestToPB(req)
	in.Header = c.reqHeader
	resp, err := invoke(ctx, c, toLeader, mutating, func(ctx context.Context, cc *grpc.ClientConn) (*metasrvv1.CompareAndPutResponse, error) {
		return c.store(cc).CompareAndPut(ctx, in)
	})
	if err != nil {
		return kv.CompareAndPutResponse{}, err
	}
	return kvpb.CompareAndPutResponseFromPB(resp), nil
}

func (c *Client) Txn(ctx context.Context, req kv.TxnRequest) (kv.TxnResponse, error) {
	in := kvpb.TxnRequestToPB(req)
	in.Header = c.reqHeader
	resp, err := invoke(ctx, c, toLeader, mutating, func(ctx context.Context, cc *grpc.ClientConn) (*metasrvv1.TxnResponse, error) {
		return c.store(cc).Txn(ctx, in)
	})
	if err != nil {
		return kv.TxnResponse{}, err
	}
	return kvpb.TxnResponseFromPB(resp), nil
}
