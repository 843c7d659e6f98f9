package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgmetasrv/metasrv/internal/regionfailoverbench"
	"github.com/pgmetasrv/metasrv/pkg/grpczstd" // GreptimeDB's clients send zstd
	"github.com/pgmetasrv/metasrv/pkg/region"
)

// benchFailoverRegions holds the flags of `metasrv bench failover-regions`.
type benchFailoverRegions struct {
	fakeDatanodeFlags
	rounds       int
	regions      int
	datanodes    int
	detector     region.PhiAccrualOptions
	roundTimeout time.Duration
}

func newBenchFailoverRegionsCommand(a *app) *cobra.Command {
	b := &benchFailoverRegions{fakeDatanodeFlags: fakeDatanodeFlags{app: a}}
	cmd := &cobra.Command{
		Use:   "failover-regions",
		Short: "Region failover against fake datanodes: time from a datanode's last heartbeat to its regions being writable elsewhere",
		Long: `Against a metasrv running with enable_region_failover (and the round_robin selector), starts
--datanodes fake GreptimeDB datanodes (ids 1..N) that heartbeat to it and serve
greptime.v1.region.Region on --datanode-host (a free port each), and creates the database
--catalog.--schema (which must not exist). Each of --rounds rounds creates a table of
N x --regions partitions, so that datanode 1 (the victim) leads --regions of them; once a
lease has granted them to it, the victim stops (its heartbeat stream closes, as when the
process dies). From the last heartbeat it sent, the round times:

  floor     when a phi-accrual detector with the --failure-detector-* options (set them to
            the metasrv's), fed the victim's heartbeats since the table was made, first
            reaches its threshold: the earliest the metasrv can judge the regions failed
  detected  the first OpenRegions a live datanode executes for one of them (the failover's
            submission is not visible from outside; its first step is)
  upgraded  the last UpgradeRegions executed: GreptimeDB's datanode makes a region writable
            when it executes it (its catch-up sets the region writable), so this is when
            the last region is writable elsewhere; the next lease renews it
  leader    each region's first region lease granting a live datanode Leader: median and
            max over the victim's regions

then drops the table and starts a fresh, empty victim with the same id. Printed: each round,
and over the rounds the median and p99 (nearest rank: of fewer than 100 rounds, the worst)
of each figure, of move = leader max - floor, and of upgraded - floor. Every Leader grant of the run is checked:
one made while another datanode still held the region (a grant is held from its arrival
until lease_seconds later, or until that datanode is granted another role for the region)
fails the command. A round whose regions are not all granted
elsewhere within --round-timeout ends the run.`,
		Args: cobra.NoArgs,
		RunE: runUntilSignal(b.run),
	}
	f := cmd.Flags()
	b.addFlags(f, "how long a datanode may take to get its first region lease, or the victim a lease of a new table's regions",
		"deadline of one DDL call or metadata read (its timeout_secs too)")
	f.IntVar(&b.rounds, "rounds", regionfailoverbench.DefaultRounds, "datanode failures to measure")
	f.IntVar(&b.regions, "regions", regionfailoverbench.DefaultRegions, "leader regions on the failed datanode in each round")
	f.IntVar(&b.datanodes, "datanodes", regionfailoverbench.DefaultDatanodes, "fake datanodes, ids 1..N, the victim (1) included")
	d := region.DefaultPhiAccrualOptions()
	f.Float64Var(&b.detector.Threshold, "failure-detector-threshold", d.Threshold, "the metasrv's failure_detector.threshold, for the floor")
	f.DurationVar(&b.detector.MinStdDeviation, "failure-detector-min-std-deviation", d.MinStdDeviation, "the metasrv's failure_detector.min_std_deviation")
	f.DurationVar(&b.detector.AcceptableHeartbeatPause, "failure-detector-acceptable-heartbeat-pause", d.AcceptableHeartbeatPause, "the metasrv's failure_detector.acceptable_heartbeat_pause")
	f.DurationVar(&b.detector.FirstHeartbeatEstimate, "failure-detector-first-heartbeat-estimate", d.FirstHeartbeatEstimate, "the metasrv's failure_detector.first_heartbeat_estimate")
	f.DurationVar(&b.roundTimeout, "round-timeout", 5*time.Minute, "how long the victim's regions may take to be granted Leader elsewhere")
	return cmd
}

