package ddl

import (
	"context"
	"encoding/json"
	"fmt"

	greptimepb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1"
	regionpb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/region"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/statuscode"
)

// typeTruncateTable is GreptimeDB's TruncateTableProcedure::TYPE_NAME.
const typeTruncateTable = "metasrv-procedure::TruncateTable"

// Truncate table steps (GreptimeDB's TruncateTableState).
const stateTruncateRegions = "datanode_truncate_regions"

// truncateTable is GreptimeDB's TruncateTableProcedure:
//
//	prepare                    the table exists, is physical, and still has
//	                           the id the frontend named
//	datanode_truncate_regions  send every leader region its TruncateRequest
//	                           (the whole region, or the time ranges asked)
//
// It changes no key, holds no region in the keeper and invalidates no cache,
// as GreptimeDB. Truncating a region twice is harmless, so a resumed
// procedure sends its requests again. Nothing can be rolled back: a
// truncate that failed half way leaves some regions emptied, and running it
// again finishes it.
type truncateTable struct {
	s    *Service
	data truncateTableData
}

type truncateTableData struct {
	State   string                `json:"state"`
	Table   greptimekey.TableName `json:"table"`
	TableID uint32                `json:"table_id"`
	// TimeUnit and Ranges are the task's time ranges ([start, end) pairs in
	// TimeUnit); no range truncates the whole table.
	TimeUnit greptimepb.TimeUnit `json:"time_unit,omitempty"`
	Ranges   [][2]int64          `json:"time_ranges,omitempty"`
}

func (s *Service) newTruncateTable(e *greptimepb.TruncateTableExpr) (procedure.Procedure, error) {
	if e == nil {
		return nil, statuscode.Errorf(statuscode.Unexpected, "Invalid protobuf message: expected truncate table")
	}
	if err := checkNames(e.GetCatalogName(), e.GetSchemaName(), e.GetTableName()); err != nil {
		return nil, err
	}
	if e.GetTableId() == nil {
		return nil, statuscode.Errorf(statuscode.Unexpected, "Invalid protobuf message: expected table_id")
	}
	data := truncateTableData{
		State:   statePrepare,
		Table:   greptimekey.TableName{Catalog: e.GetCatalogName(), Schema: e.GetSchemaName(), Table: e.GetTableName()},
		TableID: e.GetTableId().GetId(),
	}
	// GreptimeDB's from_pb_time_ranges: the unit matters only with ranges.
	if tr := e.GetTimeRanges(); len(tr.GetTimeRanges()) > 0 {
		if _, ok := greptimepb.TimeUnit_name[int32(tr.GetTimeUnit())]; !ok {
			return nil, statuscode.Errorf(statuscode.InvalidArguments, "Invalid time unit: %d", int32(tr.GetTimeUnit()))
		}
		data.TimeUnit = tr.GetTimeUnit()
		for _, r := range tr.GetTimeRanges() {
			data.Ranges = append(data.Ranges, [2]int64{r.GetStart(), r.GetEnd()})
		}
	}
	return &truncateTable{s: s, data: data}, nil
}

func (s *Service) loadTruncateTable(raw []byte) (procedure.Procedure, error) {
	p := &truncateTable{s: s}
	if err := json.Unmarshal(raw, &p.data); err != nil {
		return nil, fmt.Errorf("truncate table state: %w", err)
	}
	return p, nil
}

func (p *truncateTable) Type() string          { return typeTruncateTable }
func (p *truncateTable) Dump() ([]byte, error) { return json.Marshal(p.data) }

func (p *truncateTable) LockKeys() []procedure.LockKey {
	n := p.data.Table
	return []procedure.LockKey{
		procedure.SharedLock(catalogLock(n.Catalog)),
		procedure.SharedLock(schemaLock(n.Catalog, n.Schema)),
		procedure.ExclusiveLock(tableLock(p.data.TableID)),
	}
}

