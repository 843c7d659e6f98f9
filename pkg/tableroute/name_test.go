package tableroute_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/tableroute"
)

func TestParseName(t *testing.T) {
	t.Parallel()
	name := func(c, s, tb string) greptimekey.TableName {
		return greptimekey.TableName{Catalog: c, Schema: s, Table: tb}
	}
	for in, want := range map[string]greptimekey.TableName{
		"cpu":                     name("greptime", "public", "cpu"),
		"  cpu  ":                 name("greptime", "public", "cpu"),
		"metrics.cpu":             name("greptime", "metrics", "cpu"),
		"other.metrics.cpu":       name("other", "metrics", "cpu"),
		"Greptime.Public.CPU":     name("greptime", "public", "cpu"),
		`greptime.public."CPU"`:   name("greptime", "public", "CPU"),
		"`My`.`Db`.`T`":           name("My", "Db", "T"),
		`"a.b"`:                   name("greptime", "public", "a.b"),
		`"x"."y"."z.w"`:           name("x", "y", "z.w"),
		`"my-table"`:              name("greptime", "public", "my-table"),
		"_t1":                     name("greptime", "public", "_t1"),
		"s.t_2#x":                 name("greptime", "s", "t_2#x"),
		`"ns:app".t`:              name("greptime", "ns:app", "t"),
		"greptime.public.cpu_001": name("greptime", "public", "cpu_001"),
	} {
		got, err := tableroute.ParseName(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
}

func TestParseNameRefuses(t *testing.T) {
	t.Parallel()
	for in, why := range map[string]string{
		"":              "(empty)",
		"   ":           "(empty)",
		"a.b.c.d":       "(4 parts)",
		"a..b":          "(an empty name)",
		".a":            "(an empty name)",
		"a.":            "(an empty name)",
		`""`:            "(an empty quoted name)",
		`"abc`:          `(unterminated ")`,
		"`abc":          "(unterminated `)",
		`"a"b`:          `(unexpected "b" after a quoted name)`,
		"my-table":      `("my-table" is not an identifier; quote it)`,
		"a b":           `("a b" is not an identifier; quote it)`,
		"a/b":           `("a/b" is not an identifier; quote it)`,
		`"a/b"`:         "(a name GreptimeDB does not allow",
		`"a b"`:         "(a name GreptimeDB does not allow",
		"1abc":          `("1abc" is not an identifier; quote it)`,
		"t$":            "(a name GreptimeDB does not allow",
		"\x1b[31m":      "is not an identifier",
		`"caf` + "é\"":  "(a name GreptimeDB does not allow",
		`public."2024"`: "(a name GreptimeDB does not allow",
		// A doubled quote is one quote inside the name, not its end (and
		// no name may hold a quote).
		`"a"".b"`: "(a name GreptimeDB does not allow",
		"`a``.b`": "(a name GreptimeDB does not allow",
	} {
		_, err := tableroute.ParseName(in)
		require.ErrorIs(t, err, tableroute.ErrInvalidName, in)
		require.ErrorContains(t, err, "expected CATALOG.SCHEMA.TABLE, SCHEMA.TABLE or TABLE", in)
		require.ErrorContains(t, err, why, in)
	}
	_, err := tableroute.ParseName("a.b.c.d")
	require.EqualError(t, err, `invalid table name "a.b.c.d": expected CATALOG.SCHEMA.TABLE, SCHEMA.TABLE or TABLE (4 parts)`)
}