// validate refuses bad flags before any datanode starts.
func (b *benchFailoverRegions) validate() error {
	switch {
	case b.rounds < 1:
		return fmt.Errorf("--rounds %d: must be at least 1", b.rounds)
	case b.regions < 1:
		return fmt.Errorf("--regions %d: must be at least 1", b.regions)
	case b.datanodes < 2:
		return fmt.Errorf("--datanodes %d: must be at least 2 (the victim's regions need somewhere to go)", b.datanodes)
	case b.roundTimeout <= 0:
		return fmt.Errorf("--round-timeout %s: must be positive", b.roundTimeout)
	}
	if err := b.fakeDatanodeFlags.validate(); err != nil {
		return err
	}
	if err := b.detector.Validate(); err != nil {
		return fmt.Errorf("--failure-detector-*: %w", err)
	}
	return nil
}

func (b *benchFailoverRegions) run(ctx context.Context, cmd *cobra.Command) error {
	if err := b.validate(); err != nil {
		return err
	}
	endpoints, schema, err := b.target(cmd)
	if err != nil {
		return err
	}
	rep, err := regionfailoverbench.Run(ctx, regionfailoverbench.Config{
		Endpoints: endpoints, Catalog: b.catalog, Schema: schema, Rounds: b.rounds, Regions: b.regions,
		Datanodes: b.datanodes, DatanodeHost: b.datanodeHost, Detector: b.detector, LeaseTimeout: b.leaseTimeout,
		RoundTimeout: b.roundTimeout, Timeout: b.timeout, Compressor: grpczstd.Name, Progress: b.app.stderr,
		Logger: warnLogger(b.app.stderr),
	})
	if perr := b.print(rep); perr != nil && err == nil {
		err = perr
	}
	if err != nil {
		return err
	}
	return rep.Failure()
}

// print writes what was measured, also when the run stopped early.
func (b *benchFailoverRegions) print(r regionfailoverbench.Report) error {
	out := b.app.stdout
	if b.output == outputJSON {
		return jsonEncode(out, r)
	}
	d := r.Detector
	fmt.Fprintf(out, "bench failover-regions: rounds=%d regions=%d datanodes=%d database=%s.%s leader=%s heartbeat_interval=%dms\n",
		r.Rounds, r.Regions, r.Datanodes, r.Catalog, r.Schema, r.Leader, r.HeartbeatIntervalMs)
	fmt.Fprintf(out, "failure detector (for the floor): threshold=%g min_std_deviation=%dms acceptable_heartbeat_pause=%dms first_heartbeat_estimate=%dms\n",
		d.Threshold, d.MinStdDeviationMs, d.AcceptableHeartbeatPauseMs, d.FirstHeartbeatEstimateMs)
	fmt.Fprintln(out, "seconds from the victim's last heartbeat sent:")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "round\tregions\tbeats\tfloor\tdetected\tupgraded\tleader p50\tleader max\tmove\t")
	for _, m := range r.Measured {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t\n", m.Round, m.Regions, m.Heartbeats,
			m.Floor, m.Detected, m.UpgradedMax, m.LeaderMedian, m.LeaderMax, m.LeaderMax-m.Floor)
	}
	s := r.Summary
	if len(r.Measured) > 0 {
		fmt.Fprintf(tw, "median\t\t\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t\n", s.Floor.Median, s.Detected.Median, s.UpgradedMax.Median, s.LeaderMedian.Median, s.LeaderMax.Median, s.Move.Median)
		fmt.Fprintf(tw, "p99\t\t\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t\n", s.Floor.P99, s.Detected.P99, s.UpgradedMax.P99, s.LeaderMedian.P99, s.LeaderMax.P99, s.Move.P99)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "regions writable elsewhere (leader max over %d rounds): median %s, p99 %s\n",
		len(r.Measured), formatSeconds(s.LeaderMax.Median), formatSeconds(s.LeaderMax.P99))
	fmt.Fprintf(out, "last region upgraded (GreptimeDB's datanode makes it writable then): median %s, p99 %s; upgraded - floor: median %s, p99 %s\n",
		formatSeconds(s.UpgradedMax.Median), formatSeconds(s.UpgradedMax.P99), formatSeconds(s.UpgradedMove.Median), formatSeconds(s.UpgradedMove.P99))
	c := r.Leases
	verdict := "ok"
	if !c.OK() {
		verdict = fmt.Sprintf("%d overlaps", c.Overlaps)
	}
	fmt.Fprintf(out, "lease check: %d leader grants (lease_seconds %d), no region leader on two datanodes at once: %s\n", c.LeaderGrants, c.LeaseSeconds, verdict)
	for _, p := range c.Problems {
		fmt.Fprintf(out, "  problem: %s\n", p)
	}
	if r.DropDatabaseError != "" {
		fmt.Fprintf(out, "drop database %s.%s failed: %s\n", r.Catalog, r.Schema, r.DropDatabaseError)
	}
	return nil
}
