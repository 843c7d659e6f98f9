package node

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/internal/greptimeddl"
	"github.com/pgmetasrv/metasrv/internal/greptimefake"
	"github.com/pgmetasrv/metasrv/internal/pgtest"
	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	regionpb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/region"
	"github.com/pgmetasrv/metasrv/pkg/config"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/region"
	"github.com/pgmetasrv/metasrv/pkg/regionclient"
)

// leaseLog watches every lease the fakes receive: greptimefake's
// LeaderWindows finds a region granted leader on two datanodes at once, and
// latest is the datanode of each region's latest Leader grant.
type leaseLog struct {
	mu       sync.Mutex
	windows  *greptimefake.LeaderWindows
	latest   map[uint64]uint64 // region -> datanode
	overlaps []string
	// updated gets a signal (the latest kept) whenever a lease is recorded.
	updated chan struct{}
}

func newLeaseLog() *leaseLog {
	return &leaseLog{windows: greptimefake.NewLeaderWindows(), latest: map[uint64]uint64{}, updated: make(chan struct{}, 1)}
}

func (l *leaseLog) watch(id uint64, dn *greptimefake.Node, done <-chan struct{}) {
	go func() {
		for {
			select {
			case <-done:
				return
			case lease := <-dn.Leases():
				l.mu.Lock()
				l.overlaps = append(l.overlaps, l.windows.Lease(id, lease, time.Now())...)
				for _, g := range lease.GetRegions() {
					if g.GetRole() == metapb.RegionRole_Leader {
						l.latest[g.GetRegionId()] = id
					}
				}
				l.mu.Unlock()
				select {
				case l.updated <- struct{}{}:
				default:
				}
			}
		}
	}()
}

// waitLeader waits until region's latest leader grant is to a datanode
// other than from, and returns it.
func (l *leaseLog) waitLeader(t *testing.T, region, from uint64) uint64 {
	t.Helper()
	ctx := timeout(t)
	for {
		l.mu.Lock()
		dn, ok := l.latest[region]
		l.mu.Unlock()
		if ok && dn != from {
			return dn
		}
		select {
		case <-l.updated:
		case <-ctx.Done():
			t.Fatalf("region %d was not failed over", region)
		}
	}
}

// check fails when two datanodes' leader grants of a region overlapped.
func (l *leaseLog) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	require.Empty(t, l.overlaps)
}

