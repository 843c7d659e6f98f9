package metasrvapi

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	metasrvv1 "github.com/pgmetasrv/metasrv/pkg/api/metasrv/v1"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/server/apierr"
)

// The metasrv.v1.Procedure service over the procedure manager: submit,
// inspect, list and wait for durable procedures.

// ProcedureManager is the part of *procedure.Manager the Procedure service
// uses. The manager runs only on the leader: its procedure.ErrNotRunning is
// answered as NOT_LEADER, naming the leader from the header source.
type ProcedureManager interface {
	Submit(ctx context.Context, typeName string, args []byte) (procedure.ID, error)
	Get(ctx context.Context, id procedure.ID) (procedure.Info, error)
	List(ctx context.Context, f procedure.ListFilter) ([]procedure.Info, string, error)
	// Wait returns the procedure once final; when ctx ends first, the
	// procedure as last read together with ctx's error.
	Wait(ctx context.Context, id procedure.ID) (procedure.Info, error)
}

var _ ProcedureManager = (*procedure.Manager)(nil)

// Limits of the Procedure service (see procedure.proto).
const (
	DefaultProcedurePageSize = 100
	MaxProcedurePageSize     = 1000
	DefaultWaitTimeout       = 30 * time.Second
	MaxWaitTimeout           = 5 * time.Minute
)

// ProcedureService implements metasrvv1.ProcedureServer.
type ProcedureService struct {
	metasrvv1.UnimplementedProcedureServer
	m      ProcedureManager
	header HeaderSource
}

var _ metasrvv1.ProcedureServer = (*ProcedureService)(nil)

// NewProcedure returns the Procedure service over m, with response headers
// (and the leader named in NOT_LEADER answers) from header.
func NewProcedure(m ProcedureManager, header HeaderSource) *ProcedureService {
	return &ProcedureService{m: m, header: header}
}

// Register adds the service to a gRPC server.
func (s *ProcedureService) Register(r grpc.ServiceRegistrar) {
	metasrvv1.RegisterProcedureServer(r, s)
}

// leaderOnly names the leader in the refusal of a follower's manager.
func (s *ProcedureService) leaderOnly(err error) error {
	return apierr.LeaderOnly(err, func() string { return s.header.HeaderInfo().LeaderAddr })
}

func (s *ProcedureService) Submit(ctx context.Context, in *metasrvv1.SubmitRequest) (*metasrvv1.SubmitResponse, error) {
	if in.GetType() == "" {
		return nil, apierr.InvalidArgument("type must name a registered procedure type")
	}
	id, err := s.m.Submit(ctx, in.GetType(), in.GetArgsJson())
	if err != nil {
		return nil, s.leaderOnly(err)
	}
	return &metasrvv1.SubmitResponse{Header: headerPB(s.header.HeaderInfo()), Id: string(id)}, nil
}

func (s *ProcedureService) Get(ctx context.Context, in *metasrvv1.GetRequest) (*metasrvv1.GetResponse, error) {
	if in.GetId() == "" {
		return nil, apierr.InvalidArgument("id must not be empty")
	}
	info, err := s.m.Get(ctx, procedure.ID(in.GetId()))
	if err != nil {
		return nil, s.leaderOnly(err)
	}
	return &metasrvv1.GetResponse{Header: headerPB(s.header.HeaderInfo()), Procedure: infoToPB(info)}, nil
}

