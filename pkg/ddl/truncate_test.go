package ddl_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	greptimepb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1"
	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	regionpb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/region"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/statuscode"
)

func truncateTask(table string, id *greptimepb.TableId, ranges *greptimepb.TimeRanges) *metapb.DdlTaskRequest {
	return &metapb.DdlTaskRequest{
		Header: &metapb.RequestHeader{ProtocolVersion: 1, Role: metapb.Role_FRONTEND},
		Task: &metapb.DdlTaskRequest_TruncateTableTask{TruncateTableTask: &metapb.TruncateTableTask{TruncateTable: &greptimepb.TruncateTableExpr{
			CatalogName: "greptime", SchemaName: "public", TableName: table, TableId: id, TimeRanges: ranges,
		}}},
	}
}

// truncates lists the TruncateRequests sent to addr.
func (f *fakeRegions) truncates(addr string) []*regionpb.TruncateRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*regionpb.TruncateRequest
	for _, r := range f.reqs[addr] {
		if tr := r.GetTruncate(); tr != nil {
			out = append(out, tr)
		}
	}
	return out
}

// metadata is every key and value outside the procedure manager's records.
func metadata(t *testing.T, b *testBundle) map[string]string {
	t.Helper()
	resp, err := b.store.Range(t.Context(), kv.RangeRequest{Key: []byte("__"), RangeEnd: []byte("__\xff")})
	require.NoError(t, err)
	out := map[string]string{}
	for _, p := range resp.Kvs {
		if !strings.HasPrefix(string(p.Key), "__procedure__/") {
			out[string(p.Key)] = string(p.Value)
		}
	}
	return out
}

func TestTruncateTable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	createCPU(t, b)
	before := metadata(t, b)
	_, tables, err := b.svc.Submit(t.Context(), truncateTask("cpu", &greptimepb.TableId{Id: 1024}, nil))
	require.NoError(t, err)
	require.Empty(t, tables)
	for addr, id := range map[string]uint64{dn1: greptimekey.RegionID(1024, 0), dn2: greptimekey.RegionID(1024, 1)} {
		trs := b.regions.truncates(addr)
		require.Len(t, trs, 1, addr)
		require.Equal(t, id, trs[0].GetRegionId())
		require.NotNil(t, trs[0].GetAll(), "no time ranges: the whole region")
	}
	require.Equal(t, before, metadata(t, b), "truncate changes no key")
	require.Empty(t, b.caches.all(), "and invalidates no cache, as GreptimeDB")
	require.Zero(t, b.keeper.Len())

	ranges := &greptimepb.TimeRanges{TimeUnit: greptimepb.TimeUnit_SECOND, TimeRanges: []*greptimepb.TimeRange{{Start: 10, End: 20}, {Start: 30, End: 40}}}
	_, _, err = b.svc.Submit(t.Context(), truncateTask("cpu", &greptimepb.TableId{Id: 1024}, ranges))
	require.NoError(t, err)
	got := b.regions.truncates(dn2)[1].GetTimeRanges()
	require.Equal(t, greptimepb.TimeUnit_SECOND, got.GetTimeUnit())
	require.Len(t, got.GetTimeRanges(), 2)
	require.Equal(t, int64(30), got.GetTimeRanges()[1].GetStart())
	require.Equal(t, int64(40), got.GetTimeRanges()[1].GetEnd())
}

func TestTruncateTableRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t)
	createCPU(t, b)
	for _, tc := range []struct {
		name string
		req  *metapb.DdlTaskRequest
		code statuscode.Code
		msg  string
	}{
		{"no table id", truncateTask("cpu", nil, nil), statuscode.Unexpected, "Invalid protobuf message: expected table_id"},
		{"unknown id", truncateTask("cpu", &greptimepb.TableId{Id: 2000}, nil), statuscode.Unexpected, "Table info not found: greptime.public.cpu"},
		{"unknown name", truncateTask("nope", &greptimepb.TableId{Id: 1024}, nil), statuscode.TableNotFound, "Table not found: 'greptime.public.nope'"},
		{"bad time unit", truncateTask("cpu", &greptimepb.TableId{Id: 1024}, &greptimepb.TimeRanges{TimeUnit: 9, TimeRanges: []*greptimepb.TimeRange{{Start: 1, End: 2}}}),
			statuscode.InvalidArguments, "Invalid time unit: 9"},
	} {
		_, _, err := b.svc.Submit(t.Context(), tc.req)
		require.Equal(t, tc.code, code(t, err), tc.name)
		require.ErrorContains(t, err, tc.msg, tc.name)
	}
	require.Empty(t, b.regions.truncates(dn1))
}
