package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/pgmetasrv/metasrv/internal/loadgen"
	"github.com/pgmetasrv/metasrv/pkg/client"
	"github.com/pgmetasrv/metasrv/pkg/config"
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
	txnKeys    int
	metricsURL string
	comparePG  string
	table      string
	keyPrefix  string
	opTimeout  time.Duration
	output     string
	cpuProfile string
	rounds     int
}

func newBenchKVCommand(a *app) *cobra.Command {
	b := &benchKV{app: a}
	cmd := &cobra.Command{
		Use:   "kv",
		Short: "Key-value throughput and latency through the Go client, optionally next to raw SQL on PostgreSQL",
		Long: `Runs -c concurrent clients doing one operation back to back for -d through pkg/client
against the cluster's leader, then prints ops/s and p50/p90/p99/max latency (successful
operations only) and the error count.

Operations: ping (the transport floor: the standard gRPC health Check, answered from
memory, on one connection to the leader shared by the -c clients, as pkg/client shares
its own), put (upsert a random key), get (a random existing key), range (--range-limit
keys from a random existing key), cas (compare-and-put on a key the client owns, always
matching), txn (one Txn of --txn-keys value compares, as many puts on success and gets on
failure, on distinct keys the client owns; the compares always hold). get, range, cas and
txn first preload --keys keys. The benchmark's keys live under --key-prefix and are
deleted at the end.

Server CPU: the leader's process_cpu_seconds_total is read from its /metrics before and
after the metasrv run (not the preload), and the CPU time per 1,000 successful operations
is printed beside ops/s (srv-cpu/1k-ops), with the cores kept busy: on a shared or noisy
machine that reads as efficiency, not only as speed. The URL is --metrics-url, by default
http://<leader host>:4000/metrics (the default http.addr port); a node started with
another --http-addr needs the flag. When it cannot be scraped the output says why and the
run still succeeds. A scraped node that served far fewer gRPC calls than the operations
counted is flagged: it is probably not the leader. The load generator's own CPU time per
1,000 operations (bench-cpu/1k-ops) is printed for every target, raw-pg included: on a
machine it shares with the server, that is part of what a figure costs. --cpu-profile
writes the load generator's CPU profile of the timed metasrv run.

With --compare-pg DSN the same workload then runs as raw SQL through pgx (a pool of -c
connections) on that PostgreSQL, against a scratch table --table (k bytea primary key,
v bytea) created for the run and dropped after it, and the ratios metasrv/raw are printed
(PostgreSQL's own CPU is not measured: raw-pg shows "-"):
  ping   pgx Ping: an empty statement, one round trip (no table)
  put    INSERT .. ON CONFLICT (k) DO UPDATE
  get    SELECT v WHERE k = $1
  range  SELECT k, v WHERE k >= $1 AND k < $2 ORDER BY k LIMIT n
  cas    UPDATE .. SET v = $3 WHERE k = $1 AND v = $2
  txn    --txn-keys 1: BEGIN; SELECT v WHERE k = $1 FOR UPDATE; compare in Go; UPDATE;
         COMMIT. --txn-keys N > 1: BEGIN; SELECT k, v WHERE k = ANY($1) ORDER BY k FOR
         UPDATE (the N rows in one statement); compare in Go; the N UPDATEs as one
         pipelined pgx batch; COMMIT. Four round trips either way.
--rounds N runs the targets N times in turn (metasrv, raw-pg, metasrv, ...), each run
preloading afresh, and prints every round's figures, each round's ratios and their
medians: on a machine whose speed drifts between runs, the medians of alternated rounds
are the figures to read.
A progress line is printed to stderr every second.`,
		Args: cobra.NoArgs,
		// Ctrl-C ends the run through the cleanup: the benchmark's keys
		// and scratch table are removed.
		RunE: runUntilSignal(b.run),
	}
	f := cmd.Flags()
	f.StringSliceVar(&b.endpoints, "endpoints", nil, "metasrv gRPC addresses host:port, comma-separated (default $"+envCtlEndpoints+" or 127.0.0.1:3002)")
	f.StringVar(&b.op, "op", loadgen.OpPut, "operation: ping, put, get, range, cas or txn")
	f.IntVarP(&b.clients, "clients", "c", 64, "concurrent clients")
	f.DurationVarP(&b.duration, "duration", "d", 10*time.Second, "how long each target runs")
	f.IntVar(&b.keys, "keys", 100000, "size of the key space")
	f.IntVar(&b.valueSize, "value-size", 256, "value size in bytes")
	f.IntVar(&b.rangeLimit, "range-limit", 100, "keys per range read")
	f.IntVar(&b.txnKeys, "txn-keys", 1, "keys per txn: that many compares and puts in one Txn (--op txn)")
	f.StringVar(&b.metricsURL, "metrics-url", "", "the leader's Prometheus /metrics URL, or its HTTP host:port, for the server CPU figures; none to skip (default http://<leader host>:4000/metrics)")
	f.StringVar(&b.comparePG, "compare-pg", "", "PostgreSQL DSN (URL or key=value) to run the same workload on as raw SQL")
	f.StringVar(&b.table, "table", "", "scratch table of --compare-pg, created and dropped by the run (default metasrv_bench_<random>)")
	f.StringVar(&b.keyPrefix, "key-prefix", "", "prefix of the benchmark's keys in metasrv (default bench/kv/<random>/)")
	f.DurationVar(&b.opTimeout, "op-timeout", 10*time.Second, "deadline of one operation")
	f.StringVarP(&b.output, "output", "o", outputText, "output format: text or json")
	f.StringVar(&b.cpuProfile, "cpu-profile", "", "write the load generator's own CPU profile (pprof) of the timed metasrv run to this file")
	f.IntVar(&b.rounds, "rounds", 1, "run the targets this many times, metasrv then raw-pg each round; the ratio is the median of the rounds'")
	return cmd
}

var benchTableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// validate refuses bad flags before anything connects or writes.
func (b *benchKV) validate() error {
	switch b.op {
	case loadgen.OpPing, loadgen.OpPut, loadgen.OpGet, loadgen.OpRange, loadgen.OpCAS, loadgen.OpTxn:
	default:
		return fmt.Errorf("--op %q: expected ping, put, get, range, cas or txn", b.op)
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
	case b.rounds < 1:
		return fmt.Errorf("--rounds %d: must be at least 1", b.rounds)
	case b.rounds > 1 && b.cpuProfile != "":
		return fmt.Errorf("--cpu-profile writes the profile of one run: use it with --rounds 1, not %d", b.rounds)
	}
	if b.op == loadgen.OpRange && (b.rangeLimit < 1 || b.rangeLimit > b.keys) {
		return fmt.Errorf("--range-limit %d: must be between 1 and --keys (%d)", b.rangeLimit, b.keys)
	}
	if b.txnKeys < 1 {
		return fmt.Errorf("--txn-keys %d: must be at least 1", b.txnKeys)
	}
	if b.txnKeys != 1 && b.op != loadgen.OpTxn {
		return errors.New("--txn-keys is only used with --op txn")
	}
	if b.op == loadgen.OpCAS || b.op == loadgen.OpTxn {
		if b.valueSize < 4 {
			return fmt.Errorf("--value-size %d: %s needs at least 4 bytes (the value carries a version)", b.valueSize, b.op)
		}
		perClient := 1
		if b.op == loadgen.OpTxn {
			perClient = b.txnKeys
		}
		if b.keys < b.clients*perClient {
			return fmt.Errorf("--keys %d: %s needs at least %d keys per client (--clients %d)", b.keys, b.op, perClient, b.clients)
		}
	}
	if _, err := parseMetricsURL(b.metricsURL); err != nil {
		return err
	}
	if b.table != "" && !benchTableName.MatchString(b.table) {
		return fmt.Errorf("--table %q: expected a plain identifier (letters, digits, underscore; at most 63)", b.table)
	}
	if b.table != "" && b.comparePG == "" {
		return errors.New("--table is only used with --compare-pg")
	}
	return nil
}

