package main

import "github.com/spf13/cobra"

// newBenchCommand is `metasrv bench`. The failover benchmark, which runs
// nodes as child processes and injects faults, is not part of this binary:
// it is `metasrv-bench failover` (cmd/metasrv-bench).
func newBenchCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure a metasrv cluster: key-value throughput and latency (failover: see metasrv-bench)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newBenchKVCommand(a))
	cmd.AddCommand(newBenchHeartbeatCommand(a))
	cmd.AddCommand(newBenchDDLCommand(a))
	cmd.AddCommand(newBenchFailoverRegionsCommand(a))
	return cmd
}
