package migrations

import (
	"context"
	"errors"
	"fmt"

	"github.com/pressly/goose/v3/database"
)

// versionStore is goose's PostgreSQL store with a table-existence check that
// understands quoted names. goose's own check splits the name on "." and
// compares the parts, quotes included, with pg_tables, so it never finds a
// quoted table and would try to create it again on every run.
type versionStore struct {
	database.Store
}

var _ database.StoreExtender = versionStore{}

// TableExists resolves the quoted (possibly unqualified) name the way the
// other statements do, through search_path when unqualified.
func (s versionStore) TableExists(ctx context.Context, db database.DBTxConn) (bool, error) {
	var exists bool
	err := db.QueryRowContext(ctx, "SELECT to_regclass($1) IS NOT NULL", s.Tablename()).Scan(&exists)
	return exists, err
}

// CreateVersionTable is goose's, with an error naming the table as it is
// written in SQL. goose formats the already quoted name with %q, which
// prints it quoted twice ("\"s1\".\"t_goose_version\"").
func (s versionStore) CreateVersionTable(ctx context.Context, db database.DBTxConn) error {
	err := s.Store.CreateVersionTable(ctx, db)
	if err == nil {
		return nil
	}
	if inner := errors.Unwrap(err); inner != nil {
		err = inner // drop goose's doubly quoted prefix, keep the cause
	}
	return fmt.Errorf("version table %s: %w", s.Tablename(), err)
}
