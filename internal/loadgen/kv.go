package loadgen

import (
	"context"
	byteorder "encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pgmetasrv/metasrv/pkg/client"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// The operations of the key-value workload.
const (
	OpPut   = "put"
	OpGet   = "get"
	OpRange = "range"
	OpCAS   = "cas"
	OpTxn   = "txn"
)

const (
	// preloadChunk keys go in one BatchPut (or one INSERT) while preloading.
	preloadChunk = 1000
	// preloadParallel chunks are written at once.
	preloadParallel = 4
	// CleanupTimeout bounds deleting the benchmark's keys and table.
	CleanupTimeout = 2 * time.Minute
)

// KV is the key-value workload: Clients workers doing Op back to back for
// Duration over a key space of Keys keys under KeyPrefix. The caller
// validates it (the CLI does, per flag).
type KV struct {
	Op         string
	Clients    int
	Duration   time.Duration
	OpTimeout  time.Duration
	Keys       int
	ValueSize  int
	RangeLimit int
	KeyPrefix  string
	// Progress gets the progress and preload lines.
	Progress io.Writer
	// Describe rewords an RPC error for messages; nil leaves it as it is.
	Describe func(error) error
}

// KVReport is the result of a key-value benchmark, printed as text or JSON.
type KVReport struct {
	Op         string   `json:"op"`
	Clients    int      `json:"clients"`
	Duration   string   `json:"duration"`
	Keys       int      `json:"keys"`
	ValueSize  int      `json:"value_size"`
	RangeLimit int      `json:"range_limit,omitempty"`
	Results    []Result `json:"results"`
	// Ratio is metasrv/raw, present with a raw PostgreSQL baseline.
	Ratio *Ratio `json:"ratio,omitempty"`
}

// Ratio compares two targets' results.
type Ratio struct {
	OpsPerSec float64 `json:"ops_per_sec"`
	P99       float64 `json:"p99"`
}

// Report is the workload's report, without results yet.
func (k *KV) Report() KVReport {
	r := KVReport{Op: k.Op, Clients: k.Clients, Duration: k.Duration.String(), Keys: k.Keys, ValueSize: k.ValueSize}
	if k.Op == OpRange {
		r.RangeLimit = k.RangeLimit
	}
	return r
}

// Compare is the ratio of a to b.
func Compare(a, b Result) *Ratio {
	return &Ratio{OpsPerSec: ratio(a.OpsPerSec, b.OpsPerSec), P99: ratio(float64(a.P99), float64(b.P99))}
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func (k *KV) describe(err error) error {
	if k.Describe == nil {
		return err
	}
	return k.Describe(err)
}

// kvWorker is the state of one load goroutine.
type kvWorker struct {
	id int
	r  *mrand.Rand
	// versions holds, for cas and txn, the version of each key this worker
	// owns (the keys i with i % clients == id), so its compares always hold
	// and the benchmark measures the operation, not contention.
	versions []uint32
}

// RunMetasrv preloads if the operation needs it, runs the load through c,
// and deletes the benchmark's keys whatever happened.
func (k *KV) RunMetasrv(ctx context.Context, c *client.Client) (res Result, err error) {
	prefix := []byte(k.KeyPrefix)
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), CleanupTimeout)
		defer cancel()
		if _, derr := c.DeleteRange(cctx, kv.DeleteRangeRequest{Key: prefix, RangeEnd: kv.PrefixEnd(prefix)}); derr != nil {
			err = errors.Join(err, fmt.Errorf("delete the benchmark's keys under %q: %w", k.KeyPrefix, k.describe(derr)))
		}
	}()
	if k.needsPreload() {
		err := k.preload(ctx, "metasrv", func(ctx context.Context, lo, hi int) error {
			kvs := make([]kv.KeyValue, 0, hi-lo)
			for i := lo; i < hi; i++ {
				kvs = append(kvs, kv.KeyValue{Key: k.key(i), Value: k.value(0)})
			}
			_, err := c.BatchPut(ctx, kv.BatchPutRequest{Kvs: kvs})
			return err
		})
		if err != nil {
			return Result{}, err
		}
	}
	return Run(ctx, k.spec("metasrv", k.metasrvOp(c)))
}

func (k *KV) needsPreload() bool { return k.Op != OpPut }

// preload writes keys [0, Keys) in chunks, a few chunks at a time.
func (k *KV) preload(ctx context.Context, target string, write func(ctx context.Context, lo, hi int) error) error {
	fmt.Fprintf(k.Progress, "%s: preloading %d keys of %d bytes\n", target, k.Keys, k.ValueSize)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(preloadParallel)
	for lo := 0; lo < k.Keys; lo += preloadChunk {
		hi := min(lo+preloadChunk, k.Keys)
		g.Go(func() error {
			cctx, cancel := context.WithTimeout(gctx, time.Minute)
			defer cancel()
			if err := write(cctx, lo, hi); err != nil {
				return fmt.Errorf("%s: preload keys %d..%d: %w", target, lo, hi-1, k.describe(err))
			}
			return nil
		})
	}
	return g.Wait()
}

