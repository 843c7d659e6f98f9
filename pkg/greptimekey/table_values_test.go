package greptimekey_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
)

func TestTableNameValueBytes(t *testing.T) {
	t.Parallel()
	// table_name.rs:358.
	requireBytes(t, greptimekey.TableNameValue{TableID: 1}, `{"table_id":1}`)
	v, err := greptimekey.Decode[greptimekey.TableNameValue]([]byte(`{"table_id":1024,"other":1}`))
	require.NoError(t, err)
	require.Equal(t, uint32(1024), v.TableID)
	for _, in := range []string{`{}`, `{"table_id":null}`, `{"table_id":-1}`, `{"table_id":4294967296}`, `null`} {
		_, err := greptimekey.Decode[greptimekey.TableNameValue]([]byte(in))
		require.ErrorIs(t, err, greptimekey.ErrInvalidValue, in)
	}
}

// writtenTableInfoValue is what GreptimeDB v1.1.4 writes for a table info
// value: partition_column.rs:323, the value its repair tool rewrote.
const writtenTableInfoValue = `{"table_info":{"ident":{"table_id":1282,"version":2},"name":"foo","desc":null,"catalog_name":"greptime","schema_name":"public","meta":{"schema":{"column_schemas":[{"name":"c0","data_type":{"Int32":{}},"is_nullable":true,"is_time_index":false,"default_constraint":null,"metadata":{}},{"name":"c1","data_type":{"String":{"size_type":"Utf8"}},"is_nullable":true,"is_time_index":false,"default_constraint":null,"metadata":{}},{"name":"c2","data_type":{"String":{"size_type":"Utf8"}},"is_nullable":true,"is_time_index":false,"default_constraint":null,"metadata":{}},{"name":"c3","data_type":{"String":{"size_type":"Utf8"}},"is_nullable":true,"is_time_index":false,"default_constraint":null,"metadata":{}},{"name":"c4","data_type":{"Int32":{}},"is_nullable":true,"is_time_index":false,"default_constraint":null,"metadata":{}},{"name":"c5","data_type":{"Int32":{}},"is_nullable":true,"is_time_index":false,"default_constraint":null,"metadata":{}},{"name":"c6","data_type":{"Int32":{}},"is_nullable":true,"is_time_index":false,"default_constraint":null,"metadata":{}},{"name":"c7","data_type":{"Int32":{}},"is_nullable":true,"is_time_index":false,"default_constraint":null,"metadata":{}},{"name":"c8","data_type":{"Int32":{}},"is_nullable":true,"is_time_index":false,"default_constraint":null,"metadata":{}},{"name":"c9","data_type":{"Int32":{}},"is_nullable":true,"is_time_index":false,"default_constraint":null,"metadata":{}},{"name":"c10","data_type":{"Timestamp":{"Nanosecond":null}},"is_nullable":false,"is_time_index":true,"default_constraint":null,"metadata":{"greptime:time_index":"true"}}],"version":2},"primary_key_indices":[4,7],"value_indices":[0,1,2,3,5,6,8,9,10],"engine":"mito","next_column_id":11,"options":{"write_buffer_size":null,"ttl":"14days","skip_wal":false,"extra_options":{"append_mode":"true"}},"created_on":"2025-09-25T01:39:28.702584510Z","updated_on":"2025-09-25T01:39:28.702584510Z","partition_key_indices":[4],"column_ids":[]},"table_type":"Base"},"version":3}`

func TestTableInfoValueWrittenByGreptimeDB(t *testing.T) {
	t.Parallel()
	v, err := greptimekey.Decode[greptimekey.TableInfoValue]([]byte(writtenTableInfoValue))
	require.NoError(t, err)
	require.Equal(t, uint64(3), v.Version)
	info := v.TableInfo
	require.Equal(t, greptimekey.TableIdent{TableID: 1282, Version: 2}, info.Ident)
	require.Equal(t, greptimekey.TableName{Catalog: "greptime", Schema: "public", Table: "foo"}, info.FullName())
	require.Nil(t, info.Desc)
	require.Equal(t, "mito", info.Meta.Engine)
	require.Equal(t, greptimekey.TableTypeBase, info.TableType)
	require.Equal(t, []string{"c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9", "c10"}, info.Meta.ColumnNames())
	require.True(t, info.Meta.Schema.ColumnSchemas[10].IsTimeIndex)
	require.Equal(t, `{"Timestamp":{"Nanosecond":null}}`, string(info.Meta.Schema.ColumnSchemas[10].DataType))
	require.Equal(t, "14days", info.Meta.Options.TTL)
	require.Equal(t, map[string]string{"append_mode": "true", "ttl": "14days"}, info.Meta.Options.RegionOptions())
	require.Equal(t, "greptime/public", info.RegionStoragePath())

	got, err := v.Encode()
	require.NoError(t, err)
	require.Equal(t, writtenTableInfoValue, string(got))
}

