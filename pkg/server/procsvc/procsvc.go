// Package procsvc is the metasrv.v1.Procedure gRPC service over the
// procedure manager: submit, inspect, list and wait for durable procedures.
package procsvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	metasrvv1 "github.com/pgmetasrv/metasrv/pkg/api/metasrv/v1"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/server/grpcerr"
	"github.com/pgmetasrv/metasrv/pkg/server/rpcheader"
)

// Manager is the part of *procedure.Manager the service uses. The manager
// runs only on the leader: its procedure.ErrNotRunning is answered as
// NOT_LEADER, naming the leader from the header source.
type Manager interface {
	Submit(ctx context.Context, typeName string, args []byte) (procedure.ID, error)
	Get(ctx context.Context, id procedure.ID) (procedure.Info, error)
	List(ctx context.Context, f procedure.ListFilter) ([]procedure.Info, string, error)
	// Wait returns the procedure once final; when ctx ends first, the
	// procedure as last read together with ctx's error.
	Wait(ctx context.Context, id procedure.ID) (procedure.Info, error)
}

var _ Manager = (*procedure.Manager)(nil)

// Limits of the service (see procedure.proto).
const (
	DefaultPageSize    = 100
	MaxPageSize        = 1000
	DefaultWaitTimeout = 30 * time.Second
	MaxWaitTimeout     = 5 * time.Minute
)

// Service implements metasrvv1.ProcedureServer.
type Service struct {
	metasrvv1.UnimplementedProcedureServer
	m      Manager
	header rpcheader.Source
	logger *slog.Logger
}

var _ metasrvv1.ProcedureServer = (*Service)(nil)

// New returns the Procedure service over m, with response headers (and the
// leader named in NOT_LEADER answers) from header.
func New(m Manager, header rpcheader.Source, logger *slog.Logger) *Service {
	return &Service{m: m, header: header, logger: logger.With("component", "procedure_service")}
}

// Register adds the service to a gRPC server.
func (s *Service) Register(r grpc.ServiceRegistrar) {
	metasrvv1.RegisterProcedureServer(r, s)
}

func (s *Service) fail(ctx context.Context, method string, err error) error {
	switch {
	case errors.Is(err, procedure.ErrNotRunning):
		// Not leading (or leading but not started yet): either way the
		// client must go to the leader, which the header names when known.
		leader := s.header.HeaderInfo().LeaderAddr
		return grpcerr.Error(ctx, s.logger, method, fmt.Errorf("%w: %w", &grpcerr.NotLeaderError{Leader: leader}, err))
	case errors.Is(err, procedure.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, procedure.ErrInvalidArgument):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, procedure.ErrPaused):
		return status.Error(codes.FailedPrecondition, "the procedure manager is paused; resume it to submit procedures")
	case errors.Is(err, procedure.ErrTooManyProcedures):
		return status.Error(codes.ResourceExhausted, "max_running_procedures procedures are running; retry later")
	default:
		return grpcerr.Error(ctx, s.logger, method, err)
	}
}

func (s *Service) Submit(ctx context.Context, in *metasrvv1.SubmitRequest) (*metasrvv1.SubmitResponse, error) {
	if in.GetType() == "" {
		return nil, status.Error(codes.InvalidArgument, "type must name a registered procedure type")
	}
	id, err := s.m.Submit(ctx, in.GetType(), in.GetArgsJson())
	if err != nil {
		return nil, s.fail(ctx, metasrvv1.Procedure_Submit_FullMethodName, err)
	}
	return &metasrvv1.SubmitResponse{Header: s.header.HeaderInfo().PB(), Id: string(id)}, nil
}

func (s *Service) Get(ctx context.Context, in *metasrvv1.GetRequest) (*metasrvv1.GetResponse, error) {
	if in.GetId() == "" {
		return nil, status.Error(codes.InvalidArgument, "id must not be empty")
	}
	info, err := s.m.Get(ctx, procedure.ID(in.GetId()))
	if err != nil {
		return nil, s.fail(ctx, metasrvv1.Procedure_Get_FullMethodName, err)
	}
	return &metasrvv1.GetResponse{Header: s.header.HeaderInfo().PB(), Procedure: InfoToPB(info)}, nil
}

