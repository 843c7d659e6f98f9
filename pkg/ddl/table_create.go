package ddl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/nodelist"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/region"
	"github.com/pgmetasrv/metasrv/pkg/selector"
	"github.com/pgmetasrv/metasrv/pkg/sequence"
	"github.com/pgmetasrv/metasrv/pkg/statuscode"
)

// Create table steps (GreptimeDB's CreateTableState).
const (
	stateCreateRegions = "datanode_create_regions"
)

// createTable is GreptimeDB's CreateTableProcedure for a physical table:
//
//	prepare                  refuse an existing name (or answer its id with
//	                         IF NOT EXISTS); allocate the table id, place the
//	                         regions on datanodes, pick their WAL options;
//	                         all of it is persisted before any datanode is
//	                         asked, so a resumed procedure reuses them
//	datanode_create_regions  send each region's CreateRequest to its leader
//	                         (a datanode creating a region it has is a no-op)
//	create_metadata          one fenced transaction: table name, info, route
//	                         and every datanode's __dn_table key
//
// Rollback (GreptimeDB has none) drops the regions it may have created, so
// a table that never got its metadata leaves no region behind.
type createTable struct {
	s    *Service
	data createTableData
	task *metapb.CreateTableTask
	// guards hold the regions in the keeper while they are being created;
	// in memory only, taken again by a resumed procedure.
	guards []*region.Guard
}

type createTableData struct {
	State     string                    `json:"state"`
	Task      []byte                    `json:"task"` // the CreateTableTask, protobuf-encoded
	TableInfo *greptimekey.TableInfo    `json:"table_info,omitempty"`
	Routes    []greptimekey.RegionRoute `json:"region_routes,omitempty"`
	WAL       map[uint32]string         `json:"region_wal_options,omitempty"`
}

func (s *Service) newCreateTable(t *metapb.CreateTableTask) (procedure.Procedure, error) {
	e := t.GetCreateTable()
	if e == nil {
		return nil, statuscode.MissingParameter("create_table")
	}
	if err := checkNames(e.GetCatalogName(), e.GetSchemaName(), e.GetTableName()); err != nil {
		return nil, err
	}
	info, err := greptimekey.Decode[greptimekey.TableInfo](t.GetTableInfo())
	if err != nil {
		return nil, statuscode.Errorf(statuscode.InvalidArguments, "Invalid arguments: table_info of table %s.%s.%s: %v", e.GetCatalogName(), e.GetSchemaName(), e.GetTableName(), err)
	}
	if info.FullName() != (greptimekey.TableName{Catalog: e.GetCatalogName(), Schema: e.GetSchemaName(), Table: e.GetTableName()}) {
		return nil, statuscode.Errorf(statuscode.InvalidArguments, "Invalid arguments: table_info names table %s, the expression %s.%s.%s", info.FullName(), e.GetCatalogName(), e.GetSchemaName(), e.GetTableName())
	}
	if _, err := regionTemplate(e); err != nil {
		return nil, err
	}
	raw, err := proto.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("ddl: encode create table task: %w", err)
	}
	return &createTable{s: s, task: t, data: createTableData{State: statePrepare, Task: raw, TableInfo: &info}}, nil
}

func (s *Service) loadCreateTable(raw []byte) (procedure.Procedure, error) {
	p := &createTable{s: s}
	if err := json.Unmarshal(raw, &p.data); err != nil {
		return nil, fmt.Errorf("create table state: %w", err)
	}
	p.task = &metapb.CreateTableTask{}
	if err := proto.Unmarshal(p.data.Task, p.task); err != nil {
		return nil, fmt.Errorf("create table task: %w", err)
	}
	if p.data.TableInfo == nil {
		return nil, fmt.Errorf("create table state has no table_info")
	}
	if p.data.State != statePrepare {
		// A resumed create holds its regions before the term's leases can
		// close them (GreptimeDB's recover); a failure here is met again,
		// and reported, by the step.
		_ = p.holdRegions()
	}
	return p, nil
}