func (s *ProcedureService) List(ctx context.Context, in *metasrvv1.ListRequest) (*metasrvv1.ListResponse, error) {
	f := procedure.ListFilter{Type: in.GetType(), Limit: int(in.GetPageSize()), PageToken: in.GetPageToken()}
	switch {
	case f.Limit < 0:
		return nil, apierr.InvalidArgument("page_size must be >= 0, got %d", f.Limit)
	case f.Limit == 0:
		f.Limit = DefaultProcedurePageSize
	case f.Limit > MaxProcedurePageSize:
		f.Limit = MaxProcedurePageSize
	}
	for i, st := range in.GetStates() {
		state, ok := statesFromPB[st]
		if !ok {
			return nil, apierr.InvalidArgument("states[%d]: unknown procedure state %d (%s)", i, int32(st), st)
		}
		f.States = append(f.States, state)
	}
	infos, next, err := s.m.List(ctx, f)
	if err != nil {
		return nil, s.leaderOnly(err)
	}
	out := &metasrvv1.ListResponse{Header: headerPB(s.header.HeaderInfo()), NextPageToken: next}
	for _, info := range infos {
		out.Procedures = append(out.Procedures, infoToPB(info))
	}
	return out, nil
}

func (s *ProcedureService) Wait(ctx context.Context, in *metasrvv1.WaitRequest) (*metasrvv1.WaitResponse, error) {
	if in.GetId() == "" {
		return nil, apierr.InvalidArgument("id must not be empty")
	}
	timeout := DefaultWaitTimeout
	if in.GetTimeout() != nil {
		if err := in.GetTimeout().CheckValid(); err != nil {
			return nil, apierr.InvalidArgument("timeout: %v", err)
		}
		if d := in.GetTimeout().AsDuration(); d < 0 {
			return nil, apierr.InvalidArgument("timeout must be >= 0, got %s", d)
		} else if d > 0 {
			timeout = min(d, MaxWaitTimeout)
		}
	}
	waitCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	info, err := s.m.Wait(waitCtx, procedure.ID(in.GetId()))
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) && info.ID != "" {
		// The wait's own timeout, not the caller's: answer with the state as
		// last read, so the caller can tell "not yet" from a failure.
		err = nil
	}
	if err != nil {
		return nil, s.leaderOnly(err)
	}
	return &metasrvv1.WaitResponse{Header: headerPB(s.header.HeaderInfo()), Procedure: infoToPB(info)}, nil
}

var statesFromPB = map[metasrvv1.ProcedureState]procedure.State{
	metasrvv1.ProcedureState_PROCEDURE_STATE_RUNNING:      procedure.StateRunning,
	metasrvv1.ProcedureState_PROCEDURE_STATE_RETRYING:     procedure.StateRetrying,
	metasrvv1.ProcedureState_PROCEDURE_STATE_ROLLING_BACK: procedure.StateRollingBack,
	metasrvv1.ProcedureState_PROCEDURE_STATE_DONE:         procedure.StateDone,
	metasrvv1.ProcedureState_PROCEDURE_STATE_FAILED:       procedure.StateFailed,
	metasrvv1.ProcedureState_PROCEDURE_STATE_ROLLED_BACK:  procedure.StateRolledBack,
}

// stateToPB is the wire form of a state; a state this API does not know
// becomes UNSPECIFIED.
func stateToPB(st procedure.State) metasrvv1.ProcedureState {
	for p, s := range statesFromPB {
		if s == st {
			return p
		}
	}
	return metasrvv1.ProcedureState_PROCEDURE_STATE_UNSPECIFIED
}

// infoToPB converts a procedure's info to its wire form.
func infoToPB(info procedure.Info) *metasrvv1.ProcedureInfo {
	out := &metasrvv1.ProcedureInfo{
		Id: string(info.ID), Type: info.Type, State: stateToPB(info.State), Error: info.Error,
		OutputJson: info.Output, Step: info.Step, DataJson: info.Data,
	}
	for _, k := range info.LockKeys {
		out.LockKeys = append(out.LockKeys, &metasrvv1.LockKey{Name: k.Name, Exclusive: k.Exclusive})
	}
	if !info.SubmittedAt.IsZero() {
		out.SubmittedAt = timestamppb.New(info.SubmittedAt)
	}
	if !info.UpdatedAt.IsZero() {
		out.UpdatedAt = timestamppb.New(info.UpdatedAt)
	}
	return out
}
