package pgkv_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/pgkv"
)

// The benchmarks run every operation through pgkv and as the same SQL sent
// with pgx on the same pool ("raw"), so pgkv/raw is the cost of the backend
// layer:
//
//	go test -bench . -run '^$' ./pkg/kv/pgkv/

const benchKeys = 10000

type benchEnv struct {
	pool  *pgxpool.Pool
	store *pgkv.Store
	table string
	value []byte
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	db := newTestDB(b)
	schema := db.newSchema(b)
	s, err := pgkv.New(db.pool, pgkv.Options{Schema: schema}, nil)
	require.NoError(b, err)
	e := &benchEnv{pool: db.pool, store: s, table: pgx.Identifier{schema, pgkv.DefaultTable}.Sanitize(), value: bytes.Repeat([]byte("v"), 64)}
	kvs := make([]kv.KeyValue, 0, benchKeys)
	for i := range benchKeys {
		kvs = append(kvs, kv.KeyValue{Key: benchKey(i), Value: e.value})
	}
	_, err = s.BatchPut(context.Background(), kv.BatchPutRequest{Kvs: kvs})
	require.NoError(b, err)
	_, err = db.pool.Exec(context.Background(), "VACUUM ANALYZE "+e.table)
	require.NoError(b, err)
	return e
}

func benchKey(i int) []byte { return fmt.Appendf(nil, "/bench/key/%06d", i) }

// worker is the state of one benchmark goroutine.
type worker struct {
	r   *rand.Rand
	id  int64
	cas uint64 // the CAS benchmark's counter
}

