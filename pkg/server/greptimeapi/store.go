package greptimeapi

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/metadata"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/election"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// forwardedKey marks a Store write a follower forwarded, so the node it
// reaches never forwards it again (two nodes that each think the other leads
// would otherwise bounce it).
const forwardedKey = "x-metasrv-forwarded"

// storeService is greptime.v1.meta.Store. Reads are served by any node: the
// leader answers from its cache, a follower from PostgreSQL directly (it may
// lag the leader by the writes in flight, never by one acknowledged before
// the read began). Writes go to the leader's fenced store; see forward.
type storeService struct {
	metapb.UnimplementedStoreServer
	core    Core
	forward func(ctx context.Context, addr string) (metapb.StoreClient, error)
}

// reader is the backend a read uses. A follower does not ask for the
// leader's backend: the refusal it would build names the leader, which can
// cost a read of the election.
func (s *storeService) reader(ctx context.Context) kv.Backend {
	if leads(s.core) {
		if b, err := s.core.LeaderBackend(ctx); err == nil {
			return b
		}
	}
	return s.core.SerializableBackend()
}

func (s *storeService) Range(ctx context.Context, req *metapb.RangeRequest) (*metapb.RangeResponse, error) {
	resp, err := s.reader(ctx).Range(ctx, kv.RangeRequest{Key: req.GetKey(), RangeEnd: req.GetRangeEnd(), Limit: req.GetLimit(), KeysOnly: req.GetKeysOnly(), Shared: true})
	if err != nil {
		return nil, err
	}
	return &metapb.RangeResponse{Header: okHeader(), Kvs: kvsToPB(resp.Kvs), More: resp.More}, nil
}

func (s *storeService) BatchGet(ctx context.Context, req *metapb.BatchGetRequest) (*metapb.BatchGetResponse, error) {
	resp, err := s.reader(ctx).BatchGet(ctx, kv.BatchGetRequest{Keys: req.GetKeys(), Shared: true})
	if err != nil {
		return nil, err
	}
	return &metapb.BatchGetResponse{Header: okHeader(), Kvs: kvsToPB(resp.Kvs)}, nil
}

// writer returns the leader's store, or, on a node that does not lead, the
// leader's Store client to forward to (nil store and nil client never both).
func (s *storeService) writer(ctx context.Context) (kv.Backend, metapb.StoreClient, context.Context, error) {
	b, err := s.core.LeaderBackend(ctx)
	if err == nil {
		return b, nil, ctx, nil
	}
	var notLeader *election.NotLeaderError
	if !errors.As(err, &notLeader) || notLeader.Leader == "" || forwarded(ctx) || s.forward == nil {
		return nil, nil, ctx, err
	}
	c, ferr := s.forward(ctx, notLeader.Leader)
	if ferr != nil {
		return nil, nil, ctx, fmt.Errorf("forward the write to the leader %s: %w: %w", notLeader.Leader, err, ferr)
	}
	// Only the mark goes along: the caller's own metadata is for this node.
	out := metadata.NewOutgoingContext(ctx, metadata.Pairs(forwardedKey, "1"))
	return nil, c, out, nil
}

func forwarded(ctx context.Context) bool {
	md, ok := metadata.FromIncomingContext(ctx)
	return ok && len(md.Get(forwardedKey)) > 0
}

func (s *storeService) Put(ctx context.Context, req *metapb.PutRequest) (*metapb.PutResponse, error) {
	b, leader, fctx, err := s.writer(ctx)
	if err != nil {
		return nil, err
	}
	if leader != nil {
		return leader.Put(fctx, req)
	}
	resp, err := b.Put(ctx, kv.PutRequest{Key: req.GetKey(), Value: req.GetValue(), PrevKv: req.GetPrevKv()})
	if err != nil {
		return nil, err
	}
	return &metapb.PutResponse{Header: okHeader(), PrevKv: kvToPB(resp.PrevKv)}, nil
}

func (s *storeService) BatchPut(ctx context.Context, req *metapb.BatchPutRequest) (*metapb.BatchPutResponse, error) {
	b, leader, fctx, err := s.writer(ctx)
	if err != nil {
		return nil, err
	}
	if leader != nil {
		return leader.BatchPut(fctx, req)
	}
	resp, err := b.BatchPut(ctx, kv.BatchPutRequest{Kvs: kvsFromPB(req.GetKvs()), PrevKv: req.GetPrevKv()})
	if err != nil {
		return nil, err
	}
	return &metapb.BatchPutResponse{Header: okHeader(), PrevKvs: kvsToPB(resp.PrevKvs)}, nil
}

func (s *storeService) BatchDelete(ctx context.Context, req *metapb.BatchDeleteRequest) (*metapb.BatchDeleteResponse, error) {
	b, leader, fctx, err := s.writer(ctx)
	if err != nil {
		return nil, err
	}
	if leader != nil {
		return leader.BatchDelete(fctx, req)
	}
	resp, err := b.BatchDelete(ctx, kv.BatchDeleteRequest{Keys: req.GetKeys(), PrevKv: req.GetPrevKv()})
	if err != nil {
		return nil, err
	}
	return &metapb.BatchDeleteResponse{Header: okHeader(), PrevKvs: kvsToPB(resp.PrevKvs)}, nil
}

// CompareAndPut answers as GreptimeDB's: an empty expect means "absent";
// a success carries no prev_kv, a failure the pair as it is (none if the key
// is absent), which is what GreptimeDB's sequence allocation reads.
func (s *storeService) CompareAndPut(ctx context.Context, req *metapb.CompareAndPutRequest) (*metapb.CompareAndPutResponse, error) {
	b, leader, fctx, err := s.writer(ctx)
	if err != nil {
		return nil, err
	}
	if leader != nil {
		return leader.CompareAndPut(fctx, req)
	}
	resp, err := b.CompareAndPut(ctx, kv.CompareAndPutRequest{Key: req.GetKey(), Expect: req.GetExpect(), Value: req.GetValue()})
	if err != nil {
		return nil, err
	}
	out := &metapb.CompareAndPutResponse{Header: okHeader(), Success: resp.Success}
	if !resp.Success {
		out.PrevKv = kvToPB(resp.PrevKv)
	}
	return out, nil
}

func (s *storeService) DeleteRange(ctx context.Context, req *metapb.DeleteRangeRequest) (*metapb.DeleteRangeResponse, error) {
	b, leader, fctx, err := s.writer(ctx)
	if err != nil {
		return nil, err
	}
	if leader != nil {
		return leader.DeleteRange(fctx, req)
	}
	resp, err := b.DeleteRange(ctx, kv.DeleteRangeRequest{Key: req.GetKey(), RangeEnd: req.GetRangeEnd(), PrevKv: req.GetPrevKv()})
	if err != nil {
		return nil, err
	}
	return &metapb.DeleteRangeResponse{Header: okHeader(), Deleted: resp.Deleted, PrevKvs: kvsToPB(resp.PrevKvs)}, nil
}
