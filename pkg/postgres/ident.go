package postgres

import "github.com/jackc/pgx/v5"

// QuoteIdent quotes a PostgreSQL identifier ("my""name"), so any name is
// taken literally and cannot inject SQL. Names are validated earlier by
// config.ValidIdentifier; quoting is still always applied.
func QuoteIdent(name string) string {
	return pgx.Identifier{name}.Sanitize()
}

// QualifiedTable is "schema"."table", or "table" alone when schema is empty
// so that the connection's search_path decides (as GreptimeDB does).
func QualifiedTable(schema, table string) string {
	if schema == "" {
		return QuoteIdent(table)
	}
	return pgx.Identifier{schema, table}.Sanitize()
}
