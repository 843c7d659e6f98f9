package statuscode

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
)

// The pairs are GreptimeDB's status_to_tonic_code for the codes metasrv uses.
func TestGRPCCodes(t *testing.T) {
	t.Parallel()
	for c, want := range map[Code]codes.Code{
		TableAlreadyExists: codes.AlreadyExists, DatabaseAlreadyExists: codes.AlreadyExists,
		TableNotFound: codes.NotFound, DatabaseNotFound: codes.NotFound, RegionNotFound: codes.NotFound,
		InvalidArguments: codes.InvalidArgument, Unsupported: codes.Unimplemented,
		Internal: codes.Internal, IllegalState: codes.Internal, Unexpected: codes.Internal,
		RegionBusy: codes.ResourceExhausted, RegionNotReady: codes.Unavailable, External: codes.Unknown,
	} {
		require.Equal(t, want, c.GRPC(), "code %d", c)
	}
}

func TestErrorAndMetadata(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("create table: %w", Errorf(TableAlreadyExists, "Table already exists, table: %s", "greptime.public.t"))
	c, ok := Of(err)
	require.True(t, ok)
	require.Equal(t, TableAlreadyExists, c)
	require.Equal(t, "create table: Table already exists, table: greptime.public.t", err.Error())

	got, ok := FromMetadata(metadata.MD{}, Metadata(RegionNotFound))
	require.True(t, ok)
	require.Equal(t, RegionNotFound, got)
	_, ok = FromMetadata(metadata.Pairs(HeaderErrorCode, "not a number"))
	require.False(t, ok)
	_, ok = Of(fmt.Errorf("plain"))
	require.False(t, ok)
}
