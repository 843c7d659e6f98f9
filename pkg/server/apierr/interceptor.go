package apierr

import (
	"context"
	"log/slog"
	"runtime/debug"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	metasrvv1 "github.com/pgmetasrv/metasrv/pkg/api/metasrv/v1"
	"github.com/pgmetasrv/metasrv/pkg/statuscode"
)

// UnaryServerInterceptor maps every error a handler returns with Status,
// logging it when it is the server's fault, and turns a handler panic into
// INTERNAL (logged with its stack) so no request can crash the server. The
// services of the gRPC server rely on it: they return plain Go errors.
func UnaryServerInterceptor(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				logger.ErrorContext(ctx, "handler panicked", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
				resp, err = nil, status.Error(codes.Internal, "internal error; see the server log")
			}
		}()
		if err := checkHeader(req); err != nil {
			return nil, answer(ctx, logger, info.FullMethod, err)
		}
		resp, err = handler(ctx, req)
		if err != nil {
			return nil, answer(ctx, logger, info.FullMethod, err)
		}
		return resp, nil
	}
}

// headed is a metasrv.v1 request, which may carry a request header.
type headed interface {
	GetHeader() *metasrvv1.RequestHeader
}

// checkHeader refuses a request header whose client_id is not UTF-8 (the
// field is bytes on the wire so that it reaches this check instead of failing
// to decode as INTERNAL).
func checkHeader(req any) error {
	h, ok := req.(headed)
	if !ok {
		return nil
	}
	if id := h.GetHeader().GetClientId(); !utf8.Valid(id) {
		return InvalidArgument("header.client_id is not valid UTF-8 (%d bytes): send the client's name as UTF-8 text", len(id))
	}
	return nil
}

// StreamServerInterceptor is UnaryServerInterceptor for streaming calls.
func StreamServerInterceptor(logger *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if r := recover(); r != nil {
				logger.ErrorContext(ss.Context(), "handler panicked", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
				err = status.Error(codes.Internal, "internal error; see the server log")
			}
		}()
		if err = handler(srv, ss); err != nil {
			return answer(ss.Context(), logger, info.FullMethod, err)
		}
		return nil
	}
}

// answer maps err to a gRPC status error, logging it when it is the server's
// fault. method names the call in the log. A call whose caller has gone (its
// context ended) is not the server's fault whatever it failed with: it is
// logged at debug.
func answer(ctx context.Context, logger *slog.Logger, method string, err error) error {
	a, ok := Classify(err)
	if !ok {
		return nil
	}
	st, fault := a.GRPCStatus(), a.Fault
	if a.Greptime != 0 {
		// GreptimeDB's clients read the status code from the answer's
		// metadata; a trailer reaches them in a trailers-only answer too.
		_ = grpc.SetTrailer(ctx, statuscode.Metadata(a.Greptime))
	}
	if fault && ctx.Err() == nil {
		logger.ErrorContext(ctx, "request failed", "method", method, "code", st.Code().String(), "err", err)
	} else if logger.Enabled(ctx, slog.LevelDebug) {
		logger.DebugContext(ctx, "request refused", "method", method, "code", st.Code().String(), "err", err)
	}
	return st.Err()
}
