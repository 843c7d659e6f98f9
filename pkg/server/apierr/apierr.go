// Package apierr is the one map from the Go errors of metasrv's core (the
// sentinels and types of packages kv, election and procedure, GreptimeDB
// status codes (package statuscode, also sent as x-greptime-err-code
// metadata), and the
// API-level errors declared here) to what a caller is answered: a gRPC code,
// a google.rpc.ErrorInfo reason, a message safe to show, and whether the
// failure is the server's own fault (worth an error log).
//
// Its users:
//   - the gRPC interceptors here (UnaryServerInterceptor,
//     StreamServerInterceptor), the only place a gRPC handler's error becomes
//     a status: every service on the gRPC server (metasrv.v1 in package
//     metasrvapi, and greptime.v1.meta next to it) returns plain Go errors;
//   - the HTTP admin API (package admin), which answers the same failure with
//     the HTTP status and JSON code that Answer.HTTPStatus and
//     Answer.CodeName derive from the same entry.
//
// A greptime.v1.meta service that must say "not leader" inside an OK
// response's header (as GreptimeDB's meta-client expects) asks Classify for
// the Answer and renders its Reason and Leader there instead.
package apierr

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	metasrvv1 "github.com/pgmetasrv/metasrv/pkg/api/metasrv/v1"
	"github.com/pgmetasrv/metasrv/pkg/election"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/statuscode"
)

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

// invalidArgumentError is a request an API refuses before the core sees it.
type invalidArgumentError struct{ msg string }

func (e *invalidArgumentError) Error() string { return e.msg }

// InvalidArgument is the refusal of a malformed request (a field out of
// range, a missing id), answered INVALID_ARGUMENT with exactly this message.
func InvalidArgument(format string, args ...any) error {
	return &invalidArgumentError{msg: fmt.Sprintf(format, args...)}
}

// LeaderOnly is err, or, when err says that a leader-only component does not
// run on this node (procedure.ErrNotRunning), the not-leader refusal naming
// the leader that leader() reports ("" when unknown). leader is called only
// then. It is how every API answers a follower's stopped procedure manager.
func LeaderOnly(err error, leader func() string) error {
	var notLeader *election.NotLeaderError
	if !errors.Is(err, procedure.ErrNotRunning) || errors.As(err, &notLeader) {
		return err
	}
	// Not leading, or leading but not started yet: either way the caller
	// must go to the leader, which leader names when known.
	return fmt.Errorf("%w: %w", &election.NotLeaderError{Leader: leader()}, err)
}

