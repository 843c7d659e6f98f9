package ddl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	greptimepb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1"
	"github.com/pgmetasrv/metasrv/pkg/election"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/instruction"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/region"
	"github.com/pgmetasrv/metasrv/pkg/statuscode"
)

// Drop table steps (GreptimeDB's DropTableState).
const (
	stateDeleteMetadata  = "delete_metadata"
	stateInvalidateCache = "invalidate_table_cache"
	stateDropRegions     = "datanode_drop_regions"
	stateDeleteTombstone = "delete_tombstone"
)

// dropTable is GreptimeDB's DropTableProcedure:
//
//	prepare                 refuse a missing table (done with IF EXISTS);
//	                        read its route and WAL options
//	delete_metadata         move every metadata key under __tombstone/
//	invalidate_table_cache  tell frontends, datanodes and flownodes
//	datanode_drop_regions   drop the leader regions, close the followers
//	delete_tombstone        delete the tombstones
//
// Rollback restores the keys from their tombstones while no region has been
// dropped yet; after that the drop can only go forward (GreptimeDB does not
// roll a physical table's drop back at all), and a drop that cannot is left
// failed for an operator.
type dropTable struct {
	s      *Service
	data   dropTableData
	guards []*region.Guard
}

type dropTableData struct {
	State        string                    `json:"state"`
	Table        greptimekey.TableName     `json:"table"`
	TableID      uint32                    `json:"table_id"`
	DropIfExists bool                      `json:"drop_if_exists"`
	Routes       []greptimekey.RegionRoute `json:"region_routes,omitempty"`
	WAL          map[uint32]string         `json:"region_wal_options,omitempty"`
}

func (s *Service) newDropTable(e *greptimepb.DropTableExpr) (procedure.Procedure, error) {
	if e == nil {
		return nil, statuscode.MissingParameter("drop_table")
	}
	if err := checkNames(e.GetCatalogName(), e.GetSchemaName(), e.GetTableName()); err != nil {
		return nil, err
	}
	if e.GetTableId() == nil {
		return nil, statuscode.MissingParameter("table_id")
	}
	return &dropTable{s: s, data: dropTableData{
		State:        statePrepare,
		Table:        greptimekey.TableName{Catalog: e.GetCatalogName(), Schema: e.GetSchemaName(), Table: e.GetTableName()},
		TableID:      e.GetTableId().GetId(),
		DropIfExists: e.GetDropIfExists(),
	}}, nil
}

func (s *Service) loadDropTable(raw []byte) (procedure.Procedure, error) {
	p := &dropTable{s: s}
	if err := json.Unmarshal(raw, &p.data); err != nil {
		return nil, fmt.Errorf("drop table state: %w", err)
	}
	switch p.data.State {
	case stateDeleteMetadata, stateInvalidateCache, stateDropRegions:
		// GreptimeDB's recover: the dropping regions are held again before
		// the term's leases are decided; a failure is met again by the step.
		_ = p.hold()
	}
	return p, nil
}

func (p *dropTable) Type() string          { return typeDropTable }
func (p *dropTable) Dump() ([]byte, error) { return json.Marshal(p.data) }

func (p *dropTable) LockKeys() []procedure.LockKey {
	n := p.data.Table
	return []procedure.LockKey{
		procedure.SharedLock(catalogLock(n.Catalog)),
		procedure.SharedLock(schemaLock(n.Catalog, n.Schema)),
		procedure.ExclusiveLock(tableLock(p.data.TableID)),
	}
}

