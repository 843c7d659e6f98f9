package greptimekey

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// Region is one region of a table route (rpc/router.rs Region), written
// {"id":4398046511104,"name":"","attrs":{},"partition_expr":""}.
//
// On reading, id and name are required (id may be a number or a decimal
// string), attrs and partition_expr default to empty. A route written
// before partition_expr existed has a "partition" object instead; its first
// value_list entry becomes PartitionExpr, as GreptimeDB reads it, and is
// written back as partition_expr.
type Region struct {
	ID            uint64
	Name          string
	Attrs         map[string]string
	PartitionExpr string
}

type regionJSON struct {
	ID            uint64            `json:"id"`
	Name          string            `json:"name"`
	Attrs         map[string]string `json:"attrs"`
	PartitionExpr string            `json:"partition_expr"`
}

func (r Region) MarshalJSON() ([]byte, error) {
	return encode(regionJSON{r.ID, r.Name, nonNilMap(r.Attrs), r.PartitionExpr})
}

func (r *Region) UnmarshalJSON(data []byte) error {
	var id regionIDValue
	var legacy *legacyPartition
	out := Region{Attrs: map[string]string{}}
	if err := decodeObject("Region", data,
		required("id", &id),
		required("name", &out.Name),
		optional("attrs", &out.Attrs),
		option("partition", &legacy),
		optional("partition_expr", &out.PartitionExpr),
	); err != nil {
		return err
	}
	out.ID = uint64(id)
	if out.PartitionExpr == "" && legacy != nil && len(legacy.valueList) > 0 {
		out.PartitionExpr = legacy.valueList[0]
	}
	*r = out
	return nil
}

// regionIDValue reads store-api's RegionId, which GreptimeDB takes as a JSON
// number or as a string holding one (descriptors.rs str_or_u64).
type regionIDValue uint64

func (v *regionIDValue) UnmarshalJSON(data []byte) error {
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		n, err := parseRustUint(s, 64)
		if err != nil {
			return fmt.Errorf("region id %q: %w", s, err)
		}
		*v = regionIDValue(n)
		return nil
	}
	var n uint64
	if err := json.Unmarshal(data, &n); err != nil {
		return err
	}
	*v = regionIDValue(n)
	return nil
}

// legacyPartition is the "partition" object of routes written before
// partition_expr: {"column_list":[..],"value_list":[..]}, both required.
type legacyPartition struct{ valueList []string }

func (p *legacyPartition) UnmarshalJSON(data []byte) error {
	var columns, values []string
	if err := decodeObject("LegacyPartition", data,
		required("column_list", &columns),
		required("value_list", &values),
	); err != nil {
		return err
	}
	p.valueList = values
	return nil
}

// LeaderState is the state of a region's leader (rpc/router.rs
// LeaderState); the empty state is GreptimeDB's None, the normal leader.
type LeaderState string

const (
	LeaderStateNone LeaderState = ""
	// LeaderStateDowngrading: the leader is unavailable or being migrated
	// away; it gets a downgrading lease and refuses writes.
	LeaderStateDowngrading LeaderState = "Downgrading"
	// LeaderStateStaging: the leader takes writes that stay invisible.
	LeaderStateStaging LeaderState = "Staging"
)

func (s LeaderState) MarshalJSON() ([]byte, error) {
	switch s {
	case LeaderStateDowngrading, LeaderStateStaging:
		return []byte(`"` + string(s) + `"`), nil
	default:
		return nil, fmt.Errorf("%w: unknown leader state %q", ErrInvalidValue, string(s))
	}
}

func (s *LeaderState) UnmarshalJSON(data []byte) error {
	var name string
	if err := json.Unmarshal(data, &name); err != nil {
		return err
	}
	switch name {
	case "Downgrading", "Downgraded": // the old name is still read
		*s = LeaderStateDowngrading
	case "Staging":
		*s = LeaderStateStaging
	default:
		return fmt.Errorf("unknown variant %q, want Downgrading or Staging", name)
	}
	return nil
}

// WriteRoutePolicy is how frontends route writes to a region
// (rpc/router.rs WriteRoutePolicy); empty is GreptimeDB's None.
type WriteRoutePolicy string

const (
	WriteRoutePolicyNone            WriteRoutePolicy = ""
	WriteRoutePolicyNormal          WriteRoutePolicy = "Normal"
	WriteRoutePolicyIgnoreAllWrites WriteRoutePolicy = "IgnoreAllWrites"
)

func (p WriteRoutePolicy) MarshalJSON() ([]byte, error) {
	switch p {
	case WriteRoutePolicyNormal, WriteRoutePolicyIgnoreAllWrites:
		return []byte(`"` + string(p) + `"`), nil
	default:
		return nil, fmt.Errorf("%w: unknown write route policy %q", ErrInvalidValue, string(p))
	}
}

func (p *WriteRoutePolicy) UnmarshalJSON(data []byte) error {
	var name string
	if err := json.Unmarshal(data, &name); err != nil {
		return err
	}
	switch WriteRoutePolicy(name) {
	case WriteRoutePolicyNormal, WriteRoutePolicyIgnoreAllWrites:
		*p = WriteRoutePolicy(name)
		return nil
	default:
		return fmt.Errorf("unknown variant %q, want Normal or IgnoreAllWrites", name)
	}
}

