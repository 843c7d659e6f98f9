package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgmetasrv/metasrv/internal/failoverbench"
	"github.com/pgmetasrv/metasrv/pkg/config"
)

const (
	outputText = "text"
	outputJSON = "json"
)

// failoverFlags holds the flags of `metasrv-bench failover`.
type failoverFlags struct {
	cfg    failoverbench.Config
	output string
}

const failoverLong = `Starts --nodes metasrv nodes (postgres_store) as child processes of --binary on a fresh
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
to --log-dir (default: a temporary directory, kept only when something failed).`

func newFailoverCommand(stdout, stderr io.Writer) *cobra.Command {
	d := config.Default()
	f := &failoverFlags{}
	cmd := &cobra.Command{
		Use:   "failover",
		Short: "Leader failover times, and fencing of deposed leaders, over repeated faults on child processes",
		Long:  failoverLong,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.validate(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			f.cfg.Progress = stderr
			logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			rep, err := failoverbench.Run(ctx, f.cfg, logger)
			if err != nil {
				return err
			}
			if err := f.print(stdout, rep); err != nil {
				return err
			}
			return f.verdict(rep)
		},
	}
	fl := cmd.Flags()
	c := &f.cfg
	fl.StringVar(&c.StoreAddr, "store-addrs", "", "PostgreSQL address (URL or key=value) the nodes use; the benchmark creates and drops its own schema there")
	fl.IntVar(&c.Nodes, "nodes", 3, "metasrv nodes to run")
	fl.IntVar(&c.Rounds, "rounds", 20, "faults to inject")
	fl.StringVar(&c.Fault, "fault", failoverbench.FaultKill, "fault: "+strings.Join(failoverbench.Faults, ", "))
	fl.StringVar(&c.Binary, "binary", "", "metasrv binary to run the nodes with (default: metasrv next to this binary, else on $PATH)")
	fl.DurationVar(&c.Lease, "lease", d.Election.Lease, "election.lease of the nodes")
	fl.DurationVar(&c.Campaign, "campaign-interval", d.Election.CampaignInterval, "election.campaign_interval of the nodes")
	fl.DurationVar(&c.RoundTimeout, "round-timeout", 30*time.Second, "give up on a round that finds no new leader by then")
	fl.StringVar(&c.LogDir, "log-dir", "", "directory for the nodes' logs (kept)")
	fl.StringVarP(&f.output, "output", "o", outputText, "output format: text or json")
	return cmd
}

func (f *failoverFlags) validate() error {
	c := &f.cfg
	if !slices.Contains(failoverbench.Faults, c.Fault) {
		return fmt.Errorf("--fault %q: expected kill, terminate, pause, resign or partition", c.Fault)
	}
	switch {
	case c.StoreAddr == "":
		return errors.New("--store-addrs is required: the PostgreSQL the nodes run on")
	case c.Nodes < 2:
		return fmt.Errorf("--nodes %d: a failover needs at least 2", c.Nodes)
	case c.Rounds < 1:
		return fmt.Errorf("--rounds %d: must be at least 1", c.Rounds)
	case c.Lease <= 0 || c.Campaign <= 0 || c.RoundTimeout <= 0:
		return fmt.Errorf("--lease %s, --campaign-interval %s and --round-timeout %s must be positive", c.Lease, c.Campaign, c.RoundTimeout)
	case f.output != outputText && f.output != outputJSON:
		return fmt.Errorf("--output %q: expected text or json", f.output)
	}
	if c.Binary == "" {
		bin, err := defaultBinary()
		if err != nil {
			return err
		}
		c.Binary = bin
	}
	return nil
}

// defaultBinary is the metasrv binary beside this one, else on $PATH.
func defaultBinary() (string, error) {
	if self, err := os.Executable(); err == nil {
		bin := filepath.Join(filepath.Dir(self), "metasrv")
		if st, err := os.Stat(bin); err == nil && !st.IsDir() {
			return bin, nil
		}
	}
	bin, err := exec.LookPath("metasrv")
	if err != nil {
		return "", errors.New("no metasrv binary beside this one nor on $PATH: give --binary")
	}
	return bin, nil
}

// verdict fails a run that found a fencing violation or a round without a
// new leader.
func (f *failoverFlags) verdict(rep failoverbench.Report) error {
	switch {
	case rep.Violations > 0:
		return fmt.Errorf("fencing violation: %d writes accepted by deposed leaders (must be 0)", rep.Violations)
	case rep.Timeouts > 0:
		return fmt.Errorf("%d of %d rounds found no new leader within --round-timeout %s", rep.Timeouts, len(rep.Rounds), f.cfg.RoundTimeout)
	}
	return nil
}

func (f *failoverFlags) print(out io.Writer, rep failoverbench.Report) error {
	if f.output == outputJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(out, "bench failover: fault=%s nodes=%d rounds=%d lease=%s campaign_interval=%s\n",
		rep.Fault, rep.Nodes, len(rep.Rounds), rep.Lease, rep.CampaignInterval)
	for _, r := range rep.Rounds {
		fmt.Fprintln(out, r.Line(len(rep.Rounds)))
	}
	fmt.Fprintf(out, "time to a new leader accepting writes: median %.0fms, p99 %.0fms, max %.0fms (%d rounds, %d timed out)\n",
		rep.MedianMs, rep.P99Ms, rep.MaxMs, len(rep.Rounds)-rep.Timeouts, rep.Timeouts)
	fmt.Fprintf(out, "seen through pkg/client (defaults), fault to first successful write: %s\n", rep.ClientWrite)
	fmt.Fprintf(out, "seen through pkg/client (defaults), fault to first successful read: %s\n", rep.ClientRead)
	fmt.Fprintf(out, "fenced writes accepted by deposed leaders: %d (must be 0)\n", rep.Violations)
	return nil
}
