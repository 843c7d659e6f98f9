package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgmetasrv/metasrv/pkg/config"
	"github.com/pgmetasrv/metasrv/pkg/postgres"
)

// rawPG runs the benchmark's workload as plain SQL through pgx on a scratch
// table: what an application talking to PostgreSQL directly would get, the
// baseline metasrv is compared with.
type rawPG struct {
	pool    *pgxpool.Pool
	table   string // quoted
	addr    string // sanitised, for messages
	created bool
}

// openRawPG connects a pool of --clients connections (all opened up front,
// so the run does not pay for connecting) and creates the scratch table; it
// refuses a table that already exists rather than touch someone's data.
func openRawPG(ctx context.Context, b *benchKV, logger *slog.Logger) (*rawPG, error) {
	o := config.Default()
	o.Backend = config.BackendPostgres
	o.StoreAddrs = []string{b.comparePG}
	o.Postgres.MaxConns, o.Postgres.MinConns = b.clients, 0
	addr := config.SanitizeStoreAddr(b.comparePG)
	cfg, err := postgres.PoolConfig(o, "metasrv-bench")
	if err != nil {
		return nil, fmt.Errorf("--compare-pg %s: %w", addr, err)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(cctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("--compare-pg %s: %w", addr, err)
	}
	r := &rawPG{pool: pool, table: pgx.Identifier{b.table}.Sanitize(), addr: addr}
	conns := make([]*pgxpool.Conn, 0, b.clients)
	for range b.clients {
		c, err := pool.Acquire(cctx)
		if err != nil {
			for _, c := range conns {
				c.Release()
			}
			pool.Close()
			return nil, fmt.Errorf("--compare-pg %s: connect: %w", addr, err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Release()
	}
	if _, err := pool.Exec(cctx, "CREATE TABLE "+r.table+" (k bytea PRIMARY KEY, v bytea)"); err != nil {
		pool.Close()
		return nil, fmt.Errorf("--compare-pg %s: create scratch table %s (it must not exist): %w", addr, r.table, err)
	}
	r.created = true
	logger.Debug("scratch table created", "table", b.table)
	return r, nil
}

// close drops the scratch table and closes the pool.
func (r *rawPG) close() {
	if r.created {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		_, _ = r.pool.Exec(ctx, "DROP TABLE IF EXISTS "+r.table)
	}
	r.pool.Close()
}

func (r *rawPG) run(ctx context.Context, b *benchKV) (loadResult, error) {
	if b.needsPreload() {
		sql := "INSERT INTO " + r.table + " (k, v) SELECT * FROM unnest($1::bytea[], $2::bytea[])"
		err := b.preload(ctx, "raw-pg", func(ctx context.Context, lo, hi int) error {
			keys, values := make([][]byte, 0, hi-lo), make([][]byte, 0, hi-lo)
			for i := lo; i < hi; i++ {
				keys, values = append(keys, b.key(i)), append(values, b.value(0))
			}
			_, err := r.pool.Exec(ctx, sql, keys, values)
			return err
		})
		if err != nil {
			return loadResult{}, err
		}
		// A freshly loaded table has no statistics; metasrv's table has had
		// autovacuum's attention for longer. Level the field.
		if _, err := r.pool.Exec(ctx, "ANALYZE "+r.table); err != nil {
			return loadResult{}, fmt.Errorf("raw-pg: analyze %s: %w", r.table, err)
		}
	}
	return runLoad(ctx, b.spec("raw-pg", r.op(b)))
}

func (r *rawPG) op(b *benchKV) func(ctx context.Context, w *benchWorker) error {
	put := b.value(0)
	end := []byte(b.keyPrefix)
	end = append(end[:len(end):len(end)], 0xff) // every key of the benchmark sorts below
	switch b.op {
	case benchOpPut:
		sql := "INSERT INTO " + r.table + " (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = excluded.v"
		return func(ctx context.Context, w *benchWorker) error {
			_, err := r.pool.Exec(ctx, sql, b.key(w.r.IntN(b.keys)), put)
			return err
		}
	case benchOpGet:
		sql := "SELECT v FROM " + r.table + " WHERE k = $1"
		return func(ctx context.Context, w *benchWorker) error {
			var v []byte
			k := b.key(w.r.IntN(b.keys))
			err := r.pool.QueryRow(ctx, sql, k).Scan(&v)
			if errors.Is(err, pgx.ErrNoRows) {
				err = fmt.Errorf("get %q: preloaded key missing", k)
			}
			return err
		}
	case benchOpRange:
		sql := "SELECT k, v FROM " + r.table + " WHERE k >= $1 AND k < $2 ORDER BY k LIMIT $3"
		return func(ctx context.Context, w *benchWorker) error {
			rows, err := r.pool.Query(ctx, sql, b.key(b.rangeStart(w)), end, b.rangeLimit)
			if err != nil {
				return err
			}
			n := 0
			for rows.Next() {
				var k, v []byte
				if err := rows.Scan(&k, &v); err != nil {
					rows.Close()
					return err
				}
				n++
			}
			if err := rows.Err(); err != nil {
				return err
			}
			if n != b.rangeLimit {
				return fmt.Errorf("range: got %d keys, want %d", n, b.rangeLimit)
			}
			return nil
		}
	case benchOpCAS:
		sql := "UPDATE " + r.table + " SET v = $3 WHERE k = $1 AND v = $2"
		return func(ctx context.Context, w *benchWorker) error {
			i, slot := b.owned(w)
			v := w.versions[slot]
			tag, err := r.pool.Exec(ctx, sql, b.key(i), b.value(v), b.value(v+1))
			if err != nil {
				return err
			}
			if tag.RowsAffected() != 1 {
				return fmt.Errorf("cas %q: the value is not the one this client wrote last", b.key(i))
			}
			w.versions[slot]++
			return nil
		}
	default: // txn
		sel := "SELECT v FROM " + r.table + " WHERE k = $1 FOR UPDATE"
		upd := "UPDATE " + r.table + " SET v = $2 WHERE k = $1"
		return func(ctx context.Context, w *benchWorker) error {
			i, slot := b.owned(w)
			v, k := w.versions[slot], b.key(i)
			err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
				var cur []byte
				if err := tx.QueryRow(ctx, sel, k).Scan(&cur); err != nil {
					return err
				}
				if string(cur) != string(b.value(v)) {
					return fmt.Errorf("txn %q: the compare failed: the value is not the one this client wrote last", k)
				}
				_, err := tx.Exec(ctx, upd, k, b.value(v+1))
				return err
			})
			if err != nil {
				return err
			}
			w.versions[slot]++
			return nil
		}
	}
}