func (p *createTable) Type() string          { return typeCreateTable }
func (p *createTable) Dump() ([]byte, error) { return json.Marshal(p.data) }

func (p *createTable) name() greptimekey.TableName { return p.data.TableInfo.FullName() }

func (p *createTable) LockKeys() []procedure.LockKey {
	n := p.name()
	return []procedure.LockKey{
		procedure.SharedLock(catalogLock(n.Catalog)),
		procedure.SharedLock(schemaLock(n.Catalog, n.Schema)),
		procedure.ExclusiveLock(tableNameLock(n.Catalog, n.Schema, n.Table)),
	}
}

func (p *createTable) Execute(ctx context.Context, pc *procedure.Context) (procedure.Status, error) {
	ts, err := p.s.termOf(pc.Term)
	if err != nil {
		return procedure.Status{}, err
	}
	switch p.data.State {
	case statePrepare:
		return p.prepare(ctx, pc, ts)
	case stateCreateRegions:
		if err := p.holdRegions(); err != nil {
			return procedure.Status{}, err
		}
		if err := p.createRegions(ctx, pc); err != nil {
			return procedure.Status{}, err
		}
		p.data.State = stateCreateMetadata
		return procedure.Executing(true), nil
	default:
		return p.createMetadata(ctx, pc)
	}
}

func (p *createTable) prepare(ctx context.Context, pc *procedure.Context, ts *termState) (procedure.Status, error) {
	n := p.name()
	existing, err := tableIDOf(ctx, pc.Store, n)
	if err != nil {
		return procedure.Status{}, err
	}
	if existing != nil {
		if p.task.GetCreateTable().GetCreateIfNotExists() {
			return procedure.Done(encodeOutput(*existing)), nil
		}
		return procedure.Status{}, statuscode.Errorf(statuscode.TableAlreadyExists, "Table already exists, table: %s", n)
	}
	// The datanodes first: a step retried while none is known yet takes
	// no table id.
	peers, err := p.selectDatanodes(ctx, ts)
	if err != nil {
		return procedure.Status{}, err
	}
	id, err := p.allocateTableID(ctx, ts)
	if err != nil {
		return procedure.Status{}, err
	}
	routes := p.placeRegions(peers, id)
	wal := greptimekey.WALOptions{Provider: greptimekey.WALRaftEngine}
	if p.data.TableInfo.Meta.Options.SkipWAL {
		wal.Provider = greptimekey.WALNoop
	}
	encoded, err := wal.Encode()
	if err != nil {
		return procedure.Status{}, err
	}
	p.data.WAL = make(map[uint32]string, len(routes))
	for _, r := range routes {
		p.data.WAL[greptimekey.RegionNumber(r.Region.ID)] = string(encoded)
	}
	p.data.TableInfo.Ident.TableID = id
	p.data.Routes = routes
	p.data.State = stateCreateRegions
	pc.Logger.Info("table id allocated", "table", n.String(), "table_id", id, "regions", len(routes))
	return procedure.Executing(true), nil
}

// allocateTableID takes the id the frontend asked for, which GreptimeDB
// accepts only below the sequence's range (system tables), else the next
// id of the table_id sequence.
func (p *createTable) allocateTableID(ctx context.Context, ts *termState) (uint32, error) {
	if want := p.task.GetCreateTable().GetTableId(); want != nil {
		if want.GetId() >= sequence.MinUserTableID {
			return 0, statuscode.Errorf(statuscode.Unsupported, "Unsupported operation: create table by id %d that is reserved in this node", want.GetId())
		}
		return want.GetId(), nil
	}
	id, err := ts.tableIDs.Next(ctx)
	if err != nil {
		return 0, storeError(fmt.Errorf("allocate a table id: %w", err))
	}
	if id > uint64(^uint32(0)) {
		return 0, statuscode.Errorf(statuscode.Unexpected, "table id %d is over the table id space", id)
	}
	return uint32(id), nil
}

