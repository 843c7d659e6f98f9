package postgres

import (
	"context"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/internal/pgtest"
)

// unusedPort is a loopback port nothing listens on.
func unusedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return port
}

func withPort(t *testing.T, dsn string, port int) string {
	t.Helper()
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	u.Host = net.JoinHostPort(u.Hostname(), strconv.Itoa(port))
	return u.String()
}

func serverPort(ctx context.Context, t *testing.T, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) int {
	t.Helper()
	var port int
	require.NoError(t, q.QueryRow(ctx, "SELECT current_setting('port')::int").Scan(&port))
	return port
}

func TestConnectSkipsUnreachableHost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	o := defaultOptions()
	o.StoreAddrs = []string{withPort(t, dsn, unusedPort(t)), dsn}
	pc, err := PoolConfig(o, "multi_host_test")
	require.NoError(t, err)
	pool, err := Connect(ctx, pc, nil)
	require.NoError(t, err)
	defer pool.Close()
	var app string
	require.NoError(t, pool.QueryRow(ctx, "SELECT current_setting('application_name')").Scan(&app))
	require.Equal(t, "multi_host_test", app)
}

func TestConnectChoosesWritableHost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	standby := pgtest.NewCluster(t, pgtest.ClusterOptions{})
	primary := pgtest.NewCluster(t, pgtest.ClusterOptions{})

	// Both entries must be one cluster's hosts (same credentials), and the
	// first one must look like a standby: it only allows reads.
	pu, err := url.Parse(primary.DSN())
	require.NoError(t, err)
	password, _ := pu.User.Password()
	conn, err := pgx.Connect(ctx, standby.DSN())
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "ALTER ROLE postgres PASSWORD "+quoteLiteral(password))
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "ALTER SYSTEM SET default_transaction_read_only = on")
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "SELECT pg_reload_conf()")
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))

	o := defaultOptions()
	o.StoreAddrs = []string{withPort(t, primary.DSN(), standby.Port()), primary.DSN()}
	pc, err := PoolConfig(o, "")
	require.NoError(t, err)
	pool, err := Connect(ctx, pc, nil)
	require.NoError(t, err)
	defer pool.Close()
	require.Equal(t, primary.Port(), serverPort(ctx, t, pool))
}

func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

func TestConnectRetriesUntilPostgresIsUp(t *testing.T) {
	t.Parallel()
	cluster := pgtest.NewCluster(t, pgtest.ClusterOptions{})
	cluster.Stop(t)
	u, err := url.Parse(cluster.DSN())
	require.NoError(t, err)
	password, ok := u.User.Password()
	require.True(t, ok)

	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o := defaultOptions()
	o.StoreAddrs = []string{cluster.DSN()}
	pc, err := PoolConfig(o, "retry_test")
	require.NoError(t, err)

	type result struct {
		pool interface{ Close() }
		err  error
	}
	done := make(chan result, 1)
	go func() {
		pool, err := Connect(context.Background(), pc, logger)
		done <- result{pool, err}
	}()
	// Wait until Connect has failed at least twice (it is retrying), then
	// bring PostgreSQL up.
	require.Eventually(t, func() bool {
		return strings.Count(logs.String(), "postgresql unreachable") >= 2
	}, time.Minute, 20*time.Millisecond)
	cluster.Start(t)

	res := <-done
	require.NoError(t, res.err)
	res.pool.Close()

	out := logs.String()
	require.Contains(t, out, "level=WARN")
	require.Contains(t, out, "addr=postgres@127.0.0.1:"+strconv.Itoa(cluster.Port())+"/postgres")
	require.Contains(t, out, "err=")
	require.NotContains(t, out, password)
}

func TestConnectGivesUpWhenContextEnds(t *testing.T) {
	t.Parallel()
	o := defaultOptions()
	o.StoreAddrs = []string{"postgres://u:hunter2hunter2@127.0.0.1:" + strconv.Itoa(unusedPort(t)) + "/db?sslmode=disable"}
	pc, err := PoolConfig(o, "")
	require.NoError(t, err)

	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := Connect(ctx, pc, logger)
		done <- err
	}()
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "postgresql unreachable") },
		time.Minute, 20*time.Millisecond)
	cancel()
	err = <-done
	require.ErrorIs(t, err, context.Canceled)
	require.NotContains(t, err.Error(), "hunter2")
	require.NotContains(t, logs.String(), "hunter2")
}

func TestConnectFailsAtOnceOnBadPassword(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	u.User = url.UserPassword(u.User.Username(), "not-the-password")
	o := defaultOptions()
	o.StoreAddrs = []string{u.String()}
	pc, err := PoolConfig(o, "")
	require.NoError(t, err)
	_, err = Connect(context.Background(), pc, nil) // no deadline: retrying would hang
	require.ErrorContains(t, err, "28P01")
	require.NotContains(t, err.Error(), "not-the-password")
}
