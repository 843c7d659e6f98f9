package greptimepb_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	greptimepb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1"
)

// The expectations below are transcribed from greptime-proto 5e35831
// (proto/greptime/v1/{common,ddl}.proto), the commit GreptimeDB v1.1.4 pins.
// They are the wire contract with GreptimeDB frontends and datanodes: change
// them only after re-reading the upstream file, never to make an edit of our
// .proto files pass. The rendering helpers match those of the metapb wire
// test, so the three packages' expectations read the same.

const pkg = "greptime.v1."

func lookup(t *testing.T, name string) protoreflect.Descriptor {
	t.Helper()
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(pkg + name))
	require.NoError(t, err, name)
	return d
}

func typeName(fd protoreflect.FieldDescriptor) string {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return string(fd.Message().FullName())
	case protoreflect.EnumKind:
		return string(fd.Enum().FullName())
	default:
		return fd.Kind().String()
	}
}

// renderField writes a field as a line of proto source; a proto3 `optional`
// would show as its synthetic oneof, so a presence change is caught too.
func renderField(fd protoreflect.FieldDescriptor) string {
	var s string
	switch {
	case fd.IsMap():
		s = fmt.Sprintf("map<%s, %s>", typeName(fd.MapKey()), typeName(fd.MapValue()))
	case fd.Cardinality() == protoreflect.Repeated:
		s = "repeated " + typeName(fd)
	default:
		s = typeName(fd)
	}
	s = fmt.Sprintf("%s %s = %d", s, fd.Name(), fd.Number())
	if o := fd.ContainingOneof(); o != nil {
		s = fmt.Sprintf("oneof %s: %s", o.Name(), s)
	}
	return s
}

func TestMessageFields(t *testing.T) {
	t.Parallel()
	const ext = "greptime.v1.ColumnDataTypeExtension"
	// file -> message -> every field (a field added or dropped fails too).
	want := map[string]map[string][]string{
		"greptime/v1/common.proto": {
			"QueryContext": {
				"string current_catalog = 1",
				"string current_schema = 2",
				"string timezone = 4",
				"map<string, string> extensions = 5",
				"uint32 channel = 6",
				"greptime.v1.SnapshotSequences snapshot_seqs = 7",
				"greptime.v1.ExplainOptions explain = 8",
			},
			"SnapshotSequences": {
				"map<uint64, uint64> sst_min_sequences = 1",
				"map<uint64, uint64> snapshot_seqs = 7",
			},
			"ExplainOptions": {"bool verbose = 1"},
			"ResponseHeader": {"greptime.v1.Status status = 1"},
			"Status": {
				"uint32 status_code = 1",
				"string err_msg = 2",
			},
			"TableName": {
				"string catalog_name = 1",
				"string schema_name = 2",
				"string table_name = 3",
			},
			"TimeRange": {
				"int64 start = 1",
				"int64 end = 2",
			},
			"TimeRanges": {
				"greptime.v1.TimeUnit time_unit = 1",
				"repeated greptime.v1.TimeRange time_ranges = 2",
			},
			"StructField": {
				"string name = 1",
				"greptime.v1.ColumnDataType datatype = 2",
				ext + " datatype_extension = 3",
			},
			"ColumnDataTypeExtension": {
				"oneof type_ext: greptime.v1.DecimalTypeExtension decimal_type = 1",
				"oneof type_ext: greptime.v1.JsonTypeExtension json_type = 2",
				"oneof type_ext: greptime.v1.VectorTypeExtension vector_type = 3",
				"oneof type_ext: greptime.v1.ListTypeExtension list_type = 4",
				"oneof type_ext: greptime.v1.StructTypeExtension struct_type = 5",
				"oneof type_ext: greptime.v1.JsonNativeTypeExtension json_native_type = 6",
				"oneof type_ext: greptime.v1.DictionaryTypeExtension dictionary_type = 7",
			},
			"DecimalTypeExtension": {
				"int32 precision = 1",
				"int32 scale = 2",
			},
			"VectorTypeExtension": {"uint32 dim = 1"},
			"ListTypeExtension": {
				"greptime.v1.ColumnDataType datatype = 1",
				ext + " datatype_extension = 2",
			},
			"StructTypeExtension": {"repeated greptime.v1.StructField fields = 1"},
			"JsonNativeTypeExtension": {
				"greptime.v1.ColumnDataType datatype = 1",
				ext + " datatype_extension = 2",
			},
			"DictionaryTypeExtension": {
				"greptime.v1.ColumnDataType key_datatype = 1",
				ext + " key_datatype_extension = 2",
				"greptime.v1.ColumnDataType value_datatype = 3",
				ext + " value_datatype_extension = 4",
			},
			"ColumnOptions": {"map<string, string> options = 1"},
		},
		"greptime/v1/ddl.proto": {
			"CreateTableExpr": {
				"string catalog_name = 1",
				"string schema_name = 2",
				"string table_name = 3",
				"string desc = 4",
				"repeated greptime.v1.ColumnDef column_defs = 5",
				"string time_index = 6",
				"repeated string primary_keys = 7",
				"bool create_if_not_exists = 8",
				"map<string, string> table_options = 9",
				"greptime.v1.TableId table_id = 10",
				"string engine = 12",
			},
			// Only the add/drop column and rename kinds are declared.
			"AlterTableExpr": {
				"string catalog_name = 1",
				"string schema_name = 2",
				"string table_name = 3",
				"oneof kind: greptime.v1.AddColumns add_columns = 4",
				"oneof kind: greptime.v1.DropColumns drop_columns = 5",
				"oneof kind: greptime.v1.RenameTable rename_table = 6",
			},
			"DropTableExpr": {
				"string catalog_name = 1",
				"string schema_name = 2",
				"string table_name = 3",
				"greptime.v1.TableId table_id = 4",
				"bool drop_if_exists = 5",
			},
			"CreateDatabaseExpr": {
				"string catalog_name = 1",
				"string schema_name = 2",
				"bool create_if_not_exists = 3",
				"map<string, string> options = 4",
			},
			"TruncateTableExpr": {
				"string catalog_name = 1",
				"string schema_name = 2",
				"string table_name = 3",
				"greptime.v1.TableId table_id = 4",
				"greptime.v1.TimeRanges time_ranges = 5",
			},
			"DropDatabaseExpr": {
				"string catalog_name = 1",
				"string schema_name = 2",
				"bool drop_if_exists = 3",
			},
			"AddColumns":  {"repeated greptime.v1.AddColumn add_columns = 1"},
			"DropColumns": {"repeated greptime.v1.DropColumn drop_columns = 1"},
			"RenameTable": {"string new_table_name = 1"},
			"AddColumn": {
				"greptime.v1.ColumnDef column_def = 1",
				"greptime.v1.AddColumnLocation location = 3",
				"bool add_if_not_exists = 4",
			},
			"DropColumn": {"string name = 1"},
			"TableId":    {"uint32 id = 1"},
			"ColumnDef": {
				"string name = 1",
				"greptime.v1.ColumnDataType data_type = 2",
				"bool is_nullable = 3",
				"bytes default_constraint = 4",
				"greptime.v1.SemanticType semantic_type = 5",
				"string comment = 6",
				ext + " datatype_extension = 7",
				"greptime.v1.ColumnOptions options = 8",
			},
			"AddColumnLocation": {
				"greptime.v1.AddColumnLocation.LocationType location_type = 1",
				"string after_column_name = 2",
			},
		},
	}
	for file, msgs := range want {
		fd, err := protoregistry.GlobalFiles.FindFileByPath(file)
		require.NoError(t, err, file)
		var declared []string
		for i := range fd.Messages().Len() {
			declared = append(declared, string(fd.Messages().Get(i).Name()))
		}
		var listed []string
		for name := range msgs {
			listed = append(listed, name)
		}
		// Every message we declare is checked, not only the ones listed.
		require.ElementsMatch(t, listed, declared, file)

		for name, fields := range msgs {
			md, ok := lookup(t, name).(protoreflect.MessageDescriptor)
			require.True(t, ok, "%s is not a message", name)
			require.Equal(t, file, md.ParentFile().Path(), name)
			var got []string
			for i := range md.Fields().Len() {
				got = append(got, renderField(md.Fields().Get(i)))
			}
			require.ElementsMatch(t, fields, got, name)
		}
	}
}

