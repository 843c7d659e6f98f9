package greptimekey

import (
	"encoding/json"
	"fmt"
	"slices"
)

// TableNameValue is the value of a __table_name key: {"table_id":1024}.
type TableNameValue struct {
	TableID uint32 `json:"table_id"`
}

// Encode returns the value as GreptimeDB writes it.
func (v TableNameValue) Encode() ([]byte, error) { return v.MarshalJSON() }

func (v TableNameValue) MarshalJSON() ([]byte, error) {
	type plain TableNameValue
	return encode(plain(v))
}

func (v *TableNameValue) UnmarshalJSON(data []byte) error {
	var out TableNameValue
	if err := decodeObject("TableNameValue", data, required("table_id", &out.TableID)); err != nil {
		return err
	}
	*v = out
	return nil
}

// TableInfoValue is the value of a __table_info key (key/table_info.rs):
// {"table_info":{...},"version":0}, both required.
type TableInfoValue struct {
	TableInfo TableInfo `json:"table_info"`
	// Version counts the value's rewrites: 0 when the table is created, +1
	// on each update (alter, rename). The table's schema version is
	// TableInfo.Ident.Version.
	Version uint64 `json:"version"`
}

// NewTableInfoValue is the value GreptimeDB writes for a new table.
func NewTableInfoValue(info TableInfo) TableInfoValue { return TableInfoValue{TableInfo: info} }

// Next is the value that replaces v with info (TableInfoValue::update).
func (v TableInfoValue) Next(info TableInfo) TableInfoValue {
	return TableInfoValue{TableInfo: info, Version: v.Version + 1}
}

// Encode returns the value as GreptimeDB writes it, except that map keys
// are sorted (GreptimeDB writes HashMaps in hash order).
func (v TableInfoValue) Encode() ([]byte, error) { return v.MarshalJSON() }

func (v TableInfoValue) MarshalJSON() ([]byte, error) {
	type plain TableInfoValue
	return encode(plain(v))
}

func (v *TableInfoValue) UnmarshalJSON(data []byte) error {
	var out TableInfoValue
	if err := decodeObject("TableInfoValue", data,
		required("table_info", &out.TableInfo),
		required("version", &out.Version),
	); err != nil {
		return err
	}
	*v = out
	return nil
}

// TableInfo is table's TableInfo as serde writes it (table/metadata.rs),
// which is also the JSON a frontend puts in a CreateTableTask's table_info.
// GreptimeDB v1.1.4 no longer has a RawTableInfo: older values, written
// through it, carry fields it now ignores (meta.region_numbers,
// meta.engine_options, meta.schema.timestamp_index); they are dropped on
// reading, as GreptimeDB drops them, and missing newer fields take
// GreptimeDB's defaults. desc may be missing; every other field is required.
type TableInfo struct {
	Ident       TableIdent `json:"ident"`
	Name        string     `json:"name"`
	Desc        *string    `json:"desc"` // the table comment; nil is null
	CatalogName string     `json:"catalog_name"`
	SchemaName  string     `json:"schema_name"`
	Meta        TableMeta  `json:"meta"`
	TableType   TableType  `json:"table_type"`
}

// FullName is the table's catalog, schema and name.
func (t TableInfo) FullName() TableName {
	return TableName{Catalog: t.CatalogName, Schema: t.SchemaName, Table: t.Name}
}

// RegionStoragePath is where the table's regions keep their files.
func (t TableInfo) RegionStoragePath() string { return RegionStoragePath(t.CatalogName, t.SchemaName) }

func (t TableInfo) MarshalJSON() ([]byte, error) {
	type plain TableInfo
	return encode(plain(t))
}

func (t *TableInfo) UnmarshalJSON(data []byte) error {
	var out TableInfo
	if err := decodeObject("TableInfo", data,
		required("ident", &out.Ident),
		required("name", &out.Name),
		option("desc", &out.Desc),
		required("catalog_name", &out.CatalogName),
		required("schema_name", &out.SchemaName),
		required("meta", &out.Meta),
		required("table_type", &out.TableType),
	); err != nil {
		return err
	}
	*t = out
	return nil
}

// TableIdent is the table's id and schema version (the version an alter
// bumps; 0 at creation). Both are required on reading.
type TableIdent struct {
	TableID uint32 `json:"table_id"`
	Version uint64 `json:"version"`
}

func (i TableIdent) MarshalJSON() ([]byte, error) {
	type plain TableIdent
	return encode(plain(i))
}

func (i *TableIdent) UnmarshalJSON(data []byte) error {
	var out TableIdent
	if err := decodeObject("TableIdent", data,
		required("table_id", &out.TableID),
		required("version", &out.Version),
	); err != nil {
		return err
	}
	*i = out
	return nil
}

// TableType is table's TableType, a unit variant written as its name.
type TableType string

const (
	TableTypeBase      TableType = "Base"
	TableTypeView      TableType = "View"
	TableTypeTemporary TableType = "Temporary"
)

func (t TableType) MarshalJSON() ([]byte, error) {
	if !t.valid() {
		return nil, fmt.Errorf("%w: unknown table type %q", ErrInvalidValue, string(t))
	}
	return []byte(`"` + string(t) + `"`), nil
}

func (t *TableType) UnmarshalJSON(data []byte) error {
	var name string
	if err := json.Unmarshal(data, &name); err != nil {
		return err
	}
	if !TableType(name).valid() {
		return fmt.Errorf("unknown variant %q, want Base, View or Temporary", name)
	}
	*t = TableType(name)
	return nil
}

func (t TableType) valid() bool {
	return t == TableTypeBase || t == TableTypeView || t == TableTypeTemporary
}

