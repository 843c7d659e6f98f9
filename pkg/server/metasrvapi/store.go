package metasrvapi

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/pgmetasrv/metasrv/pkg/api/kvpb"
	metasrvv1 "github.com/pgmetasrv/metasrv/pkg/api/metasrv/v1"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/server/apierr"
)

// The metasrv.v1.Store service: the key-value API of package kv, served by
// the leader for writes and linearizable reads, and by any node for
// serializable reads.

// Router is what the Store service needs from the metasrv core: which backend
// serves a call, and what to put in response headers.
//
// Both backends must already enforce the request limits (kv.WithLimits with
// max_txn_ops and max_metadata_value_size) and the key prefix
// (kv.WithPrefix): the service adds neither, so a limit is checked once, in
// the one place every caller goes through.
type Router interface {
	// LeaderBackend returns the backend for writes and linearizable reads
	// while this node leads (typically the leader cache over PostgreSQL, with
	// fenced writes). When this node is not the leader it returns an error
	// wrapping *election.NotLeaderError naming the leader if known; a
	// deposed-but-unaware leader's writes fail with election.ErrFenced.
	LeaderBackend(ctx context.Context) (kv.Backend, error)
	// SerializableBackend returns the backend for serializable reads: the
	// durable store read directly, usable on every node, leader or not.
	SerializableBackend() kv.Backend
	HeaderSource
}

// StoreService implements metasrvv1.StoreServer over a Router.
type StoreService struct {
	metasrvv1.UnimplementedStoreServer
	router Router
	// maxResponse is the server's max send message size; 0 means unknown,
	// and no response is sized.
	maxResponse int
}

var _ metasrvv1.StoreServer = (*StoreService)(nil)

// StoreOption configures a StoreService.
type StoreOption func(*StoreService)

// MaxResponseSize tells the service the gRPC server's max send message size
// (grpc.max_send_message_size), so that a write's response always fits:
//
//   - a write that returns previous values (prev_kv on Put, BatchPut,
//     BatchDelete and DeleteRange; CompareAndPut; Txn) first sizes them from
//     the leader's backend (the in-memory cache) and is refused with
//     INVALID_ARGUMENT, nothing applied, when they would not fit;
//   - a write that was applied but whose response is still too large (the
//     values grew between the sizing and the commit) fails with
//     apierr.ResponseTooLargeError, a lost outcome: gRPC would otherwise
//     refuse to send it with RESOURCE_EXHAUSTED, which reads as "not applied".
func MaxResponseSize(n int) StoreOption { return func(s *StoreService) { s.maxResponse = n } }

