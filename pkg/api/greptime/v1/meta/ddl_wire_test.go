package metapb_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	greptimepb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1"
	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
)

// appendMessage appends field num holding the encoded message body.
func appendMessage(b []byte, num protowire.Number, body []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, body)
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// ddlFields are the top-level fields of the DdlTaskRequest below, encoded
// independently of the generated code, each as its own byte string.
type ddlFields struct {
	header, task, queryContext, wait, timeout []byte
}

func encodeDdlFields() ddlFields {
	var tableID []byte
	tableID = appendVarint(tableID, 1, 1024)
	var expr []byte
	expr = appendString(expr, 1, "greptime")
	expr = appendString(expr, 2, "public")
	expr = appendString(expr, 3, "t")
	expr = appendMessage(expr, 10, tableID)
	var task []byte
	task = appendMessage(task, 1, expr)
	task = appendString(task, 3, "{}")
	var header []byte
	header = appendVarint(header, 1, 1)
	var qctx []byte
	qctx = appendString(qctx, 1, "greptime")
	return ddlFields{
		header:       appendMessage(nil, 1, header),
		task:         appendMessage(nil, 2, task),
		queryContext: appendMessage(nil, 64, qctx),
		wait:         appendVarint(nil, 65, 1),
		timeout:      appendVarint(nil, 66, 60),
	}
}

func ddlRequest() *metapb.DdlTaskRequest {
	return &metapb.DdlTaskRequest{
		Header:       &metapb.RequestHeader{ProtocolVersion: 1},
		QueryContext: &greptimepb.QueryContext{CurrentCatalog: "greptime"},
		Wait:         true,
		TimeoutSecs:  60,
		Task: &metapb.DdlTaskRequest_CreateTableTask{CreateTableTask: &metapb.CreateTableTask{
			CreateTable: &greptimepb.CreateTableExpr{
				CatalogName: "greptime",
				SchemaName:  "public",
				TableName:   "t",
				TableId:     &greptimepb.TableId{Id: 1024},
			},
			TableInfo: []byte("{}"),
		}},
	}
}

func concat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func TestDdlTaskRequestBytes(t *testing.T) {
	t.Parallel()
	f := encodeDdlFields()
	// The literal tags: field 2 (create_table_task) is one byte, the fields
	// numbered 64 and up take two.
	require.Equal(t, []byte{0x0a}, f.header[:1])
	require.Equal(t, []byte{0x12}, f.task[:1])
	require.Equal(t, []byte{0x82, 0x04}, f.queryContext[:2])
	require.Equal(t, []byte{0x88, 0x04, 0x01}, f.wait)
	require.Equal(t, []byte{0x90, 0x04, 0x3c}, f.timeout)

	got, err := proto.MarshalOptions{Deterministic: true}.Marshal(ddlRequest())
	require.NoError(t, err)
	// Field order on the wire is the encoder's choice (prost writes the
	// oneof last); compare the top-level fields as a set.
	require.ElementsMatch(t, [][]byte{f.header, f.task, f.queryContext, f.wait, f.timeout}, splitFields(t, got))

	// Both orders decode to the same request.
	for _, b := range [][]byte{
		concat(f.header, f.task, f.queryContext, f.wait, f.timeout),
		concat(f.header, f.queryContext, f.wait, f.timeout, f.task),
	} {
		var back metapb.DdlTaskRequest
		require.NoError(t, proto.Unmarshal(b, &back))
		require.True(t, proto.Equal(ddlRequest(), &back))
		require.Empty(t, back.ProtoReflect().GetUnknown())
	}
}

// splitFields cuts an encoded message into its top-level fields, each with
// its tag.
func splitFields(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var fields [][]byte
	for len(b) > 0 {
		_, _, n := protowire.ConsumeField(b)
		require.GreaterOrEqual(t, n, 0, "malformed field after %d fields", len(fields))
		fields = append(fields, b[:n])
		b = b[n:]
	}
	return fields
}

// TestUndeclaredTaskIsUnknown pins what the comment on DdlTaskRequest
// promises: a task we do not declare (create_flow_task = 11) leaves the oneof
// unset and survives as unknown bytes, so the server can tell it from a
// request without any task and refuse it.
func TestUndeclaredTaskIsUnknown(t *testing.T) {
	t.Parallel()
	f := encodeDdlFields()
	var flow []byte
	flow = appendString(flow, 1, "greptime")
	flowTask := appendMessage(nil, 11, appendMessage(nil, 1, flow))

	var req metapb.DdlTaskRequest
	require.NoError(t, proto.Unmarshal(concat(f.header, f.queryContext, flowTask), &req))
	require.Nil(t, req.GetTask())
	require.Equal(t, "greptime", req.GetQueryContext().GetCurrentCatalog())
	require.Equal(t, []byte(flowTask), []byte(req.ProtoReflect().GetUnknown()))
}

func TestDdlTaskResponseBytes(t *testing.T) {
	t.Parallel()
	// DdlTaskResponse{pid: {key: "<uuid>"}, table_ids: [{id: 1024}]}; the pid
	// key is the procedure id's text form, as GreptimeDB sends it.
	const pid = "6f9619ff-8b86-d011-b42d-00c04fc964ff"
	want := concat(
		appendMessage(nil, 2, appendString(nil, 1, pid)),
		appendMessage(nil, 5, appendVarint(nil, 1, 1024)),
	)
	msg := &metapb.DdlTaskResponse{
		Pid:      &metapb.ProcedureId{Key: []byte(pid)},
		TableIds: []*greptimepb.TableId{{Id: 1024}},
	}
	got, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	require.NoError(t, err)
	require.ElementsMatch(t, splitFields(t, want), splitFields(t, got))

	var back metapb.DdlTaskResponse
	require.NoError(t, proto.Unmarshal(want, &back))
	require.True(t, proto.Equal(msg, &back))
	// Tag of table_ids: field 5, length-delimited.
	require.Equal(t, byte(0x2a), want[len(want)-5])
}
