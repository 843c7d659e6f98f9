package loadgen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgmetasrv/metasrv/pkg/config"
	"github.com/pgmetasrv/metasrv/pkg/postgres"
)

// RawPG runs the workload as plain SQL through pgx on a scratch table: what
// an application talking to PostgreSQL directly would get, the baseline
// metasrv is compared with.
type RawPG struct {
	pool    *pgxpool.Pool
	table   string // quoted
	addr    string // sanitised, for messages
	created bool
	// ran: a run has written to the table, so the next one empties it
	// first and starts from where metasrv's run starts (no key, or the
	// preloaded keys at version 0, which cas and txn compare with).
	ran bool
}

// OpenRawPG connects a pool of k.Clients connections to dsn (all opened up
// front, so the run does not pay for connecting) and creates the scratch
// table (none for OpPing, which reads no table); it refuses a table that
// already exists rather than touch someone's data. Errors name the DSN as --compare-pg, the flag it comes from.
func OpenRawPG(ctx context.Context, k *KV, dsn, table string, logger *slog.Logger) (*RawPG, error) {
	o := config.Default()
	o.Backend = config.BackendPostgres
	o.StoreAddrs = []string{dsn}
	o.Postgres.MaxConns, o.Postgres.MinConns = k.Clients, 0
	addr := postgres.SanitizeStoreAddr(dsn)
	cfg, err := postgres.PoolConfig(o.Store(), "metasrv-bench")
	if err != nil {
		return nil, fmt.Errorf("--compare-pg %s: %w", addr, err)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(cctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("--compare-pg %s: %w", addr, err)
	}
	r := &RawPG{pool: pool, table: pgx.Identifier{table}.Sanitize(), addr: addr}
	if err := r.warm(cctx, k.Clients); err != nil {
		pool.Close()
		return nil, err
	}
	if k.Op == OpPing {
		return r, nil
	}
	if _, err := pool.Exec(cctx, "CREATE TABLE "+r.table+" (k bytea PRIMARY KEY, v bytea)"); err != nil {
		pool.Close()
		return nil, fmt.Errorf("--compare-pg %s: create scratch table %s (it must not exist): %w", addr, r.table, err)
	}
	r.created = true
	logger.Debug("scratch table created", "table", table)
	return r, nil
}

// warm opens n connections at once.
func (r *RawPG) warm(ctx context.Context, n int) error {
	conns := make([]*pgxpool.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Release()
		}
	}()
	for range n {
		c, err := r.pool.Acquire(ctx)
		if err != nil {
			return fmt.Errorf("--compare-pg %s: connect: %w", r.addr, err)
		}
		conns = append(conns, c)
	}
	return nil
}

// Close drops the scratch table and closes the pool.
func (r *RawPG) Close() {
	if r.created {
		ctx, cancel := context.WithTimeout(context.Background(), CleanupTimeout)
		defer cancel()
		_, _ = r.pool.Exec(ctx, "DROP TABLE IF EXISTS "+r.table)
	}
	r.pool.Close()
}

// Run preloads if the operation needs it and runs k's load as raw SQL. It
// may run again (bench kv --rounds): each run starts from an empty table.
func (r *RawPG) Run(ctx context.Context, k *KV) (Result, error) {
	if r.ran && r.created {
		if _, err := r.pool.Exec(ctx, "TRUNCATE "+r.table); err != nil {
			return Result{}, fmt.Errorf("raw-pg: empty %s for the next round: %w", r.table, err)
		}
	}
	r.ran = true
	if k.needsPreload() {
		sql := "INSERT INTO " + r.table + " (k, v) SELECT * FROM unnest($1::bytea[], $2::bytea[])"
		err := k.preload(ctx, "raw-pg", func(ctx context.Context, lo, hi int) error {
			keys, values := make([][]byte, 0, hi-lo), make([][]byte, 0, hi-lo)
			for i := lo; i < hi; i++ {
				keys, values = append(keys, k.key(i)), append(values, k.value(0))
			}
			_, err := r.pool.Exec(ctx, sql, keys, values)
			return err
		})
		if err != nil {
			return Result{}, err
		}
		// A freshly loaded table has no statistics; metasrv's table has had
		// autovacuum's attention for longer. Level the field.
		if _, err := r.pool.Exec(ctx, "ANALYZE "+r.table); err != nil {
			return Result{}, fmt.Errorf("raw-pg: analyze %s: %w", r.table, err)
		}
	}
	return Run(ctx, k.spec("raw-pg", r.op(k)))
}

func (r *RawPG) op(k *KV) func(ctx context.Context, w *kvWorker) error {
	switch k.Op {
	case OpPing:
		// pgx's Ping: an empty statement, one round trip that reads nothing.
		return func(ctx context.Context, _ *kvWorker) error { return r.pool.Ping(ctx) }
	case OpPut:
		sql := "INSERT INTO " + r.table + " (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = excluded.v"
		put := k.value(0)
		return func(ctx context.Context, w *kvWorker) error {
			_, err := r.pool.Exec(ctx, sql, k.key(w.r.IntN(k.Keys)), put)
			return err
		}
	case OpGet:
		sql := "SELECT v FROM " + r.table + " WHERE k = $1"
		return func(ctx context.Context, w *kvWorker) error {
			var v []byte
			key := k.key(w.r.IntN(k.Keys))
			err := r.pool.QueryRow(ctx, sql, key).Scan(&v)
			if errors.Is(err, pgx.ErrNoRows) {
				err = fmt.Errorf("get %q: preloaded key missing", key)
			}
			return err
		}
	case OpRange:
		return r.rangeOp(k)
	case OpCAS:
		return r.casOp(k)
	default:
		if k.txnKeys() > 1 {
			return r.txnNOp(k)
		}
		return r.txnOp(k)
	}
}

