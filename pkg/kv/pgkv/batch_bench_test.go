package pgkv_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/pgkv"
)

// BenchmarkBatchedPut compares, at 64 concurrent clients on a pool of 64
// connections, a put as one raw single-statement pgx upsert ("raw"), through
// the batched fenced view ("batched") and through the unbatched fenced view
// ("fenced"), plus the raw upsert on a pool of 16 connections ("raw_pool16").
// Both fenced forms check a term row FOR SHARE, as the election's
// fence does:
//
//	go test -run '^$' -bench Batched ./pkg/kv/pgkv/
func BenchmarkBatchedPut(b *testing.B) {
	const clients = 64
	db := newTestDB(b, func(c *pgxpool.Config) { c.MaxConns = clients })
	schema := db.newSchema(b)
	table := pgx.Identifier{schema, pgkv.DefaultTable}.Sanitize()
	termTable := pgx.Identifier{schema, "bench_term"}.Sanitize()
	db.exec(b, "CREATE TABLE "+termTable+" (id int PRIMARY KEY, term bigint NOT NULL); INSERT INTO "+termTable+" VALUES (1, 7)")
	s, err := pgkv.New(db.pool, pgkv.Options{Schema: schema}, nil)
	require.NoError(b, err)
	value := bytes.Repeat([]byte("v"), 64)
	seed := make([]kv.KeyValue, 0, benchKeys)
	for i := range benchKeys {
		seed = append(seed, kv.KeyValue{Key: benchKey(i), Value: value})
	}
	_, err = s.BatchPut(context.Background(), kv.BatchPutRequest{Kvs: seed})
	require.NoError(b, err)

	var checks atomic.Int64
	fence := funcFence(func(ctx context.Context, tx pgx.Tx) error {
		checks.Add(1)
		var term int64
		if err := tx.QueryRow(ctx, "SELECT term FROM "+termTable+" WHERE id = 1 FOR SHARE").Scan(&term); err != nil {
			return err
		}
		if term != 7 {
			return fmt.Errorf("%w: term %d", errFenced, term)
		}
		return nil
	})
	batcher, err := pgkv.NewBatcher(s, pgkv.BatchOptions{}, nil)
	require.NoError(b, err)
	require.NoError(b, batcher.Start(context.Background()))
	b.Cleanup(batcher.Stop)
	batched, fenced := batcher.WithFence(fence), s.WithFence(fence)
	// The raw upserts again on a pool of 16 connections shared by the 64
	// clients: on a small machine fewer server processes may do better.
	cfg16, err := pgxpool.ParseConfig(db.dsn)
	require.NoError(b, err)
	cfg16.MaxConns = 16
	pool16, err := pgxpool.NewWithConfig(context.Background(), cfg16)
	require.NoError(b, err)
	b.Cleanup(pool16.Close)
	upsert := "INSERT INTO " + table + " (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = excluded.v"

	for _, v := range []struct {
		name string
		put  func(ctx context.Context, key []byte) error
	}{
		{"raw", func(ctx context.Context, key []byte) error {
			_, err := db.pool.Exec(ctx, upsert, key, value)
			return err
		}},
		{"raw_pool16", func(ctx context.Context, key []byte) error {
			_, err := pool16.Exec(ctx, upsert, key, value)
			return err
		}},
		{"batched", func(ctx context.Context, key []byte) error {
			_, err := batched.Put(ctx, kv.PutRequest{Key: key, Value: value})
			return err
		}},
		{"fenced", func(ctx context.Context, key []byte) error {
			_, err := fenced.Put(ctx, kv.PutRequest{Key: key, Value: value})
			return err
		}},
	} {
		b.Run(v.name, func(b *testing.B) {
			_, err := db.pool.Exec(context.Background(), "VACUUM "+table)
			require.NoError(b, err)
			var mu sync.Mutex
			var lat []time.Duration
			checks.Store(0)
			b.SetParallelism((clients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				r := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
				var mine []time.Duration
				for pb.Next() {
					start := time.Now()
					if err := v.put(ctx, benchKey(r.IntN(benchKeys))); err != nil {
						b.Error(err)
						return
					}
					mine = append(mine, time.Since(start))
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
			b.ReportMetric(float64(percentile(lat, 0.50).Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
			if v.name == "batched" {
				b.ReportMetric(float64(b.N)/float64(max(1, checks.Load())), "puts/batch")
			}
		})
	}
}

func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[min(len(d)-1, int(q*float64(len(d))))]
}
