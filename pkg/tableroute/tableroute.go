// Package tableroute shows an operator where a GreptimeDB table's regions
// live and how each region's peers stand with the leader: the table and its
// route from the durable metadata (__table_name, __table_info,
// __table_route), and each peer's liveness and last reported region role
// from the leader's in-memory KV (datanode node info and stats, which start
// empty in every term). The client (`metasrv ctl table route`) and the
// leader's admin API (/admin/tables/route) build the view with the same
// code, each reading the two stores its own way.
package tableroute

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/nodelist"
)

// ErrTableNotFound is returned, wrapped with the table's name, when no
// __table_name key holds the table.
var ErrTableNotFound = errors.New("table not found")

// Getter returns the pairs that exist among keys, as kv.Backend's BatchGet.
type Getter func(ctx context.Context, keys [][]byte) ([]kv.KeyValue, error)

// Sources are the two stores a view is read from.
type Sources struct {
	// Store reads the durable metadata, from the leader.
	Store Getter
	// Memory reads the leader's in-memory KV.
	Memory Getter
}

// Options judge the peers' leases.
type Options struct {
	// HeartbeatInterval is the cluster's heartbeat_interval, from which the
	// datanode lease window follows; zero means
	// nodelist.DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
	// Now is the clock leases and ages are judged by; nil means time.Now.
	Now func() time.Time
}

// Lease is how a peer's datanode stands with the leader.
type Lease string

const (
	// LeaseCurrent: the leader heard from the datanode within the datanode
	// lease (3 x heartbeat_interval + 1s), so its region leases are renewed
	// and the selector counts it as alive.
	LeaseCurrent Lease = "current"
	// LeaseExpired: the leader has its node info, from a heartbeat older
	// than the datanode lease.
	LeaseExpired Lease = "expired"
	// LeaseNone: the datanode has not sent this leader a heartbeat with
	// stats in its term.
	LeaseNone Lease = "none"
)

// Route types.
const (
	RoutePhysical = "physical"
	RouteLogical  = "logical"
	// RouteNone: the table has no __table_route key (a view has none).
	RouteNone = "none"
)

// Table is the view of one table.
type Table struct {
	// Table is the full name, catalog.schema.table.
	Table   string `json:"table"`
	Catalog string `json:"catalog"`
	Schema  string `json:"schema"`
	Name    string `json:"name"`
	TableID uint32 `json:"table_id"`
	// TableType (Base, View, Temporary) and Engine (mito, metric, file) come
	// from the table info, and are left out when it is missing.
	TableType string   `json:"table_type,omitempty"`
	Engine    string   `json:"engine,omitempty"`
	Columns   []Column `json:"columns"`
	// RouteType is RoutePhysical, RouteLogical or RouteNone.
	RouteType string `json:"route_type"`
	// PhysicalTableID is a logical table's physical table, whose regions
	// hold its data and are the ones listed.
	PhysicalTableID *uint32 `json:"physical_table_id,omitempty"`
	// RouteVersion is the version of the route the regions come from (the
	// physical table's for a logical table); left out without one.
	RouteVersion *uint64  `json:"route_version,omitempty"`
	Regions      []Region `json:"regions"`
}

// Column is one column of the table, in schema order.
type Column struct {
	Name string `json:"name"`
	// DataType is GreptimeDB's ConcreteDataType as stored, such as
	// {"Timestamp":{"Millisecond":null}}.
	DataType    json.RawMessage `json:"data_type"`
	IsNullable  bool            `json:"is_nullable"`
	IsTimeIndex bool            `json:"is_time_index"`
	PrimaryKey  bool            `json:"primary_key"`
}

// Region is one region route and how its peers stand.
type Region struct {
	RegionID     uint64 `json:"region_id"`
	RegionNumber uint32 `json:"region_number"`
	// Leader is null when the route names no leader.
	Leader    *Peer  `json:"leader"`
	Followers []Peer `json:"followers"`
	// LeaderState is Downgrading or Staging, left out for a normal leader.
	LeaderState string `json:"leader_state,omitempty"`
	// LeaderDownSince is when the leader entered Downgrading.
	LeaderDownSince  time.Time `json:"leader_down_since,omitzero"`
	WriteRoutePolicy string    `json:"write_route_policy,omitempty"`
	PartitionExpr    string    `json:"partition_expr"`
}

