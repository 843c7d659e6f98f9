package grpcerr_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	metasrvv1 "github.com/pgmetasrv/metasrv/pkg/api/metasrv/v1"
	"github.com/pgmetasrv/metasrv/pkg/election"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/server/grpcerr"
)

func TestStatusMapping(t *testing.T) {
	t.Parallel()
	pgLimit := &pgconn.PgError{Severity: "ERROR", Code: "54000", Message: `index row size 3016 exceeds btree version 4 maximum 2704 for index "secret_pkey"`}
	cases := []struct {
		name    string
		err     error
		code    codes.Code
		reason  string // expected ErrorInfo reason, "" for none
		msg     string // substring of the message
		noLeak  string // must not appear in the message
		isFault bool
	}{
		{"too many ops", fmt.Errorf("%w: txn has 9 compares, max_txn_ops is 8", kv.ErrTooManyTxnOps), codes.InvalidArgument, "", "max_txn_ops is 8", "", false},
		{"value too large", fmt.Errorf("op: %w", fmt.Errorf("%w: value of key \"k\" is 2000 bytes, max_metadata_value_size is 1024 bytes", kv.ErrValueTooLarge)), codes.InvalidArgument, "", "max_metadata_value_size", "", false},
		{"empty key", fmt.Errorf("%w: key must not be empty", kv.ErrEmptyKey), codes.InvalidArgument, "", "key must not be empty", "", false},
		{"backend unavailable", fmt.Errorf("%w: dial tcp 10.1.2.3:5432: refused", kv.ErrUnavailable), codes.Unavailable, metasrvv1.ReasonBackendUnavailable, "not applied", "10.1.2.3", true},
		{"election state unavailable", fmt.Errorf("pgelection: read leader: %w: dial tcp 10.1.2.3:5432: refused", election.ErrUnavailable), codes.Unavailable, metasrvv1.ReasonBackendUnavailable, "not applied", "10.1.2.3", true},
		{"outcome unknown", fmt.Errorf("%w: %w: commit: EOF", kv.ErrUnavailable, kv.ErrOutcomeUnknown), codes.Unknown, metasrvv1.ReasonOutcomeUnknown, "may or may not have been applied", "EOF", true},
		{"outcome unknown on cancel", fmt.Errorf("%w: %w", kv.ErrOutcomeUnknown, context.Canceled), codes.Unknown, metasrvv1.ReasonOutcomeUnknown, "may or may not", "", true},
		{"applied but response too large", fmt.Errorf("delete range: %w", &grpcerr.ResponseTooLargeError{Method: "/metasrv.v1.Store/DeleteRange", Size: 9000, Limit: 8192}), codes.Unknown, metasrvv1.ReasonOutcomeUnknown, "was applied, but its response of 9000 bytes is over the max send message size of 8192 bytes", "", true},
		{"deadline", fmt.Errorf("range: %w", context.DeadlineExceeded), codes.DeadlineExceeded, "", "deadline", "", false},
		{"canceled", context.Canceled, codes.Canceled, "", "canceled", "", false},
		{"not leader", fmt.Errorf("route: %w", &grpcerr.NotLeaderError{Leader: "10.0.0.2:3002"}), codes.Unavailable, metasrvv1.ReasonNotLeader, "the leader is 10.0.0.2:3002", "", false},
		{"fenced", fmt.Errorf("put: %w", &election.FencedError{Expected: 3, Actual: 4}), codes.Unavailable, metasrvv1.ReasonFenced, "not applied", "", false},
		{"no leader", election.ErrNoLeader, codes.Unavailable, metasrvv1.ReasonNoLeader, "no leader", "", false},
		{"key too large", fmt.Errorf("put: %w", fmt.Errorf("%w: key \"kkk\"... is 3000 bytes, max_key_size is 2048 bytes", kv.ErrKeyTooLarge)), codes.InvalidArgument, "", "max_key_size is 2048 bytes", "", false},
		{"pgkv over a PostgreSQL limit", fmt.Errorf("pgkv: put: %w: over a PostgreSQL limit: %w", kv.ErrInvalidArgument, pgLimit), codes.InvalidArgument, "", "index row size 3016 exceeds btree version 4 maximum 2704", "", false},
		{"raw PostgreSQL limit error", fmt.Errorf("some store: %w", pgLimit), codes.InvalidArgument, "", "max_key_size", "secret_pkey", true},
		{"range answer too large", fmt.Errorf("range: %w", &grpcerr.ReadTooLargeError{What: "range", Size: 9000, Limit: 8192, Hint: "ask with a limit"}), codes.ResourceExhausted, "", "range answer of 9000 bytes is over grpc.max_send_message_size (8192 bytes): ask with a limit", "", false},
		{"other PostgreSQL error", fmt.Errorf("some store: %w", &pgconn.PgError{Severity: "ERROR", Code: "42P01", Message: "relation secret does not exist"}), codes.Internal, "", "internal error", "secret", true},
		{"internal", errors.New("pgx: secret table layout xyz"), codes.Internal, "", "internal error", "xyz", true},
		{"status passes through", status.Error(codes.NotFound, "procedure p1 not found"), codes.NotFound, "", "procedure p1 not found", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			st, fault := grpcerr.Status(c.err)
			require.Equal(t, c.code, st.Code(), st.Message())
			require.Contains(t, st.Message(), c.msg)
			if c.noLeak != "" {
				require.NotContains(t, st.Message(), c.noLeak)
			}
			require.Equal(t, c.isFault, fault)
			info, ok := metasrvv1.ErrorInfoOf(st.Err())
			if c.reason == "" {
				require.False(t, ok)
				return
			}
			require.True(t, ok)
			require.Equal(t, c.reason, info.GetReason())
			require.Equal(t, metasrvv1.ErrorDomain, info.GetDomain())
		})
	}
	st, _ := grpcerr.Status(nil)
	require.Nil(t, st)
}

