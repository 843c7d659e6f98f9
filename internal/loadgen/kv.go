package loadgen

import (
	"context"
	byteorder "encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"runtime/pprof"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/pgmetasrv/metasrv/pkg/client"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// The operations of the key-value workload. OpPing is not a key-value
// operation: it is the transport floor the others are read against.
const (
	OpPing  = "ping"
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
	// TxnKeys is how many keys one txn compares and writes (at least 1).
	TxnKeys   int
	KeyPrefix string
	// Metrics, if set, is scraped before and after the metasrv run for the
	// node's CPU time; nil measures none.
	Metrics *Scraper
	// CPUProfile, if set, receives this process's CPU profile (pprof) of
	// the timed metasrv run: where the load generator's own CPU goes.
	CPUProfile io.Writer
	// Progress gets the progress and preload lines.
	Progress io.Writer
	// Describe rewords an RPC error for messages; nil leaves it as it is.
	Describe func(error) error
}

// KVReport is the result of a key-value benchmark, printed as text or JSON.
type KVReport struct {
	Op         string `json:"op"`
	Clients    int    `json:"clients"`
	Duration   string `json:"duration"`
	Keys       int    `json:"keys,omitempty"`
	ValueSize  int    `json:"value_size,omitempty"`
	RangeLimit int    `json:"range_limit,omitempty"`
	TxnKeys    int    `json:"txn_keys,omitempty"`
	// Rounds is how many times the targets ran, metasrv then raw-pg each
	// time, when more than once; Results holds every round's, in order.
	Rounds  int      `json:"rounds,omitempty"`
	Results []Result `json:"results"`
	// Ratio is metasrv/raw, present with a raw PostgreSQL baseline; over
	// several rounds, the median of RoundRatios.
	Ratio *Ratio `json:"ratio,omitempty"`
	// RoundRatios is each round's metasrv/raw, with more than one round.
	RoundRatios []Ratio `json:"round_ratios,omitempty"`
}

// Ratio compares two targets' results.
type Ratio struct {
	OpsPerSec float64 `json:"ops_per_sec"`
	P99       float64 `json:"p99"`
}

// Report is the workload's report, without results yet.
func (k *KV) Report() KVReport {
	r := KVReport{Op: k.Op, Clients: k.Clients, Duration: k.Duration.String()}
	switch k.Op {
	case OpPing: // no keys
		return r
	case OpRange:
		r.RangeLimit = k.RangeLimit
	case OpTxn:
		r.TxnKeys = k.txnKeys()
	}
	r.Keys, r.ValueSize = k.Keys, k.ValueSize
	return r
}

// Compare is the ratio of a to b.
func Compare(a, b Result) *Ratio {
	return &Ratio{OpsPerSec: ratio(a.OpsPerSec, b.OpsPerSec), P99: ratio(float64(a.P99), float64(b.P99))}
}

// MedianRatio is the median of rs, each figure on its own: on a machine
// whose speed drifts between runs, one slow round moves it less than it
// moves a mean. nil for none.
func MedianRatio(rs []Ratio) *Ratio {
	if len(rs) == 0 {
		return nil
	}
	pick := func(f func(Ratio) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		return Median(v)
	}
	return &Ratio{
		OpsPerSec: pick(func(r Ratio) float64 { return r.OpsPerSec }),
		P99:       pick(func(r Ratio) float64 { return r.P99 }),
	}
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
	// slots and keyNums are ownedN's scratch space.
	slots, keyNums []int
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
	return measure(ctx, k.Metrics, k.profiled(func() (Result, error) { return Run(ctx, k.spec("metasrv", k.metasrvOp(c))) }))
}

// profiled wraps run in this process's CPU profile when CPUProfile is set.
func (k *KV) profiled(run func() (Result, error)) func() (Result, error) {
	if k.CPUProfile == nil {
		return run
	}
	return func() (Result, error) {
		if err := pprof.StartCPUProfile(k.CPUProfile); err != nil {
			return Result{}, fmt.Errorf("start the CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile()
		return run()
	}
}

// RunPing runs OpPing: the standard gRPC health Check (service "", answered
// from memory, touching no store) through cc, a connection to the leader.
// It is the floor of every other operation's latency and CPU: one unary
// call through the same server, interceptors and transport. The first call
// is made before the run: it connects and checks the node answers SERVING.
func (k *KV) RunPing(ctx context.Context, cc grpc.ClientConnInterface) (Result, error) {
	hc := healthpb.NewHealthClient(cc)
	ping := func(ctx context.Context, _ *kvWorker) error {
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return err
		}
		if st := resp.GetStatus(); st != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("health check: %s", st)
		}
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, k.OpTimeout)
	err := ping(wctx, nil)
	cancel()
	if err != nil {
		return Result{}, fmt.Errorf("ping: %w", k.describe(err))
	}
	return measure(ctx, k.Metrics, k.profiled(func() (Result, error) { return Run(ctx, k.spec("metasrv", ping)) }))
}

func (k *KV) needsPreload() bool { return k.Op != OpPut && k.Op != OpPing }

// txnKeys is TxnKeys, 1 when unset.
func (k *KV) txnKeys() int { return max(k.TxnKeys, 1) }

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

// ownedN picks n distinct keys of w's own, in w's scratch slices (valid
// until the next call): their numbers and slots, ascending by number.
func (k *KV) ownedN(w *kvWorker, n int) (keys, slots []int) {
	w.slots = w.slots[:0]
	for len(w.slots) < n {
		s := w.r.IntN(len(w.versions))
		if !slices.Contains(w.slots, s) {
			w.slots = append(w.slots, s)
		}
	}
	slices.Sort(w.slots)
	w.keyNums = w.keyNums[:0]
	for _, s := range w.slots {
		w.keyNums = append(w.keyNums, s*k.Clients+w.id)
	}
	return w.keyNums, w.slots
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

// metasrvTxn is one Txn of TxnKeys compares (each key's value is the one
// this client wrote last) and as many puts, a get of each key on failure.
func (k *KV) metasrvTxn(c *client.Client) func(ctx context.Context, w *kvWorker) error {
	n := k.txnKeys()
	return func(ctx context.Context, w *kvWorker) error {
		nums, slots := k.ownedN(w, n)
		req := kv.TxnRequest{
			Compare: make([]kv.Compare, 0, n),
			Success: make([]kv.TxnOp, 0, n),
			Failure: make([]kv.TxnOp, 0, n),
		}
		for j, i := range nums {
			key, v := k.key(i), w.versions[slots[j]]
			req.Compare = append(req.Compare, kv.CompareValue(key, kv.CompareEqual, k.value(v)))
			req.Success = append(req.Success, kv.OpPut(key, k.value(v+1)))
			req.Failure = append(req.Failure, kv.OpGet(key))
		}
		resp, err := c.Txn(ctx, req)
		if err != nil {
			return err
		}
		if !resp.Succeeded {
			return fmt.Errorf("txn %q: the compare failed: a value is not the one this client wrote last", k.key(nums[0]))
		}
		for _, s := range slots {
			w.versions[s]++
		}
		return nil
	}
}