func (s *Service) List(ctx context.Context, in *metasrvv1.ListRequest) (*metasrvv1.ListResponse, error) {
	f := procedure.ListFilter{Type: in.GetType(), Limit: int(in.GetPageSize()), PageToken: in.GetPageToken()}
	switch {
	case f.Limit < 0:
		return nil, status.Errorf(codes.InvalidArgument, "page_size must be >= 0, got %d", f.Limit)
	case f.Limit == 0:
		f.Limit = DefaultPageSize
	case f.Limit > MaxPageSize:
		f.Limit = MaxPageSize
	}
	for i, st := range in.GetStates() {
		state, ok := statesFromPB[st]
		if !ok {
			return nil, status.Errorf(codes.InvalidArgument, "states[%d]: unknown procedure state %d (%s)", i, int32(st), st)
		}
		f.States = append(f.States, state)
	}
	infos, next, err := s.m.List(ctx, f)
	if err != nil {
		return nil, s.fail(ctx, metasrvv1.Procedure_List_FullMethodName, err)
	}
	out := &metasrvv1.ListResponse{Header: s.header.HeaderInfo().PB(), NextPageToken: next}
	for _, info := range infos {
		out.Procedures = append(out.Procedures, InfoToPB(info))
	}
	return out, nil
}

func (s *Service) Wait(ctx context.Context, in *metasrvv1.WaitRequest) (*metasrvv1.WaitResponse, error) {
	if in.GetId() == "" {
		return nil, status.Error(codes.InvalidArgument, "id must not be empty")
	}
	timeout := DefaultWaitTimeout
	if in.GetTimeout() != nil {
		if err := in.GetTimeout().CheckValid(); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "timeout: %v", err)
		}
		if d := in.GetTimeout().AsDuration(); d < 0 {
			return nil, status.Errorf(codes.InvalidArgument, "timeout must be >= 0, got %s", d)
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
		return nil, s.fail(ctx, metasrvv1.Procedure_Wait_FullMethodName, err)
	}
	return &metasrvv1.WaitResponse{Header: s.header.HeaderInfo().PB(), Procedure: InfoToPB(info)}, nil
}

var statesFromPB = map[metasrvv1.ProcedureState]procedure.State{
	metasrvv1.ProcedureState_PROCEDURE_STATE_RUNNING:      procedure.StateRunning,
	metasrvv1.ProcedureState_PROCEDURE_STATE_RETRYING:     procedure.StateRetrying,
	metasrvv1.ProcedureState_PROCEDURE_STATE_ROLLING_BACK: procedure.StateRollingBack,
	metasrvv1.ProcedureState_PROCEDURE_STATE_DONE:         procedure.StateDone,
	metasrvv1.ProcedureState_PROCEDURE_STATE_FAILED:       procedure.StateFailed,
	metasrvv1.ProcedureState_PROCEDURE_STATE_ROLLED_BACK:  procedure.StateRolledBack,
}

// StateToPB is the wire form of a state; a state this API does not know
// becomes UNSPECIFIED.
func StateToPB(st procedure.State) metasrvv1.ProcedureState {
	for p, s := range statesFromPB {
		if s == st {
			return p
		}
	}
	return metasrvv1.ProcedureState_PROCEDURE_STATE_UNSPECIFIED
}

// InfoToPB converts a procedure's info to its wire form.
func InfoToPB(info procedure.Info) *metasrvv1.ProcedureInfo {
	out := &metasrvv1.ProcedureInfo{
		Id: string(info.ID), Type: info.Type, State: StateToPB(info.State), Error: info.Error,
		OutputJson: info.Output, Step: info.Step,
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