func (k *KV) spec(target string, op func(ctx context.Context, w *kvWorker) error) Spec[*kvWorker] {
	return Spec[*kvWorker]{
		Target:    target,
		Clients:   k.Clients,
		Duration:  k.Duration,
		OpTimeout: k.OpTimeout,
		Progress:  k.Progress,
		NewWorker: k.newWorker,
		Op:        op,
	}
}

func (k *KV) newWorker(id int) *kvWorker {
	w := &kvWorker{id: id, r: mrand.New(mrand.NewPCG(mrand.Uint64(), mrand.Uint64()))}
	if k.Op == OpCAS || k.Op == OpTxn {
		w.versions = make([]uint32, (k.Keys-id+k.Clients-1)/k.Clients)
	}
	return w
}

// key is key number i of the benchmark's key space; keys sort by number.
func (k *KV) key(i int) []byte { return fmt.Appendf([]byte(k.KeyPrefix), "%08d", i) }

// value is a ValueSize value ending with version (big-endian) when it has
// room for it.
func (k *KV) value(version uint32) []byte {
	v := make([]byte, k.ValueSize)
	for i := range v {
		v[i] = 'v'
	}
	if len(v) >= 4 {
		byteorder.BigEndian.PutUint32(v[len(v)-4:], version)
	}
	return v
}

// owned picks one of w's own keys: its number and its slot in w.versions.
func (k *KV) owned(w *kvWorker) (i, slot int) {
	slot = w.r.IntN(len(w.versions))
	return slot*k.Clients + w.id, slot
}

// rangeStart picks a range start with RangeLimit keys after it.
func (k *KV) rangeStart(w *kvWorker) int { return w.r.IntN(k.Keys - k.RangeLimit + 1) }

func (k *KV) metasrvOp(c *client.Client) func(ctx context.Context, w *kvWorker) error {
	switch k.Op {
	case OpPut:
		put := k.value(0)
		return func(ctx context.Context, w *kvWorker) error {
			_, err := c.Put(ctx, kv.PutRequest{Key: k.key(w.r.IntN(k.Keys)), Value: put})
			return err
		}
	case OpGet:
		return func(ctx context.Context, w *kvWorker) error {
			key := k.key(w.r.IntN(k.Keys))
			got, err := c.Get(ctx, key)
			if err == nil && got == nil {
				err = fmt.Errorf("get %q: preloaded key missing", key)
			}
			return err
		}
	case OpRange:
		end := kv.PrefixEnd([]byte(k.KeyPrefix))
		return func(ctx context.Context, w *kvWorker) error {
			resp, err := c.Range(ctx, kv.RangeRequest{Key: k.key(k.rangeStart(w)), RangeEnd: end, Limit: int64(k.RangeLimit)})
			if err == nil && len(resp.Kvs) != k.RangeLimit {
				err = fmt.Errorf("range: got %d keys, want %d", len(resp.Kvs), k.RangeLimit)
			}
			return err
		}
	case OpCAS:
		return k.metasrvCAS(c)
	default:
		return k.metasrvTxn(c)
	}
}

func (k *KV) metasrvCAS(c *client.Client) func(ctx context.Context, w *kvWorker) error {
	return func(ctx context.Context, w *kvWorker) error {
		i, slot := k.owned(w)
		v := w.versions[slot]
		resp, err := c.CompareAndPut(ctx, kv.CompareAndPutRequest{Key: k.key(i), Expect: k.value(v), Value: k.value(v + 1)})
		if err != nil {
			return err
		}
		if !resp.Success {
			return fmt.Errorf("cas %q: the value is not the one this client wrote last", k.key(i))
		}
		w.versions[slot]++
		return nil
	}
}

func (k *KV) metasrvTxn(c *client.Client) func(ctx context.Context, w *kvWorker) error {
	return func(ctx context.Context, w *kvWorker) error {
		i, slot := k.owned(w)
		v, key := w.versions[slot], k.key(i)
		resp, err := c.Txn(ctx, kv.TxnRequest{
			Compare: []kv.Compare{kv.CompareValue(key, kv.CompareEqual, k.value(v))},
			Success: []kv.TxnOp{kv.OpPut(key, k.value(v+1))},
			Failure: []kv.TxnOp{kv.OpGet(key)},
		})
		if err != nil {
			return err
		}
		if !resp.Succeeded {
			return fmt.Errorf("txn %q: the compare failed: the value is not the one this client wrote last", key)
		}
		w.versions[slot]++
		return nil
	}
}
