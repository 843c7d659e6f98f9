package memkv_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/memkv"
)

func benchKey(i int) []byte { return fmt.Appendf(nil, "/bench/key/%08d", i) }

func BenchmarkPut(b *testing.B) {
	ctx := b.Context()
	s := memkv.New()
	value := make([]byte, 128)
	i := 0
	for b.Loop() {
		if _, err := s.Put(ctx, kv.PutRequest{Key: benchKey(i % 100_000), Value: value}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkRange scans 100 keys out of 100,000, the shape of a paginated
// leader-cache load; Shared is the API servers' read, which marshals the
// pairs without a copy of its own.
func BenchmarkRange(b *testing.B) {
	ctx := b.Context()
	s := memkv.New()
	value := make([]byte, 256)
	const n = 100_000
	for i := range n {
		if _, err := s.Put(ctx, kv.PutRequest{Key: benchKey(i), Value: value}); err != nil {
			b.Fatal(err)
		}
	}
	for _, shared := range []bool{false, true} {
		b.Run(map[bool]string{false: "Copied", true: "Shared"}[shared], func(b *testing.B) {
			i := 0
			for b.Loop() {
				resp, err := s.Range(ctx, kv.RangeRequest{Key: benchKey(i % (n - 100)), RangeEnd: []byte{0}, Limit: 100, Shared: shared})
				if err != nil || len(resp.Kvs) != 100 {
					b.Fatalf("range: %d kvs, %v", len(resp.Kvs), err)
				}
				i += 100
			}
		})
	}
}

// BenchmarkHeapPerKey reports the live heap one stored pair costs (a 30-byte
// key, a 256-byte value, the leader cache's typical shape) beyond its 286
// bytes of data: the overhead the leader's memory target is about.
func BenchmarkHeapPerKey(b *testing.B) {
	const keys = 100_000
	value := make([]byte, 256)
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		s := memkv.New()
		for i := range keys {
			key := fmt.Appendf(nil, "__table_route/%016d", i) // 30 bytes
			if _, err := s.Put(context.Background(), kv.PutRequest{Key: key, Value: value}); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/keys, "heap-B/key")
		runtime.KeepAlive(s)
	}
}

// BenchmarkGet is the leader cache's answer to a point read, with as many
// keys as `metasrv bench kv` loads and as many as the memory target is set
// for. Most of its time is the B-tree's key comparisons, each on a pair held
// in an allocation of its own (docs/benchmarks.md, "fifth pass").
func BenchmarkGet(b *testing.B) {
	ctx := b.Context()
	value := make([]byte, 256)
	for _, n := range []int{20_000, 1_000_000} {
		s := memkv.New()
		for i := range n {
			if _, err := s.Put(ctx, kv.PutRequest{Key: benchKey(i), Value: value}); err != nil {
				b.Fatal(err)
			}
		}
		// A fixed spread of keys, so the two sizes differ only in the tree.
		keys := make([][]byte, 4096)
		for i := range keys {
			keys[i] = benchKey((i * 7919) % n)
		}
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			i := 0
			for b.Loop() {
				resp, err := s.Range(ctx, kv.RangeRequest{Key: keys[i%len(keys)], Shared: true})
				if err != nil || len(resp.Kvs) != 1 {
					b.Fatalf("get: %d kvs, %v", len(resp.Kvs), err)
				}
				i++
			}
		})
	}
}
