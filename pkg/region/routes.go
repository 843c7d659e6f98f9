package region

import (
	"context"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// StoreRoutes reads GreptimeDB's __table_route keys from store (the term's
// store: the leader cache, so a heartbeat's lease costs no PostgreSQL read),
// decoding every value it reads. In production the LeaseDecider reads
// through CachedStoreRoutes instead.
func StoreRoutes(store kv.Backend) Routes { return storeRoutes{store: store} }

// CachedStoreRoutes is StoreRoutes decoding through decoded: every datanode
// heartbeat reads its tables' routes, and a route of many regions costs
// milliseconds to decode while it rarely changes.
func CachedStoreRoutes(decoded *greptimekey.RouteCache) func(kv.Backend) Routes {
	return func(store kv.Backend) Routes { return storeRoutes{store: store, decoded: decoded} }
}

type storeRoutes struct {
	store   kv.Backend
	decoded *greptimekey.RouteCache // nil: decode every read
}

func (r storeRoutes) decode(id uint32, raw []byte) (greptimekey.TableRouteValue, error) {
	if r.decoded == nil {
		return greptimekey.Decode[greptimekey.TableRouteValue](raw)
	}
	return r.decoded.Decode(id, raw)
}

func (r storeRoutes) Placements(ctx context.Context, tableIDs []uint32) (map[uint32]TablePlacement, error) {
	keys := make([][]byte, len(tableIDs))
	for i, id := range tableIDs {
		keys[i] = greptimekey.TableRouteKey(id)
	}
	resp, err := r.store.BatchGet(ctx, kv.BatchGetRequest{Keys: keys})
	if err != nil {
		return nil, err
	}
	out := make(map[uint32]TablePlacement, len(resp.Kvs))
	for _, p := range resp.Kvs {
		id, err := greptimekey.ParseTableRouteKey(p.Key)
		if err != nil {
			continue
		}
		route, err := r.decode(id, p.Value)
		if err != nil {
			// A route GreptimeDB could not read either grants nothing: the
			// table's regions are then closeable, as for a missing route.
			continue
		}
		out[id] = placement(route)
	}
	return out, nil
}

func placement(route greptimekey.TableRouteValue) TablePlacement {
	if route.Physical == nil {
		return TablePlacement{Logical: true}
	}
	regions := make(map[uint32]RegionPlacement, len(route.Physical.RegionRoutes))
	for _, rr := range route.Physical.RegionRoutes {
		rp := RegionPlacement{LeaderState: leaderState(rr.LeaderState)}
		if rr.LeaderPeer != nil {
			rp.HasLeader, rp.LeaderID = true, rr.LeaderPeer.ID
		}
		for _, f := range rr.FollowerPeers {
			rp.FollowerIDs = append(rp.FollowerIDs, f.ID)
		}
		regions[greptimekey.RegionNumber(rr.Region.ID)] = rp
	}
	return TablePlacement{Regions: regions}
}

func leaderState(s greptimekey.LeaderState) LeaderState {
	switch s {
	case greptimekey.LeaderStateDowngrading:
		return LeaderDowngrading
	case greptimekey.LeaderStateStaging:
		return LeaderStaging
	default:
		return LeaderActive
	}
}