// Answer is what a caller is told of a failure.
type Answer struct {
	// Code is the gRPC code; the HTTP status follows from it (HTTPStatus).
	Code codes.Code
	// Reason is the metasrv ErrorInfo reason (metasrvv1.Reason*), "" for
	// none.
	Reason string
	// Leader is the leader's address on a not-leader refusal, when known.
	Leader string
	// Message is safe to send: it never carries an internal cause (hosts,
	// SQL, tables), only what the request itself said or what to do.
	Message string
	// Greptime is the GreptimeDB status code of a failure that has one
	// (statuscode.Error), sent in the x-greptime-err-code metadata; 0 if none.
	Greptime statuscode.Code
	// Fault is true when the failure is the server's own (INTERNAL, a lost
	// outcome, the storage backend down): it deserves an error log, which
	// should carry the original error.
	Fault bool

	// passthrough is a gRPC status a handler returned itself.
	passthrough *status.Status
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

// Classify is the map: the Answer to err. ok is false for a nil error. A
// gRPC status error (one a handler built itself) passes through unchanged.
func Classify(err error) (a Answer, ok bool) {
	if err == nil {
		return Answer{}, false
	}
	var grpcStatus interface{ GRPCStatus() *status.Status }
	if errors.As(err, &grpcStatus) {
		st := grpcStatus.GRPCStatus()
		return Answer{Code: st.Code(), Message: st.Message(), passthrough: st}, true
	}
	var notLeader *election.NotLeaderError
	var tooLarge *ResponseTooLargeError
	var readTooLarge *ReadTooLargeError
	var invalid *invalidArgumentError
	var greptime *statuscode.Error
	switch {
	case errors.As(err, &greptime):
		// GreptimeDB's own failures (DDL): their message is built from the
		// request; Internal-class codes are the server's fault.
		c := greptime.Status.GRPC()
		return Answer{Code: c, Message: greptime.Msg, Greptime: greptime.Status, Fault: c == codes.Internal || c == codes.Unknown}, true
	case errors.As(err, &notLeader):
		return Answer{Code: codes.Unavailable, Reason: metasrvv1.ReasonNotLeader, Leader: notLeader.Leader,
			Message: notLeader.Error() + "; send this request to the leader"}, true
	case errors.Is(err, procedure.ErrNotRunning):
		// LeaderOnly names the leader; without it, still a not-leader.
		return Answer{Code: codes.Unavailable, Reason: metasrvv1.ReasonNotLeader,
			Message: (&election.NotLeaderError{}).Error() + "; send this request to the leader"}, true
	case errors.Is(err, election.ErrFenced):
		return Answer{Code: codes.Unavailable, Reason: metasrvv1.ReasonFenced,
			Message: "this node lost its leadership while serving the request; the change was refused and not applied, retry on the new leader"}, true
	case errors.Is(err, election.ErrNoLeader):
		return Answer{Code: codes.Unavailable, Reason: metasrvv1.ReasonNoLeader,
			Message: "no leader is elected right now; retry shortly"}, true
	// Before ErrUnavailable and the context errors: a write whose COMMIT was
	// lost may wrap those too, and "not applied" would be a lie.
	case errors.As(err, &tooLarge):
		// Its message names only sizes and the method, nothing internal.
		return Answer{Code: codes.Unknown, Reason: metasrvv1.ReasonOutcomeUnknown, Fault: true,
			Message: tooLarge.Error() + "; its result is not reported: read the keys before retrying, and ask for previous values in smaller requests"}, true
	case errors.Is(err, kv.ErrOutcomeUnknown):
		return Answer{Code: codes.Unknown, Reason: metasrvv1.ReasonOutcomeUnknown, Fault: true,
			Message: "the storage backend lost the result of the write: it may or may not have been applied; read the keys before retrying"}, true
	case errors.As(err, &readTooLarge):
		return Answer{Code: codes.ResourceExhausted, Message: readTooLarge.Error()}, true
	case errors.As(err, &invalid), errors.Is(err, kv.ErrInvalidArgument), errors.Is(err, procedure.ErrInvalidArgument):
		// These messages are built from the request (key, limit, field,
		// procedure type) and say what was expected: what the caller needs.
		return Answer{Code: codes.InvalidArgument, Message: err.Error()}, true
	case errors.Is(err, procedure.ErrNotFound):
		return Answer{Code: codes.NotFound, Message: err.Error()}, true
	case errors.Is(err, procedure.ErrPaused):
		return Answer{Code: codes.FailedPrecondition, Message: "the procedure manager is paused; resume it to submit procedures"}, true
	case errors.Is(err, procedure.ErrTooManyProcedures):
		return Answer{Code: codes.ResourceExhausted, Message: "max_running_procedures procedures are running; retry later"}, true
	case sqlState(err) == sqlStateProgramLimitExceeded:
		// A backstop: pgkv reports this as kv.ErrInvalidArgument already, and
		// kv.WithLimits keeps keys below the B-tree limit. Reaching here means
		// a path skipped both, which the log should show.
		return Answer{Code: codes.InvalidArgument, Fault: true,
			Message: "the request is over a PostgreSQL limit (SQLSTATE 54000 program_limit_exceeded), most likely a key longer than its index accepts; keep keys within max_key_size"}, true
	case errors.Is(err, kv.ErrUnavailable), errors.Is(err, election.ErrUnavailable):
		// The cause may name internal hosts; it goes to the log only.
		return Answer{Code: codes.Unavailable, Reason: metasrvv1.ReasonBackendUnavailable, Fault: true,
			Message: "the storage backend is unavailable; the request was not applied, retry shortly"}, true
	case errors.Is(err, context.DeadlineExceeded):
		return Answer{Code: codes.DeadlineExceeded, Message: "deadline exceeded before the request completed; a write may or may not have been applied"}, true
	case errors.Is(err, context.Canceled):
		return Answer{Code: codes.Canceled, Message: "request canceled"}, true
	default:
		return Answer{Code: codes.Internal, Fault: true, Message: "internal error; see the server log"}, true
	}
}

// Status is err's gRPC status (nil for a nil error), and whether the failure
// is the server's fault. Only the interceptors answer with it.
func Status(err error) (st *status.Status, serverFault bool) {
	a, ok := Classify(err)
	if !ok {
		return nil, false
	}
	return a.GRPCStatus(), a.Fault
}

// GRPCStatus is the status a gRPC caller gets: Code and Message, with a
// metasrv ErrorInfo detail when Reason is set (naming Leader in its
// metadata when known).
func (a Answer) GRPCStatus() *status.Status {
	if a.passthrough != nil {
		return a.passthrough
	}
	st := status.New(a.Code, a.Message)
	if a.Reason == "" {
		return st
	}
	var md map[string]string
	if a.Leader != "" {
		md = map[string]string{metasrvv1.MetadataLeader: a.Leader}
	}
	detailed, err := st.WithDetails(&errdetails.ErrorInfo{Reason: a.Reason, Domain: metasrvv1.ErrorDomain, Metadata: md})
	if err != nil {
		// WithDetails fails only on a detail it cannot marshal, which an
		// ErrorInfo never is; the bare status still has the right code.
		return st
	}
	return detailed
}

// HTTPStatus is the HTTP status of the answer: Google's mapping of gRPC codes
// (as grpc-gateway's), except that a canceled request is 503, not 499.
func (a Answer) HTTPStatus() int {
	switch a.Code {
	case codes.OK:
		return http.StatusOK
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted:
		return http.StatusConflict
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Unimplemented:
		return http.StatusNotImplemented
	case codes.Unavailable, codes.Canceled:
		return http.StatusServiceUnavailable
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	default: // Unknown, Internal, DataLoss
		return http.StatusInternalServerError
	}
}

// CodeName is the canonical name of the gRPC code, as google.rpc.Code spells
// it ("UNAVAILABLE", "INVALID_ARGUMENT"): the "code" of a JSON error.
func (a Answer) CodeName() string {
	if a.Code == codes.Canceled {
		return "CANCELLED" // google.rpc.Code's spelling
	}
	var b strings.Builder
	prevLower := false
	for _, r := range a.Code.String() {
		if unicode.IsUpper(r) && prevLower {
			b.WriteByte('_')
		}
		prevLower = unicode.IsLower(r)
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}
