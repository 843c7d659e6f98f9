package ddl

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	greptimepb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1"
	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/election"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/statuscode"
)

// typeAlterTable is GreptimeDB's AlterTableProcedure::TYPE_NAME.
const typeAlterTable = "metasrv-procedure::AlterTable"

// Alter table steps (GreptimeDB's AlterTableState; the last one,
// invalidate_table_cache, is the drop's).
const (
	stateSubmitAlterRegions = "submit_alter_region_requests"
	stateUpdateMetadata     = "update_metadata"
)

// alterTable is GreptimeDB's AlterTableProcedure for a physical table, with
// the kinds metasrv runs (add columns, drop columns, rename):
//
//	prepare                       check the names, read the table info and
//	                              route, build the new table info
//	submit_alter_region_requests  send every leader region its AlterRequest
//	                              (not for a rename)
//	update_metadata               compare-and-put the table info (and, for a
//	                              rename, move the name key)
//	invalidate_table_cache        tell the nodes the table changed
//
// GreptimeDB cannot roll an alter back; rollback here undoes nothing and
// only tells whether nothing was changed (rolled back) or the table needs an
// operator (failed).
type alterTable struct {
	s    *Service
	data alterTableData
	task *metapb.AlterTableTask
	// untouched: no datanode applied this step's alter requests (none was
	// sent, or every one was refused). In memory only: a rollback resumed
	// by another leader assumes the regions may have changed.
	untouched bool
}

type alterTableData struct {
	State   string                `json:"state"`
	Task    []byte                `json:"task"` // the AlterTableTask, protobuf-encoded
	Table   greptimekey.TableName `json:"table"`
	TableID uint32                `json:"table_id"`
	// InfoValue is the __table_info value as prepare read it: the update's
	// compare, as GreptimeDB compares against the bytes read.
	InfoValue []byte `json:"table_info_value,omitempty"`
	// NewInfo is the altered table info built in prepare (not for a
	// rename), so that a re-run update writes the same value.
	NewInfo *greptimekey.TableInfo    `json:"new_table_info,omitempty"`
	Routes  []greptimekey.RegionRoute `json:"region_routes,omitempty"`
	// Columns are the column ids the datanodes reported after the alter.
	Columns []columnID `json:"column_metadatas,omitempty"`
}

func (s *Service) newAlterTable(ctx context.Context, t *metapb.AlterTableTask) (procedure.Procedure, error) {
	e := t.GetAlterTable()
	if e == nil {
		return nil, statuscode.Errorf(statuscode.Unexpected, "Invalid protobuf message: expected alter_table")
	}
	if err := checkNames(e.GetCatalogName(), e.GetSchemaName(), e.GetTableName()); err != nil {
		return nil, err
	}
	switch k := e.GetKind().(type) {
	case *greptimepb.AlterTableExpr_AddColumns, *greptimepb.AlterTableExpr_DropColumns:
	case *greptimepb.AlterTableExpr_RenameTable:
		if err := checkNames(k.RenameTable.GetNewTableName()); err != nil {
			return nil, err
		}
	default:
		return nil, unknownAlterKind(e)
	}
	n := greptimekey.TableName{Catalog: e.GetCatalogName(), Schema: e.GetSchemaName(), Table: e.GetTableName()}
	id, err := s.tableIDAtSubmit(ctx, n)
	if err != nil {
		return nil, err
	}
	raw, err := proto.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("ddl: encode alter table task: %w", err)
	}
	return &alterTable{s: s, task: t, data: alterTableData{State: statePrepare, Task: raw, Table: n, TableID: id}}, nil
}

// alterKinds names the AlterTableExpr kinds metasrv does not run, by field
// number (greptime-proto's ddl.proto); the Go protos omit them, so they
// arrive as unknown fields.
var alterKinds = map[protowire.Number]string{
	7: "modify_column_types", 8: "set_table_options", 11: "unset_table_options", 12: "set_index",
	13: "unset_index", 14: "drop_defaults", 15: "set_indexes", 16: "unset_indexes", 17: "set_defaults",
	18: "repartition",
}

