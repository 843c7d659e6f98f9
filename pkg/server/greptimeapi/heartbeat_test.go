package greptimeapi

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/election"
	"github.com/pgmetasrv/metasrv/pkg/heartbeat"
	"github.com/pgmetasrv/metasrv/pkg/instruction"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/memkv"
	"github.com/pgmetasrv/metasrv/pkg/metasrv"
)

type streamCore struct{ Core }

func (streamCore) HeaderInfo() metasrv.HeaderInfo {
	return metasrv.HeaderInfo{NodeAddr: "self:3002", Term: 1}
}

// streamFixture is a Heartbeat service over an in-memory gRPC connection,
// leading term 1.
type streamFixture struct {
	hb     *heartbeat.Service
	client metapb.HeartbeatClient
}

func newStreamFixture(t *testing.T) *streamFixture {
	t.Helper()
	var leading atomic.Int64
	memory := memkv.New()
	hb, err := heartbeat.New(heartbeat.Options{
		Leading:    leading.Load,
		Memory:     func() kv.Backend { return memory },
		ServerAddr: func() string { return "self:3002" },
	})
	require.NoError(t, err)
	leading.Store(1)
	require.NoError(t, hb.Start(context.Background(), metasrv.Term{ID: 1, Store: memkv.New(), Memory: memory}))
	t.Cleanup(hb.Stop)

	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	metapb.RegisterHeartbeatServer(srv, &heartbeatService{core: streamCore{}, sessions: hb})
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() { srv.Stop(); <-served })
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return &streamFixture{hb: hb, client: metapb.NewHeartbeatClient(conn)}
}

func TestPushedMessageReachesTheStream(t *testing.T) {
	t.Parallel()
	f := newStreamFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := f.client.Heartbeat(ctx)
	require.NoError(t, err)
	header := &metapb.RequestHeader{ProtocolVersion: 1, MemberId: 7, Role: metapb.Role_DATANODE}
	peer := &metapb.Peer{Id: 7, Addr: "10.0.0.7:4001"}
	require.NoError(t, stream.Send(&metapb.HeartbeatRequest{Header: header, Peer: peer}))
	hs, err := stream.Recv()
	require.NoError(t, err)
	require.NotNil(t, hs.GetHeartbeatConfig(), "the handshake is answered first: the session is registered")

	to := heartbeat.PusherID{Role: metapb.Role_DATANODE, ID: 7}
	instr := instruction.CloseRegions{{DatanodeID: 7, TableID: 1024, RegionNumber: 1, Engine: "mito2"}}
	type result struct {
		reply *metapb.MailboxMessage
		err   error
	}
	done := make(chan result, 1)
	go func() {
		reply, err := f.hb.Send(ctx, 1, to, "Close downgraded regions", instr, time.Minute)
		done <- result{reply, err}
	}()

	pushed, err := stream.Recv()
	require.NoError(t, err)
	require.Equal(t, uint32(1), uint32(pushed.GetHeader().GetProtocolVersion()))
	require.Nil(t, pushed.GetHeader().GetError())
	msg := pushed.GetMailboxMessage()
	require.Equal(t, "Datanode-7@10.0.0.7:4001", msg.GetTo())
	got, err := instruction.FromMessage(msg)
	require.NoError(t, err)
	require.Equal(t, instruction.Instruction(instr), got)

	reply, err := instruction.ReplyMessage(msg, instruction.CloseRegionsReply{Result: true}, time.Now().UnixMilli())
	require.NoError(t, err)
	require.NoError(t, stream.Send(&metapb.HeartbeatRequest{Header: header, Peer: peer, MailboxMessage: reply}))
	answer, err := stream.Recv()
	require.NoError(t, err)
	require.Nil(t, answer.GetMailboxMessage())
	require.Nil(t, answer.GetRegionLease())

	res := <-done
	require.NoError(t, res.err)
	r, err := instruction.ReplyFromMessage(res.reply)
	require.NoError(t, err)
	require.Equal(t, instruction.CloseRegionsReply{Result: true}, r)

	// A one-way message while the node is between heartbeats.
	require.NoError(t, f.hb.SendOneway(ctx, 1, to, "Flush regions", instruction.FlushRegions{RegionIDs: []instruction.RegionID{1}, Strategy: instruction.FlushAsync}))
	pushed, err = stream.Recv()
	require.NoError(t, err)
	require.Zero(t, pushed.GetMailboxMessage().GetId())

	// The step-down fails the waiter and aborts the stream.
	go func() {
		reply, err := f.hb.Send(ctx, 1, to, "Close downgraded regions", instr, time.Hour)
		done <- result{reply, err}
	}()
	_, err = stream.Recv()
	require.NoError(t, err)
	f.hb.Stop()
	require.ErrorIs(t, (<-done).err, election.ErrNotLeader)
	_, err = stream.Recv()
	require.Equal(t, codes.Aborted, status.Code(err))
}
