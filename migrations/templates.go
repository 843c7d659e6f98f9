package migrations

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/pgmetasrv/metasrv/pkg/postgres"
)

//go:embed sql/*.sql
var files embed.FS

// source is one migration file, rendered for a schema and table.
type source struct {
	version int64
	name    string // file name, shown by Status
	sql     string
}

// templateData is what a migration template sees; see the package comment.
type templateData struct {
	Schema string
	Table  string
}

// names are the configured identifiers one set of migrations applies to.
type names struct {
	schema, table string
}

func (n names) qualified(table string) string { return postgres.QualifiedTable(n.schema, table) }

// sibling names a table beside the KV table; PostgreSQL would silently cut
// a name over 63 bytes, which could make two clusters' tables collide.
func (n names) sibling(suffix string) (string, error) {
	name := n.table + suffix
	if err := postgres.ValidIdentifier(name); err != nil {
		return "", fmt.Errorf("table name %q derived from meta_table_name %q: %w", name, n.table, err)
	}
	return n.qualified(name), nil
}

// render loads every embedded migration and renders it for n, in version order.
func render(n names) ([]source, error) {
	entries, err := fs.Glob(files, "sql/*.sql")
	if err != nil {
		return nil, err
	}
	funcs := template.FuncMap{
		"table": n.sibling,
		"ident": func(name string) (string, error) {
			if err := postgres.ValidIdentifier(name); err != nil {
				return "", err
			}
			return postgres.QuoteIdent(name), nil
		},
	}
	data := templateData{Table: n.qualified(n.table)}
	if n.schema != "" {
		data.Schema = postgres.QuoteIdent(n.schema)
	}
	seen := map[int64]string{}
	var out []source
	for _, p := range entries {
		name := path.Base(p)
		digits, _, ok := strings.Cut(name, "_")
		version, err := strconv.ParseInt(digits, 10, 64)
		if !ok || err != nil || version <= 0 {
			return nil, fmt.Errorf("migration file %s: name must start with a positive version number and '_'", name)
		}
		if other, dup := seen[version]; dup {
			return nil, fmt.Errorf("migration files %s and %s have the same version %d", other, name, version)
		}
		seen[version] = name
		text, err := fs.ReadFile(files, p)
		if err != nil {
			return nil, err
		}
		tmpl, err := template.New(name).Funcs(funcs).Option("missingkey=error").Parse(string(text))
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", name, err)
		}
		var b strings.Builder
		if err := tmpl.Execute(&b, data); err != nil {
			return nil, fmt.Errorf("migration %s: %w", name, err)
		}
		out = append(out, source{version: version, name: name, sql: b.String()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}
