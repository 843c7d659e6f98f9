package migrations

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
	"github.com/pressly/goose/v3/lock"

	"github.com/pgmetasrv/metasrv/pkg/postgres"
)

// versionTableSuffix names goose's version table after the meta table.
const versionTableSuffix = "_goose_version"

// MigrationStatus is the state of one migration in one schema and table.
type MigrationStatus struct {
	Version   int64
	Name      string // file name, e.g. 00001_kv_table.sql
	Applied   bool
	AppliedAt time.Time // zero when not applied
}

// Up applies every pending migration for the meta table schema.table (schema
// empty: the connection's search_path decides), creating the schema first if
// it is missing. Nodes starting together serialise on an advisory lock, so
// exactly one applies each migration and the others find nothing to do.
//
// Migration 1 adopts an existing KV table of exactly GreptimeDB's layout
// (rows kept) and refuses any other with ErrTableLayout. Each migration runs
// in its own transaction; when Up fails before any migration was ever
// applied, it also removes goose's version table and the schema it created,
// so a failed first run leaves nothing behind.
func Up(ctx context.Context, db *sql.DB, schema, table string, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	n, err := checkNames(schema, table)
	if err != nil {
		return err
	}
	// Render first: a name too long for a derived table fails before any SQL.
	p, _, err := newProvider(db, n, logger)
	if err != nil {
		return err
	}
	createdSchema, err := ensureSchema(ctx, db, n)
	if err != nil {
		return err
	}
	results, err := p.Up(ctx)
	for _, r := range results {
		if r.Error == nil {
			logger.Info("applied migration", "version", r.Source.Version, "schema", schema, "table", table, "duration", r.Duration)
		}
	}
	if err != nil {
		err = fmt.Errorf("migrate %s up: %w", n.qualified(n.table), err)
		if cerr := cleanUp(ctx, db, n, createdSchema, logger); cerr != nil {
			err = errors.Join(err, fmt.Errorf("clean up after the failed migration of %s: %w", n.qualified(n.table), cerr))
		}
		return err
	}
	if len(results) == 0 {
		logger.Debug("migrations up to date", "schema", schema, "table", table)
	}
	return nil
}

// Status lists every known migration and whether it is applied. It changes
// nothing: on a database never migrated, all are pending.
func Status(ctx context.Context, db *sql.DB, schema, table string) ([]MigrationStatus, error) {
	n, err := checkNames(schema, table)
	if err != nil {
		return nil, err
	}
	p, sources, err := newProvider(db, n, nil)
	if err != nil {
		return nil, err
	}
	out := make([]MigrationStatus, len(sources))
	for i, s := range sources {
		out[i] = MigrationStatus{Version: s.version, Name: s.name}
	}
	exists, err := versionTableExists(ctx, db, n)
	if err != nil || !exists {
		return out, err
	}
	st, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("migration status of %s: %w", n.qualified(n.table), err)
	}
	applied := map[int64]time.Time{}
	for _, s := range st {
		if s.State == goose.StateApplied {
			applied[s.Source.Version] = s.AppliedAt
		}
	}
	for i := range out {
		out[i].AppliedAt, out[i].Applied = applied[out[i].Version]
	}
	return out, nil
}

// Version is the highest applied migration version, 0 when none is.
func Version(ctx context.Context, db *sql.DB, schema, table string) (int64, error) {
	n, err := checkNames(schema, table)
	if err != nil {
		return 0, err
	}
	exists, err := versionTableExists(ctx, db, n)
	if err != nil || !exists {
		return 0, err
	}
	p, _, err := newProvider(db, n, nil)
	if err != nil {
		return 0, err
	}
	v, err := p.GetDBVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("migration version of %s: %w", n.qualified(n.table), err)
	}
	return v, nil
}

// Latest is the highest version this binary knows.
func Latest() (int64, error) {
	sources, err := render(names{table: "t"})
	if err != nil || len(sources) == 0 {
		return 0, err
	}
	return sources[len(sources)-1].version, nil
}

func checkNames(schema, table string) (names, error) {
	if err := postgres.ValidIdentifier(table); err != nil {
		return names{}, fmt.Errorf("meta_table_name: %w", err)
	}
	if schema != "" {
		if err := postgres.ValidIdentifier(schema); err != nil {
			return names{}, fmt.Errorf("meta_schema_name: %w", err)
		}
	}
	n := names{schema: schema, table: table}
	if _, err := n.sibling(versionTableSuffix); err != nil {
		return names{}, fmt.Errorf("meta_table_name is too long for the migration version table: %w", err)
	}
	return n, nil
}

// lockID is the advisory lock serialising migrations of one schema and
// table; other clusters in the same database migrate independently.
func lockID(n names) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("metasrv/migrations\x00" + n.schema + "\x00" + n.table))
	return int64(h.Sum64())
}

