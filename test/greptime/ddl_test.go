package greptime

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pgmetasrv/metasrv/internal/greptimeddl"
	"github.com/pgmetasrv/metasrv/internal/greptimefake"
	"github.com/pgmetasrv/metasrv/internal/proccluster"
	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	regionpb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/region"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/grpczstd"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// trap holds back one region request: the first create (or, with drop,
// drop) of region number `number` of a table id from minTable up. The
// datanode reports the region it caught, then waits for the test to say
// whether it executes.
type trap struct {
	mu       sync.Mutex
	drop     bool
	minTable uint32
	number   uint32
	reached  chan uint64
	release  chan bool // true: execute it; false: answer UNAVAILABLE
}

func (tr *trap) arm(drop bool, minTable, number uint32) (reached <-chan uint64, release chan<- bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.drop, tr.minTable, tr.number, tr.reached, tr.release = drop, minTable, number, make(chan uint64, 1), make(chan bool, 1)
	return tr.reached, tr.release
}

func (tr *trap) hook(ctx context.Context, req *regionpb.RegionRequest) error {
	tr.mu.Lock()
	id, ok := req.GetCreate().GetRegionId(), req.GetCreate() != nil
	if tr.drop {
		id, ok = req.GetDrop().GetRegionId(), req.GetDrop() != nil
	}
	if !ok || tr.reached == nil || greptimekey.RegionTableID(id) < tr.minTable || greptimekey.RegionNumber(id) != tr.number {
		tr.mu.Unlock()
		return nil
	}
	reached, release := tr.reached, tr.release
	tr.reached = nil // one request only: the resumed procedure's passes
	tr.mu.Unlock()
	reached <- id
	select {
	case execute := <-release:
		if execute {
			return nil
		}
		return status.Error(codes.Unavailable, "datanode held back by the test")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ddlFrontend sends DDL as a frontend's meta-client does: to the leader it
// asks for, again on NotLeader or a broken call, until timeout.
type ddlFrontend struct {
	c *proccluster.Cluster
}

func (f ddlFrontend) leaderConn(ctx context.Context) (*grpc.ClientConn, error) {
	for _, n := range f.c.Nodes {
		conn, err := n.Conn()
		if err != nil {
			continue
		}
		al, err := metapb.NewHeartbeatClient(conn).AskLeader(ctx, &metapb.AskLeaderRequest{Header: &metapb.RequestHeader{ProtocolVersion: 1, Role: metapb.Role_FRONTEND}})
		if err != nil {
			continue
		}
		if ln := f.c.Node(al.GetLeader().GetAddr()); ln != nil {
			return ln.Conn()
		}
	}
	return nil, errors.New("no node names a leader")
}

func (f ddlFrontend) ddl(t *testing.T, req *metapb.DdlTaskRequest) *metapb.DdlTaskResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), failoverTimeout)
	defer cancel()
	for {
		conn, err := f.leaderConn(ctx)
		if err == nil {
			resp, cerr := metapb.NewProcedureServiceClient(conn).Ddl(ctx, req, grpc.UseCompressor(grpczstd.Name))
			if cerr == nil && resp.GetHeader().GetError() == nil {
				return resp
			}
			code := status.Code(cerr)
			require.True(t, cerr == nil || code == codes.Unavailable || code == codes.Unknown || code == codes.Canceled,
				"a DDL refused for good: %v", cerr)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the DDL did not succeed within %s", failoverTimeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// scan reads every key under prefix from any node (a follower reads
// PostgreSQL).
func scan(t *testing.T, c *proccluster.Cluster, prefix string) []*metapb.KeyValue {
	t.Helper()
	for _, n := range c.Nodes {
		conn, err := n.Conn()
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		resp, err := metapb.NewStoreClient(conn).Range(ctx, &metapb.RangeRequest{Key: []byte(prefix), RangeEnd: kv.PrefixEnd([]byte(prefix))})
		cancel()
		if err == nil {
			return resp.GetKvs()
		}
	}
	t.Fatal("no node answered a Range")
	return nil
}

// SIGKILL of the leader at three points of CREATE TABLE (its first region's
// CreateRequest held back and not executed; the second held back and then
// executed; that one executed while the leader dies) and at one of DROP
// TABLE: after failover the frontend's retried DDL answers, every region a
// datanode holds belongs to a table's route on that datanode, every routed
// region exists, no table id was handed out twice, and no tombstone is left.
func TestDDLSurvivesLeaderKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and three metasrv processes")
	}
	c := startCluster(t)
	tr := &trap{}
	var datanodes []*greptimefake.Node
	for id := uint64(1); id <= 2; id++ {
		dn, err := greptimefake.New(greptimefake.Config{Endpoints: c.Endpoints(), Role: metapb.Role_DATANODE, ID: id,
			RegionServer: true, Compressor: grpczstd.Name, OnRegionRequest: tr.hook})
		require.NoError(t, err)
		require.NoError(t, dn.Start(t.Context()))
		t.Cleanup(dn.Stop)
		datanodes = append(datanodes, dn)
	}
	for _, dn := range datanodes {
		waitFirstLease(t, dn)
	}
	fe := ddlFrontend{c: c}
	ids := map[uint32]string{}
	next := uint32(1024)
	for i, sc := range []struct {
		region  uint32
		execute bool
	}{{0, false}, {1, false}, {1, true}} {
		name := fmt.Sprintf("t%d", i)
		id := createThroughKill(t, c, fe, tr, name, next, sc.region, sc.execute)
		require.NotContains(t, ids, id, "table id %d handed out twice", id)
		ids[id] = name
		next = id + 1
	}
	requireNoOrphans(t, c, datanodes, ids)

	// DROP TABLE, the leader killed at a region's DropRequest (after the
	// metadata went to tombstones and the caches were invalidated): the
	// resumed drop finishes, and the frontend's retry finds nothing.
	first := slices.Min(slices.Collect(maps.Keys(ids)))
	dropThroughKill(t, c, fe, tr, ids[first], first)
	delete(ids, first)
	requireNoOrphans(t, c, datanodes, ids)
	require.Empty(t, scan(t, c, greptimekey.TombstonePrefix), "no tombstone is left")
}

