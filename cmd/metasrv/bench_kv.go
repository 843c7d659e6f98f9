package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgmetasrv/metasrv/internal/loadgen"
	"github.com/pgmetasrv/metasrv/pkg/client"
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
	f.StringVar(&b.op, "op", loadgen.OpPut, "operation: put, get, range, cas or txn")
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
	case loadgen.OpPut, loadgen.OpGet, loadgen.OpRange, loadgen.OpCAS, loadgen.OpTxn:
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
	if b.op == loadgen.OpRange && (b.rangeLimit < 1 || b.rangeLimit > b.keys) {
		return fmt.Errorf("--range-limit %d: must be between 1 and --keys (%d)", b.rangeLimit, b.keys)
	}
	if b.op == loadgen.OpCAS || b.op == loadgen.OpTxn {
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
		b.keyPrefix = "bench/kv/" + loadgen.RandomHex(4) + "/"
	}
	if b.table == "" {
		b.table = "metasrv_bench_" + loadgen.RandomHex(4)
	}
	w := &loadgen.KV{Op: b.op, Clients: b.clients, Duration: b.duration, OpTimeout: b.opTimeout,
		Keys: b.keys, ValueSize: b.valueSize, RangeLimit: b.rangeLimit, KeyPrefix: b.keyPrefix,
		Progress: b.app.stderr, Describe: describe}
	logger := slog.New(slog.NewTextHandler(b.app.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	// Connect to PostgreSQL first: a bad DSN should fail before the
	// cluster is loaded with keys.
	var raw *loadgen.RawPG
	if b.comparePG != "" {
		if raw, err = loadgen.OpenRawPG(ctx, w, b.comparePG, b.table, logger); err != nil {
			return err
		}
		defer raw.Close()
	}
	c, err := client.New(ctx, client.Config{Endpoints: endpoints, ClientID: "metasrv-bench"}, logger)
	if err != nil {
		return describe(err)
	}
	defer c.Close()

	report := w.Report()
	res, err := w.RunMetasrv(ctx, c)
	if err != nil {
		return err
	}
	report.Results = append(report.Results, res)
	if raw != nil {
		rres, err := raw.Run(ctx, w)
		if err != nil {
			return err
		}
		report.Results = append(report.Results, rres)
		report.Ratio = loadgen.Compare(res, rres)
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
