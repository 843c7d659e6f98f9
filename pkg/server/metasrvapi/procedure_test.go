package metasrvapi_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	metasrvv1 "github.com/pgmetasrv/metasrv/pkg/api/metasrv/v1"
	"github.com/pgmetasrv/metasrv/pkg/metasrv"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/server/metasrvapi"
)

// failing is a Manager whose every call fails with err, or fails the test
// when err is nil: malformed requests must never reach the manager.
type failing struct {
	t   *testing.T
	err error
}

func (f failing) fail(call string) error {
	if f.err == nil {
		f.t.Errorf("%s reached the manager", call)
	}
	return f.err
}

func (f failing) Submit(context.Context, string, []byte) (procedure.ID, error) {
	return "", f.fail("Submit")
}
func (f failing) Get(context.Context, procedure.ID) (procedure.Info, error) {
	return procedure.Info{}, f.fail("Get")
}
func (f failing) List(context.Context, procedure.ListFilter) ([]procedure.Info, string, error) {
	return nil, "", f.fail("List")
}
func (f failing) Wait(context.Context, procedure.ID) (procedure.Info, error) {
	return procedure.Info{}, f.fail("Wait")
}

type procHeader struct{}

func (procHeader) HeaderInfo() metasrv.HeaderInfo {
	return metasrv.HeaderInfo{NodeAddr: "n2:1", LeaderAddr: "n1:1", Term: 3}
}

func serveProcedures(t *testing.T, m metasrvapi.ProcedureManager) metasrvv1.ProcedureClient {
	t.Helper()
	return metasrvv1.NewProcedureClient(serveGRPC(t, metasrvapi.NewProcedure(m, procHeader{}).Register))
}

func TestManagerErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cases := []struct {
		err  error
		code codes.Code
	}{
		{fmt.Errorf("get: %w", procedure.ErrNotFound), codes.NotFound},
		{fmt.Errorf("%w: %q", procedure.ErrUnknownType, "x"), codes.InvalidArgument},
		{procedure.ErrPaused, codes.FailedPrecondition},
		{procedure.ErrTooManyProcedures, codes.ResourceExhausted},
		{procedure.ErrCorruptState, codes.Internal},
	}
	for _, tc := range cases {
		c := serveProcedures(t, failing{t, tc.err})
		_, err := c.Get(ctx, &metasrvv1.GetRequest{Id: "p1"})
		require.Equal(t, tc.code, status.Code(err), "%v", tc.err)
	}

	// A follower's stopped manager answers NOT_LEADER naming the leader.
	c := serveProcedures(t, failing{t, procedure.ErrNotRunning})
	_, err := c.Submit(ctx, &metasrvv1.SubmitRequest{Type: "t"})
	require.Equal(t, codes.Unavailable, status.Code(err))
	info, ok := metasrvv1.ErrorInfoOf(err)
	require.True(t, ok)
	require.Equal(t, metasrvv1.ReasonNotLeader, info.GetReason())
	require.Equal(t, "n1:1", info.GetMetadata()[metasrvv1.MetadataLeader])
}

func TestBadRequestsAreRefused(t *testing.T) {
	t.Parallel()
	c := serveProcedures(t, failing{t: t})
	ctx := context.Background()

	cases := []struct {
		name string
		call func() error
		want string
	}{
		{"empty type", func() error { _, err := c.Submit(ctx, &metasrvv1.SubmitRequest{}); return err }, "type must name"},
		{"empty id", func() error { _, err := c.Get(ctx, &metasrvv1.GetRequest{}); return err }, "id must not be empty"},
		{"negative page size", func() error { _, err := c.List(ctx, &metasrvv1.ListRequest{PageSize: -1}); return err }, "page_size must be >= 0"},
		{"unknown state", func() error {
			_, err := c.List(ctx, &metasrvv1.ListRequest{States: []metasrvv1.ProcedureState{metasrvv1.ProcedureState_PROCEDURE_STATE_DONE, 99}})
			return err
		}, "states[1]"},
		{"negative timeout", func() error {
			_, err := c.Wait(ctx, &metasrvv1.WaitRequest{Id: "p1", Timeout: &durationpb.Duration{Seconds: -1}})
			return err
		}, "timeout must be >= 0"},
		{"invalid timeout", func() error {
			_, err := c.Wait(ctx, &metasrvv1.WaitRequest{Id: "p1", Timeout: &durationpb.Duration{Seconds: 1, Nanos: -1}})
			return err
		}, "timeout"},
	}
	for _, tc := range cases {
		err := tc.call()
		require.Equal(t, codes.InvalidArgument, status.Code(err), "%s: %v", tc.name, err)
		require.Contains(t, status.Convert(err).Message(), tc.want, tc.name)
	}
}
