// Package failoverbench measures leader failover of a metasrv cluster run
// as child processes (internal/proccluster): repeated faults on the leader,
// the time to the first write acknowledged under a newer term, the same
// seen through pkg/client, and fencing of the deposed leader's writes. It
// is the body of `metasrv-bench failover`.
package failoverbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmetasrv/metasrv/internal/loadgen"
	"github.com/pgmetasrv/metasrv/internal/proccluster"
	"github.com/pgmetasrv/metasrv/pkg/client"
	"github.com/pgmetasrv/metasrv/pkg/config"
	"github.com/pgmetasrv/metasrv/pkg/postgres"
)

// The faults.
const (
	FaultKill      = "kill"
	FaultTerminate = "terminate"
	FaultPause     = "pause"
	FaultResign    = "resign"
	FaultPartition = "partition"
)

// Faults lists every fault.
var Faults = []string{FaultKill, FaultTerminate, FaultPause, FaultResign, FaultPartition}

const (
	// stopGrace bounds a graceful shutdown (resign) before the node is killed.
	stopGrace = 30 * time.Second
	// cleanupTimeout bounds dropping the schema.
	cleanupTimeout = 2 * time.Minute
)

// Config describes one run; the caller validates it.
type Config struct {
	// StoreAddr is the PostgreSQL the nodes run on; the run creates and
	// drops its own schema there.
	StoreAddr    string
	Nodes        int
	Rounds       int
	Fault        string
	Binary       string // the metasrv binary
	Lease        time.Duration
	Campaign     time.Duration
	RoundTimeout time.Duration
	// LogDir keeps the nodes' logs; empty: a temporary directory, kept
	// only when something failed.
	LogDir string
	// Progress gets the start line and one line per round.
	Progress io.Writer
}

// Round is one fault and what followed.
type Round struct {
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

// Report is a whole run.
type Report struct {
	Fault            string      `json:"fault"`
	Nodes            int         `json:"nodes"`
	Lease            string      `json:"lease"`
	CampaignInterval string      `json:"campaign_interval"`
	Rounds           []Round     `json:"rounds"`
	MedianMs         float64     `json:"median_ms"`
	P99Ms            float64     `json:"p99_ms"`
	MaxMs            float64     `json:"max_ms"`
	Timeouts         int         `json:"timeouts"`
	Violations       int         `json:"fenced_writes_accepted"`
	ClientWrite      ClientStats `json:"client_write"`
	ClientRead       ClientStats `json:"client_read"`
}

// Failed reports whether a round found no new leader in time or a deposed
// leader's fenced write was accepted.
func (rep *Report) Failed() bool { return rep.Violations > 0 || rep.Timeouts > 0 }

// run is the state of one run.
type run struct {
	cfg     Config
	cluster *proccluster.Cluster
	schema  string
	logger  *slog.Logger
	client  *client.Client
	// probe is the client the client-side figures are measured with: the
	// defaults an application gets, unlike client's quick retries.
	probe   *client.Client
	admin   *pgx.ConnConfig
	adminDB *pgx.Conn
}

// Run starts cfg.Nodes nodes on a fresh schema and injects cfg.Fault
// cfg.Rounds times. Children, proxies and the schema are removed at the
// end, on error and when ctx ends. An error means the run could not be
// completed; a completed run may still have Failed.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) (rep Report, err error) {
	o := config.Default()
	o.Backend, o.StoreAddrs = config.BackendPostgres, []string{cfg.StoreAddr}
	admin, err := postgres.ConnConfig(o.Store(), "metasrv-bench")
	if err != nil {
		return rep, fmt.Errorf("--store-addrs %s: %w", postgres.SanitizeStoreAddr(cfg.StoreAddr), err)
	}
	r := &run{cfg: cfg, admin: admin, logger: logger, schema: "bench_" + loadgen.RandomHex(6)}
	if r.adminDB, err = pgx.ConnectConfig(ctx, admin); err != nil {
		return rep, fmt.Errorf("connect to %s: %w", postgres.SanitizeStoreAddr(cfg.StoreAddr), err)
	}
	defer func() { _ = r.adminDB.Close(context.Background()) }()

	logDir, keep, err := r.logDir()
	if err != nil {
		return rep, err
	}
	defer func() {
		if (err != nil || rep.Failed()) && !keep {
			fmt.Fprintf(cfg.Progress, "bench failover: node logs kept in %s\n", logDir)
		} else if !keep {
			_ = os.RemoveAll(logDir)
		}
	}()
	defer func() { err = errors.Join(err, r.close()) }()
	if err := r.startCluster(ctx, logDir); err != nil {
		return rep, err
	}
	defer r.client.Close()
	defer r.probe.Close()

	rep = Report{Fault: cfg.Fault, Nodes: cfg.Nodes, Lease: cfg.Lease.String(), CampaignInterval: cfg.Campaign.String()}
	for i := 1; i <= cfg.Rounds; i++ {
		res, err := r.round(ctx, i)
		if err != nil {
			return rep, fmt.Errorf("round %d: %w", i, err)
		}
		fmt.Fprintf(cfg.Progress, "%s\n", res.Line(cfg.Rounds))
		rep.Rounds = append(rep.Rounds, res)
	}
	rep.summarise()
	return rep, nil
}

