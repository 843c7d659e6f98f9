package node

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/pgmetasrv/metasrv/internal/greptimeddl"
	"github.com/pgmetasrv/metasrv/internal/greptimefake"
	"github.com/pgmetasrv/metasrv/internal/pgtest"
	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	regionpb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/region"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/instruction"
	"github.com/pgmetasrv/metasrv/pkg/regionclient"
	"github.com/pgmetasrv/metasrv/pkg/statuscode"
)

// ddlCluster is two metasrv nodes on PostgreSQL, two fake datanodes serving
// regions and a fake frontend, all heartbeating to the leader.
type ddlCluster struct {
	leader, follower *Node
	datanodes        []*greptimefake.Node
	frontend         *greptimefake.Node
	procs            metapb.ProcedureServiceClient // the leader's
}

func startDDLCluster(t *testing.T) *ddlCluster {
	t.Helper()
	o := pgOptions(pgtest.NewDatabase(t))
	o.HeartbeatInterval = 200 * time.Millisecond // leases after a few beats, not seconds
	ctx := timeout(t)
	a, b := newNode(t, o), newNode(t, o)
	for _, n := range []*Node{a, b} {
		require.NoError(t, n.Start(ctx))
	}
	c := &ddlCluster{}
	c.leader, c.follower = firstLeader(t, a, b)
	endpoints := []string{a.Advertised(), b.Advertised()}
	for id := uint64(1); id <= 2; id++ {
		dn, err := greptimefake.New(greptimefake.Config{Endpoints: endpoints, Role: metapb.Role_DATANODE, ID: id, RegionServer: true, Compressor: "zstd"})
		require.NoError(t, err)
		require.NoError(t, dn.Start(ctx))
		t.Cleanup(dn.Stop)
		c.datanodes = append(c.datanodes, dn)
	}
	fe, err := greptimefake.New(greptimefake.Config{Endpoints: endpoints, Role: metapb.Role_FRONTEND, Addr: "127.0.0.1:4000", Compressor: "zstd"})
	require.NoError(t, err)
	require.NoError(t, fe.Start(ctx))
	t.Cleanup(fe.Stop)
	c.frontend = fe
	// A datanode's first lease answers a heartbeat that left its node info:
	// from then on the selector sees it alive.
	for _, dn := range c.datanodes {
		waitLease(t, dn, func(*metapb.RegionLease) bool { return true })
	}
	c.procs = metapb.NewProcedureServiceClient(dialGreptime(t, c.leader))
	return c
}

// waitLease waits for a lease of dn that ok accepts.
func waitLease(t *testing.T, dn *greptimefake.Node, ok func(*metapb.RegionLease) bool) *metapb.RegionLease {
	t.Helper()
	ctx := timeout(t)
	for {
		select {
		case l := <-dn.Leases():
			if ok(l) {
				return l
			}
		case <-ctx.Done():
			t.Fatalf("no such lease on %s; last: %v", dn.PeerAddr(), dn.LastLease())
		}
	}
}

// waitRegionEvent waits for dn's next region event of kind on region.
func waitRegionEvent(t *testing.T, dn *greptimefake.Node, kind greptimefake.RegionEventKind, region uint64) {
	t.Helper()
	ctx := timeout(t)
	for {
		select {
		case ev := <-dn.RegionEvents():
			if ev.Kind == kind && ev.RegionID == region && ev.Err == nil {
				return
			}
		case <-ctx.Done():
			t.Fatalf("datanode %s got no %s of region %d", dn.PeerAddr(), kind, region)
		}
	}
}

func grants(l *metapb.RegionLease, region uint64, role metapb.RegionRole) bool {
	for _, g := range l.GetRegions() {
		if g.GetRegionId() == region && g.GetRole() == role {
			return true
		}
	}
	return false
}

func (c *ddlCluster) ddl(t *testing.T, req *metapb.DdlTaskRequest) *metapb.DdlTaskResponse {
	t.Helper()
	resp, err := c.procs.Ddl(timeout(t), req)
	require.NoError(t, err)
	require.Nil(t, resp.GetHeader().GetError())
	return resp
}

