// Package grpcerr is the one place where Go errors become gRPC statuses. Every
// metasrv gRPC service returns plain Go errors (wrapping the sentinels of kv
// and election, or a NotLeaderError) and the interceptors here map them, so
// every service answers the same failure with the same code and detail.
package grpcerr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	metasrvv1 "github.com/pgmetasrv/metasrv/pkg/api/metasrv/v1"
	"github.com/pgmetasrv/metasrv/pkg/election"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// NotLeaderError is election.NotLeaderError: the core returns it when a
// leader-only call reaches a follower, and it becomes UNAVAILABLE with a
// NOT_LEADER ErrorInfo naming the leader, which the client follows.
type NotLeaderError = election.NotLeaderError

// ResponseTooLargeError is a write that was applied but whose response is
// over the server's max send size, so it cannot be delivered. It matches
// kv.ErrOutcomeUnknown and is answered as a lost outcome, never as a
// failure: the caller must not take it for "not applied".
type ResponseTooLargeError struct {
	// Method is the call's full gRPC method name.
	Method string
	// Size is the marshalled response size and Limit the max send size, in
	// bytes.
	Size, Limit int
}

func (e *ResponseTooLargeError) Error() string {
	return fmt.Sprintf("%s was applied, but its response of %d bytes is over the max send message size of %d bytes (grpc.max_send_message_size) and cannot be sent",
		e.Method, e.Size, e.Limit)
}

func (e *ResponseTooLargeError) Unwrap() error { return kv.ErrOutcomeUnknown }

// ReadTooLargeError is a read whose answer is over the server's max send
// size. Nothing changed, so it is refused outright, with RESOURCE_EXHAUSTED
// (the code gRPC itself would give) and a message naming both sizes and how
// to ask for less.
type ReadTooLargeError struct {
	// What names the read, e.g. "range".
	What string
	// Size is the marshalled answer and Limit the max send size, in bytes.
	Size, Limit int
	// Hint says how to ask for less.
	Hint string
}

func (e *ReadTooLargeError) Error() string {
	return fmt.Sprintf("%s answer of %d bytes is over grpc.max_send_message_size (%d bytes): %s", e.What, e.Size, e.Limit, e.Hint)
}

// sqlStateProgramLimitExceeded is PostgreSQL's program_limit_exceeded (class
// 54), e.g. an index row over the B-tree maximum: the request is too large
// for PostgreSQL, never a transient failure.
const sqlStateProgramLimitExceeded = "54000"

// sqlState is the SQLSTATE of a PostgreSQL error in err's chain (pgconn's
// PgError has this method), "" when there is none.
func sqlState(err error) string {
	var pg interface{ SQLState() string }
	if errors.As(err, &pg) {
		return pg.SQLState()
	}
	return ""
}

// Status maps err to the status the client sees. It returns nil for a nil
// error and passes a gRPC status error through unchanged. The second result
// says whether the error is the server's own fault (INTERNAL, or a lost
// outcome) and deserves an error log: its message is never sent to clients.
func Status(err error) (st *status.Status, serverFault bool) {
	if err == nil {
		return nil, false
	}
	var grpcStatus interface{ GRPCStatus() *status.Status }
	if errors.As(err, &grpcStatus) {
		return grpcStatus.GRPCStatus(), false
	}
	var notLeader *NotLeaderError
	var tooLarge *ResponseTooLargeError
	var readTooLarge *ReadTooLargeError
	switch {
	case errors.As(err, &notLeader):
		md := map[string]string{}
		if notLeader.Leader != "" {
			md[metasrvv1.MetadataLeader] = notLeader.Leader
		}
		return withInfo(codes.Unavailable, notLeader.Error(), metasrvv1.ReasonNotLeader, md), false
	case errors.Is(err, election.ErrFenced):
		return withInfo(codes.Unavailable,
			"this node lost its leadership while serving the request; the write was refused and not applied, retry on the new leader",
			metasrvv1.ReasonFenced, nil), false
	case errors.Is(err, election.ErrNoLeader):
		return withInfo(codes.Unavailable, "no leader is elected right now; retry shortly",
			metasrvv1.ReasonNoLeader, nil), false
	// Before ErrUnavailable and the context errors: a write whose COMMIT was
	// lost may wrap those too, and "not applied" would be a lie.
	case errors.As(err, &tooLarge):
		// Its message names only sizes and the method, nothing internal.
		return withInfo(codes.Unknown,
			tooLarge.Error()+"; its result is not reported: read the keys before retrying, and ask for previous values in smaller requests",
			metasrvv1.ReasonOutcomeUnknown, nil), true
	case errors.Is(err, kv.ErrOutcomeUnknown):
		return withInfo(codes.Unknown,
			"the storage backend lost the result of the write: it may or may not have been applied; read the keys before retrying",
			metasrvv1.ReasonOutcomeUnknown, nil), true
	case errors.As(err, &readTooLarge):
		return status.New(codes.ResourceExhausted, readTooLarge.Error()), false
	case errors.Is(err, kv.ErrInvalidArgument):
		// These messages are built from the request (key, limit, field) and
		// say what was expected, so they are what the caller needs.
		return status.New(codes.InvalidArgument, err.Error()), false
	case sqlState(err) == sqlStateProgramLimitExceeded:
		// A backstop: pgkv reports this as kv.ErrInvalidArgument already, and
		// kv.WithLimits keeps keys below the B-tree limit. Reaching here means
		// a path skipped both, which the log should show.
		return status.New(codes.InvalidArgument,
			"the request is over a PostgreSQL limit (SQLSTATE 54000 program_limit_exceeded), most likely a key longer than its index accepts; keep keys within max_key_size"), true
	case errors.Is(err, kv.ErrUnavailable), errors.Is(err, election.ErrUnavailable):
		// The cause may name internal hosts; it goes to the log only.
		return withInfo(codes.Unavailable, "the storage backend is unavailable; the request was not applied",
			metasrvv1.ReasonBackendUnavailable, nil), true
	case errors.Is(err, context.DeadlineExceeded):
		return status.New(codes.DeadlineExceeded, "deadline exceeded before the request completed"), false
	case errors.Is(err, context.Canceled):
		return status.New(codes.Canceled, "request canceled"), false
	default:
		return status.New(codes.Internal, "internal error; see the server log"), true
	}
}

func withInfo(code codes.Code, msg, reason string, md map[string]string) *status.Status {
	st := status.New(code, msg)
	if len(md) == 0 {
		md = nil
	}
	detailed, err := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: metasrvv1.ErrorDomain, Metadata: md})
	if err != nil {
		// WithDetails fails only on a detail it cannot marshal, which an
		// ErrorInfo never is; the bare status still has the right code.
		return st
	}
	return detailed
}

// Error maps err to a gRPC status error, logging it when it is the server's
// fault. method names the call in the log. A call whose caller has gone
// (its context ended) is not the server's fault whatever it failed with: it
// is logged at debug.
func Error(ctx context.Context, logger *slog.Logger, method string, err error) error {
	st, fault := Status(err)
	if st == nil {
		return nil
	}
	if fault && ctx.Err() == nil {
		logger.ErrorContext(ctx, "request failed", "method", method, "code", st.Code().String(), "err", err)
	} else if logger.Enabled(ctx, slog.LevelDebug) {
		logger.DebugContext(ctx, "request refused", "method", method, "code", st.Code().String(), "err", err)
	}
	return st.Err()
}
