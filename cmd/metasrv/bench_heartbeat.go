package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgmetasrv/metasrv/internal/greptimefake"
	"github.com/pgmetasrv/metasrv/internal/hbload"
	"github.com/pgmetasrv/metasrv/internal/loadgen"
	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/grpczstd" // GreptimeDB's nodes send zstd
)

// benchHeartbeat holds the flags of `metasrv bench heartbeat`.
type benchHeartbeat struct {
	app           *app
	endpoints     []string
	nodes         int
	interval      time.Duration
	duration      time.Duration
	connsPer      int
	role          string
	ramp          time.Duration
	warmupTimeout time.Duration
	metricsURL    string
	output        string
}

// benchRoles are the --role values.
var benchRoles = map[string]metapb.Role{
	"datanode": greptimefake.Datanode,
	"frontend": greptimefake.Frontend,
	"flownode": greptimefake.Flownode,
}

func newBenchHeartbeatCommand(a *app) *cobra.Command {
	b := &benchHeartbeat{app: a}
	cmd := &cobra.Command{
		Use:   "heartbeat",
		Short: "Heartbeat load of fake GreptimeDB nodes on the leader: rate, latency, server CPU and memory",
		Long: `Starts --nodes fake GreptimeDB nodes of --role (ids 1..N) that speak greptime.v1.meta to the
cluster exactly as GreptimeDB's meta-client does: ask every endpoint for the leader, open the
Heartbeat stream to it, handshake, beat at the interval the handshake returned, and reconnect
on a NotLeader answer or a broken stream. Requests are zstd-compressed, as GreptimeDB's are.
The nodes share connection pools of --conns-per nodes each (one connection per metasrv address
per pool), as the nodes of one process would share GreptimeDB's channel manager.

The interval: metasrv tells every node its interval in the handshake (heartbeat_config:
heartbeat_interval for datanodes and flownodes, six times it for frontends), so the nodes beat
at the cluster's heartbeat_interval whatever this command is told. --interval must be the
heartbeat_interval the cluster runs with (its config file, or METASRV_HEARTBEAT_INTERVAL): it
sets the expected rate, and the output reports the interval the handshakes actually returned
and warns when it differs.

Warm-up lasts until every node has completed a handshake (--ramp spreads the starts; without
it all nodes start at once, as after a leader failover) and its length is printed. Then, for
-d: heartbeats answered per second next to the expected rate, p50/p90/p99/max latency from
a beat's send to its answer (of beats sent in the window), errors, reconnects and not-leader
answers. The whole run's latency, warm-up included, is printed below from the nodes' own
histograms.

Server figures (with --metrics-url, the leader's /metrics URL or HTTP host:port): its
process_cpu_seconds_total before and after the window gives the CPU time per 1,000
heartbeats (srv-cpu/1k-hb) and the cores kept busy, and process_resident_memory_bytes
before the first node started and at the end gives its RSS and the growth per node. A
scraped node that reports metasrv_is_leader 0 is flagged.

metasrv serves at most 256 concurrent streams on one connection: a pool of more nodes
leaves the rest waiting for a stream slot, so keep --conns-per at 250 or below against
metasrv. A progress line is printed to stderr every second.`,
		Args: cobra.NoArgs,
		RunE: runUntilSignal(b.run),
	}
	f := cmd.Flags()
	f.StringSliceVar(&b.endpoints, "endpoints", nil, "metasrv gRPC addresses host:port, comma-separated (default $"+envCtlEndpoints+" or 127.0.0.1:3002)")
	f.IntVar(&b.nodes, "nodes", 1000, "fake nodes, ids 1..N")
	f.DurationVar(&b.interval, "interval", 3*time.Second, "the cluster's heartbeat_interval; the server dictates the nodes' interval in the handshake, so this must match it")
	f.DurationVarP(&b.duration, "duration", "d", 30*time.Second, "how long the measurement runs, after the warm-up")
	f.IntVar(&b.connsPer, "conns-per", 250, "nodes per shared connection pool (at most 256 against metasrv: its streams per connection)")
	f.StringVar(&b.role, "role", "datanode", "role of the nodes: datanode, frontend or flownode")
	f.DurationVar(&b.ramp, "ramp", 0, "spread the nodes' starts evenly over this time (0: all at once)")
	f.DurationVar(&b.warmupTimeout, "warmup-timeout", 2*time.Minute, "how long every node may take to complete its first handshake")
	f.StringVar(&b.metricsURL, "metrics-url", "", "the leader's Prometheus /metrics URL, or its HTTP host:port, for its CPU and RSS (default: not measured)")
	f.StringVarP(&b.output, "output", "o", outputText, "output format: text or json")
	return cmd
}

// validate refuses bad flags before any node starts.
func (b *benchHeartbeat) validate() error {
	if _, ok := benchRoles[b.role]; !ok {
		return fmt.Errorf("--role %q: expected datanode, frontend or flownode", b.role)
	}
	switch {
	case b.nodes < 1:
		return fmt.Errorf("--nodes %d: must be at least 1", b.nodes)
	case b.interval <= 0:
		return fmt.Errorf("--interval %s: must be positive (the cluster's heartbeat_interval)", b.interval)
	case b.duration <= 0:
		return fmt.Errorf("--duration %s: must be positive", b.duration)
	case b.connsPer < 1:
		return fmt.Errorf("--conns-per %d: must be at least 1", b.connsPer)
	case b.ramp < 0:
		return fmt.Errorf("--ramp %s: must not be negative", b.ramp)
	case b.warmupTimeout <= b.ramp:
		return fmt.Errorf("--warmup-timeout %s: must be longer than --ramp (%s)", b.warmupTimeout, b.ramp)
	case b.output != outputText && b.output != outputJSON:
		return fmt.Errorf("--output %q: expected text or json", b.output)
	}
	_, err := parseMetricsURL(b.metricsURL)
	return err
}

func (b *benchHeartbeat) run(ctx context.Context, cmd *cobra.Command) error {
	if err := b.validate(); err != nil {
		return err
	}
	endpoints, err := (&ctlOptions{app: b.app, endpoints: b.endpoints}).resolveEndpoints(cmd)
	if err != nil {
		return err
	}
	cfg := hbload.Config{
		Endpoints: endpoints, Role: benchRoles[b.role], Nodes: b.nodes, Interval: b.interval,
		Duration: b.duration, ConnsPer: b.connsPer, Ramp: b.ramp, WarmupTimeout: b.warmupTimeout,
		Compressor: grpczstd.Name, Progress: b.app.stderr,
	}
	if u, _ := parseMetricsURL(b.metricsURL); u != "" && u != metricsNone {
		cfg.Metrics = &loadgen.Scraper{URL: u}
	}
	rep, err := hbload.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if err := b.print(rep); err != nil {
		return err
	}
	if rep.Window.Responses == 0 {
		return fmt.Errorf("no heartbeat was answered in %s (%d errors%s)", b.duration, rep.Window.Errors, firstNodeWarning(rep.Window.FirstWarning))
	}
	return nil
}

func firstNodeWarning(w string) string {
	if w == "" {
		return ""
	}
	return "; the first node warning: " + w
}
