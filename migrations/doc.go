// Package migrations creates and upgrades metasrv's tables in PostgreSQL with
// goose, embedded in the binary.
//
// The schema and table names are configuration (meta_schema_name,
// meta_table_name), so the migrations are SQL templates rendered per call,
// run as goose Go migrations: goose versions them, runs each in a
// transaction, and records it in a version table named after the meta table
// (<table>_goose_version, in the same schema). Two clusters with a different
// schema or table therefore never share a version table, and a goose session
// advisory lock whose id is derived from schema and table keeps nodes that
// start together from racing.
//
// # Adding a migration
//
// Drop a file sql/NNNNN_description.sql (the next version number, five
// digits) next to the existing ones; nothing else changes. The file is a
// text/template producing the up migration (a down migration is not kept:
// metasrv never downgrades its schema). Never write a bare identifier; use:
//
//	{{.Table}}          the quoted, qualified KV table: "s1"."greptime_metakv"
//	{{.Schema}}         the quoted schema, empty when search_path decides
//	{{table "_suffix"}} a quoted, qualified table beside the KV table, named
//	                    <meta_table_name>_suffix: {{table "_election"}} is
//	                    "s1"."greptime_metakv_election"
//	{{ident "name"}}    any other quoted identifier (index names, ...)
//
// The schema itself is created by Up before goose runs (the version table
// lives in it), so migrations do not create it.
//
// # Adopting GreptimeDB's table
//
// A schema that already holds GreptimeDB's postgres_store table (k bytea
// PRIMARY KEY, v bytea) is adopted: migration 1 checks the existing table,
// in its transaction, and is recorded without creating anything; the rows
// stay. Any other layout (another type, no primary key, an extra column, a
// view, ...) is refused with ErrTableLayout, naming each difference. A
// migration that needs the same (an object someone else may have made) adds
// an adopter in adopt.go.
//
// # Failures
//
// Each migration runs in its own transaction, so a failed one leaves none of
// its objects. When Up fails before any migration was ever applied, it also
// drops goose's version table (which goose creates before the first
// migration) and the schema Up created, if it is empty: a refused or failed
// first run leaves the database as it found it.
package migrations
