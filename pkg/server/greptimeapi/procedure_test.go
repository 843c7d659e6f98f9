package greptimeapi

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	greptimepb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1"
	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/metasrv"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/statuscode"
)

type leaderCore struct{ Core }

func (leaderCore) HeaderInfo() metasrv.HeaderInfo {
	return metasrv.HeaderInfo{NodeAddr: "self:3002", Term: 7}
}

type fakeDDL struct {
	got []*metapb.DdlTaskRequest
	err error
}

func (d *fakeDDL) Submit(_ context.Context, req *metapb.DdlTaskRequest) (procedure.ID, []uint32, error) {
	d.got = append(d.got, req)
	return "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9", []uint32{1024}, d.err
}

type fakeProcs struct{ infos []procedure.Info }

func (p fakeProcs) Get(_ context.Context, id procedure.ID) (procedure.Info, error) {
	for _, in := range p.infos {
		if in.ID == id {
			return in, nil
		}
	}
	return procedure.Info{}, procedure.ErrNotFound
}

func (p fakeProcs) List(context.Context, procedure.ListFilter) ([]procedure.Info, string, error) {
	return p.infos, "", nil
}

func isNotLeader(h *metapb.ResponseHeader) bool {
	return h.GetError().GetCode() == 2
}

func ddlRequest() *metapb.DdlTaskRequest {
	return &metapb.DdlTaskRequest{
		Header:       &metapb.RequestHeader{ProtocolVersion: 1},
		QueryContext: &greptimepb.QueryContext{},
		Task:         &metapb.DdlTaskRequest_CreateTableTask{CreateTableTask: &metapb.CreateTableTask{}},
	}
}

// A follower answers every method OK with the NotLeader header, which makes
// GreptimeDB's meta-client ask for the leader and retry.
func TestProcedureServiceFollowerSaysNotLeader(t *testing.T) {
	t.Parallel()
	d := &fakeDDL{}
	s := &procedureService{core: followerCore{}, ddl: d, procs: fakeProcs{}}
	resp, err := s.Ddl(t.Context(), ddlRequest())
	require.NoError(t, err)
	require.True(t, isNotLeader(resp.GetHeader()))
	require.Empty(t, d.got, "nothing is submitted on a follower")
	q, err := s.Query(t.Context(), &metapb.QueryProcedureRequest{})
	require.NoError(t, err)
	require.True(t, isNotLeader(q.GetHeader()))
	dt, err := s.Details(t.Context(), &metapb.ProcedureDetailRequest{})
	require.NoError(t, err)
	require.True(t, isNotLeader(dt.GetHeader()))
}

func TestProcedureServiceDdl(t *testing.T) {
	t.Parallel()
	d := &fakeDDL{}
	s := &procedureService{core: leaderCore{}, ddl: d, procs: fakeProcs{}}
	resp, err := s.Ddl(t.Context(), ddlRequest())
	require.NoError(t, err)
	require.Nil(t, resp.GetHeader(), "GreptimeDB leaves the header out of a success")
	require.Equal(t, "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9", string(resp.GetPid().GetKey()))
	require.Len(t, resp.GetTableIds(), 1)
	require.EqualValues(t, 1024, resp.GetTableIds()[0].GetId())

	for name, req := range map[string]*metapb.DdlTaskRequest{
		`Missing request header`:                             {QueryContext: &greptimepb.QueryContext{}},
		`Missing required parameter, param: "query_context"`: {Header: &metapb.RequestHeader{}},
		`Missing required parameter, param: "task"`:          {Header: &metapb.RequestHeader{}, QueryContext: &greptimepb.QueryContext{}},
	} {
		_, err := s.Ddl(t.Context(), req)
		code, ok := statuscode.Of(err)
		require.True(t, ok, name)
		require.Equal(t, statuscode.InvalidArguments, code, name)
		require.EqualError(t, err, name)
	}
	require.Len(t, d.got, 1, "a refused request submits nothing")
}

func TestProcedureServiceQueryAndDetails(t *testing.T) {
	t.Parallel()
	now := time.Unix(1700000000, 0)
	infos := []procedure.Info{
		{ID: "a", Type: "metasrv-procedure::CreateTable", State: procedure.StateDone, SubmittedAt: now, UpdatedAt: now.Add(time.Second),
			LockKeys: []procedure.LockKey{procedure.SharedLock("__catalog_lock/greptime")}},
		{ID: "b", Type: "metasrv-procedure::DropTable", State: procedure.StateRolledBack, Error: "Table not found: 'greptime.public.t'", SubmittedAt: now, UpdatedAt: now},
	}
	s := &procedureService{core: leaderCore{}, procs: fakeProcs{infos: infos}}
	q, err := s.Query(t.Context(), &metapb.QueryProcedureRequest{Header: &metapb.RequestHeader{}, Pid: &metapb.ProcedureId{Key: []byte("b")}})
	require.NoError(t, err)
	require.Equal(t, metapb.ProcedureStatus_Failed, q.GetStatus())
	require.Equal(t, "Table not found: 'greptime.public.t'", q.GetError())

	_, err = s.Query(t.Context(), &metapb.QueryProcedureRequest{Header: &metapb.RequestHeader{}, Pid: &metapb.ProcedureId{Key: []byte("zz")}})
	require.EqualError(t, err, "Procedure not found: zz")

	dt, err := s.Details(t.Context(), &metapb.ProcedureDetailRequest{Header: &metapb.RequestHeader{}})
	require.NoError(t, err)
	require.Len(t, dt.GetProcedures(), 2)
	first := dt.GetProcedures()[0]
	require.Equal(t, metapb.ProcedureStatus_Done, first.GetStatus())
	require.Equal(t, now.Add(time.Second).UnixMilli(), first.GetEndTimeMs())
	require.Equal(t, []string{"__catalog_lock/greptime"}, first.GetLockKeys())
	require.Equal(t, now.UnixMilli(), dt.GetProcedures()[1].GetEndTimeMs(), "rolled back is final too")
}
