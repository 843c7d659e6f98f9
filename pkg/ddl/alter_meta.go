package ddl

import (
	"encoding/json"
	"errors"
	"slices"
	"time"

	greptimepb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/statuscode"
)

// addColumnRequest is table's AddColumnRequest: one column to add, built
// from the frontend's column definition (alter_expr_to_request).
type addColumnRequest struct {
	schema      greptimekey.ColumnSchema
	isKey       bool // a TAG: it joins the primary key
	first       bool
	after       string // the existing column it follows; "" with first unset: at the end
	ifNotExists bool
}

// addColumnRequests converts the expression's columns, refusing them as
// GreptimeDB's alter_expr_to_request does.
func addColumnRequests(adds []*greptimepb.AddColumn) ([]addColumnRequest, error) {
	out := make([]addColumnRequest, 0, len(adds))
	for _, ac := range adds {
		def := ac.GetColumnDef()
		if def == nil {
			return nil, statuscode.Errorf(statuscode.InvalidArguments, "Missing required field in protobuf, field: column_def")
		}
		cs, err := greptimekey.ColumnSchemaFromDef(def)
		if err != nil {
			return nil, columnDefError(err)
		}
		r := addColumnRequest{schema: cs, isKey: def.GetSemanticType() == greptimepb.SemanticType_TAG, ifNotExists: ac.GetAddIfNotExists()}
		if loc := ac.GetLocation(); loc != nil {
			switch loc.GetLocationType() {
			case greptimepb.AddColumnLocation_FIRST:
				r.first = true
			case greptimepb.AddColumnLocation_AFTER:
				r.after = loc.GetAfterColumnName()
			default:
				return nil, statuscode.Errorf(statuscode.InvalidArguments, "Unknown location type: %d", int32(loc.GetLocationType()))
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// columnDefError gives a column definition's refusal GreptimeDB's code.
func columnDefError(err error) error {
	var e *greptimekey.ColumnDefError
	if !errors.As(err, &e) {
		return err
	}
	code := statuscode.InvalidArguments
	switch e.Refusal {
	case greptimekey.RefusedUnsupported:
		code = statuscode.Unsupported
	case greptimekey.RefusedInternal:
		code = statuscode.Internal
	}
	return &statuscode.Error{Status: code, Msg: e.Msg}
}

// alteredInfo is GreptimeDB's build_new_table_info for adding or dropping
// columns: the table's meta rebuilt (TableMeta::builder_with_alter_kind),
// updated_on now, the schema version bumped (ident.version +1), and for
// added columns next_column_id moved past every requested column, existing
// ones included, as GreptimeDB moves it.
func alteredInfo(info greptimekey.TableInfo, e *greptimepb.AlterTableExpr, now time.Time) (greptimekey.TableInfo, error) {
	info = normalized(info)
	var meta greptimekey.TableMeta
	switch k := e.GetKind().(type) {
	case *greptimepb.AlterTableExpr_AddColumns:
		reqs, err := addColumnRequests(k.AddColumns.GetAddColumns())
		if err != nil {
			return greptimekey.TableInfo{}, err
		}
		if meta, err = addColumnsMeta(info.Meta, info.Name, reqs); err != nil {
			return greptimekey.TableInfo{}, err
		}
		meta.NextColumnID += uint32(len(reqs))
	case *greptimepb.AlterTableExpr_DropColumns:
		names := make([]string, 0, len(k.DropColumns.GetDropColumns()))
		for _, d := range k.DropColumns.GetDropColumns() {
			names = append(names, d.GetName())
		}
		var err error
		if meta, err = dropColumnsMeta(info.Meta, info.Name, names); err != nil {
			return greptimekey.TableInfo{}, err
		}
	default:
		return greptimekey.TableInfo{}, statuscode.Errorf(statuscode.Unexpected, "Unexpected: alter kind %T has no new table meta", k)
	}
	meta.ValueIndices = valueIndices(len(meta.Schema.ColumnSchemas), meta.PrimaryKeyIndices)
	meta.UpdatedOn = greptimekey.FormatChronoUTC(now)
	out := info
	out.Meta = meta
	out.Ident.Version++
	return out, nil
}

// normalized is info with its columns' data types in the form GreptimeDB
// writes them back: it decodes the whole info and encodes it again on every
// update, which turns older String and Binary forms into the current ones.
func normalized(info greptimekey.TableInfo) greptimekey.TableInfo {
	cols := make([]greptimekey.ColumnSchema, len(info.Meta.Schema.ColumnSchemas))
	for i, c := range info.Meta.Schema.ColumnSchemas {
		c.DataType = greptimekey.NormalizeDataType(c.DataType)
		cols[i] = c
	}
	info.Meta.Schema.ColumnSchemas = cols
	return info
}

// addColumnsMeta is TableMeta::add_columns: existing columns are refused
// (or, with IF NOT EXISTS, skipped when of the same type), new ones placed
// FIRST (in reverse order of the request), AFTER a column (likewise), or
// at the end.
func addColumnsMeta(meta greptimekey.TableMeta, table string, reqs []addColumnRequest) (greptimekey.TableMeta, error) {
	old := meta.Schema.ColumnSchemas
	index := columnIndex(old)
	added := map[string]bool{}
	var fresh []addColumnRequest
	for _, r := range reqs {
		name := r.schema.Name
		if i, ok := index[name]; ok {
			if !r.ifNotExists {
				return meta, statuscode.Errorf(statuscode.TableColumnExists, "Column %s already exists in table %s", name, table)
			}
			if !jsonEqual(old[i].DataType, r.schema.DataType) {
				return meta, invalidAlter(table, "column %s already exists with different type %s", name, old[i].DataType)
			}
			continue
		}
		if added[name] {
			return meta, invalidAlter(table, "add column %s more than once", name)
		}
		added[name] = true
		if !r.schema.IsNullable && r.schema.DefaultConstraint == nil {
			return meta, invalidAlter(table, "no default value for column %s", name)
		}
		fresh = append(fresh, r)
	}
	var first, last []addColumnRequest
	after := map[string][]addColumnRequest{}
	for _, r := range fresh {
		switch {
		case r.first:
			first = append(first, r)
		case r.after != "":
			if _, ok := index[r.after]; !ok {
				return meta, statuscode.Errorf(statuscode.TableColumnNotFound, "Column %s not exists in table %s", r.after, table)
			}
			after[r.after] = append(after[r.after], r)
		default:
			last = append(last, r)
		}
	}
	cols := make([]greptimekey.ColumnSchema, 0, len(old)+len(fresh))
	var pk []int
	push := func(r addColumnRequest) {
		if r.isKey {
			pk = append(pk, len(cols))
		}
		cols = append(cols, r.schema)
	}
	for i := len(first) - 1; i >= 0; i-- {
		push(first[i])
	}
	for i, cs := range old {
		if slices.Contains(meta.PrimaryKeyIndices, i) {
			pk = append(pk, len(cols))
		}
		cols = append(cols, cs)
		group := after[cs.Name]
		for j := len(group) - 1; j >= 0; j-- {
			push(group[j])
		}
	}
	for _, r := range last {
		push(r)
	}
	return rebuiltMeta(meta, cols, pk)
}

// dropColumnsMeta is TableMeta::remove_columns: a column must exist and be
// neither in the primary key, a partition column nor the time index.
func dropColumnsMeta(meta greptimekey.TableMeta, table string, names []string) (greptimekey.TableMeta, error) {
	old := meta.Schema.ColumnSchemas
	index := columnIndex(old)
	ts := slices.IndexFunc(old, func(c greptimekey.ColumnSchema) bool { return c.IsTimeIndex })
	drop := map[string]bool{}
	for _, name := range names {
		i, ok := index[name]
		switch {
		case !ok:
			return meta, statuscode.Errorf(statuscode.TableColumnNotFound, "Column %s not exists in table %s", name, table)
		case slices.Contains(meta.PrimaryKeyIndices, i):
			return meta, statuscode.Errorf(statuscode.InvalidArguments, "Not allowed to remove index column %s from table %s", name, table)
		case slices.Contains(meta.PartitionKeyIndices, i):
			return meta, statuscode.Errorf(statuscode.InvalidArguments, "Not allowed to remove partition column %s from table %s", name, table)
		case i == ts:
			return meta, statuscode.Errorf(statuscode.InvalidArguments, "Not allowed to remove index column %s from table %s", old[ts].Name, table)
		}
		drop[name] = true
	}
	cols := make([]greptimekey.ColumnSchema, 0, len(old))
	for _, cs := range old {
		if !drop[cs.Name] {
			cols = append(cols, cs)
		}
	}
	newIndex := columnIndex(cols)
	pk := make([]int, 0, len(meta.PrimaryKeyIndices))
	for _, i := range meta.PrimaryKeyIndices {
		pk = append(pk, newIndex[old[i].Name])
	}
	return rebuiltMeta(meta, cols, pk)
}

// rebuiltMeta is meta with the new columns (SchemaBuilder: unique names, the
// first time index column of a timestamp type), the schema version bumped,
// the primary key given and the partition columns found again by name.
func rebuiltMeta(meta greptimekey.TableMeta, cols []greptimekey.ColumnSchema, pk []int) (greptimekey.TableMeta, error) {
	seen := map[string]bool{}
	for _, c := range cols {
		if seen[c.Name] {
			return meta, statuscode.Errorf(statuscode.InvalidArguments, "Column %s already exists", c.Name)
		}
		seen[c.Name] = true
	}
	if ts := slices.IndexFunc(cols, func(c greptimekey.ColumnSchema) bool { return c.IsTimeIndex }); ts >= 0 && !isTimestampType(cols[ts].DataType) {
		return meta, statuscode.Errorf(statuscode.InvalidArguments, "Invalid timestamp index: %d", ts)
	}
	index := columnIndex(cols)
	partitions := make([]int, 0, len(meta.PartitionKeyIndices))
	for _, i := range meta.PartitionKeyIndices {
		partitions = append(partitions, index[meta.Schema.ColumnSchemas[i].Name])
	}
	out := meta
	out.Schema = greptimekey.TableSchema{ColumnSchemas: cols, Version: meta.Schema.Version + 1}
	out.PrimaryKeyIndices = nonNilInts(pk)
	out.PartitionKeyIndices = partitions
	return out, nil
}

func invalidAlter(table, format string, args ...any) error {
	e := statuscode.Errorf(statuscode.InvalidArguments, format, args...)
	e.Msg = "Invalid alter table(" + table + ") request: " + e.Msg
	return e
}

// valueIndices is TableMetaBuilder's default: every column outside the
// primary key (the time index included).
func valueIndices(n int, pk []int) []int {
	out := make([]int, 0, n)
	for i := range n {
		if !slices.Contains(pk, i) {
			out = append(out, i)
		}
	}
	return out
}

func columnIndex(cols []greptimekey.ColumnSchema) map[string]int {
	m := make(map[string]int, len(cols))
	for i, c := range cols {
		if _, dup := m[c.Name]; !dup {
			m[c.Name] = i
		}
	}
	return m
}

// isTimestampType reports whether a ConcreteDataType's JSON is a Timestamp.
func isTimestampType(raw json.RawMessage) bool {
	var v map[string]json.RawMessage
	if json.Unmarshal(raw, &v) != nil {
		return false
	}
	_, ok := v["Timestamp"]
	return ok && len(v) == 1
}

func nonNilInts(s []int) []int {
	if s == nil {
		return []int{}
	}
	return s
}
