package postgres

import (
	"fmt"

	"github.com/jackc/pgx/v5"
)

// MaxIdentifierLen is PostgreSQL's NAMEDATALEN-1; longer names are silently
// truncated by the server, which would make two configured names collide.
const MaxIdentifierLen = 63

// ValidIdentifier checks that name is a plain PostgreSQL identifier: ASCII
// letters, digits, '_' and '$', not starting with a digit or '$', at most 63
// bytes. Such names are still always quoted in SQL; the rule keeps them
// portable and readable in psql.
func ValidIdentifier(name string) error {
	if name == "" {
		return fmt.Errorf("empty identifier (expected letters, digits, _ or $)")
	}
	if len(name) > MaxIdentifierLen {
		return fmt.Errorf("identifier %q is %d bytes, more than PostgreSQL's %d", name, len(name), MaxIdentifierLen)
	}
	// Ranging over the string gives runes, so a non-ASCII character is
	// named as written ('ü'), not as its first UTF-8 byte ('Ã').
	for i, c := range name {
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
		digit := c >= '0' && c <= '9'
		switch {
		case letter:
		case (digit || c == '$') && i > 0:
		default:
			return fmt.Errorf("invalid identifier %q: character %q at byte %d (expected ASCII letters, digits, _ or $, not starting with a digit or $)", name, c, i)
		}
	}
	return nil
}

// QuoteIdent quotes a PostgreSQL identifier ("my""name"), so any name is
// taken literally and cannot inject SQL. Names are validated earlier by
// ValidIdentifier; quoting is still always applied.
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