func (b *benchKV) run(ctx context.Context, cmd *cobra.Command) (rerr error) {
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
		Keys: b.keys, ValueSize: b.valueSize, RangeLimit: b.rangeLimit, TxnKeys: b.txnKeys, KeyPrefix: b.keyPrefix,
		Progress: b.app.stderr, Describe: describe}
	logger := warnLogger(b.app.stderr)
	if b.cpuProfile != "" {
		f, err := os.Create(b.cpuProfile)
		if err != nil {
			return fmt.Errorf("--cpu-profile: %w", err)
		}
		defer func() {
			if cerr := f.Close(); cerr != nil && rerr == nil {
				rerr = fmt.Errorf("--cpu-profile: %w", cerr)
			}
		}()
		w.CPUProfile = f
	}

	// Connect to PostgreSQL first: a bad DSN should fail before the
	// cluster is loaded with keys.
	var raw *loadgen.RawPG
	if b.comparePG != "" {
		if raw, err = loadgen.OpenRawPG(ctx, w, b.comparePG, b.table, logger); err != nil {
			return err
		}
		defer raw.Close()
	}
	// The closing delete of every benchmark key may take longer than the
	// client's quick-failover attempt (1s); each load operation is bounded
	// by --op-timeout anyway.
	c, err := client.New(ctx, client.Config{Endpoints: endpoints, ClientID: "metasrv-bench",
		RequestTimeout: loadgen.CleanupTimeout, AttemptTimeout: loadgen.CleanupTimeout / 2}, logger)
	if err != nil {
		return describe(err)
	}
	defer c.Close()

	leader, err := c.Leader(ctx)
	if err != nil {
		return fmt.Errorf("find the leader: %w", describe(err))
	}
	if w.Metrics, err = b.scraper(leader.Addr); err != nil {
		return err
	}
	report := w.Report()
	if b.rounds > 1 {
		report.Rounds = b.rounds
	}
	// Alternating the targets round by round spreads a drift of the
	// machine's speed over both, which one long run of each would not.
	var ratios []loadgen.Ratio
	for round := 1; round <= b.rounds; round++ {
		// A single round's results carry no round number.
		label := 0
		if b.rounds > 1 {
			label = round
		}
		var res loadgen.Result
		if b.op == loadgen.OpPing {
			res, err = b.runPing(ctx, w, leader.Addr)
		} else {
			res, err = w.RunMetasrv(ctx, c)
		}
		if err != nil {
			return err
		}
		res.Round = label
		report.Results = append(report.Results, res)
		if raw == nil {
			continue
		}
		rres, err := raw.Run(ctx, w)
		if err != nil {
			return err
		}
		rres.Round = label
		report.Results = append(report.Results, rres)
		ratios = append(ratios, *loadgen.Compare(res, rres))
	}
	report.Ratio = loadgen.MedianRatio(ratios)
	if len(ratios) > 1 {
		report.RoundRatios = ratios
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

// runPing runs --op ping on a connection of its own to the leader, dialled
// as pkg/client dials (plaintext, as bench kv's client is).
func (b *benchKV) runPing(ctx context.Context, w *loadgen.KV, leader string) (loadgen.Result, error) {
	cc, err := grpc.NewClient(leader, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return loadgen.Result{}, fmt.Errorf("ping: leader %q: %w", leader, err)
	}
	defer cc.Close()
	return w.RunPing(ctx, cc)
}

// metricsNone is the --metrics-url that turns the scrape off.
const metricsNone = "none"

// parseMetricsURL normalises --metrics-url: a URL (http or https; the path
// defaults to /metrics) or a bare host:port. "" (derive) and "none" come
// back as they are.
func parseMetricsURL(v string) (string, error) {
	if v == "" || v == metricsNone {
		return v, nil
	}
	raw := v
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("--metrics-url %q: expected an http(s) URL or host:port", v)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/metrics"
	}
	return u.String(), nil
}

// scraper is what reads the leader's CPU counter, nil with --metrics-url
// none. Without the flag the URL is the leader's host on the default HTTP
// port, and a failure to scrape it says so.
func (b *benchKV) scraper(leader string) (*loadgen.Scraper, error) {
	u, err := parseMetricsURL(b.metricsURL)
	if err != nil || u == metricsNone {
		return nil, err
	}
	if u != "" {
		return &loadgen.Scraper{URL: u}, nil
	}
	_, defPort, err := net.SplitHostPort(config.Default().HTTP.Addr)
	if err != nil {
		return nil, fmt.Errorf("the default http.addr: %w", err)
	}
	host, _, err := net.SplitHostPort(leader)
	if err != nil {
		return nil, fmt.Errorf("the leader's address %q: %w", leader, err)
	}
	return &loadgen.Scraper{
		URL:  "http://" + net.JoinHostPort(host, defPort) + "/metrics",
		Hint: "derived from the leader's host and the default HTTP port; give the leader's with --metrics-url",
	}, nil
}