func TestTableInfoValueOlderFormats(t *testing.T) {
	t.Parallel()
	// partition_column.rs:253: written through the former RawTableInfo, with
	// region_numbers and timestamp_index, without updated_on and column_ids.
	old := `{"table_info":{"ident":{"table_id":1282,"version":2},"name":"foo","desc":null,"catalog_name":"greptime","schema_name":"public","meta":{"schema":{"column_schemas":[{"name":"c0","data_type":{"Int32":{}},"is_nullable":true,"is_time_index":false,"default_constraint":null,"metadata":{}},{"name":"c10","data_type":{"Timestamp":{"Nanosecond":null}},"is_nullable":false,"is_time_index":true,"default_constraint":null,"metadata":{"greptime:time_index":"true"}}],"timestamp_index":1,"version":2},"primary_key_indices":[0],"value_indices":[1],"engine":"mito","next_column_id":11,"region_numbers":[0,1,2],"options":{"write_buffer_size":null,"ttl":"14days","skip_wal":false,"extra_options":{"append_mode":"true"}},"created_on":"2025-09-25T01:39:28.702584510Z","partition_key_indices":[3]},"table_type":"Base"},"version":2}`
	v, err := greptimekey.Decode[greptimekey.TableInfoValue]([]byte(old))
	require.NoError(t, err)
	require.Equal(t, v.TableInfo.Meta.CreatedOn, v.TableInfo.Meta.UpdatedOn)
	require.Equal(t, []uint32{}, v.TableInfo.Meta.ColumnIDs)
	got, err := v.Encode()
	require.NoError(t, err)
	// What GreptimeDB writes back: the dropped fields gone, the defaults in.
	require.Equal(t, `{"table_info":{"ident":{"table_id":1282,"version":2},"name":"foo","desc":null,"catalog_name":"greptime","schema_name":"public","meta":{"schema":{"column_schemas":[{"name":"c0","data_type":{"Int32":{}},"is_nullable":true,"is_time_index":false,"default_constraint":null,"metadata":{}},{"name":"c10","data_type":{"Timestamp":{"Nanosecond":null}},"is_nullable":false,"is_time_index":true,"default_constraint":null,"metadata":{"greptime:time_index":"true"}}],"version":2},"primary_key_indices":[0],"value_indices":[1],"engine":"mito","next_column_id":11,"options":{"write_buffer_size":null,"ttl":"14days","skip_wal":false,"extra_options":{"append_mode":"true"}},"created_on":"2025-09-25T01:39:28.702584510Z","updated_on":"2025-09-25T01:39:28.702584510Z","partition_key_indices":[3],"column_ids":[]},"table_type":"Base"},"version":2}`, string(got))

	// table_info.rs:290 (version before table_info, the old String type,
	// no skip_wal) reads like table_info.rs:291.
	for _, in := range []string{
		`{"version":1,"table_info":{"ident":{"table_id":8714,"version":0},"name":"go_gc_duration_seconds","desc":"Created on insertion","catalog_name":"e87lehzy63d4cloud_docs_test","schema_name":"public","meta":{"schema":{"column_schemas":[{"name":"instance","data_type":{"String":null},"is_nullable":true,"is_time_index":false,"default_constraint":null,"metadata":{}},{"name":"greptime_timestamp","data_type":{"Timestamp":{"Millisecond":null}},"is_nullable":false,"is_time_index":true,"default_constraint":null,"metadata":{"greptime:time_index":"true"}},{"name":"greptime_value","data_type":{"Float64":{}},"is_nullable":true,"is_time_index":false,"default_constraint":null,"metadata":{}}],"timestamp_index":1,"version":0},"primary_key_indices":[0],"value_indices":[],"engine":"mito","next_column_id":3,"region_numbers":[],"engine_options":{},"options":{"write_buffer_size":null,"ttl":null,"extra_options":{}},"created_on":"1970-01-01T00:00:00Z"},"table_type":"Base"}}`,
	} {
		v, err := greptimekey.Decode[greptimekey.TableInfoValue]([]byte(in))
		require.NoError(t, err)
		require.Equal(t, uint64(1), v.Version)
		require.Equal(t, "Created on insertion", *v.TableInfo.Desc)
		require.Equal(t, "1970-01-01T00:00:00Z", v.TableInfo.Meta.UpdatedOn)
		require.Equal(t, []int{}, v.TableInfo.Meta.PartitionKeyIndices)
		require.Empty(t, v.TableInfo.Meta.Options.TTL)
		require.False(t, v.TableInfo.Meta.Options.SkipWAL)
		require.Empty(t, v.TableInfo.Meta.Options.RegionOptions())
	}

	// metadata.rs:2142: a bare TableInfo with the extreme timestamps, read
	// and written back without the schema's timestamp_index.
	bare := `{"ident":{"table_id":1024,"version":1},"name":"foo","desc":"my table","catalog_name":"greptime","schema_name":"public","meta":{"schema":{"column_schemas":[{"name":"col1","data_type":{"Int32":{}},"is_nullable":true,"is_time_index":false,"default_constraint":null,"metadata":{}},{"name":"ts","data_type":{"Timestamp":{"Millisecond":null}},"is_nullable":false,"is_time_index":true,"default_constraint":null,"metadata":{"greptime:time_index":"true"}},{"name":"col2","data_type":{"Int32":{}},"is_nullable":true,"is_time_index":false,"default_constraint":null,"metadata":{}}],"timestamp_index":1,"version":123},"primary_key_indices":[0],"value_indices":[1,2],"engine":"mito","next_column_id":3,"options":{"write_buffer_size":null,"ttl":"1h","skip_wal":false,"extra_options":{}},"created_on":"-262143-01-01T00:00:00Z","updated_on":"+262142-12-31T23:59:59.999999999Z","partition_key_indices":[2],"column_ids":[0,1,2]},"table_type":"Base"}`
	var info greptimekey.TableInfo
	require.NoError(t, json.Unmarshal([]byte(bare), &info))
	require.Equal(t, "+262142-12-31T23:59:59.999999999Z", info.Meta.UpdatedOn)
	got, err = json.Marshal(info)
	require.NoError(t, err)
	require.Equal(t, strings.Replace(bare, `"timestamp_index":1,`, "", 1), string(got))
}

