package greptime

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/internal/greptimeddl"
	"github.com/pgmetasrv/metasrv/internal/greptimefake"
	"github.com/pgmetasrv/metasrv/internal/proccluster"
	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/grpczstd"
	"github.com/pgmetasrv/metasrv/pkg/instruction"
)

// instructionTrap holds back the first instruction of one kind a datanode
// gets: it reports it, then waits for the test's release.
type instructionTrap struct {
	mu      sync.Mutex
	kind    instruction.Kind
	reached chan struct{}
	release chan struct{}
}

func (tr *instructionTrap) arm(kind instruction.Kind) (reached <-chan struct{}, release chan<- struct{}) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.kind, tr.reached, tr.release = kind, make(chan struct{}), make(chan struct{})
	return tr.reached, tr.release
}

func (tr *instructionTrap) hook(_ *metapb.MailboxMessage, ins instruction.Instruction) greptimefake.InstructionAction {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.reached == nil || ins == nil || ins.Kind() != tr.kind {
		return greptimefake.InstructionAction{}
	}
	close(tr.reached)
	tr.reached = nil
	return greptimefake.InstructionAction{Wait: tr.release}
}

// waitLeader waits until region's latest leader grant is on datanode dn.
func waitLeader(t *testing.T, w *greptimefake.LeaderWatch, region, dn uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), failoverTimeout)
	defer cancel()
	if got, err := w.WaitLeader(ctx, region, func(got uint64) bool { return got == dn }); err != nil {
		t.Fatalf("region %d never got a leader lease on datanode %d (latest: %d)", region, dn, got)
	}
}

// SIGKILL of the leader while a region migration waits on each instruction
// it sends in turn, migrating the region back and forth: the candidate's
// OpenRegions (open_candidate_region), the old leader's FlushRegions
// (flush_leader_region, before the route is touched), its DowngradeRegions
// (downgrade_leader_region, the route already Downgrading), the candidate's
// UpgradeRegions (upgrade_candidate_region), and the old leader's
// CloseRegions (close_downgraded_region, the route already naming the
// target). Each time the new leader resumes the migration, the region ends
// led by the target alone, the route says so, and no region was leader on
// two datanodes at once.
func TestMigrationSurvivesLeaderKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and three metasrv processes")
	}
	c := startCluster(t)
	trap := &instructionTrap{}
	grants := greptimefake.NewLeaderWatch()
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	for id := uint64(1); id <= 2; id++ {
		dn, err := greptimefake.New(greptimefake.Config{Endpoints: c.Endpoints(), Role: metapb.Role_DATANODE, ID: id,
			RegionServer: true, Compressor: grpczstd.Name, OnInstruction: trap.hook})
		require.NoError(t, err)
		require.NoError(t, dn.Start(t.Context()))
		t.Cleanup(dn.Stop)
		waitFirstLease(t, dn)
		grants.Watch(id, dn, done)
	}
	fe := ddlFrontend{c: c}
	table := fe.ddl(t, greptimeddl.CreateTable(greptimeddl.Table{Catalog: "greptime", Schema: "public", Name: "m", Partitions: 1})).GetTableIds()[0].GetId()
	r := greptimekey.RegionID(table, 0)
	from := routeLeader(t, c, table)
	to := 3 - from
	waitLeader(t, grants, r, from)

	for _, kind := range []instruction.Kind{instruction.KindOpenRegions, instruction.KindFlushRegions,
		instruction.KindDowngradeRegions, instruction.KindUpgradeRegions, instruction.KindCloseRegions} {
		migrateThroughKill(t, c, fe, trap, kind, r, from, to)
		waitLeader(t, grants, r, to)
		require.Equal(t, to, routeLeader(t, c, table), "the route names the target")
		from, to = to, from
	}
	require.Empty(t, grants.Overlaps())
}

func routeLeader(t *testing.T, c *proccluster.Cluster, table uint32) uint64 {
	t.Helper()
	kvs := scan(t, c, string(greptimekey.TableRouteKey(table)))
	require.Len(t, kvs, 1)
	route, err := greptimekey.Decode[greptimekey.TableRouteValue](kvs[0].GetValue())
	require.NoError(t, err)
	rr := route.Physical.RegionRoutes[0]
	require.Equal(t, greptimekey.LeaderStateNone, rr.LeaderState, "no migration left half done")
	return rr.LeaderPeer.ID
}

// migrateThroughKill asks the leader to move region from -> to, SIGKILLs
// it when the datanode gets the instruction of kind, lets that instruction
// go to the dead leader, and restarts the killed node.
func migrateThroughKill(t *testing.T, c *proccluster.Cluster, fe ddlFrontend, trap *instructionTrap, kind instruction.Kind, region, from, to uint64) {
	t.Helper()
	reached, release := trap.arm(kind)
	leaderAddr := leaderOf(t, fe)
	conn, err := c.Node(leaderAddr).Conn()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), failoverTimeout)
	defer cancel()
	resp, err := metapb.NewProcedureServiceClient(conn).Migrate(ctx, &metapb.MigrateRegionRequest{
		Header: &metapb.RequestHeader{ProtocolVersion: 1, Role: metapb.Role_FRONTEND}, RegionId: region, FromPeer: from, ToPeer: to, TimeoutSecs: 60,
	})
	require.NoError(t, err)
	require.Nil(t, resp.GetHeader().GetError())
	select {
	case <-reached:
	case <-time.After(failoverTimeout):
		t.Fatalf("no %s reached a datanode", kind)
	}
	require.NoError(t, c.Node(leaderAddr).Kill())
	close(release)
	t.Logf("SIGKILLed the leader %s at %s of region %d (%d -> %d)", leaderAddr, kind, region, from, to)
	require.NoError(t, c.Node(leaderAddr).Start())
	require.NoError(t, c.Node(leaderAddr).WaitServing(t.Context(), startTimeout))
}