func (p *dropTable) Execute(ctx context.Context, pc *procedure.Context) (procedure.Status, error) {
	ts, err := p.s.termOf(pc.Term)
	if err != nil {
		return procedure.Status{}, err
	}
	next := map[string]string{
		statePrepare: stateDeleteMetadata, stateDeleteMetadata: stateInvalidateCache,
		stateInvalidateCache: stateDropRegions, stateDropRegions: stateDeleteTombstone,
	}
	switch p.data.State {
	case statePrepare:
		found, err := p.prepare(ctx, pc.Store)
		if err != nil || !found {
			return procedure.Done(nil), err
		}
	case stateDeleteMetadata:
		if err := p.hold(); err != nil {
			return procedure.Status{}, err
		}
		if err := moveKeys(ctx, pc.Store, p.keys(), tombstones(p.keys()), p.s.chunk()); err != nil {
			return procedure.Status{}, err
		}
	case stateInvalidateCache:
		if err := p.s.invalidateTable(ctx, ts, p.data.Table, p.data.TableID); err != nil {
			return procedure.Status{}, err
		}
	case stateDropRegions:
		if err := p.hold(); err != nil {
			return procedure.Status{}, err
		}
		if err := dropRegions(ctx, p.s.opts.Regions, pc.Store, p.data.Routes, false); err != nil {
			return procedure.Status{}, err
		}
		p.s.detect(pc.Term, p.data.Routes, false)
	default:
		if err := deleteKeys(ctx, pc.Store, tombstones(p.keys()), p.s.opts.MaxTxnOps); err != nil {
			return procedure.Status{}, err
		}
		p.release()
		pc.Logger.Info("table dropped", "table", p.data.Table.String(), "table_id", p.data.TableID)
		return procedure.Done(nil), nil
	}
	p.data.State = next[p.data.State]
	return procedure.Executing(true), nil
}

// prepare checks the table and reads what the later steps need; found is
// false for a missing table under IF EXISTS.
func (p *dropTable) prepare(ctx context.Context, store kv.Backend) (found bool, err error) {
	id, err := tableIDOf(ctx, store, p.data.Table)
	if err != nil {
		return false, err
	}
	if id == nil {
		if p.data.DropIfExists {
			return false, nil
		}
		return false, statuscode.Errorf(statuscode.TableNotFound, "Table not found: '%s'", p.data.Table)
	}
	if *id != p.data.TableID {
		return false, statuscode.Errorf(statuscode.TableNotFound, "Table not found: '%s' with id %d (the name belongs to table id %d)", p.data.Table, p.data.TableID, *id)
	}
	routes, wal, err := physicalRoute(ctx, store, p.data.TableID)
	if err != nil {
		return false, err
	}
	p.data.Routes, p.data.WAL = routes, wal
	return true, nil
}

// keys is the table's metadata key list (GreptimeDB's table_metadata_keys).
func (p *dropTable) keys() [][]byte {
	return metadataKeys(p.data.Table, p.data.TableID, p.data.Routes, p.data.WAL)
}

func (p *dropTable) hold() error {
	if len(p.guards) > 0 {
		return nil
	}
	g, err := hold(p.s.opts.Keeper, p.data.Routes)
	p.guards = g
	return err
}

func (p *dropTable) release() {
	for _, g := range p.guards {
		g.Release()
	}
	p.guards = nil
}

// Rollback restores the metadata while the regions still exist.
func (p *dropTable) Rollback(ctx context.Context, pc *procedure.Context) error {
	defer p.release()
	switch p.data.State {
	case statePrepare:
		return nil
	case stateDeleteMetadata, stateInvalidateCache:
		if _, err := p.s.termOf(pc.Term); err != nil {
			return err
		}
		return moveKeys(ctx, pc.Store, tombstones(p.keys()), p.keys(), p.s.chunk())
	default:
		return statuscode.Errorf(statuscode.IllegalState, "Illegal state: table %s (id %d) cannot be restored once its regions are being dropped; its metadata is under __tombstone/", p.data.Table, p.data.TableID)
	}
}

