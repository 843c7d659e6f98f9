package migration

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/statuscode"
)

// storeError marks a store failure worth retrying as such: the backend
// unreachable, or a write whose outcome is unknown (every step re-reads
// what it wrote before, so running it again is safe). A fencing error goes
// through unchanged, so the procedure stops.
func storeError(err error) error {
	if errors.Is(err, kv.ErrUnavailable) || errors.Is(err, kv.ErrOutcomeUnknown) {
		return procedure.Retryable(err)
	}
	return err
}

// routeSnapshot is a table route as read, with the exact bytes a
// compare-and-put of it compares against.
type routeSnapshot struct {
	tableID uint32
	raw     []byte
	value   greptimekey.TableRouteValue
	index   int // of the region in value.Physical.RegionRoutes
}

func (s *routeSnapshot) route() greptimekey.RegionRoute {
	return s.value.Physical.RegionRoutes[s.index]
}

// readRoute reads the route of regionID's table. A missing table route or
// region route, or a logical table, is not retryable.
// Decoding goes through decoded, so the value read is shared: a change
// copies what it alters (cloneRoutes).
func readRoute(ctx context.Context, store kv.Backend, decoded *greptimekey.RouteCache, regionID uint64) (*routeSnapshot, error) {
	snap, err := readTableRoute(ctx, store, decoded, greptimekey.RegionTableID(regionID))
	if err != nil {
		return nil, err
	}
	if err := snap.find(regionID); err != nil {
		return nil, err
	}
	return snap, nil
}

// readTableRoute reads a physical table's route; index is left at -1.
func readTableRoute(ctx context.Context, store kv.Backend, decoded *greptimekey.RouteCache, tableID uint32) (*routeSnapshot, error) {
	p, err := kv.Get(ctx, store, greptimekey.TableRouteKey(tableID))
	if err != nil {
		return nil, storeError(fmt.Errorf("read the route of table %d: %w", tableID, err))
	}
	if p == nil {
		// GreptimeDB's submit sorts this into table_not_found, on which the
		// supervisor forgets the region's detector.
		return nil, statuscode.Errorf(statuscode.TableNotFound, "Failed to find table route for %d", tableID)
	}
	v, err := decoded.Decode(tableID, p.Value)
	if err != nil {
		return nil, unexpected("the route of table %d does not decode: %v", tableID, err)
	}
	if v.Physical == nil {
		return nil, statuscode.Errorf(statuscode.Unexpected, "Unexpected table route type: TableRoute(%d) is a non-physical TableRouteValue.", tableID)
	}
	return &routeSnapshot{tableID: tableID, raw: p.Value, value: v, index: -1}, nil
}

// find points s at regionID's region route; a region the route does not
// have is GreptimeDB's RegionNotFound.
func (s *routeSnapshot) find(regionID uint64) error {
	s.index = slices.IndexFunc(s.value.Physical.RegionRoutes, func(r greptimekey.RegionRoute) bool { return r.Region.ID == regionID })
	if s.index < 0 {
		return statuscode.Errorf(statuscode.RegionNotFound, "Failed to find table route for %s", regionName(regionID))
	}
	return nil
}

// cloneRoutes copies routes deeply enough for one route to be changed.
func cloneRoutes(routes []greptimekey.RegionRoute) []greptimekey.RegionRoute {
	out := slices.Clone(routes)
	for i := range out {
		out[i].FollowerPeers = slices.Clone(out[i].FollowerPeers)
		if out[i].LeaderPeer != nil {
			out[i].LeaderPeer = new(*out[i].LeaderPeer)
		}
	}
	return out
}

