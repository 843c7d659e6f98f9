package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	metasrvv1 "github.com/pgmetasrv/metasrv/pkg/api/metasrv/v1"
)

// ProcedureState is where a procedure is in its life.
type ProcedureState string

const (
	ProcedureRunning     ProcedureState = "running"
	ProcedureRetrying    ProcedureState = "retrying"
	ProcedureRollingBack ProcedureState = "rolling_back"
	ProcedureDone        ProcedureState = "done"
	ProcedureRolledBack  ProcedureState = "rolled_back"
	// ProcedureFailed: a step failed and so did the rollback; the procedure
	// is poisoned and needs an operator.
	ProcedureFailed ProcedureState = "failed"
)

var procedureStates = map[ProcedureState]metasrvv1.ProcedureState{
	ProcedureRunning:     metasrvv1.ProcedureState_PROCEDURE_STATE_RUNNING,
	ProcedureRetrying:    metasrvv1.ProcedureState_PROCEDURE_STATE_RETRYING,
	ProcedureRollingBack: metasrvv1.ProcedureState_PROCEDURE_STATE_ROLLING_BACK,
	ProcedureDone:        metasrvv1.ProcedureState_PROCEDURE_STATE_DONE,
	ProcedureFailed:      metasrvv1.ProcedureState_PROCEDURE_STATE_FAILED,
	ProcedureRolledBack:  metasrvv1.ProcedureState_PROCEDURE_STATE_ROLLED_BACK,
}

// Final reports whether a procedure in state s will never change again.
func (s ProcedureState) Final() bool {
	switch s {
	case ProcedureDone, ProcedureFailed, ProcedureRolledBack:
		return true
	default:
		return false
	}
}

func procedureStateFromPB(st metasrvv1.ProcedureState) ProcedureState {
	for s, p := range procedureStates {
		if p == st {
			return s
		}
	}
	return ProcedureState(fmt.Sprintf("unknown(%d)", int32(st)))
}

