package main

import (
	"context"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgmetasrv/metasrv/pkg/client"
)

func newCtlLeaderCommand(o *ctlOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "leader",
		Short: "Print the leader's address (and term, with -o json)",
		Long: `Print the address of the current leader, as /admin/leader does; -o json adds the
election term. Exit status 1 when the cluster has no leader.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				l, err := c.Leader(ctx)
				if err != nil {
					return failed("leader", err)
				}
				if o.output == outputJSON {
					return writeJSON(o.app.stdout, l)
				}
				_, err = fmt.Fprintln(o.app.stdout, display([]byte(l.Addr)))
				return err
			})
		},
	}
}

func newCtlMembersCommand(o *ctlOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "members",
		Short: "List the live metasrv nodes and which one leads",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				members, err := c.Members(ctx)
				if err != nil {
					return failed("members", err)
				}
				if o.output == outputJSON {
					if members == nil {
						members = []client.Member{}
					}
					return writeJSON(o.app.stdout, map[string][]client.Member{"members": members})
				}
				return printMembers(o, members)
			})
		},
	}
}

func printMembers(o *ctlOptions, members []client.Member) error {
	tw := tabwriter.NewWriter(o.app.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDR\tLEADER\tVERSION\tGIT COMMIT\tHOSTNAME\tSTARTED\tCPU (m)\tMEMORY")
	for _, m := range members {
		leader := ""
		if m.IsLeader {
			leader = "*"
		}
		// Every server-supplied string goes through display: a node's
		// hostname is no more trusted than a stored value.
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			display([]byte(m.Addr)), leader, display([]byte(m.Version)), display([]byte(m.GitCommit)),
			display([]byte(m.Hostname)), formatTime(m.StartTime),
			fmt.Sprintf("%d/%d", m.CPUUsageMillicores, m.TotalCPUMillicores),
			fmt.Sprintf("%s/%s", formatBytes(m.MemoryUsageBytes), formatBytes(m.TotalMemoryBytes)))
	}
	return tw.Flush()
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + "B"
	}
	v, i := float64(n), -1
	for v >= unit && i < 3 {
		v /= unit
		i++
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + []string{"KiB", "MiB", "GiB", "TiB"}[i]
}