// Peer is a datanode of a region route, as the route names it, with what the
// leader's in-memory KV says of it.
type Peer struct {
	ID   uint64 `json:"id"`
	Addr string `json:"addr"`
	// Lease is judged on the node info's last_activity_ts, which the leader
	// stamps from the heartbeat's stat.
	Lease Lease `json:"lease"`
	// LastHeartbeat is that timestamp and LastHeartbeatAgeMillis the
	// judging clock's now minus it (at least 0); both left out under
	// LeaseNone.
	LastHeartbeat          time.Time `json:"last_heartbeat,omitzero"`
	LastHeartbeatAgeMillis *int64    `json:"last_heartbeat_age_ms,omitempty"`
	// StatTime is when the leader received the datanode's last stored stat,
	// left out when it holds none. The leader stores a datanode's stats
	// every third heartbeat (and at its first in a term), so the last one
	// may be a few heartbeats old.
	StatTime time.Time `json:"stat_time,omitzero"`
	// ReportedRole is the role the last stat gives the region (Leader,
	// Follower, DowngradingLeader, StagingLeader), left out when the stat
	// does not report the region or there is none.
	ReportedRole string `json:"reported_role,omitempty"`
}

// Get reads the view of the table name from src. A table without a
// __table_name key fails with ErrTableNotFound; a stored value GreptimeDB
// could not read either fails with greptimekey.ErrInvalidValue.
func Get(ctx context.Context, name greptimekey.TableName, src Sources, o Options) (Table, error) {
	nameKey := greptimekey.TableNameKey(name.Catalog, name.Schema, name.Table)
	got, err := getKeys(ctx, src.Store, nameKey)
	if err != nil {
		return Table{}, fmt.Errorf("read table name: %w", err)
	}
	raw, ok := got[string(nameKey)]
	if !ok {
		return Table{}, fmt.Errorf("%w: %s", ErrTableNotFound, name)
	}
	id, err := greptimekey.Decode[greptimekey.TableNameValue](raw)
	if err != nil {
		return Table{}, fmt.Errorf("table name %q: %w", nameKey, err)
	}
	t := Table{Table: name.String(), Catalog: name.Catalog, Schema: name.Schema, Name: name.Table, TableID: id.TableID,
		Columns: []Column{}, RouteType: RouteNone, Regions: []Region{}}
	routes, err := t.readMetadata(ctx, src.Store)
	if err != nil {
		return Table{}, err
	}
	peers, err := readPeers(ctx, src.Memory, routes, o)
	if err != nil {
		return Table{}, err
	}
	for _, r := range routes {
		t.Regions = append(t.Regions, regionOf(r, peers))
	}
	slices.SortFunc(t.Regions, func(a, b Region) int { return cmp.Compare(a.RegionID, b.RegionID) })
	return t, nil
}

// readMetadata fills in the table info and route and returns the region
// routes, following a logical table to its physical table's.
func (t *Table) readMetadata(ctx context.Context, store Getter) ([]greptimekey.RegionRoute, error) {
	infoKey, routeKey := greptimekey.TableInfoKey(t.TableID), greptimekey.TableRouteKey(t.TableID)
	got, err := getKeys(ctx, store, infoKey, routeKey)
	if err != nil {
		return nil, fmt.Errorf("read table %d: %w", t.TableID, err)
	}
	if raw, ok := got[string(infoKey)]; ok {
		info, err := greptimekey.Decode[greptimekey.TableInfoValue](raw)
		if err != nil {
			return nil, fmt.Errorf("table info %q: %w", infoKey, err)
		}
		t.setInfo(info.TableInfo)
	}
	route, ok, err := decodeRoute(got, routeKey)
	if err != nil || !ok {
		return nil, err
	}
	if route.Logical != nil {
		phys := route.Logical.PhysicalTableID
		t.RouteType, t.PhysicalTableID = RouteLogical, &phys
		physKey := greptimekey.TableRouteKey(phys)
		if got, err = getKeys(ctx, store, physKey); err != nil {
			return nil, fmt.Errorf("read physical table %d: %w", phys, err)
		}
		if route, ok, err = decodeRoute(got, physKey); err != nil || !ok {
			return nil, err
		}
		if route.Physical == nil {
			return nil, fmt.Errorf("table route %q: %w: the physical table of a logical table is logical too", physKey, greptimekey.ErrInvalidValue)
		}
	} else {
		t.RouteType = RoutePhysical
	}
	version := route.Physical.Version
	t.RouteVersion = &version
	return route.Physical.RegionRoutes, nil
}

func decodeRoute(got map[string][]byte, key []byte) (greptimekey.TableRouteValue, bool, error) {
	raw, ok := got[string(key)]
	if !ok {
		return greptimekey.TableRouteValue{}, false, nil
	}
	v, err := greptimekey.Decode[greptimekey.TableRouteValue](raw)
	if err != nil {
		return greptimekey.TableRouteValue{}, false, fmt.Errorf("table route %q: %w", key, err)
	}
	return v, true, nil
}

func (t *Table) setInfo(info greptimekey.TableInfo) {
	t.TableType, t.Engine = string(info.TableType), info.Meta.Engine
	for i, c := range info.Meta.Schema.ColumnSchemas {
		t.Columns = append(t.Columns, Column{
			Name: c.Name, DataType: c.DataType, IsNullable: c.IsNullable, IsTimeIndex: c.IsTimeIndex,
			PrimaryKey: slices.Contains(info.Meta.PrimaryKeyIndices, i),
		})
	}
}

