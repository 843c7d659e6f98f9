package pgkv_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/internal/pgtest"
	"github.com/pgmetasrv/metasrv/migrations"
	"github.com/pgmetasrv/metasrv/pkg/kv/pgkv"
)

func TestMain(m *testing.M) { pgtest.MainCheckLeaks(m) }

// testDB is one database of the shared test server with a pool on it; each
// store made from it lives in a schema of its own, so parallel tests sharing
// the database never see each other's keys.
type testDB struct {
	dsn   string
	pool  *pgxpool.Pool
	sqlDB *sql.DB // the same pool, for migrations.Up
	seq   atomic.Int64
}

func newTestDB(t testing.TB, tune ...func(*pgxpool.Config)) *testDB {
	t.Helper()
	dsn := pgtest.NewDatabase(t)
	cfg, err := pgxpool.ParseConfig(dsn)
	require.NoError(t, err)
	cfg.MaxConns = 16
	cfg.ConnConfig.RuntimeParams["application_name"] = "pgkv_test"
	for _, f := range tune {
		f(cfg)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	sqlDB := stdlib.OpenDBFromPool(pool)
	t.Cleanup(func() { _ = sqlDB.Close() })
	return &testDB{dsn: dsn, pool: pool, sqlDB: sqlDB}
}

// newSchema creates a fresh schema holding the kv table and returns its name.
func (d *testDB) newSchema(t testing.TB) string {
	t.Helper()
	schema := fmt.Sprintf("kv_%d", d.seq.Add(1))
	d.migrate(t, schema, pgkv.DefaultTable)
	return schema
}

func (d *testDB) newStore(t testing.TB, opts pgkv.Options) *pgkv.Store {
	t.Helper()
	if opts.Schema == "" {
		opts.Schema = d.newSchema(t)
	}
	s, err := pgkv.New(d.pool, opts, testLogger(t))
	require.NoError(t, err)
	return s
}

// migrate creates schema.table with the project's migrations.
func (d *testDB) migrate(t testing.TB, schema, table string) {
	t.Helper()
	require.NoError(t, migrations.Up(context.Background(), d.sqlDB, schema, table, nil))
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// exec runs one statement on the test database outside any store.
func (d *testDB) exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	_, err := d.pool.Exec(context.Background(), sql, args...)
	require.NoError(t, err)
}
