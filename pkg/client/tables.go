package client

import (
	"context"

	"google.golang.org/grpc"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/tableroute"
)

// TableRoute reads where table name's regions live and how their peers
// stand with the leader (see package tableroute): the table's metadata with
// linearizable reads (metasrv.v1 Store/BatchGet on the leader), then its
// datanodes' node info and stats from the leader's in-memory KV
// (greptime.v1.meta.Cluster/BatchGet, leader only: a NotLeader answer moves
// the call to the leader the endpoints name). The two reads may reach two
// leaders when leadership moves between them. A table that does not exist
// fails with tableroute.ErrTableNotFound.
func (c *Client) TableRoute(ctx context.Context, name greptimekey.TableName, o tableroute.Options) (tableroute.Table, error) {
	return tableroute.Get(ctx, name, tableroute.Sources{Store: c.batchGetStore, Memory: c.batchGetMemory}, o)
}

func (c *Client) batchGetStore(ctx context.Context, keys [][]byte) ([]kv.KeyValue, error) {
	resp, err := c.BatchGet(ctx, kv.BatchGetRequest{Keys: keys})
	return resp.Kvs, err
}

// batchGetMemory reads keys of the leader's in-memory KV.
func (c *Client) batchGetMemory(ctx context.Context, keys [][]byte) ([]kv.KeyValue, error) {
	a, err := invoke(ctx, c, toLeader, idempotent, func(ctx context.Context, cc *grpc.ClientConn) (greptimeAnswer[*metapb.BatchGetResponse], error) {
		resp, err := metapb.NewClusterClient(cc).BatchGet(ctx, &metapb.BatchGetRequest{
			Header: &metapb.RequestHeader{ProtocolVersion: 1}, Keys: keys,
		})
		if err == nil {
			err = greptimeHeaderError(resp.GetHeader())
		}
		return greptimeAnswer[*metapb.BatchGetResponse]{resp}, err
	})
	if err != nil {
		return nil, err
	}
	out := make([]kv.KeyValue, 0, len(a.resp.GetKvs()))
	for _, p := range a.resp.GetKvs() {
		out = append(out, kv.KeyValue{Key: p.GetKey(), Value: p.GetValue()})
	}
	return out, nil
}
