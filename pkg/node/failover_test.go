package node

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
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

// waitMoved waits until region's latest Leader grant is on a datanode
// other than from, and returns it.
func waitMoved(t *testing.T, w *greptimefake.LeaderWatch, region, from uint64) uint64 {
	t.Helper()
	dn, err := w.WaitLeader(timeout(t), region, func(dn uint64) bool { return dn != from })
	if err != nil {
		t.Fatalf("region %d was not failed over (latest leader %d): %v", region, dn, err)
	}
	return dn
}

// failoverCluster is a PostgreSQL node with region failover on (200ms
// heartbeats, a 500ms acceptable pause), three fake datanodes whose leases
// log watches, and a six-region table; lost are the regions datanode 1
// leads.
type failoverCluster struct {
	*ddlCluster
	n     *Node
	log   *greptimefake.LeaderWatch
	dns   []*greptimefake.Node
	table uint32
	lost  []uint64
}

func newFailoverCluster(t *testing.T, logger *slog.Logger) *failoverCluster {
	t.Helper()
	o := pgOptions(pgtest.NewDatabase(t))
	o.HeartbeatInterval = 200 * time.Millisecond
	o.EnableRegionFailover, o.AllowRegionFailoverOnLocalWAL = true, true
	o.RegionFailureDetectorInitializationDelay = 0
	o.FailureDetector.AcceptableHeartbeatPause = 500 * time.Millisecond
	o.FailureDetector.FirstHeartbeatEstimate = 200 * time.Millisecond
	n, err := New(context.Background(), Config{Options: o, Logger: logger})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, n.Stop(context.Background())) })
	require.NoError(t, n.Start(timeout(t)))
	firstLeader(t, n, n)

	f := &failoverCluster{n: n, log: greptimefake.NewLeaderWatch()}
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	for id := uint64(1); id <= 3; id++ {
		dn, err := greptimefake.New(greptimefake.Config{Endpoints: []string{n.Advertised()}, Role: metapb.Role_DATANODE, ID: id, RegionServer: true, Compressor: "zstd"})
		require.NoError(t, err)
		// The node lives as long as the test, not one wait's timeout.
		require.NoError(t, dn.Start(t.Context()))
		t.Cleanup(dn.Stop)
		waitLease(t, dn, func(*metapb.RegionLease) bool { return true })
		f.log.Watch(id, dn, done)
		f.dns = append(f.dns, dn)
	}
	f.ddlCluster = &ddlCluster{leader: n, procs: metapb.NewProcedureServiceClient(dialGreptime(t, n))}
	f.table = f.ddl(t, greptimeddl.CreateTable(greptimeddl.Table{Catalog: "greptime", Schema: "public", Name: "cpu", Partitions: 6})).GetTableIds()[0].GetId()
	for _, rr := range f.route(t, f.table).Physical.RegionRoutes {
		if rr.LeaderPeer.ID == 1 {
			f.lost = append(f.lost, rr.Region.ID)
		}
	}
	require.NotEmpty(t, f.lost, "datanode 1 leads some regions")
	return f
}

// One of three datanodes stops heartbeating: each leader region it had is
// failed over to a live datanode (the route names it, it holds the region
// as leader), and no region was ever leader on two datanodes at once. When
// the datanode comes back with those regions, it is told to close them.
func TestRegionFailoverMovesADeadDatanodesRegions(t *testing.T) {
	t.Parallel()
	f := newFailoverCluster(t, slog.New(slog.DiscardHandler))
	n, c, log, dns, id, lost := f.n, f.ddlCluster, f.log, f.dns, f.table, f.lost

	stopped := time.Now()
	dns[0].Stop()
	moved := map[uint64]uint64{}
	for _, r := range lost {
		moved[r] = waitMoved(t, log, r, 1)
	}
	t.Logf("%d regions failed over %s after their datanode stopped", len(lost), time.Since(stopped).Round(time.Millisecond))
	for _, rr := range c.route(t, id).Physical.RegionRoutes {
		if dn, ok := moved[rr.Region.ID]; ok {
			require.Equal(t, dn, rr.LeaderPeer.ID, "the route names the datanode granted the lease")
			require.Equal(t, greptimekey.LeaderStateNone, rr.LeaderState)
			require.Contains(t, dns[dn-1].Regions(), rr.Region.ID)
		}
	}
	require.Empty(t, log.Overlaps())

	// Datanode 1 comes back with its old regions: its lease lists them as
	// closeable, and it closes them.
	ctx := timeout(t)
	back, err := greptimefake.New(greptimefake.Config{Endpoints: []string{n.Advertised()}, Role: metapb.Role_DATANODE, ID: 1, RegionServer: true, Compressor: "zstd"})
	require.NoError(t, err)
	require.NoError(t, back.Start(t.Context()))
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

// logSignal discards every record but closes seen at the first one whose
// message is msg: the supervisor's decision not to act shows only in its
// log.
type logSignal struct {
	msg  string
	seen chan struct{}
	once *sync.Once
}

func newLogSignal(msg string) logSignal {
	return logSignal{msg: msg, seen: make(chan struct{}), once: new(sync.Once)}
}

func (h logSignal) Enabled(context.Context, slog.Level) bool { return true }
func (h logSignal) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h logSignal) WithGroup(string) slog.Handler            { return h }
func (h logSignal) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.once.Do(func() { close(h.seen) })
	}
	return nil
}

// With maintenance mode on, a datanode that stops keeps its regions: the
// supervisor sees them failed and moves none. Once it is off, they move.
func TestMaintenanceModeHoldsFailoverBack(t *testing.T) {
	t.Parallel()
	held := newLogSignal("maintenance mode is on: not failing over")
	f := newFailoverCluster(t, slog.New(held))
	admin := func(path string) {
		t.Helper()
		req, err := http.NewRequestWithContext(timeout(t), http.MethodPost, "http://"+f.n.HTTPAddr().String()+path, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
	}
	admin("/admin/maintenance/enable")
	f.dns[0].Stop()
	select {
	case <-held.seen:
	case <-timeout(t).Done():
		t.Fatal("the supervisor never found datanode 1's regions failed")
	}
	for _, rr := range f.route(t, f.table).Physical.RegionRoutes {
		if slices.Contains(f.lost, rr.Region.ID) {
			require.EqualValues(t, 1, rr.LeaderPeer.ID, "region %d stays on datanode 1", rr.Region.ID)
			require.Equal(t, greptimekey.LeaderStateNone, rr.LeaderState, "no migration of region %d began", rr.Region.ID)
		}
	}
	require.Empty(t, f.n.migrations.Running())

	admin("/admin/maintenance/disable")
	for _, r := range f.lost {
		waitMoved(t, f.log, r, 1)
	}
	require.Empty(t, f.log.Overlaps())
}