// selectDatanodes asks the selector for a datanode per region.
func (p *createTable) selectDatanodes(ctx context.Context, ts *termState) ([]greptimekey.Peer, error) {
	n := max(len(p.task.GetPartitions()), 1)
	peers, err := p.s.opts.Selector.Select(ctx, selector.Input{Memory: ts.memory, HeartbeatInterval: p.s.opts.HeartbeatInterval},
		selector.Options{MinRequiredItems: n, AllowDuplication: true, WorkloadFilter: selector.AcceptIngestWorkload})
	if err == nil && len(peers) == 0 {
		err = &selector.NotEnoughAvailableError{Required: n}
	}
	if errors.Is(err, selector.ErrNotEnoughAvailableDatanodes) && time.Since(ts.started) < nodelist.LeaseWindow(nodelist.RoleDatanode, p.s.opts.HeartbeatInterval) {
		// A new leader knows the datanodes only from their heartbeats to
		// it: wait for them (GreptimeDB retries this error too) rather
		// than refuse a create a failover interrupted.
		return nil, procedure.Retryable(err)
	}
	return peers, err
}

// placeRegions is GreptimeDB's region routes allocator: one region per
// partition (region 0 alone without partitions), region i on the i-th
// datanode the selector returned, cycling.
func (p *createTable) placeRegions(peers []greptimekey.Peer, tableID uint32) []greptimekey.RegionRoute {
	partitions := p.task.GetPartitions()
	routes := make([]greptimekey.RegionRoute, max(len(partitions), 1))
	for i := range routes {
		peer := peers[i%len(peers)]
		routes[i] = greptimekey.RegionRoute{
			Region:     greptimekey.Region{ID: greptimekey.RegionID(tableID, uint32(i)), Attrs: map[string]string{}},
			LeaderPeer: &peer,
		}
		if i < len(partitions) {
			routes[i].Region.PartitionExpr = partitions[i].GetExpression()
		}
	}
	return routes
}

// holdRegions registers the leader regions as operating (being created), so
// that the lease of a region the datanode reports before the route exists
// keeps its leader role; a resumed procedure takes them again.
func (p *createTable) holdRegions() error {
	if len(p.guards) > 0 {
		return nil
	}
	guards, err := hold(p.s.opts.Keeper, p.data.Routes)
	if err != nil {
		return err
	}
	p.guards = guards
	return nil
}

func (p *createTable) release() {
	for _, g := range p.guards {
		g.Release()
	}
	p.guards = nil
}

func (p *createTable) createRegions(ctx context.Context, pc *procedure.Context) error {
	tmpl, err := regionTemplate(p.task.GetCreateTable())
	if err != nil {
		return err
	}
	routes, err := remapAddresses(ctx, pc.Store, p.data.Routes)
	if err != nil {
		return err
	}
	path := p.data.TableInfo.RegionStoragePath()
	return eachLeader(ctx, routes, func(ctx context.Context, r greptimekey.RegionRoute) error {
		req := createRequest(tmpl, r, path, p.data.WAL)
		_, err := p.s.opts.Regions.Handle(ctx, r.LeaderPeer.Addr, req)
		if err != nil {
			return regionError(fmt.Errorf("create region %d on datanode %d: %w", r.Region.ID, r.LeaderPeer.ID, err))
		}
		return nil
	})
}

