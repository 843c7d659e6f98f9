package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { Main(m) }

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

func TestKeyValueToURL(t *testing.T) {
	t.Parallel()
	got, err := withDatabase(`host=db.example port=6432 user=admin password='p w\'x' sslmode=require dbname=postgres`, "t1")
	require.NoError(t, err)
	require.Equal(t, "postgres://admin:p%20w%27x@db.example:6432/t1?sslmode=require", got)

	got, err = withDatabase("postgres://u:secret@h:5432/postgres?sslmode=disable", "t2")
	require.NoError(t, err)
	require.Equal(t, "postgres://u:secret@h:5432/t2?sslmode=disable", got)
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
