package admin_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/migration"
	"github.com/pgmetasrv/metasrv/pkg/server/admin"
)

type fakeMigrations []migration.Info

func (f fakeMigrations) Running() []migration.Info { return f }

func TestMigrationsListsRunningMigrations(t *testing.T) {
	t.Parallel()
	since := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	running := fakeMigrations{{
		ProcedureID: "6f9619ff-8b86-d011-b42d-00c04fc964ff", RegionID: greptimekey.RegionID(1024, 1),
		From: greptimekey.Peer{ID: 1, Addr: "dn1:4001"}, To: greptimekey.Peer{ID: 2, Addr: "dn2:4001"},
		Reason: migration.ReasonFailover, Timeout: 120 * time.Second, Step: "downgrade_leader_region", Since: since,
	}}
	e := newEnv(t, func(d *admin.Deps, _ *env) { d.Migrations = running })
	r := e.do(t, http.MethodGet, "/admin/migrations", "")
	require.Equal(t, http.StatusOK, r.code, r.body)
	require.JSONEq(t, `{"migrations":[{"procedure_id":"6f9619ff-8b86-d011-b42d-00c04fc964ff","region_id":4398046511105,
		"table_id":1024,"region_number":1,"from_peer":{"id":1,"addr":"dn1:4001"},"to_peer":{"id":2,"addr":"dn2:4001"},
		"trigger_reason":"Failover","timeout_ms":120000,"step":"downgrade_leader_region","since":"2026-01-02T03:04:05Z"}]}`, r.body)

	e.follower()
	r = e.do(t, http.MethodGet, "/admin/migrations", "")
	require.Equal(t, http.StatusServiceUnavailable, r.code, r.body)
	require.Contains(t, r.body, leaderAddr, "a follower names the leader")
}

func TestMigrationsWithoutAManager(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.do(t, http.MethodGet, "/admin/migrations", "")
	require.Equal(t, http.StatusNotImplemented, r.code, r.body)
	e = newEnv(t, func(d *admin.Deps, _ *env) { d.Migrations = fakeMigrations{} })
	require.JSONEq(t, `{"migrations":[]}`, e.do(t, http.MethodGet, "/admin/migrations", "").body)
}
