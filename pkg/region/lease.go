package region

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/nodelist"
)

// LeaderState is a region route's leader_state.
type LeaderState int

const (
	// LeaderActive is a route without leader_state: the leader serves.
	LeaderActive LeaderState = iota
	// LeaderDowngrading is "Downgrading" (also read as "Downgraded"): the
	// leader is being demoted, for a migration or a failover, and must stop
	// taking writes.
	LeaderDowngrading
	// LeaderStaging is "Staging": the leader writes in staging mode.
	LeaderStaging
)

// RegionPlacement is where a table route puts one region.
type RegionPlacement struct {
	// HasLeader is false for a route whose leader_peer is null.
	HasLeader bool
	// LeaderID is the leader peer's datanode id, when HasLeader.
	LeaderID    uint64
	LeaderState LeaderState
	// FollowerIDs are the follower peers' datanode ids.
	FollowerIDs []uint64
}

// TablePlacement is one table's route as the lease decision reads it.
type TablePlacement struct {
	// Logical is true for a logical table's route, which places no region:
	// a reported region of a logical table gets no lease from it.
	Logical bool
	// Regions are the physical route's regions, by region number.
	Regions map[uint32]RegionPlacement
}

// Routes reads table routes.
type Routes interface {
	// Placements returns the routes of the tables that have one, by table
	// id; a table without a route is left out.
	Placements(ctx context.Context, tableIDs []uint32) (map[uint32]TablePlacement, error)
}

// LeaseDeciderOptions configure a LeaseDecider. Keeper and Routes are
// required.
type LeaseDeciderOptions struct {
	Logger *slog.Logger
	// Keeper holds the operating regions.
	Keeper *Keeper
	// Routes reads the table routes of the term's store, the store passed
	// to Lease.
	Routes func(store kv.Backend) Routes
	// HeartbeatInterval is the cluster's heartbeat_interval, from which the
	// lease length follows; 0 means nodelist.DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
}

// LeaseDecider grants a datanode's reported regions their leases on each of
// its heartbeats: GreptimeDB's RegionLeaseHandler over its RegionLeaseKeeper.
type LeaseDecider struct {
	log          *slog.Logger
	keeper       *Keeper
	routes       func(store kv.Backend) Routes
	leaseSeconds uint64
}