// unknownAlterKind refuses an expression without a kind metasrv runs: one
// of GreptimeDB's other kinds is Unsupported, no kind at all is GreptimeDB's
// "'kind' is absent".
func unknownAlterKind(e *greptimepb.AlterTableExpr) error {
	b := e.ProtoReflect().GetUnknown()
	for len(b) > 0 {
		num, _, n := protowire.ConsumeField(b)
		if n < 0 {
			break
		}
		if name, ok := alterKinds[num]; ok {
			return statuscode.Errorf(statuscode.Unsupported, "Unsupported operation: ALTER TABLE %s; metasrv alters a table by add_columns, drop_columns and rename_table", name)
		}
		b = b[n:]
	}
	return statuscode.Errorf(statuscode.Unexpected, "Unexpected: 'kind' is absent")
}

// tableIDAtSubmit is the id under name n, read from the term's store before
// the procedure exists: the procedure locks it, as GreptimeDB's
// handle_alter_table_task resolves it before submitting.
func (s *Service) tableIDAtSubmit(ctx context.Context, n greptimekey.TableName) (uint32, error) {
	s.mu.Lock()
	ts := s.term
	s.mu.Unlock()
	if ts == nil {
		return 0, &election.NotLeaderError{}
	}
	id, err := tableIDOf(ctx, ts.store, n)
	if err != nil {
		return 0, err
	}
	if id == nil {
		return 0, statuscode.Errorf(statuscode.TableNotFound, "Table not found: '%s'", n)
	}
	return *id, nil
}

func (s *Service) loadAlterTable(raw []byte) (procedure.Procedure, error) {
	p := &alterTable{s: s}
	if err := json.Unmarshal(raw, &p.data); err != nil {
		return nil, fmt.Errorf("alter table state: %w", err)
	}
	p.task = &metapb.AlterTableTask{}
	if err := proto.Unmarshal(p.data.Task, p.task); err != nil {
		return nil, fmt.Errorf("alter table task: %w", err)
	}
	if p.task.GetAlterTable().GetKind() == nil {
		return nil, fmt.Errorf("alter table task has no kind metasrv runs")
	}
	return p, nil
}

func (p *alterTable) Type() string          { return typeAlterTable }
func (p *alterTable) Dump() ([]byte, error) { return json.Marshal(p.data) }

func (p *alterTable) expr() *greptimepb.AlterTableExpr { return p.task.GetAlterTable() }

// newName is the name a rename gives the table, "" for other kinds.
func (p *alterTable) newName() string { return p.expr().GetRenameTable().GetNewTableName() }

func (p *alterTable) LockKeys() []procedure.LockKey {
	n := p.data.Table
	keys := []procedure.LockKey{
		procedure.SharedLock(catalogLock(n.Catalog)),
		procedure.SharedLock(schemaLock(n.Catalog, n.Schema)),
		procedure.ExclusiveLock(tableLock(p.data.TableID)),
	}
	if to := p.newName(); to != "" {
		keys = append(keys, procedure.ExclusiveLock(tableNameLock(n.Catalog, n.Schema, to)))
	}
	return keys
}

func (p *alterTable) Execute(ctx context.Context, pc *procedure.Context) (procedure.Status, error) {
	ts, err := p.s.termOf(pc.Term)
	if err != nil {
		return procedure.Status{}, err
	}
	switch p.data.State {
	case statePrepare:
		err = p.prepare(ctx, pc.Store)
	case stateSubmitAlterRegions:
		err = p.alterRegions(ctx, pc)
	case stateUpdateMetadata:
		err = p.updateMetadata(ctx, pc)
	default:
		if err := p.s.invalidateTable(ctx, ts, p.data.Table, p.data.TableID); err != nil {
			return procedure.Status{}, err
		}
		pc.Logger.Info("table altered", "table", p.data.Table.String(), "table_id", p.data.TableID)
		return procedure.Done(nil), nil
	}
	if err != nil {
		return procedure.Status{}, err
	}
	return procedure.Executing(true), nil
}

