package greptimeapi

import (
	"context"
	"errors"

	greptimepb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1"
	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/heartbeat"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/statuscode"
)

// DDL runs GreptimeDB DDL tasks to their end; *ddl.Service satisfies it.
type DDL interface {
	// Submit runs the task of req as a procedure on this node's term and
	// waits for it: the procedure's id and the table ids it created.
	Submit(ctx context.Context, req *metapb.DdlTaskRequest) (procedure.ID, []uint32, error)
}

// Procedures is what query and details read; *procedure.Manager satisfies it.
type Procedures interface {
	Get(ctx context.Context, id procedure.ID) (procedure.Info, error)
	List(ctx context.Context, f procedure.ListFilter) ([]procedure.Info, string, error)
}

// procedureService is greptime.v1.meta.ProcedureService, served by the leader
// only: a follower answers with the NotLeader header, as GreptimeDB's does,
// and the meta-client then asks for the leader and retries.
type procedureService struct {
	metapb.UnimplementedProcedureServiceServer
	core  Core
	ddl   DDL
	procs Procedures
}

// Ddl is the `ddl` method: GreptimeDB's frontends send every DDL through it.
func (s *procedureService) Ddl(ctx context.Context, req *metapb.DdlTaskRequest) (*metapb.DdlTaskResponse, error) {
	if !leads(s.core) {
		return &metapb.DdlTaskResponse{Header: heartbeat.NotLeaderHeader()}, nil
	}
	if req.GetHeader() == nil {
		return nil, statuscode.MissingRequestHeader()
	}
	if req.GetQueryContext() == nil {
		return nil, statuscode.MissingParameter("query_context")
	}
	if req.GetTask() == nil {
		if len(req.ProtoReflect().GetUnknown()) > 0 {
			return nil, statuscode.Errorf(statuscode.Unsupported,
				"Unsupported operation: this DDL task; metasrv runs create/drop database, create/drop table, alter table and truncate table")
		}
		return nil, statuscode.MissingParameter("task")
	}
	id, tables, err := s.ddl.Submit(ctx, req)
	if err != nil {
		return nil, err
	}
	// A successful answer has no header, as GreptimeDB's.
	resp := &metapb.DdlTaskResponse{Pid: pid(id)}
	for _, t := range tables {
		resp.TableIds = append(resp.TableIds, &greptimepb.TableId{Id: t})
	}
	return resp, nil
}

// Query is the `query` method: the state of one procedure.
func (s *procedureService) Query(ctx context.Context, req *metapb.QueryProcedureRequest) (*metapb.ProcedureStateResponse, error) {
	if !leads(s.core) {
		return &metapb.ProcedureStateResponse{Header: heartbeat.NotLeaderHeader()}, nil
	}
	if req.GetHeader() == nil {
		return nil, statuscode.MissingRequestHeader()
	}
	if req.GetPid() == nil {
		return nil, statuscode.MissingParameter("pid")
	}
	id := procedure.ID(req.GetPid().GetKey())
	info, err := s.procs.Get(ctx, id)
	if errors.Is(err, procedure.ErrNotFound) {
		return nil, statuscode.Errorf(statuscode.InvalidArguments, "Procedure not found: %s", id)
	}
	if err != nil {
		return nil, err
	}
	return &metapb.ProcedureStateResponse{Status: procedureStatus(info.State), Error: info.Error}, nil
}

// Details is the `details` method: every procedure the store keeps.
func (s *procedureService) Details(ctx context.Context, req *metapb.ProcedureDetailRequest) (*metapb.ProcedureDetailResponse, error) {
	if !leads(s.core) {
		return &metapb.ProcedureDetailResponse{Header: heartbeat.NotLeaderHeader()}, nil
	}
	if req.GetHeader() == nil {
		return nil, statuscode.MissingRequestHeader()
	}
	infos, _, err := s.procs.List(ctx, procedure.ListFilter{})
	if err != nil {
		return nil, err
	}
	resp := &metapb.ProcedureDetailResponse{}
	for _, in := range infos {
		resp.Procedures = append(resp.Procedures, procedureMeta(in))
	}
	return resp, nil
}

func pid(id procedure.ID) *metapb.ProcedureId { return &metapb.ProcedureId{Key: []byte(id)} }

// procedureStatus maps our states onto GreptimeDB's: a procedure rolled back
// after a failure is Failed there, and one whose rollback failed too (it
// needs an operator) is Poisoned.
func procedureStatus(s procedure.State) metapb.ProcedureStatus {
	switch s {
	case procedure.StateRetrying:
		return metapb.ProcedureStatus_Retrying
	case procedure.StateRollingBack:
		return metapb.ProcedureStatus_RollingBack
	case procedure.StateDone:
		return metapb.ProcedureStatus_Done
	case procedure.StateRolledBack:
		return metapb.ProcedureStatus_Failed
	case procedure.StateFailed:
		return metapb.ProcedureStatus_Poisoned
	default:
		return metapb.ProcedureStatus_Running
	}
}

func procedureMeta(in procedure.Info) *metapb.ProcedureMeta {
	m := &metapb.ProcedureMeta{
		Id: pid(in.ID), TypeName: in.Type, Status: procedureStatus(in.State),
		StartTimeMs: in.SubmittedAt.UnixMilli(), Error: in.Error,
	}
	if in.State.Final() {
		m.EndTimeMs = in.UpdatedAt.UnixMilli()
	}
	for _, k := range in.LockKeys {
		m.LockKeys = append(m.LockKeys, k.Name)
	}
	return m
}
