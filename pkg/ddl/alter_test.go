package ddl_test

import (
	"context"
	"encoding/json"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/pgmetasrv/metasrv/internal/greptimeddl"
	greptimepb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1"
	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	regionpb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/region"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/instruction"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/statuscode"
)

func alterTask(e *greptimepb.AlterTableExpr) *metapb.DdlTaskRequest {
	return &metapb.DdlTaskRequest{
		Header: &metapb.RequestHeader{ProtocolVersion: 1, Role: metapb.Role_FRONTEND},
		Task:   &metapb.DdlTaskRequest_AlterTableTask{AlterTableTask: &metapb.AlterTableTask{AlterTable: e}},
	}
}

func addColumns(table string, adds ...*greptimepb.AddColumn) *metapb.DdlTaskRequest {
	return alterTask(&greptimepb.AlterTableExpr{CatalogName: "greptime", SchemaName: "public", TableName: table,
		Kind: &greptimepb.AlterTableExpr_AddColumns{AddColumns: &greptimepb.AddColumns{AddColumns: adds}}})
}

func dropColumns(table string, names ...string) *metapb.DdlTaskRequest {
	drops := &greptimepb.DropColumns{}
	for _, n := range names {
		drops.DropColumns = append(drops.DropColumns, &greptimepb.DropColumn{Name: n})
	}
	return alterTask(&greptimepb.AlterTableExpr{CatalogName: "greptime", SchemaName: "public", TableName: table,
		Kind: &greptimepb.AlterTableExpr_DropColumns{DropColumns: drops}})
}

func renameTable(from, to string) *metapb.DdlTaskRequest {
	return alterTask(&greptimepb.AlterTableExpr{CatalogName: "greptime", SchemaName: "public", TableName: from,
		Kind: &greptimepb.AlterTableExpr_RenameTable{RenameTable: &greptimepb.RenameTable{NewTableName: to}}})
}

// alters lists the AlterRequests sent to addr.
func (f *fakeRegions) alters(addr string) []*regionpb.AlterRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*regionpb.AlterRequest
	for _, r := range f.reqs[addr] {
		if a := r.GetAlter(); a != nil {
			out = append(out, a)
		}
	}
	return out
}

func (f *fakeRegions) setReply(r func(addr string, req *regionpb.RegionRequest) *regionpb.RegionResponse) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reply = r
}

// storedColumns are the column schemas of the table info value raw, each as
// the bytes stored.
func storedColumns(t *testing.T, raw []byte) []string {
	t.Helper()
	var v struct {
		TableInfo struct {
			Meta struct {
				Schema struct {
					ColumnSchemas []json.RawMessage `json:"column_schemas"`
				} `json:"schema"`
			} `json:"meta"`
		} `json:"table_info"`
	}
	require.NoError(t, json.Unmarshal(raw, &v))
	out := make([]string, 0, len(v.TableInfo.Meta.Schema.ColumnSchemas))
	for _, c := range v.TableInfo.Meta.Schema.ColumnSchemas {
		out = append(out, string(c))
	}
	return out
}

func tableInfo(t *testing.T, b *testBundle, id uint32) greptimekey.TableInfoValue {
	t.Helper()
	v, err := greptimekey.Decode[greptimekey.TableInfoValue](b.get(t, greptimekey.TableInfoKey(id)))
	require.NoError(t, err)
	return v
}