// RegionRoute is where one region lives (rpc/router.rs RegionRoute):
//
//	{"region":{...},"leader_peer":{"id":1,"addr":"a1"},"follower_peers":[],"leader_down_since":null}
//
// leader_state and write_route_policy are written only when set (serde's
// skip_serializing_if), leader_peer and leader_down_since always (null for
// none). On reading, region and follower_peers are required, the rest may
// be missing; leader_state is also read under its old name leader_status.
type RegionRoute struct {
	Region           Region
	LeaderPeer       *Peer
	FollowerPeers    []Peer
	LeaderState      LeaderState
	LeaderDownSince  *int64 // Unix milliseconds; set while Downgrading
	WriteRoutePolicy WriteRoutePolicy
}

type regionRouteJSON struct {
	Region           Region           `json:"region"`
	LeaderPeer       *Peer            `json:"leader_peer"`
	FollowerPeers    []Peer           `json:"follower_peers"`
	LeaderState      LeaderState      `json:"leader_state,omitempty"`
	LeaderDownSince  *int64           `json:"leader_down_since"`
	WriteRoutePolicy WriteRoutePolicy `json:"write_route_policy,omitempty"`
}

func (r RegionRoute) MarshalJSON() ([]byte, error) {
	return encode(regionRouteJSON{
		r.Region, r.LeaderPeer, nonNil(r.FollowerPeers), r.LeaderState, r.LeaderDownSince, r.WriteRoutePolicy,
	})
}

func (r *RegionRoute) UnmarshalJSON(data []byte) error {
	var out RegionRoute
	var state, oldState LeaderState
	if err := decodeObject("RegionRoute", data,
		required("region", &out.Region),
		option("leader_peer", &out.LeaderPeer),
		required("follower_peers", listOf(&out.FollowerPeers)),
		option("leader_state", &state),
		option("leader_status", &oldState),
		option("leader_down_since", &out.LeaderDownSince),
		option("write_route_policy", &out.WriteRoutePolicy),
	); err != nil {
		return err
	}
	switch {
	case state != LeaderStateNone && oldState != LeaderStateNone:
		return &fieldError{typ: "RegionRoute", err: errors.New(`duplicate field "leader_state" (also written "leader_status")`)}
	case state != LeaderStateNone:
		out.LeaderState = state
	default:
		out.LeaderState = oldState
	}
	*r = out
	return nil
}

// SetLeaderState changes the leader's state as GreptimeDB's
// RegionRoute::set_leader_state does, and reports whether it changed:
// entering Downgrading stamps LeaderDownSince with nowMillis (staying in it
// keeps the first stamp), any other state clears it.
func (r *RegionRoute) SetLeaderState(state LeaderState, nowMillis int64) bool {
	updated := r.LeaderState != state
	switch {
	case state == LeaderStateDowngrading && updated:
		r.LeaderDownSince = &nowMillis
	case state == LeaderStateDowngrading:
	default:
		r.LeaderDownSince = nil
	}
	r.LeaderState = state
	return updated
}

// LeaderRegionRole is the role the leader peer's copy of the region has
// (RegionRoute::leader_region_role); false when the route has no leader.
func (r RegionRoute) LeaderRegionRole() (RegionRole, bool) {
	switch {
	case r.LeaderPeer == nil:
		return "", false
	case r.LeaderState == LeaderStateStaging:
		return RegionRoleStagingLeader, true
	case r.LeaderState == LeaderStateDowngrading:
		return RegionRoleDowngradingLeader, true
	default:
		return RegionRoleLeader, true
	}
}

// RegionRoleSet is the regions of one table on one datanode (key.rs
// RegionRoleSet), by region number, ascending.
type RegionRoleSet struct {
	LeaderRegions   []uint32
	FollowerRegions []uint32
}

// RegionDistribution groups a table's routes by datanode id, as GreptimeDB's
// region_distribution does: the regions each datanode leads and follows,
// each list sorted. Its keys are the datanodes that get a __dn_table key.
func RegionDistribution(routes []RegionRoute) map[uint64]RegionRoleSet {
	dist := make(map[uint64]RegionRoleSet)
	for _, route := range routes {
		number := RegionNumber(route.Region.ID)
		if route.LeaderPeer != nil {
			set := dist[route.LeaderPeer.ID]
			set.LeaderRegions = append(set.LeaderRegions, number)
			dist[route.LeaderPeer.ID] = set
		}
		for _, peer := range route.FollowerPeers {
			set := dist[peer.ID]
			set.FollowerRegions = append(set.FollowerRegions, number)
			dist[peer.ID] = set
		}
	}
	for id, set := range dist {
		slices.Sort(set.LeaderRegions)
		slices.Sort(set.FollowerRegions)
		set.LeaderRegions = nonNil(set.LeaderRegions)
		set.FollowerRegions = nonNil(set.FollowerRegions)
		dist[id] = set
	}
	return dist
}

// nonNilMap returns m, or an empty map for nil, so that it is written as {}.
func nonNilMap[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return map[K]V{}
	}
	return m
}
