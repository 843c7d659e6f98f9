package ddlload

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pgmetasrv/metasrv/internal/greptimeddl"
	"github.com/pgmetasrv/metasrv/internal/greptimefake"
	greptimepb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1"
	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
)

// fakeMeta is a metasrv's Heartbeat (AskLeader only) and ProcedureService:
// ask-leader answers come from leaders in turn (the last repeated), and a
// DDL call is answered NotLeader unless this is the leader.
type fakeMeta struct {
	metapb.UnimplementedHeartbeatServer
	metapb.UnimplementedProcedureServiceServer
	addr    string
	leads   bool
	leaders []string
	asked   atomic.Int32
	calls   atomic.Int32
	fail    error // the leader's answer, when set
}

func (f *fakeMeta) AskLeader(context.Context, *metapb.AskLeaderRequest) (*metapb.AskLeaderResponse, error) {
	i := min(int(f.asked.Add(1))-1, len(f.leaders)-1)
	return &metapb.AskLeaderResponse{Header: &metapb.ResponseHeader{}, Leader: &metapb.Peer{Addr: f.leaders[i]}}, nil
}

func (f *fakeMeta) Ddl(context.Context, *metapb.DdlTaskRequest) (*metapb.DdlTaskResponse, error) {
	f.calls.Add(1)
	switch {
	case !f.leads:
		return &metapb.DdlTaskResponse{Header: &metapb.ResponseHeader{Error: &metapb.Error{Code: greptimefake.CodeNotLeader, ErrMsg: "not leader"}}}, nil
	case f.fail != nil:
		return nil, f.fail
	}
	return &metapb.DdlTaskResponse{TableIds: []*greptimepb.TableId{{Id: 1024}}}, nil
}

// serve starts f on a free port and returns its address.
func serve(t *testing.T, f *fakeMeta) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := grpc.NewServer()
	metapb.RegisterHeartbeatServer(s, f)
	metapb.RegisterProcedureServiceServer(s, f)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	f.addr = lis.Addr().String()
	return f.addr
}

func testClient(t *testing.T, endpoints ...string) *client {
	t.Helper()
	conns := greptimefake.NewConns()
	t.Cleanup(conns.Close)
	return newClient(Config{Endpoints: endpoints, Timeout: 10 * time.Second}, conns)
}

var createReq = greptimeddl.CreateTable(greptimeddl.Table{Catalog: "greptime", Schema: "s", Name: "t"})

// TestNotLeaderIsRetriedOnTheNewLeader: the first answer names a follower,
// whose NotLeader sends the client back to ask, and on to the leader.
func TestNotLeaderIsRetriedOnTheNewLeader(t *testing.T) {
	t.Parallel()
	leader := &fakeMeta{leads: true}
	serve(t, leader)
	follower := &fakeMeta{}
	serve(t, follower)
	follower.leaders = []string{follower.addr, leader.addr}
	leader.leaders = []string{leader.addr}
	c := testClient(t, follower.addr)
	resp, err := c.ddl(t.Context(), createReq)
	require.NoError(t, err)
	require.EqualValues(t, 1024, resp.GetTableIds()[0].GetId())
	require.Equal(t, uint64(1), c.notLeader.Load())
	require.Equal(t, uint64(1), c.retries.Load())
	require.Equal(t, int32(1), follower.calls.Load())
	require.Equal(t, int32(1), leader.calls.Load())
	require.Equal(t, leader.addr, *c.leader.Load())
}

func TestNotLeaderThreeTimesGivesUp(t *testing.T) {
	t.Parallel()
	f := &fakeMeta{}
	serve(t, f)
	f.leaders = []string{f.addr}
	c := testClient(t, f.addr)
	_, err := c.ddl(t.Context(), createReq)
	require.ErrorContains(t, err, "3 attempts: "+f.addr+" is not the leader")
	require.Equal(t, "retries_exhausted", labelOf(err))
	require.Equal(t, int32(maxAttempts), f.calls.Load())
	require.Equal(t, uint64(maxAttempts), c.notLeader.Load())
}

// TestOtherErrorsAreNotRetried: a refused task is answered once, labelled
// with its gRPC code.
func TestOtherErrorsAreNotRetried(t *testing.T) {
	t.Parallel()
	f := &fakeMeta{leads: true, fail: status.Error(codes.Internal, "boom")}
	serve(t, f)
	f.leaders = []string{f.addr}
	c := testClient(t, f.addr)
	_, err := c.ddl(t.Context(), createReq)
	require.ErrorContains(t, err, "boom")
	require.Equal(t, "Internal", labelOf(err))
	require.Equal(t, int32(1), f.calls.Load())
	require.Zero(t, c.retries.Load())
}

// TestUnavailableIsRetried: as GreptimeDB's client, an unreachable leader
// is asked for again and the call retried.
func TestUnavailableIsRetried(t *testing.T) {
	t.Parallel()
	f := &fakeMeta{leads: true, fail: status.Error(codes.Unavailable, "going away")}
	serve(t, f)
	f.leaders = []string{f.addr}
	c := testClient(t, f.addr)
	_, err := c.ddl(t.Context(), createReq)
	require.ErrorContains(t, err, "3 attempts: ddl on "+f.addr+": rpc error: code = Unavailable desc = going away")
	require.Equal(t, int32(maxAttempts), f.calls.Load())
	require.Equal(t, uint64(maxAttempts-1), c.retries.Load())
	require.Zero(t, c.notLeader.Load())
}
