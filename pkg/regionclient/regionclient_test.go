package regionclient

import (
	"context"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	greptimepb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1"
	regionpb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/region"
	"github.com/pgmetasrv/metasrv/pkg/statuscode"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// regionServer answers by region id: 1 succeeds, 2 is RegionNotFound in the
// metadata as GreptimeDB's datanode sends it, 3 fails in the response header.
type regionServer struct {
	regionpb.UnimplementedRegionServer
	got chan *regionpb.RegionRequest
}

func (s *regionServer) Handle(ctx context.Context, req *regionpb.RegionRequest) (*regionpb.RegionResponse, error) {
	s.got <- req
	switch req.GetDrop().GetRegionId() {
	case 2:
		_ = grpc.SetTrailer(ctx, statuscode.Metadata(statuscode.RegionNotFound))
		return nil, status.Error(codes.NotFound, "Region 2 not found")
	case 3:
		return &regionpb.RegionResponse{Header: &greptimepb.ResponseHeader{Status: &greptimepb.Status{StatusCode: uint32(statuscode.RegionBusy), ErrMsg: "busy"}}}, nil
	}
	return &regionpb.RegionResponse{AffectedRows: 7}, nil
}

func serve(t *testing.T) (string, *regionServer) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	rs := &regionServer{got: make(chan *regionpb.RegionRequest, 8)}
	regionpb.RegisterRegionServer(srv, rs)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String(), rs
}

func drop(id uint64) *regionpb.RegionRequest {
	return &regionpb.RegionRequest{Body: &regionpb.RegionRequest_Drop{Drop: &regionpb.DropRequest{RegionId: id}}}
}

func TestHandle(t *testing.T) {
	t.Parallel()
	addr, rs := serve(t)
	c := New(nil)
	defer c.Close()

	resp, err := c.Handle(t.Context(), addr, drop(1))
	require.NoError(t, err)
	require.EqualValues(t, 7, resp.GetAffectedRows())
	require.EqualValues(t, 1, (<-rs.got).GetDrop().GetRegionId())

	_, err = c.Handle(t.Context(), addr, drop(2))
	code, ok := statuscode.Of(err)
	require.True(t, ok)
	require.Equal(t, statuscode.RegionNotFound, code, "the code comes from the metadata, not the gRPC code")
	require.Contains(t, err.Error(), "Region 2 not found")
	require.False(t, Transient(err))

	_, err = c.Handle(t.Context(), addr, drop(3))
	code, _ = statuscode.Of(err)
	require.Equal(t, statuscode.RegionBusy, code)
	require.True(t, Transient(err), "a busy region is worth a retry")
}

func TestUnreachableIsTransientAndCloseRefuses(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close())
	c := New(nil)
	_, err = c.Handle(t.Context(), addr, drop(1))
	require.Error(t, err)
	require.True(t, Transient(err), "%v", err)
	c.Close()
	c.Close()
	_, err = c.Handle(t.Context(), addr, drop(1))
	require.ErrorIs(t, err, ErrClosed)
}
