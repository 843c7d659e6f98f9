package apierr_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	metasrvv1 "github.com/pgmetasrv/metasrv/pkg/api/metasrv/v1"
	"github.com/pgmetasrv/metasrv/pkg/election"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/server/apierr"
	"github.com/pgmetasrv/metasrv/pkg/statuscode"
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
		{"applied but response too large", fmt.Errorf("delete range: %w", &apierr.ResponseTooLargeError{Method: "/metasrv.v1.Store/DeleteRange", Size: 9000, Limit: 8192}), codes.Unknown, metasrvv1.ReasonOutcomeUnknown, "was applied, but its response of 9000 bytes is over the max send message size of 8192 bytes", "", true},
		{"deadline", fmt.Errorf("range: %w", context.DeadlineExceeded), codes.DeadlineExceeded, "", "deadline", "", false},
		{"canceled", context.Canceled, codes.Canceled, "", "canceled", "", false},
		{"not leader", fmt.Errorf("route: %w", &election.NotLeaderError{Leader: "10.0.0.2:3002"}), codes.Unavailable, metasrvv1.ReasonNotLeader, "the leader is 10.0.0.2:3002", "", false},
		{"fenced", fmt.Errorf("put: %w", &election.FencedError{Expected: 3, Actual: 4}), codes.Unavailable, metasrvv1.ReasonFenced, "not applied", "", false},
		{"no leader", election.ErrNoLeader, codes.Unavailable, metasrvv1.ReasonNoLeader, "no leader", "", false},
		{"key too large", fmt.Errorf("put: %w", fmt.Errorf("%w: key \"kkk\"... is 3000 bytes, max_key_size is 2048 bytes", kv.ErrKeyTooLarge)), codes.InvalidArgument, "", "max_key_size is 2048 bytes", "", false},
		{"pgkv over a PostgreSQL limit", fmt.Errorf("pgkv: put: %w: over a PostgreSQL limit: %w", kv.ErrInvalidArgument, pgLimit), codes.InvalidArgument, "", "index row size 3016 exceeds btree version 4 maximum 2704", "", false},
		{"raw PostgreSQL limit error", fmt.Errorf("some store: %w", pgLimit), codes.InvalidArgument, "", "max_key_size", "secret_pkey", true},
		{"range answer too large", fmt.Errorf("range: %w", &apierr.ReadTooLargeError{What: "range", Size: 9000, Limit: 8192, Hint: "ask with a limit"}), codes.ResourceExhausted, "", "range answer of 9000 bytes is over grpc.max_send_message_size (8192 bytes): ask with a limit", "", false},
		{"other PostgreSQL error", fmt.Errorf("some store: %w", &pgconn.PgError{Severity: "ERROR", Code: "42P01", Message: "relation secret does not exist"}), codes.Internal, "", "internal error", "secret", true},
		{"internal", errors.New("pgx: secret table layout xyz"), codes.Internal, "", "internal error", "xyz", true},
		{"status passes through", status.Error(codes.NotFound, "procedure p1 not found"), codes.NotFound, "", "procedure p1 not found", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			st, fault := apierr.Status(c.err)
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
	st, _ := apierr.Status(nil)
	require.Nil(t, st)
}

func TestNotLeaderCarriesLeader(t *testing.T) {
	t.Parallel()
	st, _ := apierr.Status(&election.NotLeaderError{Leader: "h:1"})
	info, ok := metasrvv1.ErrorInfoOf(st.Err())
	require.True(t, ok)
	require.Equal(t, map[string]string{metasrvv1.MetadataLeader: "h:1"}, info.GetMetadata())

	st, _ = apierr.Status(&election.NotLeaderError{})
	info, ok = metasrvv1.ErrorInfoOf(st.Err())
	require.True(t, ok)
	require.Empty(t, info.GetMetadata())
}

func TestUnaryInterceptor(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	icpt := apierr.UnaryServerInterceptor(logger)
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
	icpt := apierr.StreamServerInterceptor(slog.New(slog.DiscardHandler))
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
	icpt := apierr.UnaryServerInterceptor(logger)
	info := &grpc.UnaryServerInfo{FullMethod: "/metasrv.v1.Store/Range"}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := icpt(ctx, nil, info, func(context.Context, any) (any, error) {
		return nil, fmt.Errorf("read: %w", context.Canceled)
	})
	require.Error(t, err)
	_, err = icpt(ctx, nil, info, func(context.Context, any) (any, error) {
		return nil, fmt.Errorf("%w: commit: EOF", kv.ErrOutcomeUnknown)
	})
	require.Equal(t, codes.Unknown, status.Code(err))
	require.Empty(t, logs.String(), "a departed caller's failure is logged at debug only")

	_, err = icpt(context.Background(), nil, info, func(context.Context, any) (any, error) {
		return nil, errors.New("disk on fire")
	})
	require.Error(t, err)
	require.Contains(t, logs.String(), "request failed")
	require.Contains(t, logs.String(), "disk on fire", "the log carries the cause the caller is not told")
}