func (r *RawPG) rangeOp(k *KV) func(ctx context.Context, w *kvWorker) error {
	sql := "SELECT k, v FROM " + r.table + " WHERE k >= $1 AND k < $2 ORDER BY k LIMIT $3"
	end := []byte(k.KeyPrefix)
	end = append(end[:len(end):len(end)], 0xff) // every key of the benchmark sorts below
	return func(ctx context.Context, w *kvWorker) error {
		rows, err := r.pool.Query(ctx, sql, k.key(k.rangeStart(w)), end, k.RangeLimit)
		if err != nil {
			return err
		}
		n := 0
		for rows.Next() {
			var key, v []byte
			if err := rows.Scan(&key, &v); err != nil {
				rows.Close()
				return err
			}
			n++
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if n != k.RangeLimit {
			return fmt.Errorf("range: got %d keys, want %d", n, k.RangeLimit)
		}
		return nil
	}
}

func (r *RawPG) casOp(k *KV) func(ctx context.Context, w *kvWorker) error {
	sql := "UPDATE " + r.table + " SET v = $3 WHERE k = $1 AND v = $2"
	return func(ctx context.Context, w *kvWorker) error {
		i, slot := k.owned(w)
		v := w.versions[slot]
		tag, err := r.pool.Exec(ctx, sql, k.key(i), k.value(v), k.value(v+1))
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("cas %q: the value is not the one this client wrote last", k.key(i))
		}
		w.versions[slot]++
		return nil
	}
}

func (r *RawPG) txnOp(k *KV) func(ctx context.Context, w *kvWorker) error {
	sel := "SELECT v FROM " + r.table + " WHERE k = $1 FOR UPDATE"
	upd := "UPDATE " + r.table + " SET v = $2 WHERE k = $1"
	return func(ctx context.Context, w *kvWorker) error {
		i, slot := k.owned(w)
		v, key := w.versions[slot], k.key(i)
		err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
			var cur []byte
			if err := tx.QueryRow(ctx, sel, key).Scan(&cur); err != nil {
				return err
			}
			if string(cur) != string(k.value(v)) {
				return fmt.Errorf("txn %q: the compare failed: the value is not the one this client wrote last", key)
			}
			_, err := tx.Exec(ctx, upd, key, k.value(v+1))
			return err
		})
		if err != nil {
			return err
		}
		w.versions[slot]++
		return nil
	}
}

// txnNOp is the raw equivalent of a Txn of n > 1 compares and n puts, in one
// transaction of four round trips: BEGIN; SELECT k, v .. WHERE k = ANY($1)
// ORDER BY k FOR UPDATE (the n rows, locked in key order); the compares in
// Go; the n UPDATEs sent as one pipelined batch; COMMIT.
func (r *RawPG) txnNOp(k *KV) func(ctx context.Context, w *kvWorker) error {
	n := k.txnKeys()
	sel := "SELECT k, v FROM " + r.table + " WHERE k = ANY($1) ORDER BY k FOR UPDATE"
	upd := "UPDATE " + r.table + " SET v = $2 WHERE k = $1"
	return func(ctx context.Context, w *kvWorker) error {
		nums, slots := k.ownedN(w, n)
		keys := make([][]byte, n)
		for j, i := range nums {
			keys[j] = k.key(i)
		}
		err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, sel, keys)
			if err != nil {
				return err
			}
			got := 0
			for rows.Next() {
				var key, cur []byte
				if err := rows.Scan(&key, &cur); err != nil {
					rows.Close()
					return err
				}
				j := slices.IndexFunc(keys, func(want []byte) bool { return string(want) == string(key) })
				if j < 0 {
					rows.Close()
					return fmt.Errorf("txn: row %q is not one of the keys asked", key)
				}
				if string(cur) != string(k.value(w.versions[slots[j]])) {
					rows.Close()
					return fmt.Errorf("txn %q: the compare failed: the value is not the one this client wrote last", key)
				}
				got++
			}
			if err := rows.Err(); err != nil {
				return err
			}
			if got != n {
				return fmt.Errorf("txn: got %d of the %d keys", got, n)
			}
			b := &pgx.Batch{}
			for j, key := range keys {
				b.Queue(upd, key, k.value(w.versions[slots[j]]+1))
			}
			br := tx.SendBatch(ctx, b)
			for range keys {
				tag, err := br.Exec()
				if err != nil {
					_ = br.Close()
					return err
				}
				if tag.RowsAffected() != 1 {
					_ = br.Close()
					return errors.New("txn: an UPDATE matched no row")
				}
			}
			return br.Close()
		})
		if err != nil {
			return err
		}
		for _, s := range slots {
			w.versions[s]++
		}
		return nil
	}
}