// One of three datanodes stops heartbeating: each leader region it had is
// failed over to a live datanode (the route names it, it holds the region
// as leader), and no region was ever leader on two datanodes at once. When
// the datanode comes back with those regions, it is told to close them.
func TestRegionFailoverMovesADeadDatanodesRegions(t *testing.T) {
	t.Parallel()
	o := pgOptions(pgtest.NewDatabase(t))
	o.HeartbeatInterval = 200 * time.Millisecond
	o.EnableRegionFailover, o.AllowRegionFailoverOnLocalWAL = true, true
	o.RegionFailureDetectorInitializationDelay = 0
	o.FailureDetector.AcceptableHeartbeatPause = 500 * time.Millisecond
	o.FailureDetector.FirstHeartbeatEstimate = 200 * time.Millisecond
	n := newNode(t, o)
	ctx := timeout(t)
	require.NoError(t, n.Start(ctx))
	firstLeader(t, n, n)

	log := newLeaseLog()
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	var dns []*greptimefake.Node
	for id := uint64(1); id <= 3; id++ {
		dn, err := greptimefake.New(greptimefake.Config{Endpoints: []string{n.Advertised()}, Role: metapb.Role_DATANODE, ID: id, RegionServer: true, Compressor: "zstd"})
		require.NoError(t, err)
		require.NoError(t, dn.Start(ctx))
		t.Cleanup(dn.Stop)
		waitLease(t, dn, func(*metapb.RegionLease) bool { return true })
		log.watch(id, dn, done)
		dns = append(dns, dn)
	}
	c := &ddlCluster{leader: n, procs: metapb.NewProcedureServiceClient(dialGreptime(t, n))}
	id := c.ddl(t, greptimeddl.CreateTable(greptimeddl.Table{Catalog: "greptime", Schema: "public", Name: "cpu", Partitions: 6})).GetTableIds()[0].GetId()
	route := c.route(t, id)
	var lost []uint64
	for _, rr := range route.Physical.RegionRoutes {
		if rr.LeaderPeer.ID == 1 {
			lost = append(lost, rr.Region.ID)
		}
	}
	require.NotEmpty(t, lost, "datanode 1 leads some regions")

	stopped := time.Now()
	dns[0].Stop()
	moved := map[uint64]uint64{}
	for _, r := range lost {
		moved[r] = log.waitLeader(t, r, 1)
	}
	t.Logf("%d regions failed over %s after their datanode stopped", len(lost), time.Since(stopped).Round(time.Millisecond))
	for _, rr := range c.route(t, id).Physical.RegionRoutes {
		if dn, ok := moved[rr.Region.ID]; ok {
			require.Equal(t, dn, rr.LeaderPeer.ID, "the route names the datanode granted the lease")
			require.Equal(t, greptimekey.LeaderStateNone, rr.LeaderState)
			require.Contains(t, dns[dn-1].Regions(), rr.Region.ID)
		}
	}
	log.check(t)

	// Datanode 1 comes back with its old regions: its lease lists them as
	// closeable, and it closes them.
	ctx = timeout(t)
	back, err := greptimefake.New(greptimefake.Config{Endpoints: []string{n.Advertised()}, Role: metapb.Role_DATANODE, ID: 1, RegionServer: true, Compressor: "zstd"})
	require.NoError(t, err)
	require.NoError(t, back.Start(ctx))
	t.Cleanup(back.Stop)
	rc := regionclient.New(nil)
	defer rc.Close()
	for _, r := range lost {
		_, err := rc.Handle(ctx, back.PeerAddr(), &regionpb.RegionRequest{Body: &regionpb.RegionRequest_Create{Create: &regionpb.CreateRequest{RegionId: r, Engine: "mito"}}})
		require.NoError(t, err)
	}
	// A heartbeat may report the first region before the second is
	// created, and the node closes what a lease calls closeable: each region
	// shows up as closeable in some lease, not necessarily the same one.
	closeable := map[uint64]bool{}
	waitLease(t, back, func(l *metapb.RegionLease) bool {
		for _, r := range l.GetCloseableRegionIds() {
			closeable[r] = true
		}
		for _, r := range lost {
			if !closeable[r] {
				return false
			}
		}
		return true
	})
	require.Empty(t, back.Regions(), "the returned datanode closed the regions that moved")
}

func (c *ddlCluster) route(t *testing.T, id uint32) greptimekey.TableRouteValue {
	t.Helper()
	r, err := greptimekey.Decode[greptimekey.TableRouteValue]([]byte(c.value(t, greptimekey.TableRouteKey(id))))
	require.NoError(t, err)
	return r
}

// failure_detector.* is checked by pkg/config; what it accepts, the
// detectors must accept too, and the defaults are the detectors' own.
func TestFailureDetectorConfigFitsTheDetector(t *testing.T) {
	t.Parallel()
	d := config.Default().FailureDetector
	require.Equal(t, region.DefaultPhiAccrualOptions(), phiAccrual(d))
	require.Equal(t, region.MaxDetectorDuration, config.MaxDetectorDuration)
	for _, f := range []config.FailureDetectorOptions{
		d,
		{Threshold: 0.5, MinStdDeviation: time.Millisecond, AcceptableHeartbeatPause: 0, FirstHeartbeatEstimate: time.Millisecond},
		{Threshold: 100, MinStdDeviation: config.MaxDetectorDuration, AcceptableHeartbeatPause: config.MaxDetectorDuration, FirstHeartbeatEstimate: config.MaxDetectorDuration},
	} {
		o := config.Default()
		o.FailureDetector = f
		require.NoError(t, o.Validate(), "%+v", f)
		require.NoError(t, phiAccrual(f).Validate(), "%+v", f)
	}
}