// Procedure is the state of one durable procedure.
type Procedure struct {
	ID    string         `json:"id"`
	Type  string         `json:"type"`
	State ProcedureState `json:"state"`
	// Step counts the completed steps that were persisted.
	Step uint64 `json:"step"`
	// Error is the error that made the procedure retry, roll back or fail.
	Error string `json:"error,omitempty"`
	// Output is the procedure's JSON output, when Done and it has one.
	Output json.RawMessage `json:"output,omitempty"`
	// Data is the procedure's persisted state (the JSON it last stored),
	// when the server keeps it in the procedure's record.
	Data        json.RawMessage `json:"data,omitempty"`
	LockKeys    []LockKey       `json:"lock_keys,omitempty"`
	SubmittedAt time.Time       `json:"submitted_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
}

// LockKey is a key a procedure locks, shared or exclusive.
type LockKey struct {
	Name      string `json:"name"`
	Exclusive bool   `json:"exclusive,omitempty"`
}

func procedureFromPB(p *metasrvv1.ProcedureInfo) Procedure {
	out := Procedure{
		ID: p.GetId(), Type: p.GetType(), State: procedureStateFromPB(p.GetState()),
		Step: p.GetStep(), Error: p.GetError(), Output: p.GetOutputJson(), Data: p.GetDataJson(),
	}
	for _, k := range p.GetLockKeys() {
		out.LockKeys = append(out.LockKeys, LockKey{Name: k.GetName(), Exclusive: k.GetExclusive()})
	}
	if p.GetSubmittedAt() != nil {
		out.SubmittedAt = p.GetSubmittedAt().AsTime()
	}
	if p.GetUpdatedAt() != nil {
		out.UpdatedAt = p.GetUpdatedAt().AsTime()
	}
	return out
}

// ListProceduresOptions selects a page of procedures.
type ListProceduresOptions struct {
	// States keeps only procedures in these states; empty keeps all.
	States []ProcedureState
	// PageSize caps the page; 0 means the server's default.
	PageSize int
	// PageToken continues after a previous page.
	PageToken string
	// Type keeps only procedures of this registered type; empty keeps all.
	Type string
}

// ProcedurePage is one page of procedures, newest first.
type ProcedurePage struct {
	Procedures []Procedure
	// NextPageToken continues the listing; empty on the last page.
	NextPageToken string
}

// SubmitProcedure starts a procedure of a registered type with JSON
// arguments and returns its id. It is not re-sent after a lost reply (that
// could start it twice); such a failure matches kv.ErrOutcomeUnknown.
func (c *Client) SubmitProcedure(ctx context.Context, typ string, argsJSON []byte) (string, error) {
	in := &metasrvv1.SubmitRequest{Header: c.reqHeader, Type: typ, ArgsJson: argsJSON}
	resp, err := invoke(ctx, c, toLeader, mutating, func(ctx context.Context, cc *grpc.ClientConn) (*metasrvv1.SubmitResponse, error) {
		return metasrvv1.NewProcedureClient(cc).Submit(ctx, in)
	})
	if err != nil {
		return "", err
	}
	return resp.GetId(), nil
}

// GetProcedure returns one procedure; an unknown id matches ErrNotFound.
func (c *Client) GetProcedure(ctx context.Context, id string) (Procedure, error) {
	in := &metasrvv1.GetRequest{Header: c.reqHeader, Id: id}
	resp, err := invoke(ctx, c, toLeader, idempotent, func(ctx context.Context, cc *grpc.ClientConn) (*metasrvv1.GetResponse, error) {
		return metasrvv1.NewProcedureClient(cc).Get(ctx, in)
	})
	if err != nil {
		return Procedure{}, err
	}
	return procedureFromPB(resp.GetProcedure()), nil
}

// ListProcedures returns one page of procedures.
func (c *Client) ListProcedures(ctx context.Context, opts ListProceduresOptions) (ProcedurePage, error) {
	in := &metasrvv1.ListRequest{Header: c.reqHeader, PageToken: opts.PageToken, Type: opts.Type}
	if opts.PageSize < 0 || opts.PageSize > 1<<31-1 {
		return ProcedurePage{}, fmt.Errorf("client: page size %d out of range", opts.PageSize)
	}
	in.PageSize = int32(opts.PageSize)
	for _, s := range opts.States {
		st, ok := procedureStates[s]
		if !ok {
			return ProcedurePage{}, fmt.Errorf("client: unknown procedure state %q", s)
		}
		in.States = append(in.States, st)
	}
	resp, err := invoke(ctx, c, toLeader, idempotent, func(ctx context.Context, cc *grpc.ClientConn) (*metasrvv1.ListResponse, error) {
		return metasrvv1.NewProcedureClient(cc).List(ctx, in)
	})
	if err != nil {
		return ProcedurePage{}, err
	}
	page := ProcedurePage{NextPageToken: resp.GetNextPageToken()}
	for _, p := range resp.GetProcedures() {
		page.Procedures = append(page.Procedures, procedureFromPB(p))
	}
	return page, nil
}

// WaitProcedure blocks until the procedure reaches a final state or ctx ends
// (then it returns ctx's error). It polls with long-polling Wait calls, each
// bounded by RequestTimeout, so a leader change during the wait is followed.
func (c *Client) WaitProcedure(ctx context.Context, id string) (Procedure, error) {
	for {
		p, err := c.waitOnce(ctx, id)
		if err != nil {
			if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				// One poll ran out of time (a leader change took longer than
				// RequestTimeout); the caller's deadline has not.
				continue
			}
			return Procedure{}, err
		}
		if p.State.Final() {
			return p, nil
		}
		if err := ctx.Err(); err != nil {
			return Procedure{}, err
		}
	}
}

func (c *Client) waitOnce(ctx context.Context, id string) (Procedure, error) {
	// The server holds the call for half the call's budget, leaving the other
	// half for retries if the leader changes meanwhile.
	callCtx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	hold := c.cfg.RequestTimeout / 2
	in := &metasrvv1.WaitRequest{Header: c.reqHeader, Id: id, Timeout: durationpb.New(hold)}
	resp, err := invokeHolding(callCtx, c, toLeader, idempotent, hold, func(ctx context.Context, cc *grpc.ClientConn) (*metasrvv1.WaitResponse, error) {
		return metasrvv1.NewProcedureClient(cc).Wait(ctx, in)
	})
	if err != nil {
		if ctx.Err() != nil {
			return Procedure{}, ctx.Err()
		}
		return Procedure{}, err
	}
	return procedureFromPB(resp.GetProcedure()), nil
}
