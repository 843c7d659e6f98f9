package migrations

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.MainCheckLeaks(m) }

// openDB opens a database/sql handle on dsn, with extra session settings.
func openDB(t *testing.T, dsn string, params map[string]string) *sql.DB {
	t.Helper()
	cc, err := pgx.ParseConfig(dsn)
	require.NoError(t, err)
	for k, v := range params {
		cc.RuntimeParams[k] = v
	}
	db := stdlib.OpenDB(*cc)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

type column struct{ name, dataType, nullable string }

func columns(t *testing.T, db *sql.DB, schema, table string) []column {
	t.Helper()
	rows, err := db.Query(`SELECT column_name, data_type, is_nullable FROM information_schema.columns
		WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`, schema, table)
	require.NoError(t, err)
	defer rows.Close()
	var out []column
	for rows.Next() {
		var c column
		require.NoError(t, rows.Scan(&c.name, &c.dataType, &c.nullable))
		out = append(out, c)
	}
	require.NoError(t, rows.Err())
	return out
}

func primaryKey(t *testing.T, db *sql.DB, schema, table string) []string {
	t.Helper()
	rows, err := db.Query(`SELECT kcu.column_name
		FROM information_schema.table_constraints tc
		JOIN information_schema.key_column_usage kcu
		  ON kcu.constraint_schema = tc.constraint_schema AND kcu.constraint_name = tc.constraint_name
		WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = $1 AND tc.table_name = $2
		ORDER BY kcu.ordinal_position`, schema, table)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		require.NoError(t, rows.Scan(&c))
		out = append(out, c)
	}
	require.NoError(t, rows.Err())
	return out
}

func count(t *testing.T, db *sql.DB, query string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, db.QueryRow(query, args...).Scan(&n))
	return n
}

func TestUpCreatesKVTableAndIsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t, pgtest.NewDatabase(t), nil)
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))

	latest, err := Latest()
	require.NoError(t, err)
	st, err := Status(ctx, db, "s1", "greptime_metakv")
	require.NoError(t, err)
	require.Len(t, st, int(latest), "one status per migration, versions 1..latest")
	require.Equal(t, MigrationStatus{Version: 1, Name: "00001_kv_table.sql"}, st[0])
	for _, s := range st {
		require.False(t, s.Applied)
	}
	require.Zero(t, count(t, db, "SELECT count(*) FROM pg_namespace WHERE nspname = 's1'"), "Status must not create anything")

	require.NoError(t, Up(ctx, db, "s1", "greptime_metakv", logger))
	require.Equal(t, []column{{"k", "bytea", "NO"}, {"v", "bytea", "YES"}}, columns(t, db, "s1", "greptime_metakv"))
	require.Equal(t, []string{"k"}, primaryKey(t, db, "s1", "greptime_metakv"))
	require.NotEmpty(t, columns(t, db, "s1", "greptime_metakv_goose_version"))
	require.Contains(t, logs.String(), "applied migration")

	v, err := Version(ctx, db, "s1", "greptime_metakv")
	require.NoError(t, err)
	require.Equal(t, latest, v)

	st, err = Status(ctx, db, "s1", "greptime_metakv")
	require.NoError(t, err)
	for _, s := range st {
		require.True(t, s.Applied, s.Name)
		require.False(t, s.AppliedAt.IsZero(), s.Name)
	}

	rowsBefore := count(t, db, `SELECT count(*) FROM "s1"."greptime_metakv_goose_version"`)
	logs.Reset()
	require.NoError(t, Up(ctx, db, "s1", "greptime_metakv", logger))
	require.NotContains(t, logs.String(), "applied migration")
	require.Equal(t, rowsBefore, count(t, db, `SELECT count(*) FROM "s1"."greptime_metakv_goose_version"`))
}