// datanodeTableOps moves the __dn_table values of a table from the region
// distribution of old to that of next (GreptimeDB's DatanodeTableManager
// build_update_txn with unchanged options): a datanode left with no region
// of the table loses its key, a datanode whose regions changed gets its
// value rewritten from info, the others are left alone.
func datanodeTableOps(tableID uint32, old, next []greptimekey.RegionRoute, info greptimekey.RegionInfo) ([]kv.TxnOp, error) {
	cur, want := greptimekey.RegionDistribution(old), greptimekey.RegionDistribution(next)
	var ops []kv.TxnOp
	for _, dn := range slices.Sorted(maps.Keys(cur)) {
		if _, ok := want[dn]; !ok {
			ops = append(ops, kv.OpDelete(greptimekey.DatanodeTableKey(dn, tableID)))
		}
	}
	for _, dn := range slices.Sorted(maps.Keys(want)) {
		set := want[dn]
		if c, ok := cur[dn]; ok && slices.Equal(c.LeaderRegions, set.LeaderRegions) && slices.Equal(c.FollowerRegions, set.FollowerRegions) {
			continue
		}
		v, err := greptimekey.NewDatanodeTableValue(tableID, set, info).Encode()
		if err != nil {
			return nil, fmt.Errorf("encode the datanode table value of datanode %d, table %d: %w", dn, tableID, err)
		}
		ops = append(ops, kv.OpPut(greptimekey.DatanodeTableKey(dn, tableID), v))
	}
	return ops, nil
}

// datanodeTable reads the __dn_table value of a table on a datanode; a
// missing one is GreptimeDB's DatanodeTableNotFound, not retryable.
func datanodeTable(ctx context.Context, store kv.Backend, datanodeID uint64, tableID uint32) (greptimekey.DatanodeTableValue, error) {
	p, err := kv.Get(ctx, store, greptimekey.DatanodeTableKey(datanodeID, tableID))
	if err != nil {
		return greptimekey.DatanodeTableValue{}, storeError(fmt.Errorf("read the datanode table value of datanode %d, table %d: %w", datanodeID, tableID, err))
	}
	if p == nil {
		return greptimekey.DatanodeTableValue{}, statuscode.Errorf(statuscode.Unexpected, "Datanode table not found: %d, datanode: %d", tableID, datanodeID)
	}
	v, err := greptimekey.Decode[greptimekey.DatanodeTableValue](p.Value)
	if err != nil {
		return greptimekey.DatanodeTableValue{}, unexpected("the datanode table value of datanode %d, table %d does not decode: %v", datanodeID, tableID, err)
	}
	return v, nil
}

// tableName reads a table's name from its info (GreptimeDB's
// retrieve_table_info).
func tableName(ctx context.Context, store kv.Backend, tableID uint32) (greptimekey.TableName, error) {
	p, err := kv.Get(ctx, store, greptimekey.TableInfoKey(tableID))
	if err != nil {
		return greptimekey.TableName{}, storeError(fmt.Errorf("read the info of table %d: %w", tableID, err))
	}
	if p == nil {
		return greptimekey.TableName{}, statuscode.Errorf(statuscode.Unexpected, "Table info not found: %d", tableID)
	}
	v, err := greptimekey.Decode[greptimekey.TableInfoValue](p.Value)
	if err != nil {
		return greptimekey.TableName{}, unexpected("the info of table %d does not decode: %v", tableID, err)
	}
	return v.TableInfo.FullName(), nil
}

// datanodeLease reads a datanode's lease from the term's in-memory KV, nil
// when it has not heartbeated to this leader.
func datanodeLease(ctx context.Context, memory kv.Backend, id uint64) (*greptimekey.LeaseValue, error) {
	p, err := kv.Get(ctx, memory, greptimekey.DatanodeLeaseKey(id))
	if err != nil {
		return nil, fmt.Errorf("migration: read the lease of datanode %d: %w", id, err)
	}
	if p == nil {
		return nil, nil
	}
	v, err := greptimekey.Decode[greptimekey.LeaseValue](p.Value)
	if err != nil {
		return nil, nil // an unreadable lease vouches for nothing
	}
	return &v, nil
}
