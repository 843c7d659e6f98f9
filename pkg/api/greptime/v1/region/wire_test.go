package regionpb_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	regionpb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/region"
)

// The expectations below are transcribed from greptime-proto 5e35831
// (proto/greptime/v1/region/server.proto), the commit GreptimeDB v1.1.4 pins:
// the wire contract with GreptimeDB datanodes. Change them only after
// re-reading the upstream file. The helpers match the metapb wire test's.

const pkg = "greptime.v1.region."

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
	const file = "greptime/v1/region/server.proto"
	// message -> every field (a field added or dropped fails too).
	want := map[string][]string{
		"RegionRequestHeader": {
			"map<string, string> tracing_context = 5",
			"string dbname = 3",
			"greptime.v1.QueryContext query_context = 6",
		},
		// Only the bodies metasrv sends are declared.
		"RegionRequest": {
			"greptime.v1.region.RegionRequestHeader header = 1",
			"oneof body: greptime.v1.region.CreateRequest create = 5",
			"oneof body: greptime.v1.region.DropRequest drop = 6",
			"oneof body: greptime.v1.region.OpenRequest open = 7",
			"oneof body: greptime.v1.region.CloseRequest close = 8",
			"oneof body: greptime.v1.region.AlterRequest alter = 9",
			"oneof body: greptime.v1.region.TruncateRequest truncate = 12",
			"oneof body: greptime.v1.region.CreateRequests creates = 13",
			"oneof body: greptime.v1.region.DropRequests drops = 14",
		},
		"RegionResponse": {
			"greptime.v1.ResponseHeader header = 1",
			"uint64 affected_rows = 2",
			"map<string, bytes> extensions = 3",
			"bytes metadata = 4",
		},
		"CreateRequests": {"repeated greptime.v1.region.CreateRequest requests = 1"},
		"CreateRequest": {
			"uint64 region_id = 1",
			"string engine = 2",
			"repeated greptime.v1.region.RegionColumnDef column_defs = 3",
			"repeated uint32 primary_key = 4",
			"string path = 5",
			"map<string, string> options = 6",
			"greptime.v1.meta.Partition partition = 7",
			"greptime.v1.region.RegionRequirements requirements = 8",
		},
		"RegionRequirements": {"bool object_storage = 1"},
		"DropRequests":       {"repeated greptime.v1.region.DropRequest requests = 1"},
		"DropRequest": {
			"uint64 region_id = 1",
			"bool fast_path = 2",
			"bool force = 3",
			"bool partial_drop = 4",
			"bool soft_drop = 5",
		},
		"OpenRequest": {
			"uint64 region_id = 1",
			"string engine = 2",
			"string path = 3",
			"map<string, string> options = 4",
		},
		"CloseRequest": {"uint64 region_id = 1"},
		// Only the add/drop column kinds are declared.
		"AlterRequest": {
			"uint64 region_id = 1",
			"oneof kind: greptime.v1.region.AddColumns add_columns = 2",
			"oneof kind: greptime.v1.region.DropColumns drop_columns = 3",
			"uint64 schema_version = 4",
		},
		"AddColumns":  {"repeated greptime.v1.region.AddColumn add_columns = 1"},
		"DropColumns": {"repeated greptime.v1.region.DropColumn drop_columns = 1"},
		"AddColumn": {
			"greptime.v1.region.RegionColumnDef column_def = 1",
			"greptime.v1.AddColumnLocation location = 3",
		},
		"DropColumn": {"string name = 1"},
		"TruncateRequest": {
			"uint64 region_id = 1",
			"oneof kind: greptime.v1.region.All all = 2",
			"oneof kind: greptime.v1.TimeRanges time_ranges = 3",
		},
		"All": nil,
		"RegionColumnDef": {
			"greptime.v1.ColumnDef column_def = 1",
			"uint32 column_id = 2",
		},
	}
	fd, err := protoregistry.GlobalFiles.FindFileByPath(file)
	require.NoError(t, err)
	var declared, listed []string
	for i := range fd.Messages().Len() {
		declared = append(declared, string(fd.Messages().Get(i).Name()))
	}
	for name := range want {
		listed = append(listed, name)
	}
	// Every message we declare is checked, not only the ones listed.
	require.ElementsMatch(t, listed, declared)

	for name, fields := range want {
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

func TestService(t *testing.T) {
	t.Parallel()
	sd, ok := lookup(t, "Region").(protoreflect.ServiceDescriptor)
	require.True(t, ok)
	require.Equal(t, "greptime/v1/region/server.proto", sd.ParentFile().Path())
	require.Equal(t, 1, sd.Methods().Len())
	m := sd.Methods().Get(0)
	require.Equal(t, "rpc Handle(greptime.v1.region.RegionRequest) returns (greptime.v1.region.RegionResponse)",
		fmt.Sprintf("rpc %s(%s) returns (%s)", m.Name(), m.Input().FullName(), m.Output().FullName()))
	require.False(t, m.IsStreamingClient())
	require.False(t, m.IsStreamingServer())
	// The gRPC path metasrv dials on a datanode.
	require.Equal(t, "/greptime.v1.region.Region/Handle", regionpb.Region_Handle_FullMethodName)
}

// TestUndeclaredBodyIsUnknown: a body we do not declare (inserts = 3) leaves
// the oneof unset and survives as unknown bytes rather than failing to parse.
func TestUndeclaredBodyIsUnknown(t *testing.T) {
	t.Parallel()
	inserts := protowire.AppendTag(nil, 3, protowire.BytesType)
	inserts = protowire.AppendBytes(inserts, nil)
	var req regionpb.RegionRequest
	require.NoError(t, proto.Unmarshal(inserts, &req))
	require.Nil(t, req.GetBody())
	require.Equal(t, inserts, []byte(req.ProtoReflect().GetUnknown()))
}

func TestCreateRequestBytes(t *testing.T) {
	t.Parallel()
	// RegionRequest{create: {region_id: (1024 << 32) | 1, engine: "mito"}}.
	const regionID = 1024<<32 | 1
	var create []byte
	create = protowire.AppendTag(create, 1, protowire.VarintType)
	create = protowire.AppendVarint(create, regionID)
	create = protowire.AppendTag(create, 2, protowire.BytesType)
	create = protowire.AppendString(create, "mito")
	want := protowire.AppendTag(nil, 5, protowire.BytesType)
	want = protowire.AppendBytes(want, create)
	require.Equal(t, byte(0x2a), want[0], "tag of create (5, bytes)")

	msg := &regionpb.RegionRequest{Body: &regionpb.RegionRequest_Create{
		Create: &regionpb.CreateRequest{RegionId: regionID, Engine: "mito"},
	}}
	got, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	require.NoError(t, err)
	require.Equal(t, want, got)
}
