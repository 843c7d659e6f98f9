package tableroute

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
)

// ErrInvalidName is the root of every error ParseName returns.
var ErrInvalidName = errors.New("invalid table name")

// NameForms is the forms ParseName accepts, for error messages and help.
const NameForms = "CATALOG.SCHEMA.TABLE, SCHEMA.TABLE or TABLE"

// ParseName reads a table name as a GreptimeDB frontend reads one in SQL
// with its default catalog and schema: TABLE is greptime.public.TABLE,
// SCHEMA.TABLE is in catalog greptime. A part in double quotes or backticks
// is taken as written (a doubled quote stands for one, and dots are part of
// the name); an unquoted part is lowercased, as GreptimeDB canonicalises
// unquoted identifiers, and must be an identifier of its dialect. The
// result must also fit GreptimeDB's table name key, else no such table can
// exist.
func ParseName(s string) (greptimekey.TableName, error) {
	in := strings.TrimSpace(s)
	parts, err := splitName(in)
	if err != nil {
		return greptimekey.TableName{}, invalidName(s, err.Error())
	}
	var n greptimekey.TableName
	switch len(parts) {
	case 1:
		n = greptimekey.TableName{Catalog: greptimekey.DefaultCatalog, Schema: greptimekey.DefaultSchema, Table: parts[0]}
	case 2:
		n = greptimekey.TableName{Catalog: greptimekey.DefaultCatalog, Schema: parts[0], Table: parts[1]}
	case 3:
		n = greptimekey.TableName{Catalog: parts[0], Schema: parts[1], Table: parts[2]}
	default:
		return greptimekey.TableName{}, invalidName(s, fmt.Sprintf("%d parts", len(parts)))
	}
	// The key parser holds GreptimeDB's name pattern: a name it refuses is
	// one no table can have, and a '/' in a name would read another key.
	if _, err := greptimekey.ParseTableNameKey(greptimekey.TableNameKey(n.Catalog, n.Schema, n.Table)); err != nil {
		return greptimekey.TableName{}, invalidName(s, "a name GreptimeDB does not allow: letters, digits and _:-.@# only, not starting with a digit or .@#")
	}
	return n, nil
}

func invalidName(s, why string) error {
	return fmt.Errorf("%w %q: expected %s (%s)", ErrInvalidName, s, NameForms, why)
}

// splitName splits s at the dots outside quotes into its unquoted parts.
func splitName(s string) ([]string, error) {
	if s == "" {
		return nil, errors.New("empty")
	}
	var parts []string
	for i := 0; ; i++ {
		var part string
		var err error
		if i < len(s) && (s[i] == '"' || s[i] == '`') {
			part, i, err = quotedPart(s, i)
		} else {
			part, i, err = plainPart(s, i)
		}
		if err != nil {
			return nil, err
		}
		parts = append(parts, part)
		if i == len(s) {
			return parts, nil
		}
		if s[i] != '.' {
			return nil, fmt.Errorf("unexpected %q after a quoted name", s[i:])
		}
	}
}

// quotedPart reads the quoted identifier at s[i] and returns it and the
// index just past its closing quote.
func quotedPart(s string, i int) (string, int, error) {
	q := s[i]
	var b strings.Builder
	for j := i + 1; j < len(s); j++ {
		if s[j] != q {
			b.WriteByte(s[j])
			continue
		}
		if j+1 < len(s) && s[j+1] == q {
			b.WriteByte(q)
			j++
			continue
		}
		if b.Len() == 0 {
			return "", 0, errors.New("an empty quoted name")
		}
		return b.String(), j + 1, nil
	}
	return "", 0, fmt.Errorf("unterminated %c", q)
}

// plainPart reads the unquoted identifier at s[i], up to the next dot, and
// returns it lowercased and the index of the dot (or len(s)). Its letters
// are GreptimeDbDialect's: a letter, _, # or @ first, then letters, ASCII
// digits, @, $, # and _.
func plainPart(s string, i int) (string, int, error) {
	j := i
	for j < len(s) && s[j] != '.' {
		j++
	}
	part := s[i:j]
	if part == "" {
		return "", 0, errors.New("an empty name")
	}
	for k, r := range part {
		ok := unicode.IsLetter(r) || r == '_' || r == '#' || r == '@'
		if k > 0 {
			ok = ok || r >= '0' && r <= '9' || r == '$'
		}
		if !ok {
			return "", 0, fmt.Errorf("%q is not an identifier; quote it", part)
		}
	}
	return strings.ToLower(part), j, nil
}
