package client

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	metasrvv1 "github.com/pgmetasrv/metasrv/pkg/api/metasrv/v1"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// ErrNotFound matches a call about something that does not exist (an
// unknown procedure id).
var ErrNotFound = errors.New("not found")

// ErrNotLeader matches a call that kept reaching nodes that are not the
// leader until its deadline: the cluster has no reachable leader.
var ErrNotLeader = errors.New("not leader")

// rpcError is a failed call as the server (or the gRPC runtime) answered it.
// It matches (errors.Is) the Go error of its kind, so callers test
// kv.ErrInvalidArgument (any INVALID_ARGUMENT, procedure calls included),
// kv.ErrUnavailable, kv.ErrOutcomeUnknown,
// ErrNotFound or ErrNotLeader instead of gRPC codes; status.FromError still
// gives the status.
type rpcError struct {
	st   *status.Status
	kind error // nil when no Go error fits
}

func (e *rpcError) Error() string {
	return fmt.Sprintf("metasrv: %s: %s", e.st.Code(), e.st.Message())
}

func (e *rpcError) Unwrap() error              { return e.kind }
func (e *rpcError) GRPCStatus() *status.Status { return e.st }

// toError converts a gRPC error into an rpcError; other errors pass through.
func toError(err error) error {
	if err == nil {
		return nil
	}
	var already *rpcError
	if errors.As(err, &already) {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	e := &rpcError{st: st}
	info, _ := metasrvv1.ErrorInfoOf(err)
	switch {
	case info.GetReason() == metasrvv1.ReasonOutcomeUnknown:
		e.kind = kv.ErrOutcomeUnknown
	case info.GetReason() == metasrvv1.ReasonNotLeader:
		e.kind = ErrNotLeader
	case st.Code() == codes.InvalidArgument:
		e.kind = kv.ErrInvalidArgument
	case st.Code() == codes.NotFound:
		e.kind = ErrNotFound
	case st.Code() == codes.Unavailable:
		e.kind = kv.ErrUnavailable
	case st.Code() == codes.DeadlineExceeded:
		e.kind = context.DeadlineExceeded
	case st.Code() == codes.Canceled:
		e.kind = context.Canceled
	}
	return e
}

// outcomeUnknown marks a write whose connection failed after it was sent.
type outcomeUnknown struct{ err error }

func (e *outcomeUnknown) Error() string {
	return fmt.Sprintf("the write was sent but its result was lost, it may or may not have been applied: %v", e.err)
}

func (e *outcomeUnknown) Unwrap() []error { return []error{kv.ErrOutcomeUnknown, e.err} }