// getKeys reads keys and returns the found values by key.
func getKeys(ctx context.Context, get Getter, keys ...[]byte) (map[string][]byte, error) {
	kvs, err := get(ctx, keys)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(kvs))
	for _, p := range kvs {
		out[string(p.Key)] = p.Value
	}
	return out, nil
}

// peerState is what the in-memory KV says of one datanode.
type peerState struct {
	lease    Lease
	last     time.Time
	ageMs    int64
	statTime time.Time
	roles    map[uint64]greptimekey.RegionRole
}

// readPeers reads the node info and last stat of every datanode the routes
// name, in one read.
func readPeers(ctx context.Context, memory Getter, routes []greptimekey.RegionRoute, o Options) (map[uint64]*peerState, error) {
	var ids []uint64
	for _, r := range routes {
		if r.LeaderPeer != nil {
			ids = append(ids, r.LeaderPeer.ID)
		}
		for _, f := range r.FollowerPeers {
			ids = append(ids, f.ID)
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	out := make(map[uint64]*peerState, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	keys := make([][]byte, 0, 2*len(ids))
	for _, id := range ids {
		keys = append(keys, greptimekey.NodeInfoKey(greptimekey.RoleDatanode, id), greptimekey.DatanodeStatKey(id))
	}
	got, err := getKeys(ctx, memory, keys...)
	if err != nil {
		return nil, fmt.Errorf("read datanode node info and stats: %w", err)
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	nowMs := now().UnixMilli()
	window := nodelist.LeaseWindow(nodelist.RoleDatanode, o.HeartbeatInterval).Milliseconds()
	for i, id := range ids {
		p, err := decodePeer(got, keys[2*i], keys[2*i+1], nowMs, window)
		if err != nil {
			return nil, err
		}
		out[id] = p
	}
	return out, nil
}

// decodePeer judges one datanode from its node info and stat, at nowMs. A
// timestamp ahead of the judging clock counts as no time elapsed, as
// nodelist judges it: the client's clock may run behind the leader's.
func decodePeer(got map[string][]byte, infoKey, statKey []byte, nowMs, windowMs int64) (*peerState, error) {
	p := &peerState{lease: LeaseNone}
	if raw, ok := got[string(infoKey)]; ok {
		info, err := greptimekey.Decode[greptimekey.NodeInfo](raw)
		if err != nil {
			return nil, fmt.Errorf("node info %q: %w", infoKey, err)
		}
		p.last = time.UnixMilli(info.LastActivityTs).UTC()
		p.ageMs = max(nowMs-info.LastActivityTs, 0)
		p.lease = LeaseExpired
		if p.ageMs < windowMs {
			p.lease = LeaseCurrent
		}
	}
	if raw, ok := got[string(statKey)]; ok {
		stats, err := greptimekey.Decode[greptimekey.StatValue](raw)
		if err != nil {
			return nil, fmt.Errorf("stats %q: %w", statKey, err)
		}
		if len(stats) > 0 {
			last := stats[len(stats)-1]
			p.statTime = time.UnixMilli(last.TimestampMillis).UTC()
			p.roles = make(map[uint64]greptimekey.RegionRole, len(last.RegionStats))
			for _, rs := range last.RegionStats {
				p.roles[rs.ID] = rs.Role
			}
		}
	}
	return p, nil
}

func regionOf(r greptimekey.RegionRoute, peers map[uint64]*peerState) Region {
	out := Region{
		RegionID:         r.Region.ID,
		RegionNumber:     greptimekey.RegionNumber(r.Region.ID),
		Followers:        make([]Peer, 0, len(r.FollowerPeers)),
		LeaderState:      string(r.LeaderState),
		WriteRoutePolicy: string(r.WriteRoutePolicy),
		PartitionExpr:    r.Region.PartitionExpr,
	}
	if r.LeaderDownSince != nil {
		out.LeaderDownSince = time.UnixMilli(*r.LeaderDownSince).UTC()
	}
	if r.LeaderPeer != nil {
		p := peerOf(*r.LeaderPeer, r.Region.ID, peers)
		out.Leader = &p
	}
	for _, f := range r.FollowerPeers {
		out.Followers = append(out.Followers, peerOf(f, r.Region.ID, peers))
	}
	return out
}

func peerOf(peer greptimekey.Peer, regionID uint64, peers map[uint64]*peerState) Peer {
	out := Peer{ID: peer.ID, Addr: peer.Addr, Lease: LeaseNone}
	s := peers[peer.ID]
	if s == nil {
		return out
	}
	out.Lease, out.StatTime = s.lease, s.statTime
	if s.lease != LeaseNone {
		age := s.ageMs
		out.LastHeartbeat, out.LastHeartbeatAgeMillis = s.last, &age
	}
	if role, ok := s.roles[regionID]; ok {
		out.ReportedRole = string(role)
	}
	return out
}