// NewLeaseDecider validates o.
func NewLeaseDecider(o LeaseDeciderOptions) (*LeaseDecider, error) {
	if o.Keeper == nil || o.Routes == nil {
		return nil, errors.New("region: LeaseDeciderOptions.Keeper and Routes are required")
	}
	if o.HeartbeatInterval < 0 {
		return nil, fmt.Errorf("region: LeaseDeciderOptions.HeartbeatInterval is %s: expected 0 or more", o.HeartbeatInterval)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &LeaseDecider{
		log:          o.Logger.With("component", "region_lease"),
		keeper:       o.Keeper,
		routes:       o.Routes,
		leaseSeconds: LeaseSeconds(o.HeartbeatInterval),
	}, nil
}

// LeaseSeconds is GreptimeDB's region lease in whole seconds for a
// heartbeat interval (0: the default): 3 x interval + 1s, truncated; 10 by
// default.
func LeaseSeconds(heartbeatInterval time.Duration) uint64 {
	return uint64(nodelist.LeaseWindow(nodelist.RoleDatanode, heartbeatInterval) / time.Second)
}

// LeaseSeconds is the lease_seconds of every lease d grants.
func (d *LeaseDecider) LeaseSeconds() uint64 { return d.leaseSeconds }

// Lease decides the region lease of one heartbeat of datanode datanodeID
// (the request's peer id) in term, reading routes from store. A heartbeat
// that carries no stat (a handshake without a peer or header, a mailbox
// reply) gets no lease: nil, nil. On an error the caller sends no lease and
// goes on with the heartbeat, as GreptimeDB does, so that a metadata read
// failure is not taken for a failed datanode.
func (d *LeaseDecider) Lease(ctx context.Context, term int64, store kv.Backend, datanodeID uint64, req *metapb.HeartbeatRequest) (*metapb.RegionLease, error) {
	if req.GetMailboxMessage() != nil || req.GetHeader() == nil || req.GetPeer() == nil {
		return nil, nil
	}
	reported := req.GetRegionStats()
	ids := make([]uint64, 0, len(reported))
	for _, r := range reported {
		ids = append(ids, r.GetRegionId())
	}
	operating := d.keeper.OperatingRoles(term, datanodeID, ids)
	placements, err := d.placements(ctx, store, ids)
	if err != nil {
		return nil, fmt.Errorf("region: renew the region leases of datanode %d: %w", datanodeID, err)
	}
	lease := &metapb.RegionLease{
		Regions:            []*metapb.GrantedRegion{},
		DurationSinceEpoch: req.GetDurationSinceEpoch(),
		LeaseSeconds:       d.leaseSeconds,
		CloseableRegionIds: []uint64{},
	}
	// Until the term's resumed procedures hold their regions again, a region
	// without a route may be one of theirs (a create that a leader change
	// interrupted): it gets no lease, but is not closed either.
	closing := d.keeper.Recovered(term)
	seen := make(map[uint64]bool, len(reported))
	for _, r := range reported {
		id := r.GetRegionId()
		if seen[id] {
			continue // GreptimeDB keys its answer by region id
		}
		seen[id] = true
		role, ok := d.grant(placements, operating, datanodeID, id, r.GetRole())
		if !ok {
			if closing {
				lease.CloseableRegionIds = append(lease.CloseableRegionIds, id)
			}
			continue
		}
		lease.Regions = append(lease.Regions, &metapb.GrantedRegion{RegionId: id, Role: role})
	}
	return lease, nil
}

// placements reads the routes of the tables of regionIDs.
func (d *LeaseDecider) placements(ctx context.Context, store kv.Backend, regionIDs []uint64) (map[uint32]TablePlacement, error) {
	if len(regionIDs) == 0 {
		return nil, nil
	}
	tables := make([]uint32, 0, len(regionIDs))
	for _, id := range regionIDs {
		tables = append(tables, TableID(id))
	}
	slices.Sort(tables)
	return d.routes(store).Placements(ctx, slices.Compact(tables))
}

// grant is renew_region_lease: the role the route gives the datanode, else
// the role an operating region was registered with, else none (the region
// is closeable).
func (d *LeaseDecider) grant(placements map[uint32]TablePlacement, operating map[uint64]metapb.RegionRole,
	datanodeID, regionID uint64, reported metapb.RegionRole,
) (metapb.RegionRole, bool) {
	if role, ok := routeRole(placements, datanodeID, regionID); ok {
		return role, true
	}
	if role, ok := operating[regionID]; ok {
		if role != reported {
			d.log.Info("operating region reported with another role",
				"datanode_id", datanodeID, "region_id", FormatRegionID(regionID),
				"role", role.String(), "reported_role", reported.String())
		}
		return role, true
	}
	d.log.Warn("region lease denied: no route or operating region places it on the datanode",
		"datanode_id", datanodeID, "region_id", FormatRegionID(regionID))
	return 0, false
}

// routeRole is renew_region_lease_via_region_route: the leader's role (by
// its leader state) when the datanode leads the region, else Follower when
// it follows it.
func routeRole(placements map[uint32]TablePlacement, datanodeID, regionID uint64) (metapb.RegionRole, bool) {
	t, ok := placements[TableID(regionID)]
	if !ok || t.Logical {
		return 0, false
	}
	p, ok := t.Regions[RegionNumber(regionID)]
	if !ok {
		return 0, false
	}
	if p.HasLeader && p.LeaderID == datanodeID {
		switch p.LeaderState {
		case LeaderStaging:
			return metapb.RegionRole_StagingLeader, true
		case LeaderDowngrading:
			return metapb.RegionRole_DowngradingLeader, true
		default:
			return metapb.RegionRole_Leader, true
		}
	}
	if slices.Contains(p.FollowerIDs, datanodeID) {
		return metapb.RegionRole_Follower, true
	}
	return 0, false
}
