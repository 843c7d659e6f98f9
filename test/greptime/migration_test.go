package greptime

import (
	"context"
	"fmt"
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

// leaderGrants records, per region, which datanodes may write it and until
// when: a datanode holds a region writable from a Leader grant until the
// lease's end, or until it takes a newer grant of another role or executes
// a DowngradeRegions of it (the datanode demotes the region at once, as
// mito's set_role does). Two datanodes' windows must never overlap.
type leaderGrants struct {
	mu      sync.Mutex
	held    map[uint64]map[uint64]time.Time // region -> datanode -> end of its latest grant
	latest  map[uint64]uint64               // region -> datanode of its latest grant
	overlap []string
	updated chan struct{}
}

func (g *leaderGrants) watch(id uint64, dn *greptimefake.Node, done <-chan struct{}) {
	go func() {
		for {
			select {
			case <-done:
				return
			case lease := <-dn.Leases():
				g.record(id, lease, time.Now())
			case ev := <-dn.Instructions():
				if down, ok := ev.Instruction.(instruction.DowngradeRegions); ok && ev.Executed {
					for _, d := range down {
						g.demote(id, uint64(d.RegionID), time.Now())
					}
				}
			}
		}
	}()
}

// demote ends datanode dn's writable window of region r at now.
func (g *leaderGrants) demote(dn, r uint64, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if until, ok := g.held[r][dn]; ok && now.Before(until) {
		g.held[r][dn] = now
	}
}

func (g *leaderGrants) record(dn uint64, lease *metapb.RegionLease, now time.Time) {
	g.mu.Lock()
	for _, gr := range lease.GetRegions() {
		r := gr.GetRegionId()
		if gr.GetRole() != metapb.RegionRole_Leader {
			if until, ok := g.held[r][dn]; ok && now.Before(until) {
				g.held[r][dn] = now // demoted by the grant
			}
			continue
		}
		if g.held[r] == nil {
			g.held[r] = map[uint64]time.Time{}
		}
		for other, until := range g.held[r] {
			if other != dn && now.Before(until) {
				g.overlap = append(g.overlap, fmt.Sprintf("region %d granted leader on datanode %d at %s while datanode %d may write it until %s",
					r, dn, now.Format(time.StampMilli), other, until.Format(time.StampMilli)))
			}
		}
		g.held[r][dn] = now.Add(time.Duration(lease.GetLeaseSeconds()) * time.Second)
		g.latest[r] = dn
	}
	g.mu.Unlock()
	select {
	case g.updated <- struct{}{}:
	default:
	}
}

// waitLeader waits until region's latest leader grant is on datanode dn.
func (g *leaderGrants) waitLeader(t *testing.T, region, dn uint64) {
	t.Helper()
	deadline := time.After(failoverTimeout)
	for {
		g.mu.Lock()
		got := g.latest[region]
		g.mu.Unlock()
		if got == dn {
			return
		}
		select {
		case <-g.updated:
		case <-deadline:
			t.Fatalf("region %d never got a leader lease on datanode %d (latest: %d)", region, dn, got)
		}
	}
}

// SIGKILL of the leader while a region migration waits on the old leader's
// DowngradeRegions, then (migrating back) on the candidate's UpgradeRegions:
// the new leader resumes the migration, the region ends led by the target
// alone, the route says so, and no region was leader on two datanodes at
// once.
func TestMigrationSurvivesLeaderKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and three metasrv processes")
	}
	c := startCluster(t)
	trap := &instructionTrap{}
	grants := &leaderGrants{held: map[uint64]map[uint64]time.Time{}, latest: map[uint64]uint64{}, updated: make(chan struct{}, 1)}
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	for id := uint64(1); id <= 2; id++ {
		dn, err := greptimefake.New(greptimefake.Config{Endpoints: c.Endpoints(), Role: metapb.Role_DATANODE, ID: id,
			RegionServer: true, Compressor: grpczstd.Name, OnInstruction: trap.hook})
		require.NoError(t, err)
		require.NoError(t, dn.Start(t.Context()))
		t.Cleanup(dn.Stop)
		waitFirstLease(t, dn)
		grants.watch(id, dn, done)
	}
	fe := ddlFrontend{c: c}
	table := fe.ddl(t, greptimeddl.CreateTable(greptimeddl.Table{Catalog: "greptime", Schema: "public", Name: "m", Partitions: 1})).GetTableIds()[0].GetId()
	r := greptimekey.RegionID(table, 0)
	from := routeLeader(t, c, table)
	to := 3 - from
	grants.waitLeader(t, r, from)

	for _, kind := range []instruction.Kind{instruction.KindDowngradeRegions, instruction.KindUpgradeRegions} {
		migrateThroughKill(t, c, fe, trap, kind, r, from, to)
		grants.waitLeader(t, r, to)
		require.Equal(t, to, routeLeader(t, c, table), "the route names the target")
		from, to = to, from
	}
	grants.mu.Lock()
	defer grants.mu.Unlock()
	require.Empty(t, grants.overlap)
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