// frontendTableInfo is a CreateTableTask's table_info as a v1.1.4 frontend
// serialises it for CREATE TABLE cpu (host STRING, ts TIMESTAMP DEFAULT
// current_timestamp() TIME INDEX, usage DOUBLE COMMENT 'cpu usage',
// PRIMARY KEY (host)) WITH (ttl = '7d', write_buffer_size = '4MB',
// 'append_mode' = 'false'), written by hand from the serde shapes of
// TableInfo, TableMeta, Schema, ColumnSchema and TableOptions
// (table/metadata.rs:1140, :128, datatypes schema.rs:51,
// column_schema.rs:77, table/requests.rs:144).
const frontendTableInfo = `{"ident":{"table_id":0,"version":0},"name":"cpu","desc":null,"catalog_name":"greptime","schema_name":"public",` +
	`"meta":{"schema":{"column_schemas":[` +
	`{"name":"host","data_type":{"String":{"size_type":"Utf8"}},"is_nullable":true,"is_time_index":false,"default_constraint":null,"metadata":{}},` +
	`{"name":"ts","data_type":{"Timestamp":{"Millisecond":null}},"is_nullable":false,"is_time_index":true,"default_constraint":{"Function":"current_timestamp()"},"metadata":{"greptime:time_index":"true"}},` +
	`{"name":"usage","data_type":{"Float64":{}},"is_nullable":true,"is_time_index":false,"default_constraint":null,"metadata":{"greptime:storage:comment":"cpu usage"}}` +
	`],"version":0},"primary_key_indices":[0],"value_indices":[1,2],"engine":"mito","next_column_id":3,` +
	`"options":{"write_buffer_size":"4MiB","ttl":"7days","skip_wal":false,"extra_options":{"append_mode":"false"}},` +
	`"created_on":"2025-10-01T12:00:00.123456789Z","updated_on":"2025-10-01T12:00:00.123456789Z","partition_key_indices":[],"column_ids":[]},` +
	`"table_type":"Base"}`