func (p *truncateTable) Execute(ctx context.Context, pc *procedure.Context) (procedure.Status, error) {
	if _, err := p.s.termOf(pc.Term); err != nil {
		return procedure.Status{}, err
	}
	if p.data.State == statePrepare {
		if err := p.prepare(ctx, pc.Store); err != nil {
			return procedure.Status{}, err
		}
		p.data.State = stateTruncateRegions
		return procedure.Executing(true), nil
	}
	if err := p.truncateRegions(ctx, pc.Store); err != nil {
		return procedure.Status{}, err
	}
	pc.Logger.Info("table truncated", "table", p.data.Table.String(), "table_id", p.data.TableID)
	return procedure.Done(nil), nil
}

// prepare is handle_truncate_table_task's checks (the table info of the id,
// a physical route) and the procedure's own (the name exists, here: still
// naming that id).
func (p *truncateTable) prepare(ctx context.Context, store kv.Backend) error {
	n, id := p.data.Table, p.data.TableID
	info, err := exists(ctx, store, greptimekey.TableInfoKey(id))
	if err != nil {
		return err
	}
	if !info {
		return statuscode.Errorf(statuscode.Unexpected, "Table info not found: %s", n)
	}
	if _, err := p.routes(ctx, store); err != nil {
		return err
	}
	current, err := tableIDOf(ctx, store, n)
	if err != nil {
		return err
	}
	if current == nil {
		return statuscode.Errorf(statuscode.TableNotFound, "Table not found: '%s'", n)
	}
	if *current != id {
		return statuscode.Errorf(statuscode.TableNotFound, "Table not found: '%s' with id %d (the name belongs to table id %d)", n, id, *current)
	}
	return nil
}

// routes reads the table's region routes; only a physical table is
// truncated.
func (p *truncateTable) routes(ctx context.Context, store kv.Backend) ([]greptimekey.RegionRoute, error) {
	return physicalRoutes(ctx, store, p.data.TableID, func() error {
		return statuscode.Errorf(statuscode.Unexpected, "Unexpected: Truncate table is only supported for physical tables.")
	})
}

// truncateRegions is on_datanode_truncate_regions: a TruncateRequest per
// leader region, All without time ranges, else the ranges in their unit.
func (p *truncateTable) truncateRegions(ctx context.Context, store kv.Backend) error {
	routes, err := p.routes(ctx, store)
	if err != nil {
		return err
	}
	routes, err = remapAddresses(ctx, store, routes)
	if err != nil {
		return err
	}
	return eachLeader(ctx, routes, func(ctx context.Context, r greptimekey.RegionRoute) error {
		req := &regionpb.TruncateRequest{RegionId: r.Region.ID, Kind: &regionpb.TruncateRequest_All{All: &regionpb.All{}}}
		if len(p.data.Ranges) > 0 {
			tr := &greptimepb.TimeRanges{TimeUnit: p.data.TimeUnit}
			for _, rg := range p.data.Ranges {
				tr.TimeRanges = append(tr.TimeRanges, &greptimepb.TimeRange{Start: rg[0], End: rg[1]})
			}
			req.Kind = &regionpb.TruncateRequest_TimeRanges{TimeRanges: tr}
		}
		_, err := p.s.opts.Regions.Handle(ctx, r.LeaderPeer.Addr, &regionpb.RegionRequest{
			Header: &regionpb.RegionRequestHeader{}, Body: &regionpb.RegionRequest_Truncate{Truncate: req},
		})
		if err != nil {
			return regionError(fmt.Errorf("truncate region %d on datanode %d: %w", r.Region.ID, r.LeaderPeer.ID, err))
		}
		return nil
	})
}

// Rollback has nothing to restore: no key changed, and emptied regions stay
// emptied (GreptimeDB's truncate has no rollback either).
func (p *truncateTable) Rollback(context.Context, *procedure.Context) error { return nil }
