package migrations

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// ErrTableLayout means the meta table already exists with a layout other
// than GreptimeDB's (k bytea PRIMARY KEY, v bytea), so migration 1 can
// neither create it nor adopt it. Nothing is changed; the message names
// each difference.
var ErrTableLayout = errors.New("meta table layout is not GreptimeDB's")

// adopter checks, inside a migration's transaction and before its SQL,
// whether what the migration creates already exists. adopted true means it
// exists exactly as the migration would create it: the migration is recorded
// as applied without running its SQL. An error refuses the migration.
type adopter func(ctx context.Context, tx *sql.Tx, n names) (adopted bool, err error)

// adopters are the migrations that may find their objects made by someone
// else: migration 1's KV table, made by GreptimeDB's postgres_store.
var adopters = map[int64]adopter{1: adoptKVTable}

// adoptKVTable accepts an existing KV table of exactly GreptimeDB's layout
// and refuses any other, naming every difference.
func adoptKVTable(ctx context.Context, tx *sql.Tx, n names) (bool, error) {
	table := n.qualified(n.table)
	var oid sql.NullInt64
	var kind string
	err := tx.QueryRowContext(ctx, `SELECT c.oid, c.relkind FROM pg_catalog.pg_class c WHERE c.oid = to_regclass($1)`, table).Scan(&oid, &kind)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up %s: %w", table, err)
	}
	diffs, err := kvTableDiffs(ctx, tx, oid.Int64, kind)
	if err != nil {
		return false, fmt.Errorf("inspect %s: %w", table, err)
	}
	if len(diffs) > 0 {
		return false, fmt.Errorf("%w: table %s already exists, but %s; metasrv adopts only GreptimeDB's layout (k bytea PRIMARY KEY, v bytea): fix or rename that table, or set meta_table_name (or meta_schema_name) to another table",
			ErrTableLayout, table, strings.Join(diffs, "; "))
	}
	return true, nil
}

// relkinds names pg_class.relkind values for the refusal message.
var relkinds = map[string]string{
	"p": "a partitioned table", "v": "a view", "m": "a materialized view",
	"f": "a foreign table", "S": "a sequence", "i": "an index", "c": "a composite type",
}

// kvTableDiffs lists how relation oid differs from GreptimeDB's KV table:
// an ordinary table with exactly the columns k bytea NOT NULL and v bytea
// (nullable, not generated) and the primary key (k).
func kvTableDiffs(ctx context.Context, tx *sql.Tx, oid int64, kind string) ([]string, error) {
	if kind != "r" {
		what, ok := relkinds[kind]
		if !ok {
			what = fmt.Sprintf("a relation of kind %q", kind)
		}
		return []string{"it is " + what + ", expected a table"}, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attgenerated <> ''
		FROM pg_catalog.pg_attribute a
		WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, oid)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var diffs []string
	seen := map[string]bool{}
	for rows.Next() {
		var name, typ string
		var notNull, generated bool
		if err := rows.Scan(&name, &typ, &notNull, &generated); err != nil {
			return nil, err
		}
		if name != "k" && name != "v" {
			diffs = append(diffs, fmt.Sprintf("unexpected column %s %s", name, typ))
			continue
		}
		seen[name] = true
		if typ != "bytea" {
			diffs = append(diffs, fmt.Sprintf("column %s is %s, expected bytea", name, typ))
		}
		if generated {
			diffs = append(diffs, fmt.Sprintf("column %s is generated, expected a plain column", name))
		}
		switch {
		case name == "k" && !notNull:
			diffs = append(diffs, "column k is nullable, expected NOT NULL")
		case name == "v" && notNull:
			diffs = append(diffs, "column v is NOT NULL, expected nullable")
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, c := range []string{"k", "v"} {
		if !seen[c] {
			diffs = append(diffs, "missing column "+c+" bytea")
		}
	}
	pk, err := primaryKeyColumns(ctx, tx, oid)
	if err != nil {
		return nil, err
	}
	switch {
	case len(pk) == 0:
		diffs = append(diffs, "no primary key, expected PRIMARY KEY (k)")
	case len(pk) != 1 || pk[0] != "k":
		diffs = append(diffs, fmt.Sprintf("primary key is (%s), expected (k)", strings.Join(pk, ", ")))
	}
	return diffs, nil
}

func primaryKeyColumns(ctx context.Context, tx *sql.Tx, oid int64) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT a.attname
		FROM pg_catalog.pg_index i
		CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS u(attnum, ord)
		JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = u.attnum
		WHERE i.indrelid = $1 AND i.indisprimary
		ORDER BY u.ord`, oid)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
