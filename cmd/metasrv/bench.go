package main

import "github.com/spf13/cobra"

func newBenchCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure a metasrv cluster: key-value throughput and latency, leader failover times",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newBenchKVCommand(a), newBenchFailoverCommand(a))
	return cmd
}
