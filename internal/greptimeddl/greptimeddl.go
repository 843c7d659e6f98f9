// Package greptimeddl builds the DDL requests a GreptimeDB frontend sends to
// the metasrv's ProcedureService, as GreptimeDB v1.1.4's frontend builds
// them (the expression, the partitions, and the table info JSON it puts in
// a CreateTableTask), for tests and benchmarks playing the frontend.
package greptimeddl

import (
	"fmt"
	"strings"

	greptimepb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1"
	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
)

// Table describes a table to create: host (a tag), ts (the time index) and
// usage (a field), split into Partitions regions (0 or 1: one region).
type Table struct {
	Catalog, Schema, Name string
	Partitions            int
	IfNotExists           bool
}

func header() *metapb.RequestHeader {
	return &metapb.RequestHeader{ProtocolVersion: 1, Role: metapb.Role_FRONTEND}
}

func request(task any) *metapb.DdlTaskRequest {
	req := &metapb.DdlTaskRequest{Header: header(), QueryContext: &greptimepb.QueryContext{CurrentCatalog: "greptime", CurrentSchema: "public"}, Wait: true, TimeoutSecs: 60}
	switch t := task.(type) {
	case *metapb.CreateTableTask:
		req.Task = &metapb.DdlTaskRequest_CreateTableTask{CreateTableTask: t}
	case *metapb.DropTableTask:
		req.Task = &metapb.DdlTaskRequest_DropTableTask{DropTableTask: t}
	case *metapb.CreateDatabaseTask:
		req.Task = &metapb.DdlTaskRequest_CreateDatabaseTask{CreateDatabaseTask: t}
	case *metapb.DropDatabaseTask:
		req.Task = &metapb.DdlTaskRequest_DropDatabaseTask{DropDatabaseTask: t}
	default:
		panic(fmt.Sprintf("greptimeddl: no task %T", task))
	}
	return req
}

// CreateTable is the request of CREATE TABLE t.
func CreateTable(t Table) *metapb.DdlTaskRequest {
	expr := &greptimepb.CreateTableExpr{
		CatalogName: t.Catalog, SchemaName: t.Schema, TableName: t.Name,
		ColumnDefs: []*greptimepb.ColumnDef{
			{Name: "host", DataType: greptimepb.ColumnDataType_STRING, IsNullable: true, SemanticType: greptimepb.SemanticType_TAG},
			{Name: "ts", DataType: greptimepb.ColumnDataType_TIMESTAMP_MILLISECOND, SemanticType: greptimepb.SemanticType_TIMESTAMP},
			{Name: "usage", DataType: greptimepb.ColumnDataType_FLOAT64, IsNullable: true, SemanticType: greptimepb.SemanticType_FIELD},
		},
		TimeIndex: "ts", PrimaryKeys: []string{"host"}, CreateIfNotExists: t.IfNotExists,
		TableOptions: map[string]string{}, Engine: "mito",
	}
	task := &metapb.CreateTableTask{CreateTable: expr, TableInfo: []byte(TableInfoJSON(t))}
	for i := range t.Partitions {
		task.Partitions = append(task.Partitions, &metapb.Partition{Expression: partitionExpr(i, t.Partitions)})
	}
	return request(task)
}

// partitionExpr is a PARTITION ON COLUMNS (host) rule's region i of n, in
// the JSON form GreptimeDB's frontend sends.
func partitionExpr(i, n int) string {
	bound := func(k int) string { return fmt.Sprintf(`{"Value":{"String":"h%02d"}}`, k) }
	switch {
	case i == 0:
		return fmt.Sprintf(`{"lhs":{"Column":"host"},"op":"Lt","rhs":%s}`, bound(1))
	case i == n-1:
		return fmt.Sprintf(`{"lhs":{"Column":"host"},"op":"GtEq","rhs":%s}`, bound(i))
	default:
		return fmt.Sprintf(`{"lhs":{"Expr":{"lhs":{"Column":"host"},"op":"GtEq","rhs":%s}},"op":"And","rhs":{"Expr":{"lhs":{"Column":"host"},"op":"Lt","rhs":%s}}}`, bound(i), bound(i+1))
	}
}

