package memkv_test

import (
	"fmt"
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
// leader-cache load.
func BenchmarkRange(b *testing.B) {
	ctx := b.Context()
	s := memkv.New()
	value := make([]byte, 128)
	const n = 100_000
	for i := range n {
		if _, err := s.Put(ctx, kv.PutRequest{Key: benchKey(i), Value: value}); err != nil {
			b.Fatal(err)
		}
	}
	i := 0
	for b.Loop() {
		resp, err := s.Range(ctx, kv.RangeRequest{Key: benchKey(i % (n - 100)), RangeEnd: []byte{0}, Limit: 100})
		if err != nil || len(resp.Kvs) != 100 {
			b.Fatalf("range: %d kvs, %v", len(resp.Kvs), err)
		}
		i += 100
	}
}
