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
func readRoute(ctx context.Context, store kv.Backend, regionID uint64) (*routeSnapshot, error) {
	tableID := greptimekey.RegionTableID(regionID)
	p, err := kv.Get(ctx, store, greptimekey.TableRouteKey(tableID))
	if err != nil {
		return nil, storeError(fmt.Errorf("read the route of table %d: %w", tableID, err))
	}
	if p == nil {
		// GreptimeDB's submit sorts this into table_not_found, on which the
		// supervisor forgets the region's detector.
		return nil, statuscode.Errorf(statuscode.TableNotFound, "Failed to find table route for %d", tableID)
	}
	v, err := greptimekey.Decode[greptimekey.TableRouteValue](p.Value)
	if err != nil {
		return nil, unexpected("the route of table %d does not decode: %v", tableID, err)
	}
	if v.Physical == nil {
		return nil, statuscode.Errorf(statuscode.Unexpected, "Unexpected table route type: TableRoute(%d) is a non-physical TableRouteValue.", tableID)
	}
	i := slices.IndexFunc(v.Physical.RegionRoutes, func(r greptimekey.RegionRoute) bool { return r.Region.ID == regionID })
	if i < 0 {
		return nil, statuscode.Errorf(statuscode.RegionNotFound, "Failed to find table route for %s", regionName(regionID))
	}
	return &routeSnapshot{tableID: tableID, raw: p.Value, value: v, index: i}, nil
}

// routeGates serialise the route updates of one table's migrations on this
// leader. Each migration moves one region, and all of a table's regions
// share one __table_route value: a failover of a datanode's 100 regions
// would otherwise run 100 compare-and-puts on one key at once, and retry
// the losers with backoff (a first run spent minutes in those retries).
// Taken in turn, every update finds the value its read saw. The
// compare-and-put stays: writers outside this leader's migrations (DDL, a
// deposed leader) still lose to it. Tables are striped over a fixed set of
// gates, so two tables may share one (they then also take turns).
type routeGates [64]chan struct{}

func newRouteGates() *routeGates {
	var g routeGates
	for i := range g {
		g[i] = make(chan struct{}, 1)
	}
	return &g
}

// enter waits for table's gate; the returned func leaves it.
func (g *routeGates) enter(ctx context.Context, table uint32) (func(), error) {
	gate := g[table%uint32(len(g))]
	select {
	case gate <- struct{}{}:
		return func() { <-gate }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// updateRoute is updateRoute taking regionID's table's gate.
func (m *Manager) updateRoute(ctx context.Context, store kv.Backend, regionID uint64,
	done func(greptimekey.RegionRoute) (bool, error), change func(*routeSnapshot) (routeChange, error),
) (bool, error) {
	leave, err := m.gates.enter(ctx, greptimekey.RegionTableID(regionID))
	if err != nil {
		return false, err
	}
	defer leave()
	return updateRoute(ctx, store, regionID, done, change)
}

// routeChange is what one route update writes: the region routes of the
// new value and other keys put or deleted with it, in one transaction.
type routeChange struct {
	routes []greptimekey.RegionRoute
	ops    []kv.TxnOp
}

// updateRoute rewrites the route of regionID's table with a compare-and-put
// against the bytes read, as GreptimeDB's table metadata manager does. done
// reports whether the region's route already is as wanted, so a step that
// runs again after a commit whose answer was lost writes nothing; change
// builds the update from the snapshot. A compare that fails for another
// reason (another region of the table changed) is retried.
func updateRoute(ctx context.Context, store kv.Backend, regionID uint64,
	done func(greptimekey.RegionRoute) (bool, error), change func(*routeSnapshot) (routeChange, error),
) (bool, error) {
	snap, err := readRoute(ctx, store, regionID)
	if err != nil {
		return false, err
	}
	if ok, err := done(snap.route()); ok || err != nil {
		return false, err
	}
	c, err := change(snap)
	if err != nil {
		return false, err
	}
	next := greptimekey.TableRouteValue{Physical: new(snap.value.Physical.Next(c.routes))}
	raw, err := next.Encode()
	if err != nil {
		return false, fmt.Errorf("encode the route of table %d: %w", snap.tableID, err)
	}
	key := greptimekey.TableRouteKey(snap.tableID)
	resp, err := store.Txn(ctx, kv.TxnRequest{
		Compare: []kv.Compare{kv.CompareValue(key, kv.CompareEqual, snap.raw)},
		Success: append(slices.Clone(c.ops), kv.OpPut(key, raw)),
	})
	if err != nil {
		return false, storeError(fmt.Errorf("update the route of table %d: %w", snap.tableID, err))
	}
	if resp.Succeeded {
		return true, nil
	}
	again, err := readRoute(ctx, store, regionID)
	if err != nil {
		return false, err
	}
	if ok, err := done(again.route()); ok || err != nil {
		return false, err
	}
	return false, retryLater("the route of table %d changed while region %s was updated", snap.tableID, regionName(regionID))
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