func (c *ddlCluster) value(t *testing.T, key []byte) string {
	t.Helper()
	r, err := metapb.NewStoreClient(dialGreptime(t, c.leader)).Range(timeout(t), &metapb.RangeRequest{Key: key})
	require.NoError(t, err)
	if len(r.GetKvs()) == 0 {
		return ""
	}
	return string(r.GetKvs()[0].GetValue())
}

// A frontend creates a database and a two-region table through
// ProcedureService.ddl: each datanode gets its region's CreateRequest, the
// keys hold GreptimeDB's JSON, the datanodes' next heartbeats get a leader
// lease on their region and a region no route gives them is closeable;
// truncate, alter and rename reach the regions and the keys; the drop
// reverses all of it and tells the frontend to forget the table.
func TestGreptimeDDLEndToEnd(t *testing.T) {
	t.Parallel()
	c := startDDLCluster(t)
	ctx := timeout(t)

	resp, err := metapb.NewProcedureServiceClient(dialGreptime(t, c.follower)).Ddl(ctx, greptimeddl.CreateDatabase("greptime", "metrics", false, nil))
	require.NoError(t, err)
	require.EqualValues(t, 2, resp.GetHeader().GetError().GetCode(), "a follower says NotLeader")

	c.ddl(t, greptimeddl.CreateDatabase("greptime", "metrics", false, nil))
	require.JSONEq(t, `{"ttl":null,"extra_options":{}}`, c.value(t, greptimekey.SchemaNameKey("greptime", "metrics")))
	created := c.ddl(t, greptimeddl.CreateTable(greptimeddl.Table{Catalog: "greptime", Schema: "metrics", Name: "cpu", Partitions: 2}))
	require.Len(t, created.GetTableIds(), 1)
	id := created.GetTableIds()[0].GetId()
	require.EqualValues(t, 1024, id)

	regions := []uint64{greptimekey.RegionID(id, 0), greptimekey.RegionID(id, 1)}
	leaders := map[uint64]*greptimefake.Node{}
	route, err := greptimekey.Decode[greptimekey.TableRouteValue]([]byte(c.value(t, greptimekey.TableRouteKey(id))))
	require.NoError(t, err)
	for i, rr := range route.Physical.RegionRoutes {
		require.Equal(t, regions[i], rr.Region.ID)
		dn := c.datanodes[rr.LeaderPeer.ID-1]
		require.Equal(t, dn.PeerAddr(), rr.LeaderPeer.Addr)
		leaders[rr.Region.ID] = dn
		waitRegionEvent(t, dn, greptimefake.RegionCreate, rr.Region.ID)
	}
	require.JSONEq(t, fmt.Sprintf(`{"table_id":%d}`, id), c.value(t, greptimekey.TableNameKey("greptime", "metrics", "cpu")))
	info, err := greptimekey.Decode[greptimekey.TableInfoValue]([]byte(c.value(t, greptimekey.TableInfoKey(id))))
	require.NoError(t, err)
	require.Equal(t, id, info.TableInfo.Ident.TableID)
	require.NotEmpty(t, c.value(t, greptimekey.DatanodeTableKey(route.Physical.RegionRoutes[0].LeaderPeer.ID, id)))

	for r, dn := range leaders {
		waitLease(t, dn, func(l *metapb.RegionLease) bool { return grants(l, r, metapb.RegionRole_Leader) })
	}
	c.strayRegionIsClosed(t)

	// TRUNCATE reaches every region; ALTER adds a column on every region
	// and in the table info; RENAME moves the name key.
	c.ddl(t, greptimeddl.TruncateTable("greptime", "metrics", "cpu", id))
	for r, dn := range leaders {
		waitRegionEvent(t, dn, greptimefake.RegionTruncate, r)
	}
	c.ddl(t, greptimeddl.AddFieldColumn("greptime", "metrics", "cpu", "idle"))
	for r, dn := range leaders {
		waitRegionEvent(t, dn, greptimefake.RegionAlter, r)
	}
	info, err = greptimekey.Decode[greptimekey.TableInfoValue]([]byte(c.value(t, greptimekey.TableInfoKey(id))))
	require.NoError(t, err)
	require.Equal(t, []string{"host", "ts", "usage", "idle"}, info.TableInfo.Meta.ColumnNames())
	require.EqualValues(t, 1, info.Version)
	c.ddl(t, greptimeddl.RenameTable("greptime", "metrics", "cpu", "cpu_v2"))
	require.Empty(t, c.value(t, greptimekey.TableNameKey("greptime", "metrics", "cpu")))
	require.JSONEq(t, fmt.Sprintf(`{"table_id":%d}`, id), c.value(t, greptimekey.TableNameKey("greptime", "metrics", "cpu_v2")))

	pid := c.ddl(t, greptimeddl.DropTable("greptime", "metrics", "cpu_v2", id, false)).GetPid()
	for r, dn := range leaders {
		waitRegionEvent(t, dn, greptimefake.RegionDrop, r)
	}
	c.frontendForgets(t, id)
	for _, k := range [][]byte{greptimekey.TableNameKey("greptime", "metrics", "cpu_v2"), greptimekey.TableInfoKey(id), greptimekey.TableRouteKey(id)} {
		require.Empty(t, c.value(t, k), "%s", k)
	}
	state, err := c.procs.Query(ctx, &metapb.QueryProcedureRequest{Header: header(metapb.Role_FRONTEND, 0), Pid: pid})
	require.NoError(t, err)
	require.Equal(t, metapb.ProcedureStatus_Done, state.GetStatus())
}

