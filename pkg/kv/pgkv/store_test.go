package pgkv_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/pgkv"
)

func TestNewRefusesBadOptions(t *testing.T) {
	t.Parallel()
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none") // lazy: never dialled
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	for name, opts := range map[string]pgkv.Options{
		"long table":     {Table: strings.Repeat("t", 64)},
		"long schema":    {Schema: strings.Repeat("s", 64), Table: "t"},
		"nul in table":   {Table: "a\x00b"},
		"quote in table": {Table: `a"b`},
		"bad utf8":       {Schema: "\xff"},
		"attempts":       {MaxAttempts: -1},
		"backoff order":  {BaseBackoff: 10, MaxBackoff: 5},
	} {
		_, err := pgkv.New(pool, opts, nil)
		require.Error(t, err, name)
	}
	_, err = pgkv.New(nil, pgkv.Options{}, nil)
	require.Error(t, err)

	s, err := pgkv.New(pool, pgkv.Options{}, nil)
	require.NoError(t, err)
	require.Equal(t, "postgres_store", s.Name())
}

// Identifiers are quoted, so names are taken literally: case is kept.
func TestQuotedIdentifiers(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	schema, table := "Meta_Schema$1", "Greptime_MetaKV"
	db.migrate(t, schema, table)
	s := db.newStore(t, pgkv.Options{Schema: schema, Table: table})
	ctx := t.Context()

	_, err := s.Put(ctx, kv.PutRequest{Key: []byte("k"), Value: []byte("v")})
	require.NoError(t, err)
	var n int
	require.NoError(t, db.pool.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{schema, table}.Sanitize()).Scan(&n))
	require.Equal(t, 1, n)
}

// Without a schema the connection's search_path picks the table, as in
// GreptimeDB.
func TestSearchPathWithoutSchema(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	db.migrate(t, "chosen", pgkv.DefaultTable)
	cfg, err := pgxpool.ParseConfig(db.dsn)
	require.NoError(t, err)
	cfg.ConnConfig.RuntimeParams["search_path"] = "chosen"
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	s, err := pgkv.New(pool, pgkv.Options{}, testLogger(t))
	require.NoError(t, err)
	_, err = s.Put(t.Context(), kv.PutRequest{Key: []byte("k"), Value: []byte("v")})
	require.NoError(t, err)
	var v []byte
	require.NoError(t, db.pool.QueryRow(t.Context(), `SELECT v FROM chosen.greptime_metakv WHERE k = 'k'`).Scan(&v))
	require.Equal(t, "v", string(v))
}

// LIKE metacharacters in keys are plain bytes: a prefix scan or delete never
// matches more than the keys that really start with the prefix.
func TestLikeMetacharactersInKeys(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	s := db.newStore(t, pgkv.Options{})
	ctx := t.Context()
	all := []string{`a%`, `a%b`, `a_`, `a_b`, `a\`, `a\b`, `ab`, `abc`, `aXb`, `a`, `b%`}
	for _, k := range all {
		_, err := s.Put(ctx, kv.PutRequest{Key: []byte(k), Value: []byte("v")})
		require.NoError(t, err)
	}
	scan := func(prefix string) []string {
		resp, err := s.Range(ctx, kv.RangeRequest{Key: []byte(prefix), RangeEnd: kv.PrefixEnd([]byte(prefix)), KeysOnly: true})
		require.NoError(t, err)
		var out []string
		for _, p := range resp.Kvs {
			out = append(out, string(p.Key))
		}
		return out
	}
	require.Equal(t, []string{`a%`, `a%b`}, scan(`a%`))
	require.Equal(t, []string{`a_`, `a_b`}, scan(`a_`))
	require.Equal(t, []string{`a\`, `a\b`}, scan(`a\`))
	require.Equal(t, []string{`a%b`}, scan(`a%b`))

	resp, err := s.DeleteRange(ctx, kv.DeleteRangeRequest{Key: []byte(`a_`), RangeEnd: kv.PrefixEnd([]byte(`a_`)), PrevKv: true})
	require.NoError(t, err)
	require.EqualValues(t, 2, resp.Deleted)
	require.Equal(t, []string{`a`, `a%`, `a%b`, `aXb`, `a\`, `a\b`, `ab`, `abc`}, scan(`a`), "only the two a_ keys went")
}
