package greptimeapi

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/migration"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/statuscode"
)

type fakeMigrations struct {
	alive map[uint64]bool
	got   []migration.Task
	err   error
}

func (f *fakeMigrations) Submit(_ context.Context, t migration.Task) (procedure.ID, error) {
	f.got = append(f.got, t)
	return "6f9619ff-8b86-d011-b42d-00c04fc964ff", f.err
}

func (f *fakeMigrations) DatanodeAlive(_ context.Context, id uint64) (greptimekey.Peer, bool, error) {
	return greptimekey.Peer{ID: id}, f.alive[id], nil
}

func migrateRequest(from, to uint64) *metapb.MigrateRegionRequest {
	return &metapb.MigrateRegionRequest{Header: &metapb.RequestHeader{ProtocolVersion: 1}, RegionId: 4398046511105, FromPeer: from, ToPeer: to, TimeoutSecs: 300}
}

func TestMigrateSubmitsAManualMigration(t *testing.T) {
	t.Parallel()
	m := &fakeMigrations{alive: map[uint64]bool{1: true, 2: true}}
	s := &migratingProcedureService{&procedureService{core: leaderCore{}}, m}
	resp, err := s.Migrate(t.Context(), migrateRequest(1, 2))
	require.NoError(t, err)
	require.Nil(t, resp.GetHeader(), "GreptimeDB leaves the header out of a success")
	require.Equal(t, "6f9619ff-8b86-d011-b42d-00c04fc964ff", string(resp.GetPid().GetKey()))
	require.Equal(t, []migration.Task{{RegionID: 4398046511105, From: 1, To: 2, Timeout: 300 * time.Second, Reason: migration.ReasonManual}}, m.got)

	m.err = statuscode.Errorf(statuscode.Unexpected, "Another migration procedure is running for region: 4398046511105(1024, 1)")
	_, err = s.Migrate(t.Context(), migrateRequest(1, 2))
	require.EqualError(t, err, "Another migration procedure is running for region: 4398046511105(1024, 1)")
}

func TestMigrateRefusals(t *testing.T) {
	t.Parallel()
	m := &fakeMigrations{alive: map[uint64]bool{2: true}}
	s := &migratingProcedureService{&procedureService{core: leaderCore{}}, m}
	_, err := s.Migrate(t.Context(), migrateRequest(1, 2))
	require.ErrorIs(t, err, migration.ErrPeerUnavailable, "GreptimeDB wants the source alive too")
	code, _ := statuscode.Of(err)
	require.Equal(t, statuscode.Unexpected, code)
	require.ErrorContains(t, err, "The target peer is unavailable temporally: 1")

	_, err = s.Migrate(t.Context(), &metapb.MigrateRegionRequest{})
	require.EqualError(t, err, "Missing request header")
	require.Empty(t, m.got)

	follower := &migratingProcedureService{&procedureService{core: followerCore{}}, m}
	resp, err := follower.Migrate(t.Context(), migrateRequest(2, 2))
	require.NoError(t, err)
	require.True(t, isNotLeader(resp.GetHeader()))

	none := &migratingProcedureService{&procedureService{core: leaderCore{}}, nil}
	_, err = none.Migrate(t.Context(), migrateRequest(1, 2))
	code, _ = statuscode.Of(err)
	require.Equal(t, statuscode.Unsupported, code)
}