func TestSchemasAndTablesSideBySide(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t, pgtest.NewDatabase(t), nil)
	targets := []struct{ schema, table string }{
		{"s1", "greptime_metakv"},
		{"s2", "greptime_metakv"},
		{"s1", "other_kv"},
	}
	for _, tg := range targets {
		require.NoError(t, Up(ctx, db, tg.schema, tg.table, nil))
	}
	for i, tg := range targets {
		_, err := db.Exec(fmt.Sprintf(`INSERT INTO %q.%q (k, v) VALUES ('\x01', $1)`, tg.schema, tg.table), []byte{byte(i)})
		require.NoError(t, err)
	}
	for i, tg := range targets {
		var v []byte
		require.NoError(t, db.QueryRow(fmt.Sprintf(`SELECT v FROM %q.%q`, tg.schema, tg.table)).Scan(&v))
		require.Equal(t, []byte{byte(i)}, v, "%s.%s holds only its own row", tg.schema, tg.table)
		require.Equal(t, 1, count(t, db, fmt.Sprintf(`SELECT count(*) FROM %q.%q WHERE version_id = 1`, tg.schema, tg.table+"_goose_version")))
	}
	// Migrating one again leaves the others alone.
	require.NoError(t, Up(ctx, db, "s2", "greptime_metakv", nil))
	require.Equal(t, 1, count(t, db, `SELECT count(*) FROM "s1"."other_kv"`))
}

func TestConcurrentUpAppliesOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	const nodes = 3
	dbs := make([]*sql.DB, nodes)
	for i := range dbs {
		dbs[i] = openDB(t, dsn, nil)
	}
	start := make(chan struct{})
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = Up(ctx, dbs[i], "shared", "greptime_metakv", nil)
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "node %d", i)
	}
	require.Equal(t, 1, count(t, dbs[0], `SELECT count(*) FROM "shared"."greptime_metakv_goose_version" WHERE version_id = 1`))
	require.Equal(t, []string{"k"}, primaryKey(t, dbs[0], "shared", "greptime_metakv"))
}

func TestEmptySchemaUsesSearchPath(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	admin := openDB(t, dsn, nil)
	_, err := admin.Exec("CREATE SCHEMA custom")
	require.NoError(t, err)

	db := openDB(t, dsn, map[string]string{"search_path": "custom"})
	require.NoError(t, Up(ctx, db, "", "greptime_metakv", nil))
	require.Len(t, columns(t, admin, "custom", "greptime_metakv"), 2)
	require.NotEmpty(t, columns(t, admin, "custom", "greptime_metakv_goose_version"))
	require.Empty(t, columns(t, admin, "public", "greptime_metakv"))

	v, err := Version(ctx, db, "", "greptime_metakv")
	require.NoError(t, err)
	latest, err := Latest()
	require.NoError(t, err)
	require.Equal(t, latest, v)
	require.NoError(t, Up(ctx, db, "", "greptime_metakv", nil))
}

func TestBadNamesAreRefusedBeforeSQL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t, pgtest.NewDatabase(t), nil)
	err := Up(ctx, db, "s1", `kv"; DROP TABLE x; --`, nil)
	require.ErrorContains(t, err, "meta_table_name")
	err = Up(ctx, db, "bad schema", "greptime_metakv", nil)
	require.ErrorContains(t, err, "meta_schema_name")
	err = Up(ctx, db, "s1", strings.Repeat("t", 55), nil)
	require.ErrorContains(t, err, "too long for the migration version table")
	// Short enough for the version table, too long for a migration's own
	// derived table (if any has a longer suffix): refused before any SQL too.
	err = Up(ctx, db, "s1", strings.Repeat("t", 63-len(versionTableSuffix)), nil)
	if err != nil {
		require.ErrorContains(t, err, "derived from meta_table_name")
	}
	_, err = Status(ctx, db, "s1", "")
	require.ErrorContains(t, err, "meta_table_name")
	require.Zero(t, count(t, db, "SELECT count(*) FROM pg_namespace WHERE nspname IN ('s1', 'bad schema')"))
}

func TestRenderQuotesNames(t *testing.T) {
	t.Parallel()
	src, err := render(names{schema: "S1", table: "Meta"})
	require.NoError(t, err)
	require.Contains(t, src[0].sql, `CREATE TABLE "S1"."Meta" (`)

	sib, err := names{schema: "s1", table: "greptime_metakv"}.sibling("_election")
	require.NoError(t, err)
	require.Equal(t, `"s1"."greptime_metakv_election"`, sib)
	sib, err = names{table: "greptime_metakv"}.sibling("_election")
	require.NoError(t, err)
	require.Equal(t, `"greptime_metakv_election"`, sib)

	require.NotEqual(t, lockID(names{"s1", "t"}), lockID(names{"s2", "t"}))
	require.NotEqual(t, lockID(names{"s1", "t"}), lockID(names{"s1", "u"}))
	require.NotEqual(t, lockID(names{"", "s1t"}), lockID(names{"s1", "t"}))
}