// prepare is GreptimeDB's on_prepare with handle_alter_table_task's checks:
// a rename's new name must be free, the table must still be the one locked,
// physical, and the alter must build a valid table info.
func (p *alterTable) prepare(ctx context.Context, store kv.Backend) error {
	n := p.data.Table
	if to := p.newName(); to != "" {
		taken, err := exists(ctx, store, greptimekey.TableNameKey(n.Catalog, n.Schema, to))
		if err != nil {
			return err
		}
		if taken {
			return statuscode.Errorf(statuscode.TableAlreadyExists, "Table already exists, table: %s.%s.%s", n.Catalog, n.Schema, to)
		}
	}
	id, err := tableIDOf(ctx, store, n)
	if err != nil {
		return err
	}
	if id == nil || *id != p.data.TableID {
		return statuscode.Errorf(statuscode.TableNotFound, "Table not found: '%s'", n)
	}
	raw, info, err := readTableInfo(ctx, store, n, p.data.TableID)
	if err != nil {
		return err
	}
	if _, err := p.physicalRoutes(ctx, store); err != nil {
		return err
	}
	p.data.InfoValue = raw
	if p.newName() != "" {
		p.data.State = stateUpdateMetadata
		return nil
	}
	altered, err := alteredInfo(info.TableInfo, p.expr(), time.Now())
	if err != nil {
		return err
	}
	p.data.NewInfo = &altered
	p.data.State = stateSubmitAlterRegions
	return nil
}

// readTableInfo reads the table's __table_info value, as stored and decoded.
func readTableInfo(ctx context.Context, store kv.Backend, n greptimekey.TableName, id uint32) ([]byte, greptimekey.TableInfoValue, error) {
	p, err := kv.Get(ctx, store, greptimekey.TableInfoKey(id))
	if err != nil {
		return nil, greptimekey.TableInfoValue{}, storeError(err)
	}
	if p == nil {
		return nil, greptimekey.TableInfoValue{}, statuscode.Errorf(statuscode.TableNotFound, "Table not found: '%s'", n)
	}
	v, err := greptimekey.Decode[greptimekey.TableInfoValue](p.Value)
	if err != nil {
		return nil, greptimekey.TableInfoValue{}, statuscode.Errorf(statuscode.Unexpected, "Unexpected: table info of table id %d: %v", id, err)
	}
	return p.Value, v, nil
}

// physicalRoutes reads the table's region routes; a missing or logical
// route is GreptimeDB's TableRouteNotFound / UnexpectedLogicalRouteTable.
func (p *alterTable) physicalRoutes(ctx context.Context, store kv.Backend) ([]greptimekey.RegionRoute, error) {
	n := p.data.Table
	return physicalRoutes(ctx, store, p.data.TableID, func() error {
		return statuscode.Errorf(statuscode.Unexpected, "Unexpected table route type: TableReference { catalog: %q, schema: %q, table: %q } is a non-physical TableRouteValue.", n.Catalog, n.Schema, n.Table)
	})
}

// Rollback undoes nothing (GreptimeDB cannot roll an alter back): it ends
// the procedure rolled back when nothing changed, and failed, for an
// operator, when datanodes or the metadata may have.
func (p *alterTable) Rollback(ctx context.Context, pc *procedure.Context) error {
	n, id := p.data.Table, p.data.TableID
	switch p.data.State {
	case statePrepare:
		return nil
	case stateSubmitAlterRegions:
		if p.untouched {
			return nil
		}
		return statuscode.Errorf(statuscode.IllegalState, "Illegal state: the regions of table %s (id %d) may be partly altered while its metadata is not; retry the ALTER or repair the table", n, id)
	case stateUpdateMetadata:
		if p.newName() != "" {
			return p.rollbackRename(ctx, pc)
		}
		return statuscode.Errorf(statuscode.IllegalState, "Illegal state: the regions of table %s (id %d) are altered and its metadata may not be; retry the ALTER or repair the table", n, id)
	default:
		return statuscode.Errorf(statuscode.IllegalState, "Illegal state: table %s (id %d) is altered but the nodes' caches were not invalidated", n, id)
	}
}

// rollbackRename ends a failed rename rolled back when the table info is
// still the one read; a rename that may have committed is left failed.
func (p *alterTable) rollbackRename(ctx context.Context, pc *procedure.Context) error {
	if _, err := p.s.termOf(pc.Term); err != nil {
		return err
	}
	cur, err := kv.Get(ctx, pc.Store, greptimekey.TableInfoKey(p.data.TableID))
	if err != nil {
		return storeError(err)
	}
	if cur != nil && string(cur.Value) == string(p.data.InfoValue) {
		return nil
	}
	return statuscode.Errorf(statuscode.IllegalState, "Illegal state: the rename of table %s (id %d) to %s may have committed", p.data.Table, p.data.TableID, p.newName())
}