// TableInfoJSON is the TableInfo a v1.1.4 frontend puts in the task: table
// id 0 (the metasrv allocates it), the three columns, mito, no options.
func TableInfoJSON(t Table) string {
	parts := make([]string, 0, 1)
	if t.Partitions > 1 {
		parts = append(parts, "0")
	}
	return `{"ident":{"table_id":0,"version":0},"name":"` + t.Name + `","desc":null,"catalog_name":"` + t.Catalog + `","schema_name":"` + t.Schema + `",` +
		`"meta":{"schema":{"column_schemas":[` +
		`{"name":"host","data_type":{"String":{"size_type":"Utf8"}},"is_nullable":true,"is_time_index":false,"default_constraint":null,"metadata":{}},` +
		`{"name":"ts","data_type":{"Timestamp":{"Millisecond":null}},"is_nullable":false,"is_time_index":true,"default_constraint":null,"metadata":{"greptime:time_index":"true"}},` +
		`{"name":"usage","data_type":{"Float64":{}},"is_nullable":true,"is_time_index":false,"default_constraint":null,"metadata":{}}` +
		`],"version":0},"primary_key_indices":[0],"value_indices":[1,2],"engine":"mito","next_column_id":3,` +
		`"options":{"write_buffer_size":null,"ttl":null,"skip_wal":false,"extra_options":{}},` +
		`"created_on":"2026-12-01T12:00:00.000000000Z","updated_on":"2026-12-01T12:00:00.000000000Z","partition_key_indices":[` + strings.Join(parts, ",") + `],"column_ids":[]},` +
		`"table_type":"Base"}`
}

// DropTable is the request of DROP TABLE for table id.
func DropTable(catalog, schema, name string, id uint32, ifExists bool) *metapb.DdlTaskRequest {
	return request(&metapb.DropTableTask{DropTable: &greptimepb.DropTableExpr{
		CatalogName: catalog, SchemaName: schema, TableName: name, TableId: &greptimepb.TableId{Id: id}, DropIfExists: ifExists,
	}})
}

// CreateDatabase is the request of CREATE DATABASE.
func CreateDatabase(catalog, schema string, ifNotExists bool, options map[string]string) *metapb.DdlTaskRequest {
	return request(&metapb.CreateDatabaseTask{CreateDatabase: &greptimepb.CreateDatabaseExpr{
		CatalogName: catalog, SchemaName: schema, CreateIfNotExists: ifNotExists, Options: options,
	}})
}

// DropDatabase is the request of DROP DATABASE.
func DropDatabase(catalog, schema string, ifExists bool) *metapb.DdlTaskRequest {
	return request(&metapb.DropDatabaseTask{DropDatabase: &greptimepb.DropDatabaseExpr{
		CatalogName: catalog, SchemaName: schema, DropIfExists: ifExists,
	}})
}

func alter(catalog, schema, table string) *greptimepb.AlterTableExpr {
	return &greptimepb.AlterTableExpr{CatalogName: catalog, SchemaName: schema, TableName: table}
}

func alterRequest(e *greptimepb.AlterTableExpr) *metapb.DdlTaskRequest {
	req := request(&metapb.CreateDatabaseTask{})
	req.Task = &metapb.DdlTaskRequest_AlterTableTask{AlterTableTask: &metapb.AlterTableTask{AlterTable: e}}
	return req
}

// AddFieldColumn is ALTER TABLE ... ADD COLUMN name DOUBLE (a nullable
// field, at the end).
func AddFieldColumn(catalog, schema, table, name string) *metapb.DdlTaskRequest {
	e := alter(catalog, schema, table)
	e.Kind = &greptimepb.AlterTableExpr_AddColumns{AddColumns: &greptimepb.AddColumns{AddColumns: []*greptimepb.AddColumn{{
		ColumnDef: &greptimepb.ColumnDef{Name: name, DataType: greptimepb.ColumnDataType_FLOAT64, IsNullable: true, SemanticType: greptimepb.SemanticType_FIELD},
	}}}}
	return alterRequest(e)
}

// RenameTable is ALTER TABLE ... RENAME to.
func RenameTable(catalog, schema, table, to string) *metapb.DdlTaskRequest {
	e := alter(catalog, schema, table)
	e.Kind = &greptimepb.AlterTableExpr_RenameTable{RenameTable: &greptimepb.RenameTable{NewTableName: to}}
	return alterRequest(e)
}

// TruncateTable is TRUNCATE TABLE for table id.
func TruncateTable(catalog, schema, table string, id uint32) *metapb.DdlTaskRequest {
	req := request(&metapb.CreateDatabaseTask{})
	req.Task = &metapb.DdlTaskRequest_TruncateTableTask{TruncateTableTask: &metapb.TruncateTableTask{TruncateTable: &greptimepb.TruncateTableExpr{
		CatalogName: catalog, SchemaName: schema, TableName: table, TableId: &greptimepb.TableId{Id: id},
	}}}
	return req
}
