package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/pgmetasrv/metasrv/internal/ddlload"
	"github.com/pgmetasrv/metasrv/internal/loadgen"
	"github.com/pgmetasrv/metasrv/pkg/grpczstd" // GreptimeDB's clients send zstd
)

// benchDDL holds the flags of `metasrv bench ddl`.
type benchDDL struct {
	fakeDatanodeFlags
	clients    int
	tables     int
	datanodes  int
	partitions int
	drop       bool
	metricsURL string
}

func newBenchDDLCommand(a *app) *cobra.Command {
	b := &benchDDL{fakeDatanodeFlags: fakeDatanodeFlags{app: a}}
	cmd := &cobra.Command{
		Use:   "ddl",
		Short: "Create-table DDL on the leader against fake datanodes: procedures per second, latency, server CPU",
		Long: `Starts --datanodes fake GreptimeDB datanodes (ids 1..N) that heartbeat to the cluster and
serve greptime.v1.region.Region on --datanode-host (a free port each), so the metasrv must
be able to reach that address. It waits until each has received its first region lease
(the answer to a heartbeat that left its node info: from then on the selector counts it
alive), at most --lease-timeout. It then creates the database --catalog.--schema (which
must not exist) and runs --tables CREATE TABLE tasks (tables t000000, t000001, ..., each
of --partitions regions: host, ts, usage; 1 is a table without a partition rule) from -c
concurrent clients through greptime.v1.meta ProcedureService/ddl, exactly as a GreptimeDB
frontend submits them: zstd-compressed, to the leader found with AskLeader, asked again
after a NotLeader answer or an Unavailable error (three attempts at most). The clients
share one gRPC connection per metasrv address, as the DDL calls of one frontend share its
channel manager.

Printed: tables created per second, p50/p90/p99/max latency of the successful calls (from
the first attempt to the answer), errors by gRPC code (with GreptimeDB's status code when
the answer carried one), not-leader answers and retries. Then every table is checked
against the metadata and the datanodes: exactly --tables __table_name keys under
__table_name/{catalog}/{schema}/, each naming the table id its create answered, each
table's __table_route a physical route of --partitions regions on the fake datanodes, and
each region held, as leader, by the datanode its route names, with no other region there.

With --drop every created table is then dropped the same way and measured, the check is
repeated (no table name, tombstone, route, table info or region left), and the database
is dropped. Without it the tables stay, and the datanodes the routes name are gone when
the command ends.

Server figures (with --metrics-url, the leader's /metrics URL or HTTP host:port): its
process_cpu_seconds_total before and after each phase gives the CPU time per 1,000
tables (srv-cpu/1k) and the cores kept busy. The command exits non-zero when a call
failed or a check found a problem. A progress line is printed to stderr every second.`,
		Args: cobra.NoArgs,
		RunE: runUntilSignal(b.run),
	}
	f := cmd.Flags()
	b.addFlags(f, "how long every datanode may take to get its first region lease", "deadline of one DDL call (its timeout_secs too)")
	f.IntVarP(&b.clients, "clients", "c", 16, "concurrent DDL clients")
	f.IntVar(&b.tables, "tables", 1000, "create-table tasks to run")
	f.IntVar(&b.datanodes, "datanodes", 3, "fake datanodes, ids 1..N")
	f.IntVar(&b.partitions, "partitions", 1, "regions per table")
	f.BoolVar(&b.drop, "drop", false, "drop the tables (measured) and the database at the end")
	f.StringVar(&b.metricsURL, "metrics-url", "", "the leader's Prometheus /metrics URL, or its HTTP host:port, for its CPU (default: not measured)")
	return cmd
}

// validate refuses bad flags before any datanode starts.
func (b *benchDDL) validate() error {
	switch {
	case b.clients < 1:
		return fmt.Errorf("--clients %d: must be at least 1", b.clients)
	case b.tables < 1:
		return fmt.Errorf("--tables %d: must be at least 1", b.tables)
	case b.datanodes < 1:
		return fmt.Errorf("--datanodes %d: must be at least 1", b.datanodes)
	case b.partitions < 1:
		return fmt.Errorf("--partitions %d: must be at least 1", b.partitions)
	}
	if err := b.fakeDatanodeFlags.validate(); err != nil {
		return err
	}
	_, err := parseMetricsURL(b.metricsURL)
	return err
}

func (b *benchDDL) run(ctx context.Context, cmd *cobra.Command) error {
	if err := b.validate(); err != nil {
		return err
	}
	endpoints, schema, err := b.target(cmd)
	if err != nil {
		return err
	}
	cfg := ddlload.Config{
		Endpoints: endpoints, Catalog: b.catalog, Schema: schema, Clients: b.clients, Tables: b.tables,
		Datanodes: b.datanodes, Partitions: b.partitions, Drop: b.drop, DatanodeHost: b.datanodeHost,
		LeaseTimeout: b.leaseTimeout, Timeout: b.timeout, Compressor: grpczstd.Name, Progress: b.app.stderr,
		Logger: warnLogger(b.app.stderr),
	}
	if u, _ := parseMetricsURL(b.metricsURL); u != "" && u != metricsNone {
		cfg.Metrics = &loadgen.Scraper{URL: u}
	}
	rep, err := ddlload.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if err := b.print(rep); err != nil {
		return err
	}
	return rep.Failure()
}
