package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/pgmetasrv/metasrv/internal/loadgen"
)

// fakeDatanodeFlags are the flags of the benchmarks that start fake GreptimeDB
// datanodes against a running cluster (bench ddl, bench failover-regions):
// where the cluster is, the database they create, where the fakes listen,
// their deadlines and the output format.
type fakeDatanodeFlags struct {
	app          *app
	endpoints    []string
	catalog      string
	schema       string
	datanodeHost string
	leaseTimeout time.Duration
	timeout      time.Duration
	output       string
}

// addFlags registers the shared flags; leaseHelp and timeoutHelp say what
// the two deadlines bound in this benchmark.
func (d *fakeDatanodeFlags) addFlags(f *pflag.FlagSet, leaseHelp, timeoutHelp string) {
	f.StringSliceVar(&d.endpoints, "endpoints", nil, "metasrv gRPC addresses host:port, comma-separated (default $"+envCtlEndpoints+" or 127.0.0.1:3002)")
	f.StringVar(&d.catalog, "catalog", "greptime", "catalog of the database")
	f.StringVar(&d.schema, "schema", "", "database the tables are created in; must not exist (default bench_<random>)")
	f.StringVar(&d.datanodeHost, "datanode-host", "127.0.0.1", "address the fake datanodes' region servers bind and advertise; the metasrv must reach it")
	f.DurationVar(&d.leaseTimeout, "lease-timeout", time.Minute, leaseHelp)
	f.DurationVar(&d.timeout, "timeout", time.Minute, timeoutHelp)
	f.StringVarP(&d.output, "output", "o", outputText, "output format: text or json")
}

// validate refuses bad shared flags before any datanode starts.
func (d *fakeDatanodeFlags) validate() error {
	switch {
	case d.catalog == "":
		return fmt.Errorf("--catalog: must not be empty")
	case d.datanodeHost == "":
		return fmt.Errorf("--datanode-host: must not be empty")
	case d.leaseTimeout <= 0:
		return fmt.Errorf("--lease-timeout %s: must be positive", d.leaseTimeout)
	case d.timeout < time.Second:
		return fmt.Errorf("--timeout %s: must be at least 1s (timeout_secs is whole seconds)", d.timeout)
	case d.output != outputText && d.output != outputJSON:
		return fmt.Errorf("--output %q: expected text or json", d.output)
	}
	return nil
}

// target resolves the endpoints and names the database: --schema, or a
// fresh bench_<random>.
func (d *fakeDatanodeFlags) target(cmd *cobra.Command) (endpoints []string, schema string, err error) {
	endpoints, err = (&ctlOptions{app: d.app, endpoints: d.endpoints}).resolveEndpoints(cmd)
	if err != nil {
		return nil, "", err
	}
	schema = d.schema
	if schema == "" {
		schema = "bench_" + loadgen.RandomHex(4)
	}
	return endpoints, schema, nil
}

// runUntilSignal is the RunE of a benchmark: run on a context that Ctrl-C
// or SIGTERM ends, so the run stops through its own cleanup.
func runUntilSignal(run func(ctx context.Context, cmd *cobra.Command) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return run(ctx, cmd)
	}
}