// compare runs the pgkv and raw forms of one operation side by side. Each run
// starts from a vacuumed table, so the dead rows of the previous run's
// updates do not slow down the next one.
func compare(b *testing.B, e *benchEnv, viaPgkv, raw func(ctx context.Context, w *worker) error) {
	var ids atomic.Int64
	for _, v := range []struct {
		name string
		op   func(ctx context.Context, w *worker) error
	}{{"pgkv", viaPgkv}, {"raw", raw}} {
		b.Run(v.name, func(b *testing.B) {
			_, err := e.pool.Exec(context.Background(), "VACUUM "+e.table)
			require.NoError(b, err)
			b.ResetTimer()
			b.SetParallelism(4)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				w := &worker{r: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())), id: ids.Add(1)}
				for pb.Next() {
					if err := v.op(ctx, w); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func collectRaw(rows pgx.Rows) (int, error) {
	defer rows.Close()
	n := 0
	for rows.Next() {
		var k, v []byte
		if err := rows.Scan(&k, &v); err != nil {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}

func BenchmarkPut(b *testing.B) {
	e := newBenchEnv(b)
	sql := "INSERT INTO " + e.table + " (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = excluded.v"
	compare(b, e, func(ctx context.Context, w *worker) error {
		_, err := e.store.Put(ctx, kv.PutRequest{Key: benchKey(w.r.IntN(benchKeys)), Value: e.value})
		return err
	}, func(ctx context.Context, w *worker) error {
		_, err := e.pool.Exec(ctx, sql, benchKey(w.r.IntN(benchKeys)), e.value)
		return err
	})
}

func BenchmarkGet(b *testing.B) {
	e := newBenchEnv(b)
	sql := "SELECT k, v FROM " + e.table + " WHERE k = $1"
	compare(b, e, func(ctx context.Context, w *worker) error {
		got, err := kv.Get(ctx, e.store, benchKey(w.r.IntN(benchKeys)))
		if err == nil && got == nil {
			err = fmt.Errorf("key missing")
		}
		return err
	}, func(ctx context.Context, w *worker) error {
		rows, err := e.pool.Query(ctx, sql, benchKey(w.r.IntN(benchKeys)))
		if err != nil {
			return err
		}
		n, err := collectRaw(rows)
		if err == nil && n != 1 {
			err = fmt.Errorf("got %d rows", n)
		}
		return err
	})
}

func BenchmarkRange100(b *testing.B) {
	e := newBenchEnv(b)
	sql := "SELECT k, v FROM " + e.table + " WHERE k >= $1 AND k < $2 ORDER BY k LIMIT $3"
	end := []byte("/bench/key0")
	compare(b, e, func(ctx context.Context, w *worker) error {
		resp, err := e.store.Range(ctx, kv.RangeRequest{Key: benchKey(w.r.IntN(benchKeys - 200)), RangeEnd: end, Limit: 100})
		if err == nil && (len(resp.Kvs) != 100 || !resp.More) {
			err = fmt.Errorf("got %d keys, more=%v", len(resp.Kvs), resp.More)
		}
		return err
	}, func(ctx context.Context, w *worker) error {
		rows, err := e.pool.Query(ctx, sql, benchKey(w.r.IntN(benchKeys-200)), end, int64(101))
		if err != nil {
			return err
		}
		n, err := collectRaw(rows)
		if err == nil && n != 101 {
			err = fmt.Errorf("got %d rows", n)
		}
		return err
	})
}

// BenchmarkCAS swaps a value that matches: each goroutine owns a key and
// increments it, so the benchmark measures the statement, not contention.
func BenchmarkCAS(b *testing.B) {
	e := newBenchEnv(b)
	sql := "WITH upd AS (UPDATE " + e.table + " SET v = $3 WHERE k = $1 AND v = $2 RETURNING 1) " +
		"SELECT EXISTS (SELECT 1 FROM upd), (SELECT coalesce(v, ''::bytea) FROM " + e.table + " WHERE k = $1)"
	// step returns the worker's key with its current and next value, creating
	// the key on the worker's first call.
	step := func(ctx context.Context, w *worker) (key, cur, next []byte, err error) {
		key = fmt.Appendf(nil, "/bench/cas/%d", w.id)
		if w.cas == 0 {
			_, err = e.store.Put(ctx, kv.PutRequest{Key: key, Value: []byte("0")})
		}
		cur, next = fmt.Appendf(nil, "%d", w.cas), fmt.Appendf(nil, "%d", w.cas+1)
		w.cas++
		return key, cur, next, err
	}
	compare(b, e, func(ctx context.Context, w *worker) error {
		key, cur, next, err := step(ctx, w)
		if err != nil {
			return err
		}
		resp, err := e.store.CompareAndPut(ctx, kv.CompareAndPutRequest{Key: key, Expect: cur, Value: next})
		if err == nil && !resp.Success {
			err = fmt.Errorf("cas failed: %+v", resp.PrevKv)
		}
		return err
	}, func(ctx context.Context, w *worker) error {
		key, cur, next, err := step(ctx, w)
		if err != nil {
			return err
		}
		var applied bool
		var current []byte
		err = e.pool.QueryRow(ctx, sql, key, cur, next).Scan(&applied, &current)
		if err == nil && !applied {
			err = fmt.Errorf("cas failed: %q", current)
		}
		return err
	})
}

func BenchmarkBatchPut64(b *testing.B) {
	e := newBenchEnv(b)
	sql := "INSERT INTO " + e.table + " (k, v) SELECT k, v FROM unnest($1::bytea[], $2::bytea[]) AS i(k, v) ON CONFLICT (k) DO UPDATE SET v = excluded.v"
	// Each call writes 64 consecutive keys from a random start, so concurrent
	// batches overlap and lock rows in the same order.
	batch := func(r *rand.Rand) [][]byte {
		start := r.IntN(benchKeys - 64)
		keys := make([][]byte, 64)
		for i := range keys {
			keys[i] = benchKey(start + i)
		}
		return keys
	}
	values := slices.Repeat([][]byte{e.value}, 64)
	compare(b, e, func(ctx context.Context, w *worker) error {
		keys := batch(w.r)
		kvs := make([]kv.KeyValue, len(keys))
		for i, k := range keys {
			kvs[i] = kv.KeyValue{Key: k, Value: e.value}
		}
		_, err := e.store.BatchPut(ctx, kv.BatchPutRequest{Kvs: kvs})
		return err
	}, func(ctx context.Context, w *worker) error {
		_, err := e.pool.Exec(ctx, sql, batch(w.r), values)
		return err
	})
}