// physicalRoute reads a physical table's region routes and, from its
// datanodes' __dn_table values, its regions' WAL options.
func physicalRoute(ctx context.Context, store kv.Backend, tableID uint32) ([]greptimekey.RegionRoute, map[uint32]string, error) {
	route, err := readRoute(ctx, store, tableID)
	if err != nil || route == nil {
		return nil, nil, err
	}
	if route.Physical == nil {
		return nil, nil, statuscode.Errorf(statuscode.Unsupported, "Unsupported operation: table id %d is a logical (metric engine) table; metasrv drops physical tables only", tableID)
	}
	routes := route.Physical.RegionRoutes
	wal := map[uint32]string{}
	for dn := range greptimekey.RegionDistribution(routes) {
		dp, err := kv.Get(ctx, store, greptimekey.DatanodeTableKey(dn, tableID))
		if err != nil {
			return nil, nil, storeError(err)
		}
		if dp == nil {
			continue
		}
		v, err := greptimekey.Decode[greptimekey.DatanodeTableValue](dp.Value)
		if err != nil {
			continue // its WAL options only matter for Kafka topics
		}
		for n, w := range v.RegionInfo.RegionWALOptions {
			wal[n] = w
		}
	}
	return routes, wal, nil
}

// readRoute reads a table's route, nil when it has none.
func readRoute(ctx context.Context, store kv.Backend, tableID uint32) (*greptimekey.TableRouteValue, error) {
	p, err := kv.Get(ctx, store, greptimekey.TableRouteKey(tableID))
	if err != nil {
		return nil, storeError(err)
	}
	if p == nil {
		return nil, nil
	}
	route, err := greptimekey.Decode[greptimekey.TableRouteValue](p.Value)
	if err != nil {
		return nil, statuscode.Errorf(statuscode.Unexpected, "Unexpected: table route of table id %d: %v", tableID, err)
	}
	return &route, nil
}

// physicalRoutes reads a physical table's region routes: a missing route is
// GreptimeDB's TableRouteNotFound, a logical one the caller's logical().
func physicalRoutes(ctx context.Context, store kv.Backend, tableID uint32, logical func() error) ([]greptimekey.RegionRoute, error) {
	route, err := readRoute(ctx, store, tableID)
	if err != nil {
		return nil, err
	}
	if route == nil {
		return nil, statuscode.Errorf(statuscode.Unexpected, "Failed to find table route for table id %d", tableID)
	}
	if route.Physical == nil {
		return nil, logical()
	}
	return route.Physical.RegionRoutes, nil
}

// metadataKeys is every key of a table's metadata.
func metadataKeys(n greptimekey.TableName, id uint32, routes []greptimekey.RegionRoute, wal map[uint32]string) [][]byte {
	parsed, err := greptimekey.ParseRegionWALOptions(wal)
	if err != nil {
		parsed = nil // unreadable options name no Kafka topic key
	}
	return greptimekey.TableMetadataKeys(n, id, greptimekey.NewPhysicalTableRoute(routes), parsed)
}

// invalidateTable broadcasts that a table's name and id changed.
func (s *Service) invalidateTable(ctx context.Context, ts *termState, n greptimekey.TableName, id uint32) error {
	err := s.opts.Caches.InvalidateCaches(ctx, ts.id, []instruction.CacheIdent{
		instruction.TableName{CatalogName: n.Catalog, SchemaName: n.Schema, TableName: n.Table},
		instruction.TableID(id),
	})
	return broadcastError(err, "table "+n.String())
}

// broadcastError: a broadcast refused because the term ended stops the
// procedure as a fencing error does; any other failure is retried.
func broadcastError(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, election.ErrNotLeader):
		return fmt.Errorf("invalidate the caches of %s: %w: %w", what, election.ErrFenced, err)
	default:
		return procedure.Retryable(fmt.Errorf("invalidate the caches of %s: %w", what, err))
	}
}

// chunk is how many keys one tombstone move transaction carries: each key
// takes two success operations, and max_txn_ops bounds them.
func (s *Service) chunk() int { return max(s.opts.MaxTxnOps/2, 1) }