// chronoTime is how chrono writes a DateTime<Utc>.
var chronoTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6}|\.\d{9})?Z$`)

func createCPU(t *testing.T, b *testBundle) {
	t.Helper()
	_, tables, err := b.svc.Submit(t.Context(), greptimeddl.CreateTable(cpu(2)))
	require.NoError(t, err)
	require.Equal(t, []uint32{1024}, tables)
}

func TestAlterTableAddColumns(t *testing.T) {
	t.Parallel()
	b := setup(t)
	createCPU(t, b)
	dnTable := b.get(t, greptimekey.DatanodeTableKey(1, 1024))
	region := &greptimepb.AddColumn{
		ColumnDef: &greptimepb.ColumnDef{Name: "region", DataType: greptimepb.ColumnDataType_STRING, IsNullable: true,
			SemanticType: greptimepb.SemanticType_TAG, Comment: "where"},
		Location: &greptimepb.AddColumnLocation{LocationType: greptimepb.AddColumnLocation_AFTER, AfterColumnName: "host"},
	}
	cores := &greptimepb.AddColumn{ColumnDef: &greptimepb.ColumnDef{Name: "cores", DataType: greptimepb.ColumnDataType_INT32,
		SemanticType: greptimepb.SemanticType_FIELD, DefaultConstraint: []byte(`{"Value":{"Int32":4}}`)}}
	_, tables, err := b.svc.Submit(t.Context(), addColumns("cpu", region, cores))
	require.NoError(t, err)
	require.Empty(t, tables)

	for addr, id := range map[string]uint64{dn1: greptimekey.RegionID(1024, 0), dn2: greptimekey.RegionID(1024, 1)} {
		alters := b.regions.alters(addr)
		require.Len(t, alters, 1, addr)
		a := alters[0]
		require.Equal(t, id, a.GetRegionId())
		require.Zero(t, a.GetSchemaVersion(), "GreptimeDB leaves schema_version 0")
		adds := a.GetAddColumns().GetAddColumns()
		require.Len(t, adds, 2)
		require.Equal(t, uint32(3), adds[0].GetColumnDef().GetColumnId(), "ids from next_column_id on")
		require.Equal(t, "region", adds[0].GetColumnDef().GetColumnDef().GetName())
		require.Equal(t, "host", adds[0].GetLocation().GetAfterColumnName())
		require.Equal(t, uint32(4), adds[1].GetColumnDef().GetColumnId())
		require.Equal(t, []byte(`{"Value":{"Int32":4}}`), adds[1].GetColumnDef().GetColumnDef().GetDefaultConstraint())
	}

	raw := b.get(t, greptimekey.TableInfoKey(1024))
	cols := storedColumns(t, raw)
	require.Len(t, cols, 5)
	require.Equal(t, `{"name":"region","data_type":{"String":{"size_type":"Utf8"}},"is_nullable":true,"is_time_index":false,"default_constraint":null,"metadata":{"greptime:storage:comment":"where"}}`, cols[1])
	require.Equal(t, `{"name":"cores","data_type":{"Int32":{}},"is_nullable":false,"is_time_index":false,"default_constraint":{"Value":{"Int32":4}},"metadata":{}}`, cols[4])
	require.Equal(t, `{"name":"ts","data_type":{"Timestamp":{"Millisecond":null}},"is_nullable":false,"is_time_index":true,"default_constraint":null,"metadata":{"greptime:time_index":"true"}}`, cols[2], "existing columns are kept as they were")

	v := tableInfo(t, b, 1024)
	require.EqualValues(t, 1, v.Version, "TableInfoValue.version +1")
	require.EqualValues(t, 1, v.TableInfo.Ident.Version, "the table's version +1")
	meta := v.TableInfo.Meta
	require.Equal(t, []string{"host", "region", "ts", "usage", "cores"}, meta.ColumnNames())
	require.EqualValues(t, 1, meta.Schema.Version)
	require.Equal(t, []int{0, 1}, meta.PrimaryKeyIndices)
	require.Equal(t, []int{2, 3, 4}, meta.ValueIndices)
	require.Equal(t, []int{0}, meta.PartitionKeyIndices)
	require.EqualValues(t, 5, meta.NextColumnID)
	require.Regexp(t, chronoTime, meta.UpdatedOn)
	require.NotEqual(t, meta.CreatedOn, meta.UpdatedOn)

	require.Equal(t, dnTable, b.get(t, greptimekey.DatanodeTableKey(1, 1024)), "region options unchanged: __dn_table untouched")
	require.Equal(t, [][]instruction.CacheIdent{{
		instruction.TableName{CatalogName: "greptime", SchemaName: "public", TableName: "cpu"}, instruction.TableID(1024),
	}}, b.caches.all())
}

// Column ids the datanodes report after the alter become the table's.
func TestAlterTableTakesReportedColumnIDs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	createCPU(t, b)
	ext := []byte(`[{"column_schema":{"name":"host"},"semantic_type":"Tag","column_id":0},` +
		`{"column_schema":{"name":"ts"},"semantic_type":"Timestamp","column_id":1},` +
		`{"column_schema":{"name":"usage"},"semantic_type":"Field","column_id":2},` +
		`{"column_schema":{"name":"load"},"semantic_type":"Field","column_id":3}]`)
	b.regions.setReply(func(_ string, req *regionpb.RegionRequest) *regionpb.RegionResponse {
		if req.GetAlter() == nil {
			return &regionpb.RegionResponse{}
		}
		return &regionpb.RegionResponse{Extensions: map[string][]byte{"TABLE_COLUMN_METADATA": ext}}
	})
	_, _, err := b.svc.Submit(t.Context(), addColumns("cpu", &greptimepb.AddColumn{ColumnDef: &greptimepb.ColumnDef{
		Name: "load", DataType: greptimepb.ColumnDataType_FLOAT64, IsNullable: true, SemanticType: greptimepb.SemanticType_FIELD}}))
	require.NoError(t, err)
	require.Equal(t, []uint32{0, 1, 2, 3}, tableInfo(t, b, 1024).TableInfo.Meta.ColumnIDs)
}

func TestAlterTableDropColumn(t *testing.T) {
	t.Parallel()
	b := setup(t)
	createCPU(t, b)
	_, _, err := b.svc.Submit(t.Context(), dropColumns("cpu", "usage"))
	require.NoError(t, err)
	for _, addr := range []string{dn1, dn2} {
		alters := b.regions.alters(addr)
		require.Len(t, alters, 1)
		require.Zero(t, alters[0].GetSchemaVersion())
		require.Len(t, alters[0].GetDropColumns().GetDropColumns(), 1)
		require.Equal(t, "usage", alters[0].GetDropColumns().GetDropColumns()[0].GetName())
	}
	v := tableInfo(t, b, 1024)
	require.EqualValues(t, 1, v.Version)
	require.EqualValues(t, 1, v.TableInfo.Ident.Version)
	meta := v.TableInfo.Meta
	require.Equal(t, []string{"host", "ts"}, meta.ColumnNames())
	require.Equal(t, []int{0}, meta.PrimaryKeyIndices)
	require.Equal(t, []int{1}, meta.ValueIndices)
	require.EqualValues(t, 3, meta.NextColumnID, "a drop hands out no column id")
	require.Len(t, b.caches.all(), 1)
}

func TestAlterTableRename(t *testing.T) {
	t.Parallel()
	b := setup(t)
	createCPU(t, b)
	_, _, err := b.svc.Submit(t.Context(), renameTable("cpu", "cpu2"))
	require.NoError(t, err)
	require.Nil(t, b.get(t, greptimekey.TableNameKey("greptime", "public", "cpu")), "the old name is gone")
	require.Equal(t, `{"table_id":1024}`, string(b.get(t, greptimekey.TableNameKey("greptime", "public", "cpu2"))))
	v := tableInfo(t, b, 1024)
	require.Equal(t, "cpu2", v.TableInfo.Name)
	require.EqualValues(t, 1, v.Version)
	require.Zero(t, v.TableInfo.Ident.Version, "a rename changes the name only")
	require.Empty(t, b.regions.alters(dn1), "a rename asks no datanode")
	require.Equal(t, [][]instruction.CacheIdent{{
		instruction.TableName{CatalogName: "greptime", SchemaName: "public", TableName: "cpu"}, instruction.TableID(1024),
	}}, b.caches.all(), "the old name is invalidated")

	_, _, err = b.svc.Submit(t.Context(), greptimeddl.CreateTable(greptimeddl.Table{Catalog: "greptime", Schema: "public", Name: "mem"}))
	require.NoError(t, err)
	_, _, err = b.svc.Submit(t.Context(), renameTable("cpu2", "mem"))
	require.Equal(t, statuscode.TableAlreadyExists, code(t, err))
	require.ErrorContains(t, err, "Table already exists, table: greptime.public.mem")
	require.Equal(t, "cpu2", tableInfo(t, b, 1024).TableInfo.Name)
}

// withUnknownKind is an expression whose kind is one of GreptimeDB's that
// the Go protos omit (field 7, modify_column_types).
func withUnknownKind() *metapb.DdlTaskRequest {
	e := &greptimepb.AlterTableExpr{CatalogName: "greptime", SchemaName: "public", TableName: "cpu"}
	unknown := protowire.AppendTag(nil, 7, protowire.BytesType)
	e.ProtoReflect().SetUnknown(protowire.AppendBytes(unknown, nil))
	return alterTask(e)
}

func TestAlterTableRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t)
	createCPU(t, b)
	before := b.get(t, greptimekey.TableInfoKey(1024))
	field := func(name string, dt greptimepb.ColumnDataType, nullable bool, def string) *greptimepb.AddColumn {
		return &greptimepb.AddColumn{ColumnDef: &greptimepb.ColumnDef{Name: name, DataType: dt, IsNullable: nullable,
			SemanticType: greptimepb.SemanticType_FIELD, DefaultConstraint: []byte(def)}}
	}
	for _, tc := range []struct {
		name string
		req  *metapb.DdlTaskRequest
		code statuscode.Code
		msg  string
	}{
		{"missing table", dropColumns("nope", "usage"), statuscode.TableNotFound, "Table not found: 'greptime.public.nope'"},
		{"existing column", addColumns("cpu", field("usage", greptimepb.ColumnDataType_FLOAT64, true, "")), statuscode.TableColumnExists, "Column usage already exists in table cpu"},
		{"missing column", dropColumns("cpu", "nope"), statuscode.TableColumnNotFound, "Column nope not exists in table cpu"},
		{"drop a tag", dropColumns("cpu", "host"), statuscode.InvalidArguments, "Not allowed to remove index column host from table cpu"},
		{"drop the time index", dropColumns("cpu", "ts"), statuscode.InvalidArguments, "Not allowed to remove index column ts from table cpu"},
		{"no default", addColumns("cpu", field("x", greptimepb.ColumnDataType_INT64, false, "")), statuscode.InvalidArguments, "Invalid alter table(cpu) request: no default value for column x"},
		{"null default", addColumns("cpu", field("x", greptimepb.ColumnDataType_INT64, false, `{"Value":"Null"}`)), statuscode.InvalidArguments, "Default value should not be null for non null column"},
		{"default of another type", addColumns("cpu", field("x", greptimepb.ColumnDataType_INT64, true, `{"Value":{"Int32":1}}`)), statuscode.InvalidArguments, "column has type Int64 but default value has type Int32"},
		{"unmapped default", addColumns("cpu", field("x", greptimepb.ColumnDataType_FLOAT64, true, `{"Value":{"Float64":1.5}}`)), statuscode.Unsupported, "default value of type Float64"},
		{"unmapped type", addColumns("cpu", field("x", greptimepb.ColumnDataType_VECTOR, true, "")), statuscode.Unsupported, "data type VECTOR"},
		{"unmapped kind", withUnknownKind(), statuscode.Unsupported, "ALTER TABLE modify_column_types"},
		{"no kind", alterTask(&greptimepb.AlterTableExpr{CatalogName: "greptime", SchemaName: "public", TableName: "cpu"}), statuscode.Unexpected, "'kind' is absent"},
	} {
		_, _, err := b.svc.Submit(t.Context(), tc.req)
		require.Equal(t, tc.code, code(t, err), tc.name)
		require.ErrorContains(t, err, tc.msg, tc.name)
	}
	require.Equal(t, before, b.get(t, greptimekey.TableInfoKey(1024)), "no refusal writes")
	require.Empty(t, b.regions.alters(dn1), "no refusal reaches a datanode")
	require.Empty(t, b.caches.all())

	_, _, err := b.svc.Submit(t.Context(), addColumns("cpu", &greptimepb.AddColumn{AddIfNotExists: true, ColumnDef: &greptimepb.ColumnDef{
		Name: "usage", DataType: greptimepb.ColumnDataType_FLOAT64, IsNullable: true, SemanticType: greptimepb.SemanticType_FIELD}}))
	require.NoError(t, err, "IF NOT EXISTS with the same type")
	require.Equal(t, []string{"host", "ts", "usage"}, tableInfo(t, b, 1024).TableInfo.Meta.ColumnNames())
	require.Empty(t, b.regions.alters(dn1)[0].GetAddColumns().GetAddColumns(), "the existing column is not sent")
}

// A datanode refusing its region's alter while another applied its own
// leaves the table failed, for an operator, with its metadata unchanged;
// every datanode refusing rolls the alter back.
func TestAlterTableRegionRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t)
	createCPU(t, b)
	refuse := func(addrs ...string) {
		b.regions.setHook(func(_ context.Context, addr string, req *regionpb.RegionRequest) error {
			for _, a := range addrs {
				if req.GetAlter() != nil && addr == a {
					return statuscode.Errorf(statuscode.InvalidArguments, "Invalid region request")
				}
			}
			return nil
		})
	}
	refuse(dn1, dn2)
	id, _, err := b.svc.Submit(t.Context(), dropColumns("cpu", "usage"))
	require.Equal(t, statuscode.InvalidArguments, code(t, err))
	info, err := b.procs.Wait(t.Context(), id)
	require.NoError(t, err)
	require.Equal(t, procedure.StateRolledBack, info.State, "nothing changed")

	refuse(dn2)
	id, _, err = b.svc.Submit(t.Context(), dropColumns("cpu", "usage"))
	require.Equal(t, statuscode.InvalidArguments, code(t, err))
	info, err = b.procs.Wait(t.Context(), id)
	require.NoError(t, err)
	require.Equal(t, procedure.StateFailed, info.State, "dn1's region is altered")
	require.Zero(t, tableInfo(t, b, 1024).Version, "the metadata is not")
}

// A leader change while the datanodes alter their regions: the new term
// sends the requests again (a datanode applies an alter once) and writes
// the metadata once.
func TestAlterTableResumesOnTheNextTerm(t *testing.T) {
	t.Parallel()
	b := setup(t)
	createCPU(t, b)
	entered := make(chan struct{})
	b.regions.setHook(func(ctx context.Context, _ string, req *regionpb.RegionRequest) error {
		if req.GetAlter() == nil {
			return nil
		}
		select {
		case entered <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return ctx.Err()
	})
	type result struct {
		id  procedure.ID
		err error
	}
	done := make(chan result, 1)
	go func() {
		id, _, err := b.svc.Submit(context.Background(), addColumns("cpu", &greptimepb.AddColumn{ColumnDef: &greptimepb.ColumnDef{
			Name: "load", DataType: greptimepb.ColumnDataType_FLOAT64, IsNullable: true, SemanticType: greptimepb.SemanticType_FIELD}}))
		done <- result{id, err}
	}()
	<-entered
	b.stopTerm()
	first := <-done
	require.Error(t, first.err)

	b.regions.setHook(nil)
	b.startTerm(t, 2)
	info, err := b.procs.Wait(t.Context(), first.id)
	require.NoError(t, err)
	require.Equal(t, procedure.StateDone, info.State, info.Error)
	require.GreaterOrEqual(t, len(b.regions.alters(dn1)), 2, "sent in both terms")
	for _, a := range b.regions.alters(dn1) {
		require.Equal(t, uint32(3), a.GetAddColumns().GetAddColumns()[0].GetColumnDef().GetColumnId(), "the same id each time")
	}
	v := tableInfo(t, b, 1024)
	require.EqualValues(t, 1, v.Version, "written once")
	require.Equal(t, []string{"host", "ts", "usage", "load"}, v.TableInfo.Meta.ColumnNames())
	require.Len(t, b.caches.all(), 1)
}
