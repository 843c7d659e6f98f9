package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/pgmetasrv/metasrv/pkg/client"
	"github.com/pgmetasrv/metasrv/pkg/config"
	"github.com/pgmetasrv/metasrv/pkg/postgres"
)

const (
	faultKill      = "kill"
	faultTerminate = "terminate"
	faultPause     = "pause"
	faultResign    = "resign"
	faultPartition = "partition"
)

// benchFailover holds the flags of `metasrv bench failover`.
type benchFailover struct {
	app          *app
	storeAddr    string
	nodes        int
	rounds       int
	fault        string
	binary       string
	lease        time.Duration
	campaign     time.Duration
	roundTimeout time.Duration
	logDir       string
	output       string
}

func newBenchFailoverCommand(a *app) *cobra.Command {
	d := config.Default()
	f := &benchFailover{app: a}
	cmd := &cobra.Command{
		Use:   "failover",
		Short: "Leader failover times, and fencing of deposed leaders, over repeated faults on child processes",
		Long: `Starts --nodes metasrv nodes (postgres_store) as child processes of --binary on a fresh
schema bench_<random> with their own election lock id, then --rounds times: finds the leader,
injects the fault on it, and measures the time from the fault to the first write acknowledged
by a leader of a newer term (a new leader that accepts writes), writing through the other nodes.
It also measures the failover as an application sees it: a pkg/client with the default
configuration and the old leader cached writes and reads from the fault on, and the time to
its first successful write and read is reported beside the server-side figure.

Faults:
  kill       SIGKILL the leader's process; it is restarted (as a follower) for the next round
  terminate  pg_terminate_backend on the leader's election session
  pause      SIGSTOP the leader for lease+1s, then SIGCONT
  resign     SIGTERM (graceful shutdown, which resigns); restarted for the next round
  partition  the leader's PostgreSQL connections (through a per-node TCP proxy) go silent;
             healed after the new leader's first write

During every fault a writer pinned to the old leader's address keeps writing the key the new
leader writes. An acknowledged write of the old term sent after the new leader's first write,
or one that replaced it, is a fenced write accepted by a deposed leader: the command reports
their count and exits non-zero if there is any, or if a round found no new leader in time.

Children, proxies and the schema are removed at the end, on error and on Ctrl-C. Child logs go
to --log-dir (default: a temporary directory, kept only when something failed).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return f.run(ctx)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.storeAddr, "store-addrs", "", "PostgreSQL address (URL or key=value) the nodes use; the benchmark creates and drops its own schema there")
	fl.IntVar(&f.nodes, "nodes", 3, "metasrv nodes to run")
	fl.IntVar(&f.rounds, "rounds", 20, "faults to inject")
	fl.StringVar(&f.fault, "fault", faultKill, "fault: kill, terminate, pause, resign or partition")
	fl.StringVar(&f.binary, "binary", "", "metasrv binary to run the nodes with (default: this one)")
	fl.DurationVar(&f.lease, "lease", d.Election.Lease, "election.lease of the nodes")
	fl.DurationVar(&f.campaign, "campaign-interval", d.Election.CampaignInterval, "election.campaign_interval of the nodes")
	fl.DurationVar(&f.roundTimeout, "round-timeout", 30*time.Second, "give up on a round that finds no new leader by then")
	fl.StringVar(&f.logDir, "log-dir", "", "directory for the nodes' logs (kept)")
	fl.StringVarP(&f.output, "output", "o", outputText, "output format: text or json")
	return cmd
}

func (f *benchFailover) validate() error {
	switch f.fault {
	case faultKill, faultTerminate, faultPause, faultResign, faultPartition:
	default:
		return fmt.Errorf("--fault %q: expected kill, terminate, pause, resign or partition", f.fault)
	}
	switch {
	case f.storeAddr == "":
		return errors.New("--store-addrs is required: the PostgreSQL the nodes run on")
	case f.nodes < 2:
		return fmt.Errorf("--nodes %d: a failover needs at least 2", f.nodes)
	case f.rounds < 1:
		return fmt.Errorf("--rounds %d: must be at least 1", f.rounds)
	case f.lease <= 0 || f.campaign <= 0 || f.roundTimeout <= 0:
		return fmt.Errorf("--lease %s, --campaign-interval %s and --round-timeout %s must be positive", f.lease, f.campaign, f.roundTimeout)
	case f.output != outputText && f.output != outputJSON:
		return fmt.Errorf("--output %q: expected text or json", f.output)
	}
	return nil
}

// failoverRound is one fault and what followed.
type failoverRound struct {
	Round         int           `json:"round"`
	OldLeader     string        `json:"old_leader"`
	OldTerm       int64         `json:"old_term"`
	NewLeader     string        `json:"new_leader,omitempty"`
	NewTerm       int64         `json:"new_term,omitempty"`
	Took          time.Duration `json:"-"`
	TookMs        float64       `json:"took_ms"`
	TimedOut      bool          `json:"timed_out,omitempty"`
	PinnedAcked   int           `json:"pinned_writes_acked"`
	PinnedRefused int           `json:"pinned_writes_refused"`
	Violations    int           `json:"fenced_writes_accepted"`
	ViolationNote string        `json:"violation,omitempty"`
	// Client*: the same failover seen through pkg/client (default
	// configuration, the old leader cached): fault to first successful
	// write and read started after it.
	ClientWriteMs       float64 `json:"client_write_ms"`
	ClientReadMs        float64 `json:"client_read_ms"`
	ClientWriteTimedOut bool    `json:"client_write_timed_out,omitempty"`
	ClientReadTimedOut  bool    `json:"client_read_timed_out,omitempty"`
}

type failoverReport struct {
	Fault            string          `json:"fault"`
	Nodes            int             `json:"nodes"`
	Lease            string          `json:"lease"`
	CampaignInterval string          `json:"campaign_interval"`
	Rounds           []failoverRound `json:"rounds"`
	MedianMs         float64         `json:"median_ms"`
	P99Ms            float64         `json:"p99_ms"`
	MaxMs            float64         `json:"max_ms"`
	Timeouts         int             `json:"timeouts"`
	Violations       int             `json:"fenced_writes_accepted"`
	ClientWrite      clientStats     `json:"client_write"`
	ClientRead       clientStats     `json:"client_read"`
}

// failoverRun is the state of one `bench failover` run.
type failoverRun struct {
	f       *benchFailover
	cluster *benchCluster
	client  *client.Client
	// probe is the client the client-side figures are measured with: the
	// defaults an application gets, unlike client's quick retries.
	probe   *client.Client
	admin   *pgx.ConnConfig
	adminDB *pgx.Conn
}

func (f *benchFailover) run(ctx context.Context) (err error) {
	if err := f.validate(); err != nil {
		return err
	}
	if f.binary == "" {
		if f.binary, err = os.Executable(); err != nil {
			return fmt.Errorf("find this binary (give --binary): %w", err)
		}
	}
	o := config.Default()
	o.Backend, o.StoreAddrs = config.BackendPostgres, []string{f.storeAddr}
	admin, err := postgres.ConnConfig(o, "metasrv-bench")
	if err != nil {
		return fmt.Errorf("--store-addrs %s: %w", config.SanitizeStoreAddr(f.storeAddr), err)
	}
	r := &failoverRun{f: f, admin: admin}
	if r.adminDB, err = pgx.ConnectConfig(ctx, admin); err != nil {
		return fmt.Errorf("connect to %s: %w", config.SanitizeStoreAddr(f.storeAddr), err)
	}
	defer func() { _ = r.adminDB.Close(context.Background()) }()

	logDir, keepLogs := f.logDir, f.logDir != ""
	if logDir == "" {
		if logDir, err = os.MkdirTemp("", "metasrv-bench-failover-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	defer func() {
		if err != nil && !keepLogs {
			fmt.Fprintf(f.app.stderr, "bench failover: node logs kept in %s\n", logDir)
		} else if !keepLogs {
			_ = os.RemoveAll(logDir)
		}
	}()

	r.cluster = &benchCluster{
		binary:   f.binary,
		dsn:      f.storeAddr,
		schema:   "bench_" + randomHex(6),
		lockID:   int64(mrand.Uint32()) | 0x6d657461<<32, // "meta" in the high half: no clash with lock id 1
		lease:    f.lease,
		campaign: f.campaign,
		logDir:   logDir,
		viaProxy: f.fault == faultPartition,
		logger:   slog.New(slog.NewTextHandler(f.app.stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	defer func() {
		err = errors.Join(err, r.cluster.close(r.exec))
	}()
	if err := newBenchCluster(ctx, r.cluster, f.nodes); err != nil {
		return err
	}
	fmt.Fprintf(f.app.stderr, "bench failover: starting %d nodes (schema %s, lease %s, campaign interval %s)\n", f.nodes, r.cluster.schema, f.lease, f.campaign)
	// The first node migrates the schema alone; the others start together.
	if err := r.cluster.start(ctx, r.cluster.nodes[0]); err != nil {
		return err
	}
	var endpoints []string
	for _, n := range r.cluster.nodes {
		endpoints = append(endpoints, n.grpcAddr)
	}
	r.client, err = client.New(ctx, client.Config{Endpoints: endpoints, ClientID: "metasrv-bench",
		MinRetryBackoff: 5 * time.Millisecond, MaxRetryBackoff: 100 * time.Millisecond}, r.cluster.logger)
	if err != nil {
		return err
	}
	defer r.client.Close()
	r.probe, err = client.New(ctx, client.Config{Endpoints: endpoints, ClientID: "metasrv-bench-probe"}, r.cluster.logger)
	if err != nil {
		return err
	}
	defer r.probe.Close()

	report := failoverReport{Fault: f.fault, Nodes: f.nodes, Lease: f.lease.String(), CampaignInterval: f.campaign.String()}
	for i := 1; i <= f.rounds; i++ {
		res, err := r.round(ctx, i)
		if err != nil {
			return fmt.Errorf("round %d: %w", i, err)
		}
		fmt.Fprintf(f.app.stderr, "%s\n", res.line(f.rounds))
		report.Rounds = append(report.Rounds, res)
	}
	report.summarise()
	if err := f.print(report); err != nil {
		return err
	}
	switch {
	case report.Violations > 0:
		return fmt.Errorf("fencing violation: %d writes accepted by deposed leaders (must be 0)", report.Violations)
	case report.Timeouts > 0:
		return fmt.Errorf("%d of %d rounds found no new leader within --round-timeout %s", report.Timeouts, len(report.Rounds), f.roundTimeout)
	}
	return nil
}

// exec runs one statement on the admin connection, reconnecting once if it
// broke.
func (r *failoverRun) exec(ctx context.Context, sql string) error {
	_, err := r.adminDB.Exec(ctx, sql)
	if err != nil && r.adminDB.IsClosed() {
		if r.adminDB, err = pgx.ConnectConfig(ctx, r.admin); err == nil {
			_, err = r.adminDB.Exec(ctx, sql)
		}
	}
	return err
}

func (rep *failoverReport) summarise() {
	var took []time.Duration
	for _, r := range rep.Rounds {
		rep.Violations += r.Violations
		if r.TimedOut {
			rep.Timeouts++
			continue
		}
		took = append(took, r.Took)
	}
	rep.MedianMs, rep.P99Ms, rep.MaxMs = latencyStats(took)
	rep.ClientWrite = summariseProbe(rep.Rounds, func(r failoverRound) (float64, bool) { return r.ClientWriteMs, r.ClientWriteTimedOut })
	rep.ClientRead = summariseProbe(rep.Rounds, func(r failoverRound) (float64, bool) { return r.ClientReadMs, r.ClientReadTimedOut })
}

func (r failoverRound) line(rounds int) string {
	s := fmt.Sprintf("round %2d/%d: leader %s (term %d) -> ", r.Round, rounds, r.OldLeader, r.OldTerm)
	if r.TimedOut {
		s += "no new leader accepted a write in time"
	} else {
		s += fmt.Sprintf("%s (term %d) accepts writes after %s", r.NewLeader, r.NewTerm, fmtLatency(r.Took))
	}
	s += fmt.Sprintf("; client: write after %s, read after %s", probeText(r.ClientWriteMs, r.ClientWriteTimedOut), probeText(r.ClientReadMs, r.ClientReadTimedOut))
	s += fmt.Sprintf("; pinned writes to the old leader: %d acked, %d refused", r.PinnedAcked, r.PinnedRefused)
	if r.Violations > 0 {
		s += fmt.Sprintf("; FENCED WRITES ACCEPTED: %d (%s)", r.Violations, r.ViolationNote)
	}
	return s
}

func (f *benchFailover) print(rep failoverReport) error {
	out := f.app.stdout
	if f.output == outputJSON {
		return jsonEncode(out, rep)
	}
	fmt.Fprintf(out, "bench failover: fault=%s nodes=%d rounds=%d lease=%s campaign_interval=%s\n",
		rep.Fault, rep.Nodes, len(rep.Rounds), rep.Lease, rep.CampaignInterval)
	for _, r := range rep.Rounds {
		fmt.Fprintln(out, r.line(len(rep.Rounds)))
	}
	fmt.Fprintf(out, "time to a new leader accepting writes: median %.0fms, p99 %.0fms, max %.0fms (%d rounds, %d timed out)\n",
		rep.MedianMs, rep.P99Ms, rep.MaxMs, len(rep.Rounds)-rep.Timeouts, rep.Timeouts)
	fmt.Fprintf(out, "seen through pkg/client (defaults), fault to first successful write: %s\n", rep.ClientWrite)
	fmt.Fprintf(out, "seen through pkg/client (defaults), fault to first successful read: %s\n", rep.ClientRead)
	fmt.Fprintf(out, "fenced writes accepted by deposed leaders: %d (must be 0)\n", rep.Violations)
	return nil
}