// newProvider builds a goose provider for n. It is used for one operation
// only: goose's session locker counts its retries across calls. logger
// (nil: discard) hears of adopted objects.
func newProvider(db *sql.DB, n names, logger *slog.Logger) (*goose.Provider, []source, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	sources, err := render(n)
	if err != nil {
		return nil, nil, err
	}
	versionTable, err := n.sibling(versionTableSuffix)
	if err != nil {
		return nil, nil, err
	}
	store, err := database.NewStore(database.DialectPostgres, versionTable)
	if err != nil {
		return nil, nil, err
	}
	// Poll the lock every second for up to 10 minutes: a migration that takes
	// longer is stuck, and the node should fail rather than wait forever.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(lockID(n)), lock.WithLockTimeout(1, 600), lock.WithUnlockTimeout(1, 60))
	if err != nil {
		return nil, nil, err
	}
	gms := make([]*goose.Migration, len(sources))
	for i, s := range sources {
		query := s.sql
		adopt := adopters[s.version]
		gms[i] = goose.NewGoMigration(s.version, &goose.GoFunc{
			RunTx: func(ctx context.Context, tx *sql.Tx) error {
				if adopt != nil {
					adopted, err := adopt(ctx, tx, n)
					if err != nil {
						return fmt.Errorf("%s: %w", s.name, err)
					}
					if adopted {
						logger.Info("adopted existing table", "version", s.version, "table", n.qualified(n.table))
						return nil
					}
				}
				if _, err := tx.ExecContext(ctx, query); err != nil {
					return fmt.Errorf("%s: %w", s.name, err)
				}
				return nil
			},
		}, nil)
	}
	p, err := goose.NewProvider(goose.DialectCustom, db, nil,
		goose.WithStore(versionStore{store}),
		goose.WithSessionLocker(locker),
		goose.WithGoMigrations(gms...),
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("goose provider: %w", err)
	}
	return p, sources, nil
}

// ensureSchema creates the configured schema if missing, reporting whether
// it did. It runs before goose because goose's version table lives in the
// schema. The existence check comes first so a role without CREATE on the
// database can use a schema made for it; the transaction lock serialises
// nodes that create it together (concurrent CREATE SCHEMA IF NOT EXISTS can
// fail on a unique violation).
func ensureSchema(ctx context.Context, db *sql.DB, n names) (created bool, err error) {
	if n.schema == "" {
		return false, nil
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("create schema %s: %w", n.schema, err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", lockID(n)); err != nil {
		return false, fmt.Errorf("create schema %s: lock: %w", n.schema, err)
	}
	var exists bool
	if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", n.schema).Scan(&exists); err != nil {
		return false, fmt.Errorf("create schema %s: %w", n.schema, err)
	}
	if !exists {
		if _, err := tx.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+postgres.QuoteIdent(n.schema)); err != nil {
			return false, fmt.Errorf("create schema %s: %w", n.schema, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("create schema %s: %w", n.schema, err)
	}
	return !exists, nil
}

// cleanUp undoes what a failed Up made before any migration was applied:
// goose's version table when it records no migration, and the schema when
// this Up created it and it is empty. It holds the migration lock's key, so
// it waits for (and cannot disturb) another node migrating the same table;
// when that node succeeded, the version table records it and stays.
func cleanUp(ctx context.Context, db *sql.DB, n names, dropSchema bool, logger *slog.Logger) error {
	// The caller's context may be what failed the migration.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanUpTimeout)
	defer cancel()
	versionTable, err := n.sibling(versionTableSuffix)
	if err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", lockID(n)); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	var exists bool
	if err := tx.QueryRowContext(ctx, "SELECT to_regclass($1) IS NOT NULL", versionTable).Scan(&exists); err != nil {
		return fmt.Errorf("look up %s: %w", versionTable, err)
	}
	if exists {
		var applied bool
		if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM "+versionTable+" WHERE version_id > 0)").Scan(&applied); err != nil {
			return fmt.Errorf("read %s: %w", versionTable, err)
		}
		if applied {
			return nil // a migration is recorded: the version table is needed
		}
		if _, err := tx.ExecContext(ctx, "DROP TABLE "+versionTable); err != nil {
			return fmt.Errorf("drop %s: %w", versionTable, err)
		}
		logger.Info("removed the version table of the failed migration", "table", versionTable)
	}
	if dropSchema {
		// RESTRICT: the schema goes only if nothing else is in it.
		if _, err := tx.ExecContext(ctx, "SAVEPOINT drop_schema"); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DROP SCHEMA "+postgres.QuoteIdent(n.schema)+" RESTRICT"); err != nil {
			if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT drop_schema"); rerr != nil {
				return rerr
			}
			logger.Debug("keep schema of the failed migration", "schema", n.schema, "err", err)
		} else {
			logger.Info("removed the schema of the failed migration", "schema", n.schema)
		}
	}
	return tx.Commit()
}

// cleanUpTimeout bounds cleanUp, which may wait for another node's migration.
const cleanUpTimeout = time.Minute

func versionTableExists(ctx context.Context, db *sql.DB, n names) (bool, error) {
	versionTable, err := n.sibling(versionTableSuffix)
	if err != nil {
		return false, err
	}
	var exists bool
	err = db.QueryRowContext(ctx, "SELECT to_regclass($1) IS NOT NULL", versionTable).Scan(&exists)
	if err != nil {
		return false, fmt.Errorf("look up %s: %w", versionTable, err)
	}
	return exists, nil
}
