package greptimefake

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	greptimepb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1"
	regionpb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/region"
	_ "github.com/pgmetasrv/metasrv/pkg/grpczstd" // GreptimeDB's clients may send zstd
	"github.com/pgmetasrv/metasrv/pkg/statuscode"
)

// RegionEventKind is the kind of region request a RegionEvent records.
type RegionEventKind string

// The region request kinds; a batch (creates, drops) records one event per
// region, of the kind of its parts.
const (
	RegionCreate   RegionEventKind = "create"
	RegionDrop     RegionEventKind = "drop"
	RegionOpen     RegionEventKind = "open"
	RegionClose    RegionEventKind = "close"
	RegionAlter    RegionEventKind = "alter"
	RegionTruncate RegionEventKind = "truncate"
)

// RegionEvent is one region a greptime.v1.region.Region/Handle call named,
// recorded once the call was answered.
type RegionEvent struct {
	Kind     RegionEventKind
	RegionID uint64
	// Request is the whole request (a batch names several regions).
	Request *regionpb.RegionRequest
	// Err is the call's error (OnRegionRequest's, or the region server's);
	// nil when it succeeded.
	Err error
}

// regionServer serves greptime.v1.region.Region for one datanode.
type regionServer struct {
	regionpb.UnimplementedRegionServer
	n    *Node
	lis  net.Listener
	srv  *grpc.Server
	done chan struct{}
}

// listenRegions binds the region server at addr.
func (n *Node) listenRegions(addr string) (*regionServer, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("greptimefake: region server: listen on %q: %w", addr, err)
	}
	rs := &regionServer{n: n, lis: lis, done: make(chan struct{})}
	// WaitForHandlers: Stop returns only once every Handle has, so no
	// OnRegionRequest call outlives the node.
	rs.srv = grpc.NewServer(grpc.MaxRecvMsgSize(maxMessageSize), grpc.MaxSendMsgSize(maxMessageSize), grpc.WaitForHandlers(true))
	regionpb.RegisterRegionServer(rs.srv, rs)
	return rs, nil
}

func (rs *regionServer) serve(log *slog.Logger) {
	defer close(rs.done)
	if err := rs.srv.Serve(rs.lis); err != nil {
		log.Error("region server stopped", "err", err)
	}
}

// stop cancels the calls in flight and waits for them and the server.
func (rs *regionServer) stop() {
	rs.srv.Stop()
	<-rs.done
}

// Handle answers one region request the way a v1.1.4 datanode's region
// server does, after OnRegionRequest lets it through.
func (rs *regionServer) Handle(ctx context.Context, req *regionpb.RegionRequest) (*regionpb.RegionResponse, error) {
	n := rs.n
	kind, ids := regionsOf(req)
	var err error
	if kind == "" {
		err = statuscode.Errorf(statuscode.Unsupported, "region request %T is not supported", req.GetBody())
	} else if hook := n.cfg.OnRegionRequest; hook != nil {
		err = hook(ctx, req)
	}
	if err == nil {
		err = rs.execute(req)
	}
	for _, id := range ids {
		offer(n.regionEvents, RegionEvent{Kind: kind, RegionID: id, Request: req, Err: err})
	}
	if err != nil {
		n.log.Debug("region request failed", "kind", string(kind), "regions", ids, "err", err)
		return nil, answerError(ctx, err)
	}
	return &regionpb.RegionResponse{Header: &greptimepb.ResponseHeader{Status: &greptimepb.Status{}}}, nil
}

// regionsOf is a request's kind and the regions it names.
func regionsOf(req *regionpb.RegionRequest) (RegionEventKind, []uint64) {
	switch b := req.GetBody().(type) {
	case *regionpb.RegionRequest_Create:
		return RegionCreate, []uint64{b.Create.GetRegionId()}
	case *regionpb.RegionRequest_Creates:
		ids := make([]uint64, 0, len(b.Creates.GetRequests()))
		for _, c := range b.Creates.GetRequests() {
			ids = append(ids, c.GetRegionId())
		}
		return RegionCreate, ids
	case *regionpb.RegionRequest_Drop:
		return RegionDrop, []uint64{b.Drop.GetRegionId()}
	case *regionpb.RegionRequest_Drops:
		ids := make([]uint64, 0, len(b.Drops.GetRequests()))
		for _, d := range b.Drops.GetRequests() {
			ids = append(ids, d.GetRegionId())
		}
		return RegionDrop, ids
	case *regionpb.RegionRequest_Open:
		return RegionOpen, []uint64{b.Open.GetRegionId()}
	case *regionpb.RegionRequest_Close:
		return RegionClose, []uint64{b.Close.GetRegionId()}
	case *regionpb.RegionRequest_Alter:
		return RegionAlter, []uint64{b.Alter.GetRegionId()}
	case *regionpb.RegionRequest_Truncate:
		return RegionTruncate, []uint64{b.Truncate.GetRegionId()}
	}
	return "", nil
}

// execute applies a request to the node's regions.
func (rs *regionServer) execute(req *regionpb.RegionRequest) error {
	r := rs.n.regions
	switch b := req.GetBody().(type) {
	case *regionpb.RegionRequest_Create:
		r.create(b.Create.GetRegionId(), b.Create.GetEngine())
	case *regionpb.RegionRequest_Creates:
		if len(b.Creates.GetRequests()) == 0 {
			return statuscode.Errorf(statuscode.InvalidArguments, "empty batch of create requests")
		}
		for _, c := range b.Creates.GetRequests() {
			r.create(c.GetRegionId(), c.GetEngine())
		}
	case *regionpb.RegionRequest_Drop:
		return r.drop(b.Drop.GetRegionId())
	case *regionpb.RegionRequest_Drops:
		ids := make([]uint64, 0, len(b.Drops.GetRequests()))
		for _, d := range b.Drops.GetRequests() {
			ids = append(ids, d.GetRegionId())
		}
		return r.dropBatch(ids)
	case *regionpb.RegionRequest_Open:
		r.open(b.Open.GetRegionId(), b.Open.GetEngine())
	case *regionpb.RegionRequest_Close:
		r.close(b.Close.GetRegionId())
	case *regionpb.RegionRequest_Alter:
		return r.checkAlterable(b.Alter.GetRegionId())
	case *regionpb.RegionRequest_Truncate:
		return r.checkAlterable(b.Truncate.GetRegionId())
	}
	return nil
}

// answerError is the gRPC answer to err: a *statuscode.Error becomes its
// gRPC code with the status code in the x-greptime-err-code trailer, as
// GreptimeDB's servers answer; a status error passes as it is, a context
// error becomes CANCELLED or DEADLINE_EXCEEDED; anything else is INTERNAL.
func answerError(ctx context.Context, err error) error {
	var se *statuscode.Error
	if errors.As(err, &se) {
		if terr := grpc.SetTrailer(ctx, statuscode.Metadata(se.Status)); terr != nil {
			return status.Error(codes.Internal, terr.Error())
		}
		return status.Error(se.Status.GRPC(), se.Msg)
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return status.FromContextError(err).Err()
	}
	return status.Error(codes.Internal, err.Error())
}
