// Package statuscode holds GreptimeDB's status codes (common_error's
// StatusCode in GreptimeDB v1.1.4, src/common/error/src/status_code.rs) and an
// error carrying one.
//
// GreptimeDB's servers answer a failed call with a gRPC status whose code
// follows from the status code (GRPC), and whose metadata carries the status
// code itself under HeaderErrorCode; its clients read that header first and
// fall back to the gRPC code. A frontend tells "table already exists" from
// any other failure this way, so metasrv's DDL answers must carry it, and the
// datanode's region server answers the same way (a drop of a region the
// datanode no longer has is RegionNotFound, which a drop treats as done).
package statuscode

import (
	"errors"
	"fmt"
	"strconv"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
)

// Code is one of GreptimeDB's status codes.
type Code uint32

// The codes metasrv sends or reads (the numbers are GreptimeDB's, fixed).
const (
	Success                   Code = 0
	Unknown                   Code = 1000
	Unsupported               Code = 1001
	Unexpected                Code = 1002
	Internal                  Code = 1003
	InvalidArguments          Code = 1004
	Cancelled                 Code = 1005
	IllegalState              Code = 1006
	External                  Code = 1007
	DeadlineExceeded          Code = 1008
	TableAlreadyExists        Code = 4000
	TableNotFound             Code = 4001
	TableColumnNotFound       Code = 4002
	TableColumnExists         Code = 4003
	DatabaseNotFound          Code = 4004
	RegionNotFound            Code = 4005
	RegionAlreadyExists       Code = 4006
	RegionReadonly            Code = 4007
	RegionNotReady            Code = 4008
	RegionBusy                Code = 4009
	TableUnavailable          Code = 4010
	DatabaseAlreadyExists     Code = 4011
	StorageUnavailable        Code = 5000
	RequestOutdated           Code = 5001
	RuntimeResourcesExhausted Code = 6000
	RateLimited               Code = 6001
)

// HeaderErrorCode and HeaderErrorMsg are the gRPC metadata keys of a
// GreptimeDB error: the status code in decimal, and the message.
const (
	HeaderErrorCode = "x-greptime-err-code"
	HeaderErrorMsg  = "x-greptime-err-msg"
)

// GRPC is the gRPC code GreptimeDB answers a status code with
// (status_to_tonic_code).
func (c Code) GRPC() codes.Code {
	switch c {
	case Success:
		return codes.OK
	case Unsupported:
		return codes.Unimplemented
	case Unexpected, IllegalState, Internal:
		return codes.Internal
	case InvalidArguments, RequestOutdated:
		return codes.InvalidArgument
	case Cancelled:
		return codes.Canceled
	case DeadlineExceeded:
		return codes.DeadlineExceeded
	case TableAlreadyExists, TableColumnExists, RegionAlreadyExists, DatabaseAlreadyExists:
		return codes.AlreadyExists
	case TableNotFound, RegionNotFound, TableColumnNotFound, DatabaseNotFound:
		return codes.NotFound
	case TableUnavailable, StorageUnavailable, RegionNotReady:
		return codes.Unavailable
	case RuntimeResourcesExhausted, RateLimited, RegionBusy:
		return codes.ResourceExhausted
	case RegionReadonly:
		return codes.PermissionDenied
	default:
		return codes.Unknown
	}
}

// Error is a failure with a GreptimeDB status code. Its Msg is sent to the
// caller as is, so it must say what the request got wrong and nothing
// internal.
type Error struct {
	Status Code
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// Code is the status code as a number: an *Error is a procedure.CodedError,
// so a DDL procedure that fails with one keeps the code in its record.
func (e *Error) Code() uint32 { return uint32(e.Status) }

// Errorf returns an *Error with code c and a formatted message.
func Errorf(c Code, format string, args ...any) *Error {
	return &Error{Status: c, Msg: fmt.Sprintf(format, args...)}
}

// MissingParameter is GreptimeDB's MissingRequiredParameter refusal of a
// request without the named field (InvalidArguments; the name quoted as
// Rust's {:?} prints it).
func MissingParameter(name string) *Error {
	return Errorf(InvalidArguments, "Missing required parameter, param: %q", name)
}

// MissingRequestHeader is GreptimeDB's refusal of a request without a header.
func MissingRequestHeader() *Error { return Errorf(InvalidArguments, "Missing request header") }

// Of is the status code of the first *Error in err's chain, or ok false.
func Of(err error) (Code, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Status, true
	}
	return 0, false
}

// FromMetadata reads a GreptimeDB server's status code from the metadata of
// a failed call (its trailers, or its headers in a trailers-only answer).
func FromMetadata(mds ...metadata.MD) (Code, bool) {
	for _, md := range mds {
		vals := md.Get(HeaderErrorCode)
		if len(vals) == 0 {
			continue
		}
		n, err := strconv.ParseUint(vals[0], 10, 32)
		if err != nil {
			continue
		}
		return Code(n), true
	}
	return 0, false
}

// Metadata is what a failed answer carries for code c.
func Metadata(c Code) metadata.MD {
	return metadata.Pairs(HeaderErrorCode, strconv.FormatUint(uint64(c), 10))
}
