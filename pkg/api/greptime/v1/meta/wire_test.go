package metapb_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
)

// The expectations below are transcribed from greptime-proto 5e35831
// (proto/greptime/v1/meta/{common,heartbeat,store,cluster,config,ddl,
// procedure,route}.proto), the commit GreptimeDB v1.1.4 pins. They are the
// wire contract with GreptimeDB nodes: change them only after re-reading the
// upstream file, never to make an edit of our .proto files pass.

const pkg = "greptime.v1.meta."

// lookup finds a descriptor by its full name in the global registry, which is
// what gRPC reflection and Any resolution see.
func lookup(t *testing.T, name string) protoreflect.Descriptor {
	t.Helper()
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(pkg + name))
	require.NoError(t, err, name)
	return d
}

// typeName renders a field's type as it is written in a .proto file, with
// message and enum types by full name.
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

// renderField writes one field as a line of proto source: label, type, name,
// number, and the oneof it belongs to (a proto3 `optional` would show as its
// synthetic oneof, so a presence change is caught too).
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
	const (
		reqHeader  = "greptime.v1.meta.RequestHeader header = 1"
		respHeader = "greptime.v1.meta.ResponseHeader header = 1"
	)
	// file -> message -> every field (a field added or dropped fails too).
	want := map[string]map[string][]string{
		"greptime/v1/meta/common.proto": {
			"RequestHeader": {
				"uint64 protocol_version = 1",
				"uint64 member_id = 3",
				"greptime.v1.meta.Role role = 4",
				"map<string, string> tracing_context = 5",
			},
			"ResponseHeader": {
				"uint64 protocol_version = 1",
				"greptime.v1.meta.Error error = 3",
			},
			"Error": {
				"int32 code = 1",
				"string err_msg = 2",
			},
			"Peer": {
				"uint64 id = 1",
				"string addr = 2",
			},
			"TimeInterval": {
				"int64 start_timestamp_millis = 1",
				"int64 end_timestamp_millis = 2",
			},
			"KeyValue": {
				"bytes key = 1",
				"bytes value = 2",
			},
			"ProcedureId": {
				"bytes key = 1",
			},
		},
		"greptime/v1/meta/heartbeat.proto": {
			"HeartbeatRequest": {
				reqHeader,
				"greptime.v1.meta.Peer peer = 2",
				"greptime.v1.meta.TimeInterval report_interval = 3",
				"repeated greptime.v1.meta.RegionStat region_stats = 4",
				"greptime.v1.meta.MailboxMessage mailbox_message = 5",
				"uint64 duration_since_epoch = 6",
				"uint64 node_epoch = 7",
				"greptime.v1.meta.NodeInfo info = 8",
				"greptime.v1.meta.FlowStat flow_stat = 9",
				"oneof node_workloads: greptime.v1.meta.DatanodeWorkloads datanode = 10",
				"oneof node_workloads: greptime.v1.meta.FrontendWorkloads frontend = 11",
				"oneof node_workloads: greptime.v1.meta.FlownodeWorkloads flownode = 12",
				"repeated greptime.v1.meta.TopicStat topic_stats = 13",
				"map<string, bytes> extensions = 99",
			},
			"DatanodeWorkloads": {"repeated int32 types = 1"},
			"FrontendWorkloads": {"repeated int32 types = 1"},
			"FlownodeWorkloads": {"repeated int32 types = 1"},
			"NodeInfo": {
				"string version = 1",
				"string git_commit = 2",
				"uint64 start_time_ms = 3",
				"uint32 cpus = 4",
				"uint64 memory_bytes = 5",
				"string hostname = 6",
				"int64 total_cpu_millicores = 7",
				"int64 total_memory_bytes = 8",
				"int64 cpu_usage_millicores = 9",
				"int64 memory_usage_bytes = 10",
			},
			"RegionStat": {
				"uint64 region_id = 1",
				"int64 rcus = 2",
				"int64 wcus = 3",
				"int64 approximate_bytes = 4",
				"string engine = 6",
				"greptime.v1.meta.RegionRole role = 7",
				"map<string, bytes> extensions = 99",
			},
			"TopicStat": {
				"string topic_name = 1",
				"uint64 record_size = 2",
				"uint64 record_num = 3",
				"uint64 latest_entry_id = 4",
			},
			"FlowStat": {
				"map<uint32, uint64> flow_stat_size = 1",
				"map<uint32, int64> flow_last_exec_time_map = 2",
			},
			"HeartbeatResponse": {
				respHeader,
				"greptime.v1.meta.MailboxMessage mailbox_message = 2",
				"greptime.v1.meta.RegionLease region_lease = 3",
				"greptime.v1.meta.HeartbeatConfig heartbeat_config = 4",
			},
			"HeartbeatConfig": {
				"uint64 heartbeat_interval_ms = 1",
				"uint64 retry_interval_ms = 2",
			},
			"GrantedRegion": {
				"uint64 region_id = 1",
				"greptime.v1.meta.RegionRole role = 2",
				"map<string, bytes> extensions = 99",
			},
			"RegionLease": {
				"repeated greptime.v1.meta.GrantedRegion regions = 1",
				"uint64 duration_since_epoch = 2",
				"uint64 lease_seconds = 3",
				"repeated uint64 closeable_region_ids = 4",
			},
			"AskLeaderRequest": {reqHeader},
			"AskLeaderResponse": {
				respHeader,
				"greptime.v1.meta.Peer leader = 2",
			},
			"MailboxMessageHeader": {
				"map<string, string> tracing_context = 1",
			},
			"MailboxMessage": {
				"uint64 id = 1",
				"string subject = 2",
				"string from = 3",
				"string to = 4",
				"int64 timestamp_millis = 5",
				"oneof payload: string json = 6",
				"greptime.v1.meta.MailboxMessageHeader header = 64",
			},
		},
		"greptime/v1/meta/store.proto": {
			"RangeRequest": {
				reqHeader,
				"bytes key = 2",
				"bytes range_end = 3",
				"int64 limit = 4",
				"bool keys_only = 5",
			},
			"RangeResponse": {
				respHeader,
				"repeated greptime.v1.meta.KeyValue kvs = 2",
				"bool more = 3",
			},
			"PutRequest": {
				reqHeader,
				"bytes key = 2",
				"bytes value = 3",
				"bool prev_kv = 4",
			},
			"PutResponse": {
				respHeader,
				"greptime.v1.meta.KeyValue prev_kv = 2",
			},
			"BatchGetRequest": {
				reqHeader,
				"repeated bytes keys = 2",
			},
			"BatchGetResponse": {
				respHeader,
				"repeated greptime.v1.meta.KeyValue kvs = 2",
			},
			"BatchPutRequest": {
				reqHeader,
				"repeated greptime.v1.meta.KeyValue kvs = 2",
				"bool prev_kv = 3",
			},
			"BatchPutResponse": {
				respHeader,
				"repeated greptime.v1.meta.KeyValue prev_kvs = 2",
			},
			"BatchDeleteRequest": {
				reqHeader,
				"repeated bytes keys = 2",
				"bool prev_kv = 3",
			},
			"BatchDeleteResponse": {
				respHeader,
				"repeated greptime.v1.meta.KeyValue prev_kvs = 2",
			},
			"CompareAndPutRequest": {
				reqHeader,
				"bytes key = 2",
				"bytes expect = 3",
				"bytes value = 4",
			},
			"CompareAndPutResponse": {
				respHeader,
				"bool success = 2",
				"greptime.v1.meta.KeyValue prev_kv = 3",
			},
			"DeleteRangeRequest": {
				reqHeader,
				"bytes key = 2",
				"bytes range_end = 3",
				"bool prev_kv = 4",
			},
			"DeleteRangeResponse": {
				respHeader,
				"int64 deleted = 2",
				"repeated greptime.v1.meta.KeyValue prev_kvs = 3",
			},
		},
		"greptime/v1/meta/cluster.proto": {
			"MetasrvPeersRequest": {reqHeader},
			"MetasrvPeersResponse": {
				respHeader,
				"greptime.v1.meta.MetasrvNodeInfo leader = 2",
				"repeated greptime.v1.meta.MetasrvNodeInfo followers = 3",
			},
			"MetasrvNodeInfo": {
				"greptime.v1.meta.Peer peer = 1",
				"string version = 2",
				"string git_commit = 3",
				"uint64 start_time_ms = 4",
				"uint32 cpus = 5",
				"uint64 memory_bytes = 6",
				"greptime.v1.meta.NodeInfo info = 7",
			},
		},
		"greptime/v1/meta/config.proto": {
			"PullConfigRequest": {reqHeader},
			"PullConfigResponse": {
				respHeader,
				"string payload = 2",
			},
		},
		// Only Partition is declared from route.proto.
		"greptime/v1/meta/route.proto": {
			"Partition": {
				"repeated bytes column_list = 1",
				"repeated bytes value_list = 2",
				"string expression = 3",
			},
		},
		"greptime/v1/meta/ddl.proto": {
			"CreateDatabaseTask": {"greptime.v1.CreateDatabaseExpr create_database = 1"},
			"CreateTableTask": {
				"greptime.v1.CreateTableExpr create_table = 1",
				"repeated greptime.v1.meta.Partition partitions = 2",
				"bytes table_info = 3",
			},
			"DropTableTask":     {"greptime.v1.DropTableExpr drop_table = 1"},
			"AlterTableTask":    {"greptime.v1.AlterTableExpr alter_table = 1"},
			"TruncateTableTask": {"greptime.v1.TruncateTableExpr truncate_table = 1"},
			"DropDatabaseTask":  {"greptime.v1.DropDatabaseExpr drop_database = 1"},
			// Only the tasks metasrv runs are in the oneof.
			"DdlTaskRequest": {
				reqHeader,
				"greptime.v1.QueryContext query_context = 64",
				"bool wait = 65",
				"uint32 timeout_secs = 66",
				"oneof task: greptime.v1.meta.CreateTableTask create_table_task = 2",
				"oneof task: greptime.v1.meta.DropTableTask drop_table_task = 3",
				"oneof task: greptime.v1.meta.AlterTableTask alter_table_task = 4",
				"oneof task: greptime.v1.meta.TruncateTableTask truncate_table_task = 5",
				"oneof task: greptime.v1.meta.DropDatabaseTask drop_database_task = 9",
				"oneof task: greptime.v1.meta.CreateDatabaseTask create_database_task = 10",
			},
			"DdlTaskResponse": {
				respHeader,
				"greptime.v1.meta.ProcedureId pid = 2",
				"repeated greptime.v1.TableId table_ids = 5",
			},
		},
		"greptime/v1/meta/procedure.proto": {
			"ProcedureMeta": {
				"greptime.v1.meta.ProcedureId id = 1",
				"string type_name = 2",
				"greptime.v1.meta.ProcedureStatus status = 3",
				"int64 start_time_ms = 4",
				"int64 end_time_ms = 5",
				"repeated string lock_keys = 6",
				"string error = 7",
			},
			"QueryProcedureRequest": {
				reqHeader,
				"greptime.v1.meta.ProcedureId pid = 2",
			},
			"ProcedureStateResponse": {
				respHeader,
				"greptime.v1.meta.ProcedureStatus status = 2",
				"string error = 3",
			},
			"ProcedureDetailRequest": {reqHeader},
			"ProcedureDetailResponse": {
				respHeader,
				"repeated greptime.v1.meta.ProcedureMeta procedures = 2",
			},
			// Upstream declares these two in meta/region.proto.
			"MigrateRegionRequest": {
				reqHeader,
				"uint64 region_id = 3",
				"uint64 from_peer = 4",
				"uint64 to_peer = 5",
				"uint32 timeout_secs = 6",
			},
			"MigrateRegionResponse": {
				respHeader,
				"greptime.v1.meta.ProcedureId pid = 2",
			},
		},
	}
	for file, msgs := range want {
		fd, err := protoregistry.GlobalFiles.FindFileByPath(file)
		require.NoError(t, err, file)
		var declared, listed []string
		for i := range fd.Messages().Len() {
			declared = append(declared, string(fd.Messages().Get(i).Name()))
		}
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
			// Order-insensitive: MailboxMessage declares header = 64 first.
			require.ElementsMatch(t, fields, got, name)
		}
	}
}

