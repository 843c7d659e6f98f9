package ddl

import (
	"context"
	"encoding/json"
	"fmt"

	greptimepb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/instruction"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/region"
	"github.com/pgmetasrv/metasrv/pkg/statuscode"
)

// Drop database steps (GreptimeDB's drop_database states).
const (
	stateCursor         = "cursor"
	stateDropTarget     = "executor"
	stateRemoveMetadata = "remove_metadata"
	stateBroadcast      = "broadcast"
)

// dropDatabase is GreptimeDB's DropDatabaseProcedure:
//
//	prepare          refuse a missing database (done with IF EXISTS)
//	cursor           take the database's first remaining table
//	executor         delete its metadata outright (no tombstones), tell the
//	                 nodes, drop its regions (fast path); back to cursor
//	remove_metadata  delete the schema key
//	broadcast        tell the nodes the schema is gone
//
// The table being dropped is persisted before its metadata goes, so a new
// leader finishes that table (every part of it is idempotent) and then
// takes the next one. There is no rollback: what is dropped stays dropped.
type dropDatabase struct {
	s      *Service
	data   dropDatabaseData
	guards []*region.Guard
}

type dropDatabaseData struct {
	State        string      `json:"state"`
	Catalog      string      `json:"catalog"`
	Schema       string      `json:"schema"`
	DropIfExists bool        `json:"drop_if_exists"`
	Target       *dropTarget `json:"target,omitempty"`
}

// dropTarget is the table the executor step drops.
type dropTarget struct {
	Table   greptimekey.TableName     `json:"table"`
	TableID uint32                    `json:"table_id"`
	Routes  []greptimekey.RegionRoute `json:"region_routes,omitempty"`
	WAL     map[uint32]string         `json:"region_wal_options,omitempty"`
	View    bool                      `json:"view,omitempty"`
}

func (s *Service) newDropDatabase(e *greptimepb.DropDatabaseExpr) (procedure.Procedure, error) {
	if e == nil {
		return nil, statuscode.MissingParameter("drop_database")
	}
	if err := checkNames(e.GetCatalogName(), e.GetSchemaName()); err != nil {
		return nil, err
	}
	return &dropDatabase{s: s, data: dropDatabaseData{State: statePrepare, Catalog: e.GetCatalogName(), Schema: e.GetSchemaName(), DropIfExists: e.GetDropIfExists()}}, nil
}

func (s *Service) loadDropDatabase(raw []byte) (procedure.Procedure, error) {
	p := &dropDatabase{s: s}
	if err := json.Unmarshal(raw, &p.data); err != nil {
		return nil, fmt.Errorf("drop database state: %w", err)
	}
	if p.data.State == stateDropTarget && p.data.Target != nil {
		// Held again before the term's leases are decided, as a drop table.
		if g, err := hold(p.s.opts.Keeper, p.data.Target.Routes); err == nil {
			p.guards = g
		}
	}
	return p, nil
}

func (p *dropDatabase) Type() string          { return typeDropDatabase }
func (p *dropDatabase) Dump() ([]byte, error) { return json.Marshal(p.data) }

func (p *dropDatabase) LockKeys() []procedure.LockKey {
	return []procedure.LockKey{procedure.SharedLock(catalogLock(p.data.Catalog)), procedure.ExclusiveLock(schemaLock(p.data.Catalog, p.data.Schema))}
}

func (p *dropDatabase) Execute(ctx context.Context, pc *procedure.Context) (procedure.Status, error) {
	ts, err := p.s.termOf(pc.Term)
	if err != nil {
		return procedure.Status{}, err
	}
	schemaKey := greptimekey.SchemaNameKey(p.data.Catalog, p.data.Schema)
	switch p.data.State {
	case statePrepare:
		found, err := exists(ctx, pc.Store, schemaKey)
		if err != nil {
			return procedure.Status{}, err
		}
		if !found {
			if p.data.DropIfExists {
				return procedure.Done(nil), nil
			}
			return procedure.Status{}, statuscode.Errorf(statuscode.InvalidArguments, "Schema nod found, schema: %s", p.data.Schema)
		}
		p.data.State = stateCursor
	case stateCursor:
		if err := p.nextTable(ctx, pc.Store); err != nil {
			return procedure.Status{}, err
		}
	case stateDropTarget:
		if err := p.dropTarget(ctx, pc, ts); err != nil {
			return procedure.Status{}, err
		}
		p.data.State, p.data.Target = stateCursor, nil
	case stateRemoveMetadata:
		if _, err := pc.Store.DeleteRange(ctx, kv.DeleteRangeRequest{Key: schemaKey}); err != nil {
			return procedure.Status{}, storeError(err)
		}
		p.data.State = stateBroadcast
	default:
		err := p.s.opts.Caches.InvalidateCaches(ctx, ts.id, []instruction.CacheIdent{
			instruction.SchemaName{CatalogName: p.data.Catalog, SchemaName: p.data.Schema},
		})
		if err := broadcastError(err, "schema "+p.data.Catalog+"."+p.data.Schema); err != nil {
			return procedure.Status{}, err
		}
		pc.Logger.Info("database dropped", "catalog", p.data.Catalog, "schema", p.data.Schema)
		return procedure.Done(nil), nil
	}
	return procedure.Executing(true), nil
}