// dropThroughKill drops table name (id), SIGKILLing the leader when its
// region 1's DropRequest reaches the datanode, and retries the drop with IF
// EXISTS on the new leader.
func dropThroughKill(t *testing.T, c *proccluster.Cluster, fe ddlFrontend, tr *trap, name string, id uint32) {
	t.Helper()
	reached, release := tr.arm(true, id, 1)
	leaderAddr := leaderOf(t, fe)
	first := make(chan error, 1)
	go func() {
		conn, err := c.Node(leaderAddr).Conn()
		if err == nil {
			_, err = metapb.NewProcedureServiceClient(conn).Ddl(t.Context(), greptimeddl.DropTable("greptime", "public", name, id, false))
		}
		first <- err
	}()
	select {
	case <-reached:
	case <-time.After(failoverTimeout):
		t.Fatalf("the drop of %s never reached a datanode", name)
	}
	require.NoError(t, c.Node(leaderAddr).Kill())
	release <- false
	t.Logf("%s: SIGKILLed the leader %s at region 1's DropRequest; first call: %v", name, leaderAddr, <-first)
	require.NoError(t, c.Node(leaderAddr).Start())
	fe.ddl(t, greptimeddl.DropTable("greptime", "public", name, id, true))
	require.NoError(t, c.Node(leaderAddr).WaitServing(t.Context(), startTimeout))
}

func waitFirstLease(t *testing.T, dn *greptimefake.Node) {
	t.Helper()
	select {
	case <-dn.Leases():
	case <-time.After(startTimeout):
		t.Fatalf("datanode %s got no lease", dn.PeerAddr())
	}
}

// createThroughKill creates table name, SIGKILLs the leader when the
// CreateRequest of its region number region reaches its datanode (its table
// id is minTable or above), restarts the killed node, and returns the
// table's id once the frontend's retry answers.
func createThroughKill(t *testing.T, c *proccluster.Cluster, fe ddlFrontend, tr *trap, name string, minTable, region uint32, execute bool) uint32 {
	t.Helper()
	tbl := greptimeddl.Table{Catalog: "greptime", Schema: "public", Name: name, Partitions: 2}
	reached, release := tr.arm(false, minTable, region)
	leaderAddr := leaderOf(t, fe)
	first := make(chan error, 1)
	go func() {
		conn, err := c.Node(leaderAddr).Conn()
		if err == nil {
			_, err = metapb.NewProcedureServiceClient(conn).Ddl(t.Context(), greptimeddl.CreateTable(tbl))
		}
		first <- err
	}()
	var caught uint64
	select {
	case caught = <-reached:
	case <-time.After(failoverTimeout):
		t.Fatalf("region %d of %s never reached its datanode", region, name)
	}
	require.NoError(t, c.Node(leaderAddr).Kill())
	release <- execute
	t.Logf("%s: SIGKILLed the leader %s at region %d's CreateRequest (executed: %v); first call: %v", name, leaderAddr, region, execute, <-first)
	require.NoError(t, c.Node(leaderAddr).Start())

	tbl.IfNotExists = true
	resp := fe.ddl(t, greptimeddl.CreateTable(tbl))
	require.Len(t, resp.GetTableIds(), 1)
	id := resp.GetTableIds()[0].GetId()
	require.Equal(t, greptimekey.RegionTableID(caught), id, "the id the killed leader allocated")
	require.NoError(t, c.Node(leaderAddr).WaitServing(t.Context(), startTimeout))
	return id
}

func leaderOf(t *testing.T, fe ddlFrontend) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), failoverTimeout)
	defer cancel()
	conn, err := fe.leaderConn(ctx)
	require.NoError(t, err)
	return conn.Target()
}

// requireNoOrphans checks that the datanodes hold exactly the regions the
// tables' routes place on them.
func requireNoOrphans(t *testing.T, c *proccluster.Cluster, datanodes []*greptimefake.Node, ids map[uint32]string) {
	t.Helper()
	want := map[uint64]map[uint64]bool{1: {}, 2: {}}
	names := scan(t, c, greptimekey.TableNamePrefix)
	require.Len(t, names, len(ids), "one table per CREATE TABLE")
	for id := range ids {
		kvs := scan(t, c, string(greptimekey.TableRouteKey(id)))
		require.Len(t, kvs, 1, "table %d has a route", id)
		route, err := greptimekey.Decode[greptimekey.TableRouteValue](kvs[0].GetValue())
		require.NoError(t, err)
		require.Len(t, route.Physical.RegionRoutes, 2)
		for _, rr := range route.Physical.RegionRoutes {
			want[rr.LeaderPeer.ID][rr.Region.ID] = true
		}
	}
	for i, dn := range datanodes {
		held := map[uint64]bool{}
		for r := range dn.Regions() {
			held[r] = true
		}
		require.Equal(t, want[uint64(i+1)], held, "datanode %d holds exactly its routed regions", i+1)
	}
}