func TestEnums(t *testing.T) {
	t.Parallel()
	want := map[string][]string{
		"SemanticType": {"TAG = 0", "FIELD = 1", "TIMESTAMP = 2"},
		"ColumnDataType": {
			"BOOLEAN = 0", "INT8 = 1", "INT16 = 2", "INT32 = 3", "INT64 = 4",
			"UINT8 = 5", "UINT16 = 6", "UINT32 = 7", "UINT64 = 8",
			"FLOAT32 = 9", "FLOAT64 = 10", "BINARY = 11", "STRING = 12",
			"DATE = 13", "DATETIME = 14",
			"TIMESTAMP_SECOND = 15", "TIMESTAMP_MILLISECOND = 16",
			"TIMESTAMP_MICROSECOND = 17", "TIMESTAMP_NANOSECOND = 18",
			"TIME_SECOND = 19", "TIME_MILLISECOND = 20",
			"TIME_MICROSECOND = 21", "TIME_NANOSECOND = 22",
			"INTERVAL_YEAR_MONTH = 23", "INTERVAL_DAY_TIME = 24",
			"INTERVAL_MONTH_DAY_NANO = 25",
			"DECIMAL128 = 30", "JSON = 31", "VECTOR = 32",
			"LIST = 40", "STRUCT = 41", "DICTIONARY = 42",
		},
		// Zero is MILLISECOND: truncate ranges without a unit are in ms.
		"TimeUnit":                       {"MILLISECOND = 0", "SECOND = 1", "MICROSECOND = 2", "NANOSECOND = 3"},
		"JsonTypeExtension":              {"JSON_BINARY = 0"},
		"AddColumnLocation.LocationType": {"FIRST = 0", "AFTER = 1"},
	}
	for name, values := range want {
		ed, ok := lookup(t, name).(protoreflect.EnumDescriptor)
		require.True(t, ok, "%s is not an enum", name)
		var got []string
		for i := range ed.Values().Len() {
			v := ed.Values().Get(i)
			got = append(got, fmt.Sprintf("%s = %d", v.Name(), v.Number()))
		}
		require.Equal(t, values, got, name)
	}

	// The Go constants callers use carry the upstream numbers.
	require.EqualValues(t, 16, greptimepb.ColumnDataType_TIMESTAMP_MILLISECOND)
	require.EqualValues(t, 2, greptimepb.SemanticType_TIMESTAMP)
}
