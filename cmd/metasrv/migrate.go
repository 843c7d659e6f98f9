package main

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/spf13/cobra"

	"github.com/pgmetasrv/metasrv/migrations"
	"github.com/pgmetasrv/metasrv/pkg/config"
	"github.com/pgmetasrv/metasrv/pkg/node"
	"github.com/pgmetasrv/metasrv/pkg/postgres"
)

// migrateConnectWait bounds how long `metasrv migrate` waits for PostgreSQL;
// an operator at a terminal wants an answer, not an endless retry.
const migrateConnectWait = 30 * time.Second

func newMigrateCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Create or inspect the metadata tables in PostgreSQL",
		Long: "Apply (up) or list (status) the schema migrations of postgres_store, with the same\n" +
			"configuration file, environment and flags as start. start migrates by itself; this\n" +
			"command is for doing it ahead of time or checking where a database stands.",
	}
	up := &cobra.Command{
		Use:   "up",
		Short: "Apply every pending migration (a no-op when up to date)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withMigrationDB(cmd, func(ctx context.Context, o config.Options, db *sql.DB, log *slog.Logger) error {
				if err := migrations.Up(ctx, db, o.MetaSchemaName, o.MetaTableName, log.With("component", "migrations")); err != nil {
					return err
				}
				v, err := migrations.Version(ctx, db, o.MetaSchemaName, o.MetaTableName)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "%s is at version %d\n", postgres.QualifiedTable(o.MetaSchemaName, o.MetaTableName), v)
				return nil
			})
		},
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "List the migrations and whether each is applied",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withMigrationDB(cmd, func(ctx context.Context, o config.Options, db *sql.DB, _ *slog.Logger) error {
				st, err := migrations.Status(ctx, db, o.MetaSchemaName, o.MetaTableName)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "table %s\n", postgres.QualifiedTable(o.MetaSchemaName, o.MetaTableName))
				w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "VERSION\tNAME\tAPPLIED AT")
				for _, s := range st {
					applied := "pending"
					if s.Applied {
						applied = s.AppliedAt.UTC().Format(time.RFC3339)
					}
					fmt.Fprintf(w, "%d\t%s\t%s\n", s.Version, s.Name, applied)
				}
				return w.Flush()
			})
		},
	}
	for _, c := range []*cobra.Command{up, status} {
		config.AddFlags(c.Flags())
		cmd.AddCommand(c)
	}
	return cmd
}

// withMigrationDB loads the options, connects to PostgreSQL and runs fn with a
// database/sql handle on the pool, as goose wants.
func (a *app) withMigrationDB(cmd *cobra.Command, fn func(ctx context.Context, o config.Options, db *sql.DB, log *slog.Logger) error) error {
	o, err := a.loadOptions(cmd)
	if err != nil {
		return err
	}
	if o.Backend != config.BackendPostgres {
		o.Backend = config.BackendPostgres // migrate is about PostgreSQL whatever the default backend
		if err := o.Validate(); err != nil {
			return err
		}
	}
	log, err := config.NewLogger(a.stderr, o.Logging)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), migrateConnectWait)
	defer cancel()
	pool, err := node.OpenPool(ctx, o, "metasrv-migrate", log)
	if err != nil {
		return err
	}
	defer pool.Close()
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	return fn(cmd.Context(), o, db, log)
}