func TestTableInfoFromFrontend(t *testing.T) {
	t.Parallel()
	var info greptimekey.TableInfo
	require.NoError(t, json.Unmarshal([]byte(frontendTableInfo), &info))
	require.Equal(t, []string{"host", "ts", "usage"}, info.Meta.ColumnNames())
	require.Equal(t, []int{0}, info.Meta.PrimaryKeyIndices)
	require.Equal(t, `{"Function":"current_timestamp()"}`, string(info.Meta.Schema.ColumnSchemas[1].DefaultConstraint))

	// Read, set the allocated id, write: every field survives, in place.
	got, err := json.Marshal(info)
	require.NoError(t, err)
	require.Equal(t, frontendTableInfo, string(got))

	info.Ident.TableID = 1024
	value := greptimekey.NewTableInfoValue(info)
	b, err := value.Encode()
	require.NoError(t, err)
	require.Equal(t, `{"table_info":`+strings.Replace(frontendTableInfo, `"table_id":0`, `"table_id":1024`, 1)+`,"version":0}`, string(b))
	require.Equal(t, uint64(1), value.Next(info).Version)

	require.Equal(t, map[string]string{"write_buffer_size": "4.0MiB", "ttl": "7days", "append_mode": "false"}, info.Meta.Options.RegionOptions())

	// Whitespace and key order do not matter on reading; what is written is
	// the same.
	var spaced greptimekey.TableInfo
	require.NoError(t, json.Unmarshal([]byte(strings.NewReplacer(`,"`, `, "`, `":`, `": `).Replace(frontendTableInfo)), &spaced))
	got, err = json.Marshal(spaced)
	require.NoError(t, err)
	require.JSONEq(t, frontendTableInfo, string(got))
	require.Equal(t, frontendTableInfo, string(got))
}

func TestTableInfoDecodeErrors(t *testing.T) {
	t.Parallel()
	drop := func(field string) string {
		var m map[string]json.RawMessage
		require.NoError(t, json.Unmarshal([]byte(frontendTableInfo), &m))
		delete(m, field)
		b, err := json.Marshal(m)
		require.NoError(t, err)
		return string(b)
	}
	for _, c := range []struct{ in, want string }{
		{drop("ident"), `missing field "ident"`},
		{drop("name"), `missing field "name"`},
		{drop("meta"), `missing field "meta"`},
		{drop("table_type"), `missing field "table_type"`},
		{strings.Replace(frontendTableInfo, `"Base"`, `"Table"`, 1), `field "table_type": unknown variant "Table"`},
		{strings.Replace(frontendTableInfo, `"engine":"mito",`, ``, 1), `missing field "meta.engine"`},
		{strings.Replace(frontendTableInfo, `"created_on":"2025-10-01T12:00:00.123456789Z",`, ``, 1), `missing field "meta.created_on"`},
		{strings.Replace(frontendTableInfo, `"primary_key_indices":[0]`, `"primary_key_indices":[-1]`, 1), `field "meta.primary_key_indices[0]": negative index -1`},
		{strings.Replace(frontendTableInfo, `,"version":0},"primary`, `},"primary`, 1), `missing field "meta.schema.version"`},
		{strings.Replace(frontendTableInfo, `"name":"host","data_type":{"String":{"size_type":"Utf8"}},`, `"name":"host",`, 1), `missing field "meta.schema.column_schemas[0].data_type"`},
		{strings.Replace(frontendTableInfo, `"is_nullable":false,`, ``, 1), `missing field "meta.schema.column_schemas[1].is_nullable"`},
		{strings.Replace(frontendTableInfo, `"metadata":{}}`, `"metadata":null}`, 1), `field "meta.schema.column_schemas[0].metadata": null`},
		{strings.Replace(frontendTableInfo, `"skip_wal":false`, `"skip_wal":null`, 1), `field "meta.options.skip_wal": null`},
		{strings.Replace(frontendTableInfo, `"ttl":"7days"`, `"ttl":""`, 1), `field "meta.options.ttl": empty time to live`},
		{strings.Replace(frontendTableInfo, `"4MiB"`, `"4 XB"`, 1), `field "meta.options.write_buffer_size": only B, KB`},
		{strings.Replace(frontendTableInfo, `"4MiB"`, `-1`, 1), `field "meta.options.write_buffer_size"`},
	} {
		var info greptimekey.TableInfo
		err := json.Unmarshal([]byte(c.in), &info)
		require.ErrorIs(t, err, greptimekey.ErrInvalidValue, c.want)
		require.ErrorContains(t, err, c.want)
	}

	// The options may be missing inside, not as a whole.
	var info greptimekey.TableInfo
	require.NoError(t, json.Unmarshal([]byte(strings.Replace(frontendTableInfo,
		`{"write_buffer_size":"4MiB","ttl":"7days","skip_wal":false,"extra_options":{"append_mode":"false"}}`, `{}`, 1)), &info))
	require.Equal(t, greptimekey.TableOptions{ExtraOptions: map[string]string{}}, info.Meta.Options)
	require.ErrorContains(t, json.Unmarshal([]byte(drop("meta")), &info), "missing")

	_, err := json.Marshal(greptimekey.ColumnSchema{Name: "x"})
	require.ErrorIs(t, err, greptimekey.ErrInvalidValue)
	_, err = json.Marshal(greptimekey.TableInfo{Meta: greptimekey.TableMeta{}, TableType: "x"})
	require.ErrorIs(t, err, greptimekey.ErrInvalidValue)
}

