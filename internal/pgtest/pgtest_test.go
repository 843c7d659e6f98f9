package pgtest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { MainCheckLeaks(m) }

func TestNewDatabaseIsolated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsnA, dsnB := NewDatabase(t), NewDatabase(t)
	require.NotEqual(t, dsnA, dsnB)

	a, err := pgx.Connect(ctx, dsnA)
	require.NoError(t, err)
	defer a.Close(ctx)
	_, err = a.Exec(ctx, "CREATE TABLE only_in_a (k int)")
	require.NoError(t, err)

	b, err := pgx.Connect(ctx, dsnB)
	require.NoError(t, err)
	defer b.Close(ctx)
	var n int
	require.NoError(t, b.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'").Scan(&n))
	require.Zero(t, n)

	var super bool
	require.NoError(t, a.QueryRow(ctx, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super))
	require.True(t, super)
}

func TestNewDatabaseDroppedWithOpenConnection(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var dsn string
	t.Run("inner", func(t *testing.T) {
		dsn = NewDatabase(t)
		conn, err := pgx.Connect(ctx, dsn)
		require.NoError(t, err)
		// Left open on purpose: the drop must not be blocked by it.
		t.Cleanup(func() { _ = conn.Close(ctx) })
	})
	if dsn == "" {
		t.Skip("no PostgreSQL")
	}
	_, err := pgx.Connect(ctx, dsn)
	require.Error(t, err, "database must be gone after the test")
}

func TestClusterRestartKeepsAddress(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := NewCluster(t, ClusterOptions{Conf: []string{"application_name='pgtest_conf'"}})
	dsn := c.DSN()
	ping := func() error {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return err
		}
		return conn.Close(ctx)
	}
	require.NoError(t, ping())
	c.Stop(t)
	require.Error(t, ping())
	c.Stop(t) // twice is fine
	c.Start(t)
	require.NoError(t, ping())
	c.Restart(t)
	require.Equal(t, dsn, c.DSN())

	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var maxConns int
	require.NoError(t, conn.QueryRow(ctx, "SELECT current_setting('max_connections')::int").Scan(&maxConns))
	require.GreaterOrEqual(t, maxConns, 500)
}

func TestWithDatabase(t *testing.T) {
	t.Setenv("PGPASSWORD", "") // pgconn would take a password from the environment
	t.Setenv("PGPASSFILE", filepath.Join(t.TempDir(), "none"))
	for _, tc := range []struct{ in, want string }{
		{`host=db.example port=6432 user=admin password='p w\'x' sslmode=require dbname=postgres`, "postgres://admin:p%20w%27x@db.example:6432/t1?sslmode=require"},
		{"host=h1,h2 port=1,2 user=u sslmode=prefer application_name=x connect_timeout=3", "postgres://u@h1:1,h2:2/t1?application_name=x&connect_timeout=3&sslmode=prefer"},
		{"host=/tmp/pg port=5433 user=u dbname=postgres", "postgres://u@/t1?host=%2Ftmp%2Fpg&port=5433"},
		{"postgres://u:secret@h:5432/postgres?sslmode=disable", "postgres://u:secret@h:5432/t1?sslmode=disable"},
		{"postgres://u@h/postgres?dbname=other&sslmode=require", "postgres://u@h/t1?sslmode=require"},
	} {
		got, err := withDatabase(tc.in, "t1")
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
		back, err := pgconn.ParseConfig(got)
		require.NoError(t, err, got)
		require.Equal(t, "t1", back.Database, got)
	}
	// What pgconn keeps only in loaded form cannot be written back.
	_, err := withDatabase("host=h user=u sslmode=require target_session_attrs=read-write", "t1")
	require.ErrorContains(t, err, "as a postgres:// URL")
	_, err = withDatabase("host=h user=u password=hunter2hunter2 sslmode=bogus", "t1")
	require.ErrorContains(t, err, EnvDSN)
	require.NotContains(t, err.Error(), "hunter2")
}

// The harness must leave no goroutine running between tests, or every test
// using goleak would flag it. Not parallel: others' goroutines would count.
func TestHarnessLeavesNoGoroutines(t *testing.T) {
	dsn := NewDatabase(t)
	conn, err := pgx.Connect(context.Background(), dsn)
	require.NoError(t, err)
	require.NoError(t, conn.Close(context.Background()))
	goleak.VerifyNone(t)
}