// createMetadata writes the table's keys in one transaction, on the
// condition that its info and route keys are absent; a re-run after a
// commit whose answer was lost finds its own values and succeeds.
func (p *createTable) createMetadata(ctx context.Context, pc *procedure.Context) (procedure.Status, error) {
	id := p.data.TableInfo.Ident.TableID
	ops, err := p.metadataOps()
	if err != nil {
		return procedure.Status{}, err
	}
	infoKey, routeKey := greptimekey.TableInfoKey(id), greptimekey.TableRouteKey(id)
	resp, err := pc.Store.Txn(ctx, kv.TxnRequest{
		Compare: []kv.Compare{kv.CompareAbsent(infoKey), kv.CompareAbsent(routeKey)},
		Success: ops,
		Failure: []kv.TxnOp{kv.OpGet(infoKey), kv.OpGet(routeKey)},
	})
	if err != nil {
		return procedure.Status{}, storeError(err)
	}
	if !resp.Succeeded {
		if err := p.ownMetadata(resp, ops); err != nil {
			return procedure.Status{}, err
		}
	}
	p.release()
	p.s.detect(pc.Term, p.data.Routes, true)
	pc.Logger.Info("table created", "table", p.name().String(), "table_id", id)
	return procedure.Done(encodeOutput(id)), nil
}

func (p *createTable) metadataOps() ([]kv.TxnOp, error) {
	info := p.data.TableInfo
	id := info.Ident.TableID
	name := p.name()
	nameValue, err := greptimekey.TableNameValue{TableID: id}.Encode()
	if err != nil {
		return nil, err
	}
	infoValue, err := greptimekey.NewTableInfoValue(*info).Encode()
	if err != nil {
		return nil, err
	}
	routeValue, err := greptimekey.NewPhysicalTableRoute(p.data.Routes).Encode()
	if err != nil {
		return nil, err
	}
	ops := []kv.TxnOp{
		kv.OpPut(greptimekey.TableNameKey(name.Catalog, name.Schema, name.Table), nameValue),
		kv.OpPut(greptimekey.TableInfoKey(id), infoValue),
		kv.OpPut(greptimekey.TableRouteKey(id), routeValue),
	}
	regionInfo := greptimekey.RegionInfo{Engine: info.Meta.Engine, RegionStoragePath: info.RegionStoragePath(),
		RegionOptions: info.Meta.Options.RegionOptions(), RegionWALOptions: p.data.WAL}
	for dn, set := range greptimekey.RegionDistribution(p.data.Routes) {
		v, err := greptimekey.NewDatanodeTableValue(id, set, regionInfo).Encode()
		if err != nil {
			return nil, err
		}
		ops = append(ops, kv.OpPut(greptimekey.DatanodeTableKey(dn, id), v))
	}
	return ops, nil
}

// ownMetadata accepts a failed create whose keys already hold exactly what
// this procedure writes (its own earlier commit); anything else is another
// table's metadata under the same id.
func (p *createTable) ownMetadata(resp kv.TxnResponse, ops []kv.TxnOp) error {
	for i, r := range resp.Responses {
		want := ops[i+1].Value // the info and route puts follow the name put
		if len(r.Kvs) != 1 || !jsonEqual(r.Kvs[0].Value, want) {
			return statuscode.Errorf(statuscode.Unexpected, "Unexpected: the metadata of table id %d exists and is not table %s's", p.data.TableInfo.Ident.TableID, p.name())
		}
	}
	return nil
}

// Rollback drops the regions a failed create may have made on datanodes; a
// region the datanode does not have counts as dropped.
func (p *createTable) Rollback(ctx context.Context, pc *procedure.Context) error {
	defer p.release()
	if p.data.State == statePrepare || len(p.data.Routes) == 0 {
		return nil
	}
	if _, err := p.s.termOf(pc.Term); err != nil {
		return err
	}
	if p.data.State == stateCreateMetadata {
		// The last write's outcome may have been lost: if the table's
		// metadata is ours, the table exists and its regions must stay.
		ops, err := p.metadataOps()
		if err != nil {
			return err
		}
		info, err := kv.Get(ctx, pc.Store, greptimekey.TableInfoKey(p.data.TableInfo.Ident.TableID))
		if err != nil {
			return storeError(err)
		}
		if info != nil && jsonEqual(info.Value, ops[1].Value) {
			pc.Logger.Warn("create table failed after its metadata committed; keeping the table", "table", p.name().String())
			return nil
		}
	}
	return dropRegions(ctx, p.s.opts.Regions, pc.Store, p.data.Routes, false)
}
