package migrations

import (
	"cmp"
	"context"
	"database/sql"
	"log/slog"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/internal/pgtest"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/pgkv"
)

// greptimeTable is the statement GreptimeDB's postgres_store creates its
// table with.
const greptimeTable = `CREATE TABLE "s1"."greptime_metakv" (k bytea PRIMARY KEY, v bytea)`

// relations lists every relation (table, index, sequence, ...) and type in
// schema, so a test can tell that a failed migration left nothing behind.
func relations(t *testing.T, db *sql.DB, schema string) []string {
	t.Helper()
	rows, err := db.Query(`SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1
		UNION ALL SELECT typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
		WHERE n.nspname = $1 AND t.typtype <> 'c' AND t.typelem = 0 -- not a table's row or array type
		ORDER BY 1`, schema)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		out = append(out, s)
	}
	require.NoError(t, rows.Err())
	return out
}

func TestUpAdoptsGreptimeTable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	db := openDB(t, dsn, nil)
	_, err := db.Exec(`CREATE SCHEMA s1`)
	require.NoError(t, err)
	_, err = db.Exec(greptimeTable)
	require.NoError(t, err)
	// What a running GreptimeDB cluster holds: catalog, schema and table
	// name keys, a sequence (8 bytes, little-endian).
	data := map[string][]byte{
		"__catalog_name/greptime":        []byte(`{}`),
		"__schema_name/greptime/public":  []byte(`{"options":{}}`),
		"__meta_seq-table_id":            {0x00, 0x04, 0, 0, 0, 0, 0, 0},
		"__table_name/greptime/public/x": []byte(`{"table_id":1024}`),
	}
	for k, v := range data {
		_, err := db.Exec(`INSERT INTO "s1"."greptime_metakv" (k, v) VALUES ($1, $2)`, []byte(k), v)
		require.NoError(t, err)
	}

	var logs strings.Builder
	require.NoError(t, Up(ctx, db, "s1", "greptime_metakv", slog.New(slog.NewTextHandler(&logs, nil))))
	require.Contains(t, logs.String(), "adopted existing table")
	latest, err := Latest()
	require.NoError(t, err)
	v, err := Version(ctx, db, "s1", "greptime_metakv")
	require.NoError(t, err)
	require.Equal(t, latest, v)
	require.Equal(t, []column{{"k", "bytea", "NO"}, {"v", "bytea", "YES"}}, columns(t, db, "s1", "greptime_metakv"))

	// metasrv's store reads GreptimeDB's rows.
	pool, err := pgxpool.New(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	store, err := pgkv.New(pool, pgkv.Options{Schema: "s1", Table: "greptime_metakv"}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	resp, err := store.Range(ctx, kv.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
	require.NoError(t, err)
	require.Len(t, resp.Kvs, len(data))
	for _, kv := range resp.Kvs {
		require.Equal(t, data[string(kv.Key)], kv.Value, "key %q", kv.Key)
	}
	// And a second Up finds nothing to do and keeps the rows.
	require.NoError(t, Up(ctx, db, "s1", "greptime_metakv", nil))
	require.Equal(t, len(data), count(t, db, `SELECT count(*) FROM "s1"."greptime_metakv"`))
}

func TestUpRefusesOtherLayouts(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, create, want string
	}{
		{"v text", `CREATE TABLE "s1"."greptime_metakv" (k bytea PRIMARY KEY, v text)`, `column v is text, expected bytea`},
		{"no primary key", `CREATE TABLE "s1"."greptime_metakv" (k bytea, v bytea)`, `no primary key, expected PRIMARY KEY (k)`},
		{"k nullable unique", `CREATE TABLE "s1"."greptime_metakv" (k bytea UNIQUE, v bytea)`, `no primary key`},
		{"primary key on (k, v)", `CREATE TABLE "s1"."greptime_metakv" (k bytea, v bytea, PRIMARY KEY (k, v))`, `primary key is (k, v), expected (k)`},
		{"extra column", `CREATE TABLE "s1"."greptime_metakv" (k bytea PRIMARY KEY, v bytea, ts timestamptz)`, `unexpected column ts`},
		{"missing v", `CREATE TABLE "s1"."greptime_metakv" (k bytea PRIMARY KEY)`, `missing column v bytea`},
		{"v not null", `CREATE TABLE "s1"."greptime_metakv" (k bytea PRIMARY KEY, v bytea NOT NULL)`, `column v is NOT NULL`},
		{"a view", `CREATE VIEW "s1"."greptime_metakv" AS SELECT '\x00'::bytea AS k, '\x00'::bytea AS v`, `is a view, expected a table`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := openDB(t, pgtest.NewDatabase(t), nil)
			_, err := db.Exec(`CREATE SCHEMA s1`)
			require.NoError(t, err)
			_, err = db.Exec(tc.create)
			require.NoError(t, err)
			before := relations(t, db, "s1")

			err = Up(ctx, db, "s1", "greptime_metakv", nil)
			require.ErrorIs(t, err, ErrTableLayout)
			require.ErrorContains(t, err, `"s1"."greptime_metakv"`)
			require.ErrorContains(t, err, tc.want)
			require.NotContains(t, err.Error(), `\"`, "names are quoted once")

			require.Equal(t, before, relations(t, db, "s1"), "a failed migration leaves nothing behind")
			st, err := Status(ctx, db, "s1", "greptime_metakv")
			require.NoError(t, err)
			for _, s := range st {
				require.False(t, s.Applied, s.Name)
			}
		})
	}
}