// The procedure manager's errors are in the same map.
func TestProcedureErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		err  error
		code codes.Code
		msg  string
	}{
		{fmt.Errorf("get: %w", procedure.ErrNotFound), codes.NotFound, "not found"},
		{fmt.Errorf("%w %q: register it with RegisterLoader", procedure.ErrUnknownType, "x"), codes.InvalidArgument, `unknown procedure type "x"`},
		{fmt.Errorf("%w: page_size must be >= 0, got -1", procedure.ErrInvalidArgument), codes.InvalidArgument, "page_size must be >= 0"},
		{fmt.Errorf("%w: resume it to submit procedures", procedure.ErrPaused), codes.FailedPrecondition, "paused"},
		{procedure.ErrTooManyProcedures, codes.ResourceExhausted, "max_running_procedures"},
		{procedure.ErrCorruptState, codes.Internal, "internal error"},
		{procedure.ErrNotRunning, codes.Unavailable, "not leader"},
		{apierr.InvalidArgument("page_size must be >= 0, got %d", -1), codes.InvalidArgument, "page_size must be >= 0, got -1"},
	}
	for _, c := range cases {
		st, _ := apierr.Status(c.err)
		require.Equal(t, c.code, st.Code(), "%v", c.err)
		require.Contains(t, st.Message(), c.msg)
	}
}

func TestLeaderOnlyNamesTheLeader(t *testing.T) {
	t.Parallel()
	asked := 0
	leader := func() string { asked++; return "n1:1" }

	err := apierr.LeaderOnly(fmt.Errorf("pause: %w", procedure.ErrNotRunning), leader)
	require.ErrorIs(t, err, procedure.ErrNotRunning)
	st, fault := apierr.Status(err)
	require.False(t, fault)
	require.Equal(t, codes.Unavailable, st.Code())
	info, ok := metasrvv1.ErrorInfoOf(st.Err())
	require.True(t, ok)
	require.Equal(t, metasrvv1.ReasonNotLeader, info.GetReason())
	require.Equal(t, "n1:1", info.GetMetadata()[metasrvv1.MetadataLeader])
	require.Equal(t, 1, asked)

	// Other errors, and refusals that already name a leader, pass as they are.
	other := fmt.Errorf("get: %w", procedure.ErrNotFound)
	require.Equal(t, other, apierr.LeaderOnly(other, leader))
	named := fmt.Errorf("%w: %w", &election.NotLeaderError{Leader: "n2:1"}, procedure.ErrNotRunning)
	require.Equal(t, named, apierr.LeaderOnly(named, leader))
	require.Nil(t, apierr.LeaderOnly(nil, leader))
	require.Equal(t, 1, asked, "the leader is asked for only when needed")
}

// The HTTP admin answers each failure with the status and code the same
// map gives it.
func TestHTTPForm(t *testing.T) {
	t.Parallel()
	cases := []struct {
		err    error
		status int
		code   string
		reason string
	}{
		{&election.NotLeaderError{Leader: "h:1"}, http.StatusServiceUnavailable, "UNAVAILABLE", metasrvv1.ReasonNotLeader},
		{&election.FencedError{Expected: 3, Actual: 4}, http.StatusServiceUnavailable, "UNAVAILABLE", metasrvv1.ReasonFenced},
		{election.ErrNoLeader, http.StatusServiceUnavailable, "UNAVAILABLE", metasrvv1.ReasonNoLeader},
		{fmt.Errorf("%w: dial", kv.ErrUnavailable), http.StatusServiceUnavailable, "UNAVAILABLE", metasrvv1.ReasonBackendUnavailable},
		{fmt.Errorf("%w: commit: EOF", kv.ErrOutcomeUnknown), http.StatusInternalServerError, "UNKNOWN", metasrvv1.ReasonOutcomeUnknown},
		{fmt.Errorf("%w: key must not be empty", kv.ErrEmptyKey), http.StatusBadRequest, "INVALID_ARGUMENT", ""},
		{procedure.ErrNotFound, http.StatusNotFound, "NOT_FOUND", ""},
		{procedure.ErrPaused, http.StatusBadRequest, "FAILED_PRECONDITION", ""},
		{procedure.ErrTooManyProcedures, http.StatusTooManyRequests, "RESOURCE_EXHAUSTED", ""},
		{context.DeadlineExceeded, http.StatusGatewayTimeout, "DEADLINE_EXCEEDED", ""},
		{context.Canceled, http.StatusServiceUnavailable, "CANCELLED", ""},
		{errors.New("x"), http.StatusInternalServerError, "INTERNAL", ""},
		{status.Error(codes.PermissionDenied, "no"), http.StatusForbidden, "PERMISSION_DENIED", ""},
	}
	for _, c := range cases {
		a, ok := apierr.Classify(c.err)
		require.True(t, ok)
		require.Equal(t, c.status, a.HTTPStatus(), "%v", c.err)
		require.Equal(t, c.code, a.CodeName(), "%v", c.err)
		require.Equal(t, c.reason, a.Reason, "%v", c.err)
	}
	a, _ := apierr.Classify(fmt.Errorf("pause: %w", &election.NotLeaderError{Leader: "h:1"}))
	require.Equal(t, "h:1", a.Leader)
	require.Contains(t, a.Message, "send this request to the leader")
	_, ok := apierr.Classify(nil)
	require.False(t, ok)
}

// A GreptimeDB failure keeps its status code (for the x-greptime-err-code
// metadata) and its message, with the gRPC code GreptimeDB pairs with it.
func TestClassifyGreptimeStatus(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("ddl: %w", statuscode.Errorf(statuscode.TableAlreadyExists, "Table already exists, table: %s", "greptime.public.t"))
	a, ok := apierr.Classify(err)
	require.True(t, ok)
	require.Equal(t, codes.AlreadyExists, a.Code)
	require.Equal(t, statuscode.TableAlreadyExists, a.Greptime)
	require.Equal(t, "Table already exists, table: greptime.public.t", a.Message)
	require.False(t, a.Fault)

	a, _ = apierr.Classify(statuscode.Errorf(statuscode.Unexpected, "region routes are empty"))
	require.Equal(t, codes.Internal, a.Code)
	require.True(t, a.Fault)
}
