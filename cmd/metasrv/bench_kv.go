package main

import (
	"context"
	"crypto/rand"
	byteorder "encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"os/signal"
	"regexp"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/pgmetasrv/metasrv/pkg/client"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

const (
	benchOpPut   = "put"
	benchOpGet   = "get"
	benchOpRange = "range"
	benchOpCAS   = "cas"
	benchOpTxn   = "txn"

	// preloadChunk keys go in one BatchPut (or one INSERT) while preloading.
	preloadChunk = 1000
	// preloadParallel chunks are written at once.
	preloadParallel = 4
	// cleanupTimeout bounds deleting the benchmark's keys and table.
	cleanupTimeout = 2 * time.Minute
)

// benchKV holds the flags of `metasrv bench kv`.
type benchKV struct {
	app        *app
	endpoints  []string
	op         string
	clients    int
	duration   time.Duration
	keys       int
	valueSize  int
	rangeLimit int
	comparePG  string
	table      string
	keyPrefix  string
	opTimeout  time.Duration
	output     string
}

func newBenchKVCommand(a *app) *cobra.Command {
	b := &benchKV{app: a}
	cmd := &cobra.Command{
		Use:   "kv",
		Short: "Key-value throughput and latency through the Go client, optionally next to raw SQL on PostgreSQL",
		Long: `Runs -c concurrent clients doing one operation back to back for -d through pkg/client
against the cluster's leader, then prints ops/s and p50/p90/p99/max latency (successful
operations only) and the error count.

Operations: put (upsert a random key), get (a random existing key), range (--range-limit
keys from a random existing key), cas (compare-and-put on a key the client owns, always
matching), txn (compare value, put on success, get on failure; same keys as cas).
get, range, cas and txn first preload --keys keys. The benchmark's keys live under
--key-prefix and are deleted at the end.

With --compare-pg DSN the same workload then runs as raw SQL through pgx (a pool of -c
connections) on that PostgreSQL, against a scratch table --table (k bytea primary key,
v bytea) created for the run and dropped after it, and the ratios metasrv/raw are printed:
  put    INSERT .. ON CONFLICT (k) DO UPDATE
  get    SELECT v WHERE k = $1
  range  SELECT k, v WHERE k >= $1 AND k < $2 ORDER BY k LIMIT n
  cas    UPDATE .. SET v = $3 WHERE k = $1 AND v = $2
  txn    BEGIN; SELECT v .. FOR UPDATE; UPDATE; COMMIT
A progress line is printed to stderr every second.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Ctrl-C ends the run through the cleanup: the benchmark's keys
			// and scratch table are removed.
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return b.run(ctx, cmd)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&b.endpoints, "endpoints", nil, "metasrv gRPC addresses host:port, comma-separated (default $"+envCtlEndpoints+" or 127.0.0.1:3002)")
	f.StringVar(&b.op, "op", benchOpPut, "operation: put, get, range, cas or txn")
	f.IntVarP(&b.clients, "clients", "c", 64, "concurrent clients")
	f.DurationVarP(&b.duration, "duration", "d", 10*time.Second, "how long each target runs")
	f.IntVar(&b.keys, "keys", 100000, "size of the key space")
	f.IntVar(&b.valueSize, "value-size", 256, "value size in bytes")
	f.IntVar(&b.rangeLimit, "range-limit", 100, "keys per range read")
	f.StringVar(&b.comparePG, "compare-pg", "", "PostgreSQL DSN (URL or key=value) to run the same workload on as raw SQL")
	f.StringVar(&b.table, "table", "", "scratch table of --compare-pg, created and dropped by the run (default metasrv_bench_<random>)")
	f.StringVar(&b.keyPrefix, "key-prefix", "", "prefix of the benchmark's keys in metasrv (default bench/kv/<random>/)")
	f.DurationVar(&b.opTimeout, "op-timeout", 10*time.Second, "deadline of one operation")
	f.StringVarP(&b.output, "output", "o", outputText, "output format: text or json")
	return cmd
}

var benchTableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// validate refuses bad flags before anything connects or writes.
func (b *benchKV) validate() error {
	switch b.op {
	case benchOpPut, benchOpGet, benchOpRange, benchOpCAS, benchOpTxn:
	default:
		return fmt.Errorf("--op %q: expected put, get, range, cas or txn", b.op)
	}
	switch {
	case b.clients < 1:
		return fmt.Errorf("--clients %d: must be at least 1", b.clients)
	case b.duration <= 0:
		return fmt.Errorf("--duration %s: must be positive", b.duration)
	case b.opTimeout <= 0:
		return fmt.Errorf("--op-timeout %s: must be positive", b.opTimeout)
	case b.keys < 1:
		return fmt.Errorf("--keys %d: must be at least 1", b.keys)
	case b.valueSize < 1:
		return fmt.Errorf("--value-size %d: must be at least 1", b.valueSize)
	case b.output != outputText && b.output != outputJSON:
		return fmt.Errorf("--output %q: expected text or json", b.output)
	}
	if b.op == benchOpRange && (b.rangeLimit < 1 || b.rangeLimit > b.keys) {
		return fmt.Errorf("--range-limit %d: must be between 1 and --keys (%d)", b.rangeLimit, b.keys)
	}
	if b.op == benchOpCAS || b.op == benchOpTxn {
		if b.valueSize < 4 {
			return fmt.Errorf("--value-size %d: %s needs at least 4 bytes (the value carries a version)", b.valueSize, b.op)
		}
		if b.keys < b.clients {
			return fmt.Errorf("--keys %d: %s needs at least one key per client (--clients %d)", b.keys, b.op, b.clients)
		}
	}
	if b.table != "" && !benchTableName.MatchString(b.table) {
		return fmt.Errorf("--table %q: expected a plain identifier (letters, digits, underscore; at most 63)", b.table)
	}
	if b.table != "" && b.comparePG == "" {
		return errors.New("--table is only used with --compare-pg")
	}
	return nil
}

// benchKVReport is the result of `bench kv`, printed as text or JSON.
type benchKVReport struct {
	Op         string       `json:"op"`
	Clients    int          `json:"clients"`
	Duration   string       `json:"duration"`
	Keys       int          `json:"keys"`
	ValueSize  int          `json:"value_size"`
	RangeLimit int          `json:"range_limit,omitempty"`
	Results    []loadResult `json:"results"`
	// Ratio is metasrv/raw, present with --compare-pg.
	Ratio *benchRatio `json:"ratio,omitempty"`
}

type benchRatio struct {
	OpsPerSec float64 `json:"ops_per_sec"`
	P99       float64 `json:"p99"`
}

func (b *benchKV) run(ctx context.Context, cmd *cobra.Command) error {
	if err := b.validate(); err != nil {
		return err
	}
	o := &ctlOptions{app: b.app, endpoints: b.endpoints}
	endpoints, err := o.resolveEndpoints(cmd)
	if err != nil {
		return err
	}
	if b.keyPrefix == "" {
		b.keyPrefix = "bench/kv/" + randomHex(4) + "/"
	}
	if b.table == "" {
		b.table = "metasrv_bench_" + randomHex(4)
	}
	logger := slog.New(slog.NewTextHandler(b.app.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	// Connect to PostgreSQL first: a bad DSN should fail before the
	// cluster is loaded with keys.
	var raw *rawPG
	if b.comparePG != "" {
		raw, err = openRawPG(ctx, b, logger)
		if err != nil {
			return err
		}
		defer raw.close()
	}

	c, err := client.New(ctx, client.Config{Endpoints: endpoints, ClientID: "metasrv-bench"}, logger)
	if err != nil {
		return describe(err)
	}
	defer c.Close()

	report := benchKVReport{Op: b.op, Clients: b.clients, Duration: b.duration.String(), Keys: b.keys, ValueSize: b.valueSize}
	if b.op == benchOpRange {
		report.RangeLimit = b.rangeLimit
	}
	res, err := b.runMetasrv(ctx, c)
	if err != nil {
		return err
	}
	report.Results = append(report.Results, res)
	if raw != nil {
		rres, err := raw.run(ctx, b)
		if err != nil {
			return err
		}
		report.Results = append(report.Results, rres)
		report.Ratio = &benchRatio{OpsPerSec: ratio(res.OpsPerSec, rres.OpsPerSec), P99: ratio(float64(res.P99), float64(rres.P99))}
	}
	if err := b.print(report); err != nil {
		return err
	}
	for _, r := range report.Results {
		if r.Ops == 0 {
			return fmt.Errorf("%s: no operation succeeded (%d errors, first: %s)", r.Target, r.Errors, r.FirstError)
		}
	}
	return nil
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// runMetasrv preloads if the operation needs it, runs the load through the
// client, and deletes the benchmark's keys whatever happened.
func (b *benchKV) runMetasrv(ctx context.Context, c *client.Client) (res loadResult, err error) {
	prefix := []byte(b.keyPrefix)
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if _, derr := c.DeleteRange(cctx, kv.DeleteRangeRequest{Key: prefix, RangeEnd: kv.PrefixEnd(prefix)}); derr != nil {
			err = errors.Join(err, fmt.Errorf("delete the benchmark's keys under %q: %w", b.keyPrefix, describe(derr)))
		}
	}()
	if b.needsPreload() {
		err := b.preload(ctx, "metasrv", func(ctx context.Context, lo, hi int) error {
			kvs := make([]kv.KeyValue, 0, hi-lo)
			for i := lo; i < hi; i++ {
				kvs = append(kvs, kv.KeyValue{Key: b.key(i), Value: b.value(0)})
			}
			_, err := c.BatchPut(ctx, kv.BatchPutRequest{Kvs: kvs})
			return err
		})
		if err != nil {
			return loadResult{}, err
		}
	}
	return runLoad(ctx, b.spec("metasrv", b.metasrvOp(c)))
}

func (b *benchKV) needsPreload() bool { return b.op != benchOpPut }

// preload writes keys [0, --keys) in chunks, a few chunks at a time.
func (b *benchKV) preload(ctx context.Context, target string, write func(ctx context.Context, lo, hi int) error) error {
	fmt.Fprintf(b.app.stderr, "%s: preloading %d keys of %d bytes\n", target, b.keys, b.valueSize)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(preloadParallel)
	for lo := 0; lo < b.keys; lo += preloadChunk {
		hi := min(lo+preloadChunk, b.keys)
		g.Go(func() error {
			cctx, cancel := context.WithTimeout(gctx, time.Minute)
			defer cancel()
			if err := write(cctx, lo, hi); err != nil {
				return fmt.Errorf("%s: preload keys %d..%d: %w", target, lo, hi-1, describe(err))
			}
			return nil
		})
	}
	return g.Wait()
}

func (b *benchKV) spec(target string, op func(ctx context.Context, w *benchWorker) error) loadSpec {
	return loadSpec{
		target:    target,
		clients:   b.clients,
		duration:  b.duration,
		opTimeout: b.opTimeout,
		progress:  b.app.stderr,
		newWorker: b.newWorker,
		op:        op,
	}
}

func (b *benchKV) newWorker(id int) *benchWorker {
	w := &benchWorker{id: id, r: mrand.New(mrand.NewPCG(mrand.Uint64(), mrand.Uint64()))}
	if b.op == benchOpCAS || b.op == benchOpTxn {
		w.versions = make([]uint32, (b.keys-id+b.clients-1)/b.clients)
	}
	return w
}

// key is key number i of the benchmark's key space; keys sort by number.
func (b *benchKV) key(i int) []byte { return fmt.Appendf([]byte(b.keyPrefix), "%08d", i) }

// value is a --value-size value ending with version (big-endian) when it
// has room for it.
func (b *benchKV) value(version uint32) []byte {
	v := make([]byte, b.valueSize)
	for i := range v {
		v[i] = 'v'
	}
	if len(v) >= 4 {
		byteorder.BigEndian.PutUint32(v[len(v)-4:], version)
	}
	return v
}

// owned picks one of w's own keys: its number and its slot in w.versions.
func (b *benchKV) owned(w *benchWorker) (i, slot int) {
	slot = w.r.IntN(len(w.versions))
	return slot*b.clients + w.id, slot
}

// rangeStart picks a range start with --range-limit keys after it.
func (b *benchKV) rangeStart(w *benchWorker) int { return w.r.IntN(b.keys - b.rangeLimit + 1) }

func (b *benchKV) metasrvOp(c *client.Client) func(ctx context.Context, w *benchWorker) error {
	put := b.value(0)
	end := kv.PrefixEnd([]byte(b.keyPrefix))
	switch b.op {
	case benchOpPut:
		return func(ctx context.Context, w *benchWorker) error {
			_, err := c.Put(ctx, kv.PutRequest{Key: b.key(w.r.IntN(b.keys)), Value: put})
			return err
		}
	case benchOpGet:
		return func(ctx context.Context, w *benchWorker) error {
			k := b.key(w.r.IntN(b.keys))
			got, err := c.Get(ctx, k)
			if err == nil && got == nil {
				err = fmt.Errorf("get %q: preloaded key missing", k)
			}
			return err
		}
	case benchOpRange:
		return func(ctx context.Context, w *benchWorker) error {
			resp, err := c.Range(ctx, kv.RangeRequest{Key: b.key(b.rangeStart(w)), RangeEnd: end, Limit: int64(b.rangeLimit)})
			if err == nil && len(resp.Kvs) != b.rangeLimit {
				err = fmt.Errorf("range: got %d keys, want %d", len(resp.Kvs), b.rangeLimit)
			}
			return err
		}
	case benchOpCAS:
		return func(ctx context.Context, w *benchWorker) error {
			i, slot := b.owned(w)
			v := w.versions[slot]
			resp, err := c.CompareAndPut(ctx, kv.CompareAndPutRequest{Key: b.key(i), Expect: b.value(v), Value: b.value(v + 1)})
			if err != nil {
				return err
			}
			if !resp.Success {
				return fmt.Errorf("cas %q: the value is not the one this client wrote last", b.key(i))
			}
			w.versions[slot]++
			return nil
		}
	default: // txn
		return func(ctx context.Context, w *benchWorker) error {
			i, slot := b.owned(w)
			v, k := w.versions[slot], b.key(i)
			resp, err := c.Txn(ctx, kv.TxnRequest{
				Compare: []kv.Compare{kv.CompareValue(k, kv.CompareEqual, b.value(v))},
				Success: []kv.TxnOp{kv.OpPut(k, b.value(v+1))},
				Failure: []kv.TxnOp{kv.OpGet(k)},
			})
			if err != nil {
				return err
			}
			if !resp.Succeeded {
				return fmt.Errorf("txn %q: the compare failed: the value is not the one this client wrote last", k)
			}
			w.versions[slot]++
			return nil
		}
	}
}

// randomHex returns n random bytes, hex-encoded, for names unique per run.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
