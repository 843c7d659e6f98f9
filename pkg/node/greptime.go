package node

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgmetasrv/metasrv/pkg/config"
	"github.com/pgmetasrv/metasrv/pkg/ddl"
	"github.com/pgmetasrv/metasrv/pkg/failover"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/heartbeat"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/metasrv"
	"github.com/pgmetasrv/metasrv/pkg/migration"
	"github.com/pgmetasrv/metasrv/pkg/region"
	"github.com/pgmetasrv/metasrv/pkg/regionclient"
	"github.com/pgmetasrv/metasrv/pkg/selector"
)

// greptimeParts are the leader-only parts of GreptimeDB's control plane
// that are listeners of their own.
type greptimeParts struct {
	keeper     *region.Keeper
	migrations *migration.Manager
	// detector and supervisor are nil unless enable_region_failover.
	detector   *region.FailureDetector
	supervisor *failover.Supervisor
}

// buildGreptime makes GreptimeDB's control plane: the heartbeat service with
// its region lease decision (and, with failover on, its failure detection),
// the DDL service and the region migrations with their selector, region
// keeper and datanode client, and the region supervisor.
func (n *Node) buildGreptime() (*greptimeParts, error) {
	o := n.opts
	g := &greptimeParts{keeper: region.NewKeeper()}
	// The region leases and the migrations read the same routes, decoded
	// once per version of each.
	routes := greptimekey.NewRouteCache(0)
	leases, err := region.NewLeaseDecider(region.LeaseDeciderOptions{
		Logger: n.base, Keeper: g.keeper, Routes: region.CachedStoreRoutes(routes), HeartbeatInterval: o.HeartbeatInterval,
	})
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	hb := heartbeat.Options{
		Logger:       n.base,
		Interval:     o.HeartbeatInterval,
		Leading:      n.elector.TrustedTerm,
		Memory:       func() kv.Backend { return n.core.MemoryBackend() }, // called only once serving
		ServerAddr:   func() string { return n.advertised },
		RegionLeaser: leases,
	}
	if o.EnableRegionFailover {
		// GreptimeDB adds the failure handler to the chain only then.
		if g.detector, err = region.NewFailureDetector(region.FailureDetectorOptions{Logger: n.base, PhiAccrual: phiAccrual(o.FailureDetector)}); err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
		hb.FailureDetector = g.detector
		if !o.RemoteWAL() {
			n.log.Warn("region failover is on with a local WAL: a failed-over region loses what its datanode had not flushed")
		}
	}
	if n.heartbeats, err = heartbeat.New(hb); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	sel, err := selector.New(o.Selector)
	if err != nil {
		return nil, fmt.Errorf("node: selector: %w", err)
	}
	n.regions = regionclient.New(n.base)
	d := ddl.Options{
		Logger: n.base, Procedures: n.procedures, Selector: sel, Keeper: g.keeper, Regions: n.regions,
		Caches: n.heartbeats, HeartbeatInterval: o.HeartbeatInterval, MaxTxnOps: o.MaxTxnOps,
	}
	if g.detector != nil {
		d.Detectors = g.detector // never a typed nil in the interface
	}
	if n.ddl, err = ddl.New(d); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	mo := migration.Options{
		Logger: n.base, Procedures: n.procedures, Keeper: g.keeper, Mailbox: n.heartbeats, HeartbeatInterval: o.HeartbeatInterval,
		Routes: routes,
	}
	if g.detector != nil {
		mo.Detectors = g.detector
	}
	if n.migrations, err = migration.New(mo); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	g.migrations = n.migrations
	if g.detector != nil {
		if g.supervisor, err = failover.New(failover.Options{
			Logger: n.base, Detector: g.detector, Migrations: n.migrations, Selector: sel,
			HeartbeatInterval: o.HeartbeatInterval, InitializationDelay: o.RegionFailureDetectorInitializationDelay,
		}); err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
	}
	return g, nil
}

// phiAccrual is the detectors' configuration from failure_detector.*.
func phiAccrual(f config.FailureDetectorOptions) region.PhiAccrualOptions {
	return region.PhiAccrualOptions{
		Threshold:                f.Threshold,
		MinStdDeviation:          f.MinStdDeviation,
		AcceptableHeartbeatPause: f.AcceptableHeartbeatPause,
		FirstHeartbeatEstimate:   f.FirstHeartbeatEstimate,
	}
}

// listeners are the term's listeners in start order (they stop in reverse):
// the failure detector before the heartbeats that feed it; the mailbox
// (heartbeats), the keeper, the DDL and migration terms before the
// procedure manager, whose resumed procedures need them; the keeper's
// recovery mark after it (the resumed procedures then hold their regions
// again); the supervisor last, once resumed migrations are known.
func (g *greptimeParts) listeners(n *Node, expiry metasrv.Listener) []metasrv.Listener {
	var ls []metasrv.Listener
	if g.detector != nil {
		ls = append(ls, g.detector)
	}
	ls = append(ls, n.heartbeats, g.keeper, n.ddl, n.migrations, expiry,
		metasrv.ProcedureListener{Manager: n.procedures}, g.keeper.RecoveryListener())
	if g.supervisor != nil {
		ls = append(ls, g.supervisor)
	}
	return ls
}

func (g *greptimeParts) registerMetrics(reg prometheus.Registerer) error {
	errs := []error{g.migrations.RegisterMetrics(reg)}
	if g.detector != nil {
		errs = append(errs, g.detector.RegisterMetrics(reg), g.supervisor.RegisterMetrics(reg))
	}
	return errors.Join(errs...)
}