// A migration that fails in a schema Up created leaves neither the version
// table nor the schema behind.
func TestFailedUpLeavesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t, pgtest.NewDatabase(t), nil)
	// Creating the KV table fails (as a full disk or a missing privilege
	// would), after goose made its version table.
	_, err := db.Exec(`CREATE FUNCTION refuse_kv() RETURNS event_trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands() WHERE object_identity = 's1.greptime_metakv') THEN
				RAISE EXCEPTION 'no room for greptime_metakv';
			END IF;
		END $$`)
	require.NoError(t, err)
	_, err = db.Exec(`CREATE EVENT TRIGGER refuse_kv ON ddl_command_end EXECUTE FUNCTION refuse_kv()`)
	require.NoError(t, err)

	err = Up(ctx, db, "s1", "greptime_metakv", nil)
	require.ErrorContains(t, err, "no room for greptime_metakv")
	require.Zero(t, count(t, db, "SELECT count(*) FROM pg_namespace WHERE nspname = 's1'"), "the schema Up created is gone")

	// Up works once the cause is gone.
	_, err = db.Exec(`DROP EVENT TRIGGER refuse_kv`)
	require.NoError(t, err)
	require.NoError(t, Up(ctx, db, "s1", "greptime_metakv", nil))
	require.Equal(t, []string{"k"}, primaryKey(t, db, "s1", "greptime_metakv"))
}

func TestVersionTableErrorQuotesNameOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ schema, want string }{
		{"s1", `"s1"."t2_goose_version"`},
		{"", `"t2_goose_version"`}, // search_path: public
	} {
		t.Run("schema="+tc.schema, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := openDB(t, pgtest.NewDatabase(t), nil)
			schema := cmp.Or(tc.schema, "public")
			_, err := db.Exec(`CREATE SCHEMA IF NOT EXISTS "` + schema + `"`)
			require.NoError(t, err)
			// A domain of the version table's name: not a relation, so goose
			// tries to create the table, and the table's row type collides.
			_, err = db.Exec(`CREATE DOMAIN "` + schema + `"."t2_goose_version" AS int`)
			require.NoError(t, err)
			err = Up(ctx, db, tc.schema, "t2", nil)
			require.ErrorContains(t, err, "version table "+tc.want+": ")
			require.NotContains(t, err.Error(), `\"`)
		})
	}
}