// NewStore returns the Store service. Its errors are plain Go errors, mapped
// by apierr's interceptors.
func NewStore(router Router, opts ...StoreOption) *StoreService {
	s := &StoreService{router: router}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Register adds the service to a gRPC server.
func (s *StoreService) Register(r grpc.ServiceRegistrar) {
	metasrvv1.RegisterStoreServer(r, s)
}

func (s *StoreService) header() *metasrvv1.ResponseHeader { return headerPB(s.router.HeaderInfo()) }

// reader picks the backend for a read.
func (s *StoreService) reader(ctx context.Context, serializable bool) (kv.Backend, error) {
	if serializable {
		return s.router.SerializableBackend(), nil
	}
	return s.router.LeaderBackend(ctx)
}

func (s *StoreService) Range(ctx context.Context, in *metasrvv1.RangeRequest) (*metasrvv1.RangeResponse, error) {
	req, serializable, err := kvpb.RangeRequestFromPB(in)
	if err != nil {
		return nil, err
	}
	b, err := s.reader(ctx, serializable)
	if err != nil {
		return nil, err
	}
	// The pairs only go into the response, which marshals them.
	req.Shared = true
	resp, err := b.Range(ctx, req)
	if err != nil {
		return nil, err
	}
	out := kvpb.RangeResponseToPB(resp)
	out.Header = s.header()
	if err := s.fits(out, resp.Kvs, "range", func() string {
		return fmt.Sprintf("ask with a limit (%d pairs were selected), and page on from the last key + \"\\x00\" while more is set", len(resp.Kvs))
	}); err != nil {
		return nil, err
	}
	return out, nil
}

// pairOverhead bounds what protobuf adds to a pair's key and value bytes in
// a response: the KeyValue's tag and length, and each field's tag and length
// (varints of at most 5 bytes for lengths under 4 GiB).
const pairOverhead = 3 * (1 + 5)

// headerBound bounds the encoded size of everything in a read's answer but
// its pairs: the response header and the more flag.
const headerBound = 1024

// fits refuses a read's answer that gRPC would refuse to send with a bare
// RESOURCE_EXHAUSTED, saying why and what to do instead (hint, made only
// then). The pairs' bytes bound the answer's size from above; it is
// measured exactly only when that bound is over the limit.
func (s *StoreService) fits(out proto.Message, kvs []kv.KeyValue, what string, hint func() string) error {
	if s.maxResponse <= 0 {
		return nil
	}
	bound := headerBound
	for _, p := range kvs {
		bound += len(p.Key) + len(p.Value) + pairOverhead
	}
	if bound <= s.maxResponse {
		return nil
	}
	if n := proto.Size(out); n > s.maxResponse {
		return &apierr.ReadTooLargeError{What: what, Size: n, Limit: s.maxResponse, Hint: hint()}
	}
	return nil
}

func (s *StoreService) BatchGet(ctx context.Context, in *metasrvv1.BatchGetRequest) (*metasrvv1.BatchGetResponse, error) {
	req, serializable, err := kvpb.BatchGetRequestFromPB(in)
	if err != nil {
		return nil, err
	}
	b, err := s.reader(ctx, serializable)
	if err != nil {
		return nil, err
	}
	req.Shared = true
	resp, err := b.BatchGet(ctx, req)
	if err != nil {
		return nil, err
	}
	out := kvpb.BatchGetResponseToPB(resp)
	out.Header = s.header()
	if err := s.fits(out, resp.Kvs, "batch get", func() string {
		return fmt.Sprintf("ask for fewer keys at once (%d were found)", len(resp.Kvs))
	}); err != nil {
		return nil, err
	}
	return out, nil
}

// write runs one leader-only call: decode, route to the leader backend,
// check that the response will fit (when it returns stored values), apply,
// encode, and check again. Every write handler is this with its own
// conversions.
func write[Req any, Resp any, PBResp proto.Message](ctx context.Context, s *StoreService, method string,
	decode func() (Req, error),
	size func(context.Context, kv.Backend, Req, int) error,
	apply func(kv.Backend, context.Context, Req) (Resp, error),
	encode func(Resp, *metasrvv1.ResponseHeader) PBResp,
) (PBResp, error) {
	var zero PBResp
	req, err := decode()
	if err != nil {
		return zero, err
	}
	b, err := s.router.LeaderBackend(ctx)
	if err != nil {
		return zero, err
	}
	// The header names the term the write was admitted in: taken after the
	// apply, a write acknowledged while the leader resigns would carry 0.
	hdr := s.header()
	if s.maxResponse > 0 && size != nil {
		if err := size(ctx, b, req, s.maxResponse-responseHeadroom); err != nil {
			return zero, err
		}
	}
	resp, err := apply(b, ctx, req)
	if err != nil {
		return zero, err
	}
	out := encode(resp, hdr)
	// From here on the write is applied: an error must not read as "not
	// applied", and gRPC's own refusal to send (RESOURCE_EXHAUSTED) would.
	if s.maxResponse > 0 {
		if n := proto.Size(out); n > s.maxResponse {
			return zero, &apierr.ResponseTooLargeError{Method: method, Size: n, Limit: s.maxResponse}
		}
	}
	return out, nil
}

func (s *StoreService) Put(ctx context.Context, in *metasrvv1.PutRequest) (*metasrvv1.PutResponse, error) {
	return write(ctx, s, metasrvv1.Store_Put_FullMethodName,
		func() (kv.PutRequest, error) { return kvpb.PutRequestFromPB(in) },
		func(ctx context.Context, b kv.Backend, r kv.PutRequest, budget int) error {
			if !r.PrevKv {
				return nil
			}
			return checkKeys(ctx, b, "put with prev_kv", [][]byte{r.Key}, budget, "put without prev_kv")
		},
		kv.Backend.Put,
		func(r kv.PutResponse, hdr *metasrvv1.ResponseHeader) *metasrvv1.PutResponse {
			out := kvpb.PutResponseToPB(r)
			out.Header = hdr
			return out
		})
}

func (s *StoreService) BatchPut(ctx context.Context, in *metasrvv1.BatchPutRequest) (*metasrvv1.BatchPutResponse, error) {
	return write(ctx, s, metasrvv1.Store_BatchPut_FullMethodName,
		func() (kv.BatchPutRequest, error) { return kvpb.BatchPutRequestFromPB(in) },
		func(ctx context.Context, b kv.Backend, r kv.BatchPutRequest, budget int) error {
			if !r.PrevKv {
				return nil
			}
			keys := make([][]byte, len(r.Kvs))
			for i, p := range r.Kvs {
				keys[i] = p.Key
			}
			return checkKeys(ctx, b, "batch put with prev_kv", keys, budget, "put without prev_kv, or fewer keys per batch")
		},
		kv.Backend.BatchPut,
		func(r kv.BatchPutResponse, hdr *metasrvv1.ResponseHeader) *metasrvv1.BatchPutResponse {
			out := kvpb.BatchPutResponseToPB(r)
			out.Header = hdr
			return out
		})
}

func (s *StoreService) BatchDelete(ctx context.Context, in *metasrvv1.BatchDeleteRequest) (*metasrvv1.BatchDeleteResponse, error) {
	return write(ctx, s, metasrvv1.Store_BatchDelete_FullMethodName,
		func() (kv.BatchDeleteRequest, error) { return kvpb.BatchDeleteRequestFromPB(in) },
		func(ctx context.Context, b kv.Backend, r kv.BatchDeleteRequest, budget int) error {
			if !r.PrevKv {
				return nil
			}
			return checkKeys(ctx, b, "batch delete with prev_kv", r.Keys, budget, "delete without prev_kv, or fewer keys per batch")
		},
		kv.Backend.BatchDelete,
		func(r kv.BatchDeleteResponse, hdr *metasrvv1.ResponseHeader) *metasrvv1.BatchDeleteResponse {
			out := kvpb.BatchDeleteResponseToPB(r)
			out.Header = hdr
			return out
		})
}

func (s *StoreService) DeleteRange(ctx context.Context, in *metasrvv1.DeleteRangeRequest) (*metasrvv1.DeleteRangeResponse, error) {
	return write(ctx, s, metasrvv1.Store_DeleteRange_FullMethodName,
		func() (kv.DeleteRangeRequest, error) { return kvpb.DeleteRangeRequestFromPB(in) },
		func(ctx context.Context, b kv.Backend, r kv.DeleteRangeRequest, budget int) error {
			if !r.PrevKv {
				return nil
			}
			return checkRange(ctx, b, r.Key, r.RangeEnd, budget)
		},
		kv.Backend.DeleteRange,
		func(r kv.DeleteRangeResponse, hdr *metasrvv1.ResponseHeader) *metasrvv1.DeleteRangeResponse {
			out := kvpb.DeleteRangeResponseToPB(r)
			out.Header = hdr
			return out
		})
}

func (s *StoreService) CompareAndPut(ctx context.Context, in *metasrvv1.CompareAndPutRequest) (*metasrvv1.CompareAndPutResponse, error) {
	return write(ctx, s, metasrvv1.Store_CompareAndPut_FullMethodName,
		func() (kv.CompareAndPutRequest, error) { return kvpb.CompareAndPutRequestFromPB(in) },
		func(ctx context.Context, b kv.Backend, r kv.CompareAndPutRequest, budget int) error {
			// The response always carries the pair as it was.
			return checkKeys(ctx, b, "compare-and-put", [][]byte{r.Key}, budget, "the pair stored under this key is too large to return; replace it with Put")
		},
		kv.Backend.CompareAndPut,
		func(r kv.CompareAndPutResponse, hdr *metasrvv1.ResponseHeader) *metasrvv1.CompareAndPutResponse {
			out := kvpb.CompareAndPutResponseToPB(r)
			out.Header = hdr
			return out
		})
}

// Txn always goes to the leader, even when every op is a GET: a Txn's
// compares must be evaluated against the latest state, atomically.
func (s *StoreService) Txn(ctx context.Context, in *metasrvv1.TxnRequest) (*metasrvv1.TxnResponse, error) {
	return write(ctx, s, metasrvv1.Store_Txn_FullMethodName,
		func() (kv.TxnRequest, error) { return kvpb.TxnRequestFromPB(in) },
		checkTxn,
		kv.Backend.Txn,
		func(r kv.TxnResponse, hdr *metasrvv1.ResponseHeader) *metasrvv1.TxnResponse {
			out := kvpb.TxnResponseToPB(r)
			out.Header = hdr
			return out
		})
}