// strayRegionIsClosed creates a region no route knows on datanode 1: its
// next lease lists it as closeable, and the datanode closes it.
func (c *ddlCluster) strayRegionIsClosed(t *testing.T) {
	t.Helper()
	dn := c.datanodes[0]
	stray := greptimekey.RegionID(9999, 0)
	rc := regionclient.New(nil)
	defer rc.Close()
	_, err := rc.Handle(timeout(t), dn.PeerAddr(), &regionpb.RegionRequest{Body: &regionpb.RegionRequest_Create{Create: &regionpb.CreateRequest{RegionId: stray, Engine: "mito"}}})
	require.NoError(t, err)
	waitLease(t, dn, func(l *metapb.RegionLease) bool {
		for _, r := range l.GetCloseableRegionIds() {
			if r == stray {
				return true
			}
		}
		return false
	})
	// The fake queues a lease once it has applied it.
	require.NotContains(t, dn.Regions(), stray, "the datanode closed it")
}

// frontendForgets waits for the broadcast that drops the table's cache
// entries on the frontend.
func (c *ddlCluster) frontendForgets(t *testing.T, id uint32) {
	t.Helper()
	ctx := timeout(t)
	for {
		select {
		case inv := <-c.frontend.Invalidations():
			for _, ci := range inv.Caches {
				if ci == instruction.CacheIdent(instruction.TableID(id)) {
					return
				}
			}
		case <-ctx.Done():
			t.Fatal("the frontend got no InvalidateCaches for the table")
		}
	}
}

// A refused DDL reaches the frontend as GreptimeDB answers it: the gRPC
// code GreptimeDB pairs with the status code, and the status code itself in
// the x-greptime-err-code metadata.
func TestGreptimeDDLRefusals(t *testing.T) {
	t.Parallel()
	c := startDDLCluster(t)
	tbl := greptimeddl.Table{Catalog: "greptime", Schema: "public", Name: "t", Partitions: 1}
	c.ddl(t, greptimeddl.CreateTable(tbl))
	for _, tc := range []struct {
		req  *metapb.DdlTaskRequest
		code codes.Code
		gt   statuscode.Code
	}{
		{greptimeddl.CreateTable(tbl), codes.AlreadyExists, statuscode.TableAlreadyExists},
		{greptimeddl.DropTable("greptime", "public", "nope", 4242, false), codes.NotFound, statuscode.TableNotFound},
		{greptimeddl.CreateDatabase("greptime", "public", false, nil), codes.AlreadyExists, statuscode.DatabaseAlreadyExists},
	} {
		var trailer metadata.MD
		_, err := c.procs.Ddl(timeout(t), tc.req, grpc.Trailer(&trailer))
		require.Equal(t, tc.code, status.Code(err), "%v", err)
		got, ok := statuscode.FromMetadata(trailer)
		require.True(t, ok, "x-greptime-err-code in %v", trailer)
		require.Equal(t, tc.gt, got)
	}
	_, err := c.procs.Ddl(timeout(t), &metapb.DdlTaskRequest{Header: header(metapb.Role_FRONTEND, 0)})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	require.Contains(t, status.Convert(err).Message(), `Missing required parameter, param: "query_context"`)
}
