package metasrv

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
)

// BenchmarkLeaderCacheLoad measures the load of the leader cache from
// PostgreSQL (256-byte values) and the memory it takes.
//
//	go test -run '^$' -bench LeaderCacheLoad -benchtime 3x ./pkg/metasrv/
func BenchmarkLeaderCacheLoad(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			c := newPGCluster(b)
			node := c.node("bench")
			fill(b, c, node, n)
			src := kv.WithPrefix(node.pg, []byte(c.opts.StoreKeyPrefix))
			b.ResetTimer()
			var heap uint64
			for i := 0; i < b.N; i++ {
				cache := newLeaderCache()
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				keys, _, err := cache.load(context.Background(), src)
				if err != nil {
					b.Fatal(err)
				}
				if keys < n {
					b.Fatalf("loaded %d keys, want %d", keys, n)
				}
				b.StopTimer()
				runtime.GC()
				runtime.ReadMemStats(&after)
				heap = after.HeapAlloc - before.HeapAlloc
				_, bytes := cache.data.Stats()
				b.ReportMetric(float64(bytes)/(1<<20), "data-MiB")
				runtime.KeepAlive(cache)
				b.StartTimer()
			}
			b.ReportMetric(float64(heap)/(1<<20), "heap-MiB")
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "keys/s")
		})
	}
}

// fill writes n keys of 256-byte values under the cluster's prefix with COPY,
// the fastest way in.
func fill(b *testing.B, c *pgCluster, node *pgNode, n int) {
	b.Helper()
	value := make([]byte, 256)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	rows := make([][]any, 0, n)
	for i := 0; i < n; i++ {
		rows = append(rows, []any{[]byte(fmt.Sprintf("%skey/%09d", c.opts.StoreKeyPrefix, i)), value})
	}
	if _, err := node.pool.CopyFrom(context.Background(), pgx.Identifier{c.opts.MetaTableName}, []string{"k", "v"}, pgx.CopyFromRows(rows)); err != nil {
		b.Fatal(err)
	}
	if _, err := node.pool.Exec(context.Background(), "VACUUM ANALYZE "+pgx.Identifier{c.opts.MetaTableName}.Sanitize()); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkProcedureThroughput runs no-op three-step procedures on a leader
// over PostgreSQL: every step's state is a fenced write.
//
//	go test -run '^$' -bench ProcedureThroughput -benchtime 2000x ./pkg/metasrv/
func BenchmarkProcedureThroughput(b *testing.B) {
	c := newPGCluster(b)
	n := c.node("bench")
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for n.m.State() != LeaderReady {
		if time.Now().After(deadline) {
			b.Fatal("node never became leader")
		}
		time.Sleep(5 * time.Millisecond)
	}
	const workers = 64
	work := make(chan struct{})
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range work {
				id, err := n.procs.Submit(ctx, noopType, []byte(`{}`))
				if err == nil {
					var info procedure.Info
					if info, err = n.procs.Wait(ctx, id); err == nil && info.State != procedure.StateDone {
						err = fmt.Errorf("procedure %s ended %s: %s", id, info.State, info.Error)
					}
				}
				if err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
	b.StopTimer()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "procedures/s")
}

const noopType = "bench_noop"

// noopProc takes three steps that do nothing but persist their state.
type noopProc struct {
	Step int `json:"step"`
}

func noopLoader(data []byte) (procedure.Procedure, error) {
	p := &noopProc{}
	return p, json.Unmarshal(data, p)
}

func (p *noopProc) Type() string                                       { return noopType }
func (p *noopProc) Dump() ([]byte, error)                              { return json.Marshal(p) }
func (p *noopProc) LockKeys() []procedure.LockKey                      { return nil }
func (p *noopProc) Rollback(context.Context, *procedure.Context) error { return nil }
func (p *noopProc) Execute(context.Context, *procedure.Context) (procedure.Status, error) {
	p.Step++
	if p.Step < 3 {
		return procedure.Executing(true), nil
	}
	return procedure.Done(nil), nil
}