// nextTable reads the database's first remaining table into Target, or
// moves on to removing the schema when none is left. A dropped table's name
// key is gone, so the first key is always the next table.
func (p *dropDatabase) nextTable(ctx context.Context, store kv.Backend) error {
	prefix := greptimekey.TableNameSchemaPrefix(p.data.Catalog, p.data.Schema)
	resp, err := store.Range(ctx, kv.RangeRequest{Key: prefix, RangeEnd: kv.PrefixEnd(prefix), Limit: 1})
	if err != nil {
		return storeError(err)
	}
	if len(resp.Kvs) == 0 {
		p.data.State = stateRemoveMetadata
		return nil
	}
	name, err := greptimekey.ParseTableNameKey(resp.Kvs[0].Key)
	if err != nil {
		return statuscode.Errorf(statuscode.Unexpected, "Unexpected: table name key %q: %v", resp.Kvs[0].Key, err)
	}
	v, err := greptimekey.Decode[greptimekey.TableNameValue](resp.Kvs[0].Value)
	if err != nil {
		return statuscode.Errorf(statuscode.Unexpected, "Unexpected: table name value of %s: %v", name, err)
	}
	t := &dropTarget{Table: name, TableID: v.TableID}
	info, err := kv.Get(ctx, store, greptimekey.TableInfoKey(v.TableID))
	if err != nil {
		return storeError(err)
	}
	if info != nil {
		if iv, err := greptimekey.Decode[greptimekey.TableInfoValue](info.Value); err == nil && iv.TableInfo.TableType == greptimekey.TableTypeView {
			t.View = true
		}
	}
	if !t.View {
		if t.Routes, t.WAL, err = physicalRoute(ctx, store, v.TableID); err != nil {
			return err
		}
	}
	p.data.Target, p.data.State = t, stateDropTarget
	return nil
}

// dropTarget is GreptimeDB's DropDatabaseExecutor for one table (or view).
func (p *dropDatabase) dropTarget(ctx context.Context, pc *procedure.Context, ts *termState) error {
	t := p.data.Target
	if t == nil {
		return nil
	}
	keys := metadataKeys(t.Table, t.TableID, t.Routes, t.WAL)
	if t.View {
		keys = [][]byte{greptimekey.TableNameKey(t.Table.Catalog, t.Table.Schema, t.Table.Table), greptimekey.TableInfoKey(t.TableID), greptimekey.ViewInfoKey(t.TableID)}
	}
	if len(p.guards) == 0 {
		g, err := hold(p.s.opts.Keeper, t.Routes)
		if err != nil {
			return err
		}
		p.guards = g
	}
	defer func() {
		for _, g := range p.guards {
			g.Release()
		}
		p.guards = nil
	}()
	if err := deleteKeys(ctx, pc.Store, keys, p.s.opts.MaxTxnOps); err != nil {
		return err
	}
	if err := p.s.invalidateTable(ctx, ts, t.Table, t.TableID); err != nil {
		return err
	}
	if err := dropRegions(ctx, p.s.opts.Regions, pc.Store, t.Routes, true); err != nil {
		return err
	}
	p.s.detect(pc.Term, t.Routes, false)
	pc.Logger.Info("table dropped with its database", "table", t.Table.String(), "table_id", t.TableID)
	return nil
}

// Rollback has nothing to restore: GreptimeDB's drop database cannot be
// rolled back either.
func (p *dropDatabase) Rollback(context.Context, *procedure.Context) error {
	for _, g := range p.guards {
		g.Release()
	}
	p.guards = nil
	return nil
}
