package node

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/pgmetasrv/metasrv/migrations"
	"github.com/pgmetasrv/metasrv/pkg/backoff"
	"github.com/pgmetasrv/metasrv/pkg/config"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/memkv"
	"github.com/pgmetasrv/metasrv/pkg/kv/pgkv"
	"github.com/pgmetasrv/metasrv/pkg/postgres"
)

// openStore opens the configured durable store. For postgres_store it keeps
// trying while PostgreSQL is down (until ctx ends), then applies the
// migrations; the pool is kept in n.pool and pg is the PostgreSQL store.
func (n *Node) openStore(ctx context.Context) (durable kv.Backend, pg *pgkv.Store, err error) {
	o := n.opts
	switch o.Backend {
	case config.BackendMemory:
		n.log.Warn("memory_store keeps metadata in this process only and has no leader election: run exactly one instance, and expect to lose all metadata when it stops")
		return memkv.New(), nil, nil
	case config.BackendPostgres:
		pool, err := openStorePool(ctx, o, n.base, &n.connecting)
		if err != nil {
			return nil, nil, err
		}
		n.pool = pool // closed by New's cleanup on failure
		db := stdlib.OpenDBFromPool(pool)
		defer db.Close()
		if err := migrateUp(ctx, db, o, n.base.With("component", "migrations")); err != nil {
			return nil, nil, fmt.Errorf("migrate: %w", err)
		}
		store, err := pgkv.New(pool, pgkv.Options{Schema: o.MetaSchemaName, Table: o.MetaTableName}, n.base)
		if err != nil {
			return nil, nil, fmt.Errorf("node: %w", err)
		}
		return store, store, nil
	default:
		return nil, nil, fmt.Errorf("node: unknown backend %q", o.Backend)
	}
}

// migrateUp applies the migrations, retrying while the failure is the
// connection's (PostgreSQL restarting or failing over while the node
// starts), so such a moment does not kill a starting node; a refusal (a
// table of another layout, another cluster's keys) ends the start at once.
// Migrations are idempotent: a retry resumes where the last attempt stopped.
func migrateUp(ctx context.Context, db *sql.DB, o config.Options, logger *slog.Logger) error {
	pause := backoff.Policy{Base: 100 * time.Millisecond, Max: 5 * time.Second}
	for attempt := 1; ; attempt++ {
		err := migrations.Up(ctx, db, o.MetaSchemaName, o.MetaTableName, logger)
		if err == nil || !pgkv.IsConnFailure(err) || ctx.Err() != nil {
			return err
		}
		wait := pause.Delay(attempt)
		logger.WarnContext(ctx, "migration interrupted by a lost PostgreSQL connection; retrying",
			"attempt", attempt, "backoff", wait, "err", err)
		if serr := backoff.Sleep(ctx, wait); serr != nil {
			return errors.Join(err, serr)
		}
	}
}

// openStorePool connects the pool of postgres_store, waiting while
// PostgreSQL is down until ctx ends. Each failed attempt is logged with
// what the operator should check (adviceHandler).
func openStorePool(ctx context.Context, o config.Options, base *slog.Logger, state *connectState) (*pgxpool.Pool, error) {
	base = slog.New(adviceHandler{Handler: base.Handler(), state: state})
	// A leader frozen or cut off inside a fenced write holds the election
	// row FOR SHARE, which the next leader's term bump waits for: PostgreSQL
	// must end such a transaction well within a lease.
	return openPool(ctx, o, "metasrv", base, map[string]string{
		"idle_in_transaction_session_timeout": strconv.FormatInt(idleInTxTimeout(o.Election.Lease).Milliseconds(), 10),
	})
}

// idleInTxTimeout is half the lease (at least 100ms), so a stuck fenced
// transaction is gone before the new leader's term bump (bounded by the
// lease) gives up.
func idleInTxTimeout(lease time.Duration) time.Duration {
	return max(lease/2, 100*time.Millisecond)
}

// OpenPool connects to the configured PostgreSQL as appName, waiting (with
// backoff) while it is down until ctx ends: what `metasrv migrate` uses.
func OpenPool(ctx context.Context, o config.Options, appName string, log *slog.Logger) (*pgxpool.Pool, error) {
	return openPool(ctx, o, appName, log, nil)
}

// openPool is OpenPool with extra session settings.
func openPool(ctx context.Context, o config.Options, appName string, log *slog.Logger, params map[string]string) (*pgxpool.Pool, error) {
	cfg, err := postgres.PoolConfig(o.Store(), appName)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	for k, v := range params {
		cfg.ConnConfig.RuntimeParams[k] = v
	}
	return postgres.Connect(ctx, cfg, log.With("component", "postgres"))
}