// logDir is the directory for the nodes' logs, and whether to keep it.
func (r *run) logDir() (string, bool, error) {
	if r.cfg.LogDir != "" {
		return r.cfg.LogDir, true, os.MkdirAll(r.cfg.LogDir, 0o755)
	}
	dir, err := os.MkdirTemp("", "metasrv-bench-failover-")
	return dir, false, err
}

// startCluster starts the nodes and the clients.
func (r *run) startCluster(ctx context.Context, logDir string) error {
	cfg := r.cfg
	var err error
	r.cluster, err = proccluster.New(ctx, proccluster.Config{
		Nodes:    cfg.Nodes,
		DSN:      cfg.StoreAddr,
		ViaProxy: cfg.Fault == FaultPartition,
		Logger:   r.logger,
		Node: proccluster.NodeConfig{
			Binary: cfg.Binary,
			Schema: r.schema,
			LockID: int64(mrand.Uint32()) | 0x6d657461<<32, // "meta" in the high half: no clash with lock id 1
			Env: []string{"METASRV_ELECTION__LEASE=" + cfg.Lease.String(),
				"METASRV_ELECTION__CAMPAIGN_INTERVAL=" + cfg.Campaign.String()},
			LogDir: logDir,
		},
	})
	if err != nil {
		if cfg.Fault == FaultPartition {
			return fmt.Errorf("--fault partition: %w", err)
		}
		return err
	}
	fmt.Fprintf(cfg.Progress, "bench failover: starting %d nodes (schema %s, lease %s, campaign interval %s)\n", cfg.Nodes, r.schema, cfg.Lease, cfg.Campaign)
	// The first node migrates the schema alone; the others start later.
	if err := r.startNode(ctx, r.cluster.Nodes[0]); err != nil {
		return err
	}
	endpoints := r.cluster.Endpoints()
	r.client, err = client.New(ctx, client.Config{Endpoints: endpoints, ClientID: "metasrv-bench",
		MinRetryBackoff: 5 * time.Millisecond, MaxRetryBackoff: 100 * time.Millisecond}, r.logger)
	if err != nil {
		return err
	}
	r.probe, err = client.New(ctx, client.Config{Endpoints: endpoints, ClientID: "metasrv-bench-probe"}, r.logger)
	if err != nil {
		r.client.Close()
		return err
	}
	return nil
}

// startNode starts n and waits until it serves.
func (r *run) startNode(ctx context.Context, n *proccluster.Node) error {
	if err := n.Start(); err != nil {
		return err
	}
	return n.WaitServing(ctx, 60*time.Second)
}

// close removes the cluster and drops the schema: what runs on Ctrl-C and
// on any error too, so that nothing is left behind.
func (r *run) close() error {
	if r.cluster != nil {
		r.cluster.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if err := r.exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{r.schema}.Sanitize()+" CASCADE"); err != nil {
		return fmt.Errorf("drop the benchmark's schema %s: %w", r.schema, err)
	}
	return nil
}

// exec runs one statement on the admin connection, reconnecting once if it
// broke.
func (r *run) exec(ctx context.Context, sql string) error {
	_, err := r.adminDB.Exec(ctx, sql)
	if err != nil && r.adminDB.IsClosed() {
		if r.adminDB, err = pgx.ConnectConfig(ctx, r.admin); err == nil {
			_, err = r.adminDB.Exec(ctx, sql)
		}
	}
	return err
}

func (rep *Report) summarise() {
	var took []time.Duration
	for _, r := range rep.Rounds {
		rep.Violations += r.Violations
		if r.TimedOut {
			rep.Timeouts++
			continue
		}
		took = append(took, r.Took)
	}
	rep.MedianMs, rep.P99Ms, rep.MaxMs = loadgen.LatencyStats(took)
	rep.ClientWrite = summariseProbe(rep.Rounds, func(r Round) (float64, bool) { return r.ClientWriteMs, r.ClientWriteTimedOut })
	rep.ClientRead = summariseProbe(rep.Rounds, func(r Round) (float64, bool) { return r.ClientReadMs, r.ClientReadTimedOut })
}

// Line is the round in one line of text.
func (r Round) Line(rounds int) string {
	s := fmt.Sprintf("round %2d/%d: leader %s (term %d) -> ", r.Round, rounds, r.OldLeader, r.OldTerm)
	if r.TimedOut {
		s += "no new leader accepted a write in time"
	} else {
		s += fmt.Sprintf("%s (term %d) accepts writes after %s", r.NewLeader, r.NewTerm, loadgen.FormatLatency(r.Took))
	}
	s += fmt.Sprintf("; client: write after %s, read after %s", probeText(r.ClientWriteMs, r.ClientWriteTimedOut), probeText(r.ClientReadMs, r.ClientReadTimedOut))
	s += fmt.Sprintf("; pinned writes to the old leader: %d acked, %d refused", r.PinnedAcked, r.PinnedRefused)
	if r.Violations > 0 {
		s += fmt.Sprintf("; FENCED WRITES ACCEPTED: %d (%s)", r.Violations, r.ViolationNote)
	}
	return s
}
