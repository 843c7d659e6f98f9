package greptimefake_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/pgmetasrv/metasrv/internal/greptimefake"
	greptimepb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1"
	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	regionpb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/region"
	"github.com/pgmetasrv/metasrv/pkg/config"
	"github.com/pgmetasrv/metasrv/pkg/instruction"
	"github.com/pgmetasrv/metasrv/pkg/metasrv"
	"github.com/pgmetasrv/metasrv/pkg/node"
)

// memoryNode starts a real memory_store metasrv node telling nodes to beat
// every interval, and waits until it leads.
func memoryNode(t *testing.T, interval time.Duration) *node.Node {
	t.Helper()
	o := config.Default()
	o.GRPC.BindAddr, o.HTTP.Addr = "127.0.0.1:0", "127.0.0.1:0"
	o.HeartbeatInterval = interval
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	n, err := node.New(ctx, node.Config{Options: o, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, n.Stop(context.Background())) })
	require.NoError(t, n.Start(ctx))
	require.NoError(t, n.WaitState(ctx, metasrv.LeaderReady))
	return n
}

// A region no table route knows is closeable: metasrv's lease says so and
// the region server closes it.
func TestMetasrvClosesUnknownRegion(t *testing.T) {
	t.Parallel()
	meta := memoryNode(t, 100*time.Millisecond)
	n := startNode(t, greptimefake.Config{Endpoints: []string{meta.GRPCAddr().String()}, Role: greptimefake.Datanode, ID: 1, Addr: "127.0.0.1:0", RegionServer: true})
	recv(t, n.Handshakes(), "handshake")
	cc, err := grpc.NewClient(n.PeerAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	_, err = call(t, regionpb.NewRegionClient(cc), createReq(r1))
	require.NoError(t, err)

	for {
		lease := recv(t, n.Leases(), "lease naming the region closeable")
		require.Positive(t, lease.GetLeaseSeconds())
		if slices.Contains(lease.GetCloseableRegionIds(), r1) {
			break
		}
	}
	require.NotContains(t, n.Regions(), r1)
}

// Dropping a database broadcasts InvalidateCaches to every node, each of
// which records it.
func TestMetasrvBroadcastsInvalidation(t *testing.T) {
	t.Parallel()
	meta := memoryNode(t, 100*time.Millisecond)
	endpoints := []string{meta.GRPCAddr().String()}
	nodes := []*greptimefake.Node{
		startNode(t, greptimefake.Config{Endpoints: endpoints, Role: greptimefake.Frontend, Addr: "127.0.0.1:4000"}),
		startNode(t, greptimefake.Config{Endpoints: endpoints, Role: greptimefake.Datanode, ID: 1, Addr: "127.0.0.1:0", RegionServer: true}),
		startNode(t, greptimefake.Config{Endpoints: endpoints, Role: greptimefake.Flownode, ID: 1024, Addr: "127.0.0.1:6800"}),
	}
	for _, n := range nodes {
		recv(t, n.Handshakes(), "handshake")
	}

	cc, err := grpc.NewClient(meta.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	ddl := func(req *metapb.DdlTaskRequest) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
		defer cancel()
		req.Header = &metapb.RequestHeader{ProtocolVersion: 1, Role: metapb.Role_FRONTEND}
		req.QueryContext = &greptimepb.QueryContext{CurrentCatalog: "greptime", CurrentSchema: "public"}
		resp, err := metapb.NewProcedureServiceClient(cc).Ddl(ctx, req)
		require.NoError(t, err)
		require.Nil(t, resp.GetHeader().GetError())
	}
	ddl(&metapb.DdlTaskRequest{Task: &metapb.DdlTaskRequest_CreateDatabaseTask{CreateDatabaseTask: &metapb.CreateDatabaseTask{
		CreateDatabase: &greptimepb.CreateDatabaseExpr{CatalogName: "greptime", SchemaName: "fake_db"},
	}}})
	ddl(&metapb.DdlTaskRequest{Task: &metapb.DdlTaskRequest_DropDatabaseTask{DropDatabaseTask: &metapb.DropDatabaseTask{
		DropDatabase: &greptimepb.DropDatabaseExpr{CatalogName: "greptime", SchemaName: "fake_db"},
	}}})

	want := []instruction.CacheIdent{instruction.SchemaName{CatalogName: "greptime", SchemaName: "fake_db"}}
	for _, n := range nodes {
		inv := recv(t, n.Invalidations(), "invalidation")
		require.Equal(t, want, inv.Caches)
		require.Zero(t, inv.Message.GetId(), "a broadcast is one-way")
		require.Contains(t, inv.Message.GetFrom(), "Metasrv@")
	}
}