func TestTableOptionsWriteBufferSize(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in      string
		bytes   uint64
		written string
		display string
	}{
		{`"4MiB"`, 4 << 20, `"4MiB"`, "4.0MiB"},
		{`"4MB"`, 4 << 20, `"4MiB"`, "4.0MiB"},
		{`" 4 M "`, 4 << 20, `"4MiB"`, "4.0MiB"},
		{`"1.5GiB"`, 3 << 29, `"1536MiB"`, "1.5GiB"},
		{`"1536"`, 1536, `1536`, "1.5KiB"},
		{`1536`, 1536, `1536`, "1.5KiB"},
		{`"0"`, 0, `"0KiB"`, "0B"},
		{`512`, 512, `512`, "512B"},
		{`"2KiB"`, 2048, `"2KiB"`, "2.0KiB"},
		{`"1TB"`, 1 << 40, `"1TiB"`, "1.0TiB"},
		{`"3P"`, 3 << 50, `"3PiB"`, "3.0PiB"},
		{`"-1KB"`, 0, `"0KiB"`, "0B"},
		{`"1e30PiB"`, 18446744073709551615, `18446744073709551615`, "16384.0PiB"},
	} {
		var o greptimekey.TableOptions
		require.NoError(t, json.Unmarshal([]byte(`{"write_buffer_size":`+c.in+`}`), &o), c.in)
		require.NotNil(t, o.WriteBufferSize, c.in)
		require.Equal(t, c.bytes, *o.WriteBufferSize, c.in)
		got, err := json.Marshal(o)
		require.NoError(t, err)
		require.Equal(t, `{"write_buffer_size":`+c.written+`,"ttl":null,"skip_wal":false,"extra_options":{}}`, string(got), c.in)
		require.Equal(t, c.display, greptimekey.FormatReadableSize(c.bytes), c.in)
		require.Equal(t, map[string]string{"write_buffer_size": c.display}, o.RegionOptions(), c.in)
	}
	for _, in := range []string{`"MiB"`, `""`, `"1 XB"`, `"1.5.5MiB"`, `"１MiB"`, `1.5`, `-2`, `true`} {
		var o greptimekey.TableOptions
		require.ErrorIs(t, json.Unmarshal([]byte(`{"write_buffer_size":`+in+`}`), &o), greptimekey.ErrInvalidValue, in)
	}
	// Extra options win over the typed ones, as HashMap::extend does.
	o := greptimekey.TableOptions{TTL: "1h", SkipWAL: true, ExtraOptions: map[string]string{"ttl": "2h", "storage": "S3"}}
	require.Equal(t, map[string]string{"ttl": "2h", "storage": "S3"}, o.RegionOptions())
	got, err := json.Marshal(o)
	require.NoError(t, err)
	require.Equal(t, `{"write_buffer_size":null,"ttl":"1h","skip_wal":true,"extra_options":{"storage":"S3","ttl":"2h"}}`, string(got))
}