func TestNotLeaderCarriesLeader(t *testing.T) {
	t.Parallel()
	st, _ := grpcerr.Status(&grpcerr.NotLeaderError{Leader: "h:1"})
	info, ok := metasrvv1.ErrorInfoOf(st.Err())
	require.True(t, ok)
	require.Equal(t, map[string]string{metasrvv1.MetadataLeader: "h:1"}, info.GetMetadata())

	st, _ = grpcerr.Status(&grpcerr.NotLeaderError{})
	info, ok = metasrvv1.ErrorInfoOf(st.Err())
	require.True(t, ok)
	require.Empty(t, info.GetMetadata())
}

func TestUnaryInterceptor(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	icpt := grpcerr.UnaryServerInterceptor(logger)
	info := &grpc.UnaryServerInfo{FullMethod: "/metasrv.v1.Store/Put"}

	_, err := icpt(context.Background(), nil, info, func(context.Context, any) (any, error) {
		panic("boom")
	})
	require.Equal(t, codes.Internal, status.Code(err))
	require.NotContains(t, err.Error(), "boom")
	require.Contains(t, logs.String(), "handler panicked")
	require.Contains(t, logs.String(), "boom")

	_, err = icpt(context.Background(), nil, info, func(context.Context, any) (any, error) {
		return nil, fmt.Errorf("%w: key must not be empty", kv.ErrEmptyKey)
	})
	require.Equal(t, codes.InvalidArgument, status.Code(err))

	resp, err := icpt(context.Background(), nil, info, func(context.Context, any) (any, error) { return "ok", nil })
	require.NoError(t, err)
	require.Equal(t, "ok", resp)
}

func TestStreamInterceptorRecovers(t *testing.T) {
	t.Parallel()
	icpt := grpcerr.StreamServerInterceptor(slog.New(slog.DiscardHandler))
	err := icpt(nil, fakeStream{}, &grpc.StreamServerInfo{FullMethod: "/x/y"}, func(any, grpc.ServerStream) error {
		panic("boom")
	})
	require.Equal(t, codes.Internal, status.Code(err))
}

type fakeStream struct{ grpc.ServerStream }

func (fakeStream) Context() context.Context { return context.Background() }

// A caller that left is not a server fault: nothing is logged at error.
func TestCallerDepartureIsNotLoggedAsError(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := grpcerr.Error(ctx, logger, "/metasrv.v1.Store/Range", fmt.Errorf("read: %w", context.Canceled))
	require.Error(t, err)
	require.Empty(t, logs.String(), "a departed caller's failure is logged at debug only")

	err = grpcerr.Error(context.Background(), logger, "/metasrv.v1.Store/Range", errors.New("disk on fire"))
	require.Error(t, err)
	require.Contains(t, logs.String(), "request failed")
}