func TestEnums(t *testing.T) {
	t.Parallel()
	want := map[string][]string{
		// Zero is DATANODE: a header without a role reads as a datanode.
		"Role":       {"DATANODE = 0", "FRONTEND = 1", "FLOWNODE = 2"},
		"RegionRole": {"Leader = 0", "Follower = 1", "DowngradingLeader = 2", "StagingLeader = 3"},
		// Zero is Running: an unset status never reads as done.
		"ProcedureStatus": {
			"Running = 0", "Done = 1", "Retrying = 2", "Failed = 3",
			"PrepareRollback = 4", "RollingBack = 5", "Poisoned = 6",
		},
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
}

func TestServices(t *testing.T) {
	t.Parallel()
	// file -> service -> every method, as `rpc Name(req) returns (resp)`.
	want := map[string]map[string][]string{
		"greptime/v1/meta/heartbeat.proto": {
			"Heartbeat": {
				"rpc Heartbeat(stream greptime.v1.meta.HeartbeatRequest) returns (stream greptime.v1.meta.HeartbeatResponse)",
				"rpc AskLeader(greptime.v1.meta.AskLeaderRequest) returns (greptime.v1.meta.AskLeaderResponse)",
			},
		},
		"greptime/v1/meta/store.proto": {
			"Store": {
				"rpc Range(greptime.v1.meta.RangeRequest) returns (greptime.v1.meta.RangeResponse)",
				"rpc Put(greptime.v1.meta.PutRequest) returns (greptime.v1.meta.PutResponse)",
				"rpc BatchGet(greptime.v1.meta.BatchGetRequest) returns (greptime.v1.meta.BatchGetResponse)",
				"rpc BatchPut(greptime.v1.meta.BatchPutRequest) returns (greptime.v1.meta.BatchPutResponse)",
				"rpc BatchDelete(greptime.v1.meta.BatchDeleteRequest) returns (greptime.v1.meta.BatchDeleteResponse)",
				"rpc CompareAndPut(greptime.v1.meta.CompareAndPutRequest) returns (greptime.v1.meta.CompareAndPutResponse)",
				"rpc DeleteRange(greptime.v1.meta.DeleteRangeRequest) returns (greptime.v1.meta.DeleteRangeResponse)",
			},
		},
		"greptime/v1/meta/cluster.proto": {
			"Cluster": {
				"rpc BatchGet(greptime.v1.meta.BatchGetRequest) returns (greptime.v1.meta.BatchGetResponse)",
				"rpc Range(greptime.v1.meta.RangeRequest) returns (greptime.v1.meta.RangeResponse)",
				"rpc MetasrvPeers(greptime.v1.meta.MetasrvPeersRequest) returns (greptime.v1.meta.MetasrvPeersResponse)",
			},
		},
		"greptime/v1/meta/config.proto": {
			"Config": {
				"rpc PullConfig(greptime.v1.meta.PullConfigRequest) returns (greptime.v1.meta.PullConfigResponse)",
			},
		},
		// Upstream also has reconcile, gc_regions and gc_table.
		"greptime/v1/meta/procedure.proto": {
			"ProcedureService": {
				"rpc query(greptime.v1.meta.QueryProcedureRequest) returns (greptime.v1.meta.ProcedureStateResponse)",
				"rpc ddl(greptime.v1.meta.DdlTaskRequest) returns (greptime.v1.meta.DdlTaskResponse)",
				"rpc migrate(greptime.v1.meta.MigrateRegionRequest) returns (greptime.v1.meta.MigrateRegionResponse)",
				"rpc details(greptime.v1.meta.ProcedureDetailRequest) returns (greptime.v1.meta.ProcedureDetailResponse)",
			},
		},
	}
	stream := func(b bool) string {
		if b {
			return "stream "
		}
		return ""
	}
	for file, services := range want {
		for name, methods := range services {
			sd, ok := lookup(t, name).(protoreflect.ServiceDescriptor)
			require.True(t, ok, "%s is not a service", name)
			require.Equal(t, file, sd.ParentFile().Path(), name)
			var got []string
			for i := range sd.Methods().Len() {
				m := sd.Methods().Get(i)
				got = append(got, fmt.Sprintf("rpc %s(%s%s) returns (%s%s)", m.Name(),
					stream(m.IsStreamingClient()), m.Input().FullName(),
					stream(m.IsStreamingServer()), m.Output().FullName()))
			}
			require.ElementsMatch(t, methods, got, name)
		}
	}

	// The gRPC paths GreptimeDB nodes dial.
	require.Equal(t, "/greptime.v1.meta.Heartbeat/Heartbeat", metapb.Heartbeat_Heartbeat_FullMethodName)
	require.Equal(t, "/greptime.v1.meta.Heartbeat/AskLeader", metapb.Heartbeat_AskLeader_FullMethodName)
	require.Equal(t, "/greptime.v1.meta.Store/CompareAndPut", metapb.Store_CompareAndPut_FullMethodName)
	require.Equal(t, "/greptime.v1.meta.Cluster/MetasrvPeers", metapb.Cluster_MetasrvPeers_FullMethodName)
	require.Equal(t, "/greptime.v1.meta.Config/PullConfig", metapb.Config_PullConfig_FullMethodName)
	// Lower case, as upstream declares them.
	require.Equal(t, "/greptime.v1.meta.ProcedureService/query", metapb.ProcedureService_Query_FullMethodName)
	require.Equal(t, "/greptime.v1.meta.ProcedureService/ddl", metapb.ProcedureService_Ddl_FullMethodName)
	require.Equal(t, "/greptime.v1.meta.ProcedureService/details", metapb.ProcedureService_Details_FullMethodName)
	require.Equal(t, "/greptime.v1.meta.ProcedureService/migrate", metapb.ProcedureService_Migrate_FullMethodName)
}

// TestHeaderBytes pins the encoding of a NotLeader answer byte by byte, built
// independently of the generated code.
func TestHeaderBytes(t *testing.T) {
	t.Parallel()
	// ResponseHeader{protocol_version: 1, error: {code: 2 (NotLeader), err_msg: "x"}}
	var errMsg []byte
	errMsg = protowire.AppendTag(errMsg, 1, protowire.VarintType)
	errMsg = protowire.AppendVarint(errMsg, 2)
	errMsg = protowire.AppendTag(errMsg, 2, protowire.BytesType)
	errMsg = protowire.AppendString(errMsg, "x")
	var header []byte
	header = protowire.AppendTag(header, 1, protowire.VarintType)
	header = protowire.AppendVarint(header, 1)
	header = protowire.AppendTag(header, 3, protowire.BytesType)
	header = protowire.AppendBytes(header, errMsg)
	// AskLeaderResponse{header, leader: {id: 7, addr: "a:1"}}
	var peer []byte
	peer = protowire.AppendTag(peer, 1, protowire.VarintType)
	peer = protowire.AppendVarint(peer, 7)
	peer = protowire.AppendTag(peer, 2, protowire.BytesType)
	peer = protowire.AppendString(peer, "a:1")
	var want []byte
	want = protowire.AppendTag(want, 1, protowire.BytesType)
	want = protowire.AppendBytes(want, header)
	want = protowire.AppendTag(want, 2, protowire.BytesType)
	want = protowire.AppendBytes(want, peer)

	msg := &metapb.AskLeaderResponse{
		Header: &metapb.ResponseHeader{
			ProtocolVersion: 1,
			Error:           &metapb.Error{Code: 2, ErrMsg: "x"},
		},
		Leader: &metapb.Peer{Id: 7, Addr: "a:1"},
	}
	got, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	require.NoError(t, err)
	require.Equal(t, want, got)

	var back metapb.AskLeaderResponse
	require.NoError(t, proto.Unmarshal(want, &back))
	require.True(t, proto.Equal(msg, &back))
}

// TestMigrateRegionBytes pins MigrateRegionRequest and its response byte by
// byte (upstream meta/region.proto: field 2 is unused), built independently
// of the generated code.
func TestMigrateRegionBytes(t *testing.T) {
	t.Parallel()
	want := concat(
		appendMessage(nil, 1, appendVarint(nil, 1, 1)),
		appendVarint(nil, 3, 4398046511105),
		appendVarint(nil, 4, 1),
		appendVarint(nil, 5, 2),
		appendVarint(nil, 6, 300),
	)
	req := &metapb.MigrateRegionRequest{
		Header:   &metapb.RequestHeader{ProtocolVersion: 1},
		RegionId: 4398046511105, FromPeer: 1, ToPeer: 2, TimeoutSecs: 300,
	}
	got, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	require.NoError(t, err)
	require.Equal(t, want, got)
	var back metapb.MigrateRegionRequest
	require.NoError(t, proto.Unmarshal(want, &back))
	require.True(t, proto.Equal(req, &back))

	const pid = "6f9619ff-8b86-d011-b42d-00c04fc964ff"
	wantResp := appendMessage(nil, 2, appendString(nil, 1, pid))
	got, err = proto.MarshalOptions{Deterministic: true}.Marshal(&metapb.MigrateRegionResponse{Pid: &metapb.ProcedureId{Key: []byte(pid)}})
	require.NoError(t, err)
	require.Equal(t, wantResp, got)
}