// TableMeta is table's TableMeta. On reading, updated_on defaults to
// created_on, partition_key_indices and column_ids to empty; the rest is
// required. The timestamps are kept as written: chrono's RFC 3339 text, as
// "2025-09-25T01:39:28.702584510Z".
type TableMeta struct {
	Schema              TableSchema  `json:"schema"`
	PrimaryKeyIndices   []int        `json:"primary_key_indices"` // into Schema.ColumnSchemas; not the time index
	ValueIndices        []int        `json:"value_indices"`
	Engine              string       `json:"engine"` // "mito", "metric", "file"
	NextColumnID        uint32       `json:"next_column_id"`
	Options             TableOptions `json:"options"`
	CreatedOn           string       `json:"created_on"`
	UpdatedOn           string       `json:"updated_on"`
	PartitionKeyIndices []int        `json:"partition_key_indices"`
	// ColumnIDs are the columns' ids in ColumnSchemas order; empty when
	// unknown (older tables, or a datanode that did not report them).
	ColumnIDs []uint32 `json:"column_ids"`
}

// ColumnNames are the table's column names, in schema order.
func (m TableMeta) ColumnNames() []string {
	names := make([]string, len(m.Schema.ColumnSchemas))
	for i, c := range m.Schema.ColumnSchemas {
		names[i] = c.Name
	}
	return names
}

func (m TableMeta) MarshalJSON() ([]byte, error) {
	type plain TableMeta
	p := plain(m)
	p.PrimaryKeyIndices = nonNil(p.PrimaryKeyIndices)
	p.ValueIndices = nonNil(p.ValueIndices)
	p.PartitionKeyIndices = nonNil(p.PartitionKeyIndices)
	p.ColumnIDs = nonNil(p.ColumnIDs)
	return encode(p)
}

func (m *TableMeta) UnmarshalJSON(data []byte) error {
	const typ = "TableMeta"
	out := TableMeta{PartitionKeyIndices: []int{}, ColumnIDs: []uint32{}}
	var updated *string
	if err := decodeObject(typ, data,
		required("schema", &out.Schema),
		required("primary_key_indices", &out.PrimaryKeyIndices),
		required("value_indices", &out.ValueIndices),
		required("engine", &out.Engine),
		required("next_column_id", &out.NextColumnID),
		required("options", &out.Options),
		required("created_on", &out.CreatedOn),
		option("updated_on", &updated),
		optional("partition_key_indices", &out.PartitionKeyIndices),
		optional("column_ids", &out.ColumnIDs),
	); err != nil {
		return err
	}
	// usize in GreptimeDB: a negative index does not decode there.
	for _, f := range []struct {
		name    string
		indices []int
	}{
		{"primary_key_indices", out.PrimaryKeyIndices},
		{"value_indices", out.ValueIndices},
		{"partition_key_indices", out.PartitionKeyIndices},
	} {
		if i := slices.IndexFunc(f.indices, func(i int) bool { return i < 0 }); i >= 0 {
			return &fieldError{typ: typ, path: fmt.Sprintf("%s[%d]", f.name, i), err: fmt.Errorf("negative index %d", f.indices[i])}
		}
	}
	out.UpdatedOn = out.CreatedOn
	if updated != nil {
		out.UpdatedOn = *updated
	}
	*m = out
	return nil
}

// TableSchema is datatypes' Schema as serde writes it:
// {"column_schemas":[...],"version":0}, both required. (Values written
// before v1.1.4 also carry a timestamp_index, which is not written back.)
type TableSchema struct {
	ColumnSchemas []ColumnSchema `json:"column_schemas"`
	Version       uint32         `json:"version"`
}

func (s TableSchema) MarshalJSON() ([]byte, error) {
	return encode(struct {
		ColumnSchemas []ColumnSchema `json:"column_schemas"`
		Version       uint32         `json:"version"`
	}{nonNil(s.ColumnSchemas), s.Version})
}

func (s *TableSchema) UnmarshalJSON(data []byte) error {
	var out TableSchema
	if err := decodeObject("Schema", data,
		required("column_schemas", listOf(&out.ColumnSchemas)),
		required("version", &out.Version),
	); err != nil {
		return err
	}
	*s = out
	return nil
}

// ColumnSchema is datatypes' ColumnSchema. DataType (a ConcreteDataType,
// such as {"Timestamp":{"Millisecond":null}}) and DefaultConstraint are
// carried as written, compacted; a nil DefaultConstraint is null. Metadata
// holds, among others, "greptime:time_index":"true" on the time index
// column. Every field but default_constraint is required on reading.
type ColumnSchema struct {
	Name              string            `json:"name"`
	DataType          json.RawMessage   `json:"data_type"`
	IsNullable        bool              `json:"is_nullable"`
	IsTimeIndex       bool              `json:"is_time_index"`
	DefaultConstraint json.RawMessage   `json:"default_constraint"`
	Metadata          map[string]string `json:"metadata"`
}

func (c ColumnSchema) MarshalJSON() ([]byte, error) {
	if len(c.DataType) == 0 {
		return nil, fmt.Errorf("%w: column %q has no data type", ErrInvalidValue, c.Name)
	}
	type plain ColumnSchema
	p := plain(c)
	p.Metadata = nonNilMap(p.Metadata)
	return encode(p)
}

func (c *ColumnSchema) UnmarshalJSON(data []byte) error {
	var out ColumnSchema
	if err := decodeObject("ColumnSchema", data,
		required("name", &out.Name),
		required("data_type", &out.DataType),
		required("is_nullable", &out.IsNullable),
		required("is_time_index", &out.IsTimeIndex),
		option("default_constraint", &out.DefaultConstraint),
		required("metadata", &out.Metadata),
	); err != nil {
		return err
	}
	*c = out
	return nil
}
