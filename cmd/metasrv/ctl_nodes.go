package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgmetasrv/metasrv/pkg/client"
	"github.com/pgmetasrv/metasrv/pkg/nodelist"
)

func newCtlNodesCommand(o *ctlOptions) *cobra.Command {
	var (
		role     string
		interval time.Duration
	)
	cmd := &cobra.Command{
		Use:   "nodes",
		Short: "List the GreptimeDB datanodes, frontends and flownodes registered with the leader",
		Long: `List the GreptimeDB datanodes, frontends and flownodes that heartbeat to the leader, from its
in-memory KV (greptime.v1.meta.Cluster/Range), sorted by role, then id; GET /admin/nodes gives
the same list. The leader's in-memory KV starts empty in every term: after a leader change a
node is listed again from its first heartbeat to the new leader.

Columns:
  ID              a datanode's or flownode's node id; a frontend's is derived from its address,
                  as GreptimeDB keys its node info (frontends all send id 0)
  LAST HEARTBEAT  now (this machine's clock) minus the leader's time of the node's last heartbeat
  STARTED         the start time the node reports in its node info ("-" until it arrives: a
                  datanode sends it with its first heartbeat after the handshake)
  WORKLOADS       GreptimeDB's workload types (datanodes: hybrid)
  LEASE           current or expired, as GreptimeDB judges it: a datanode's or flownode's lease
                  is current for 3 x heartbeat_interval + 1s (10s), a frontend, which has no
                  lease, while its last heartbeat is under 6 x heartbeat_interval old (18s)

-o json: {"nodes":[{"role":..,"id":..,"addr":..,"last_heartbeat":..,"last_heartbeat_age_ms":..,
"start_time":..,"version":..,"git_commit":..,"hostname":..,"workloads":[..],"lease_current":bool}]}
(start_time is left out until known).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r := nodelist.NodeRole(strings.TrimSpace(role))
			if r != "" && !r.Valid() {
				return fmt.Errorf("--role %q: expected datanode, frontend or flownode", role)
			}
			if interval <= 0 {
				return fmt.Errorf("--heartbeat-interval %s: must be positive", interval)
			}
			return o.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				nodes, err := c.Nodes(ctx, nodelist.Options{Role: r, HeartbeatInterval: interval})
				if err != nil {
					return failed("nodes", err)
				}
				if o.output == outputJSON {
					return writeJSON(o.app.stdout, map[string][]nodelist.Node{"nodes": nodes})
				}
				return printNodes(o.app.stdout, nodes)
			})
		},
	}
	cmd.Flags().StringVar(&role, "role", "", "list only the nodes of this role: datanode, frontend or flownode")
	cmd.Flags().DurationVar(&interval, "heartbeat-interval", nodelist.DefaultHeartbeatInterval,
		"the cluster's heartbeat_interval (metasrv's option), which the leases follow from")
	return cmd
}

func printNodes(w io.Writer, nodes []nodelist.Node) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tID\tADDR\tLAST HEARTBEAT\tSTARTED\tVERSION\tWORKLOADS\tLEASE")
	for _, n := range nodes {
		lease := "expired"
		if n.LeaseCurrent {
			lease = "current"
		}
		// Every string a node reported goes through display: it is no
		// more trusted than a stored value.
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n",
			n.Role, n.ID, orDash(n.Addr), formatAge(time.Duration(n.LastHeartbeatAgeMillis)*time.Millisecond),
			formatTime(n.StartTime), orDash(n.Version), formatWorkloads(n.Role, n.Workloads), lease)
	}
	return tw.Flush()
}

// orDash displays s, or "-" when the node did not say.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return display([]byte(s))
}

// formatAge shows an age to a tenth of a second under a minute, to the
// second above.
func formatAge(d time.Duration) string {
	if d < time.Minute {
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s ago"
	}
	return d.Round(time.Second).String() + " ago"
}

// formatWorkloads names the datanode workload types GreptimeDB knows (0,
// hybrid) and shows any other as its number.
func formatWorkloads(role nodelist.NodeRole, types []int32) string {
	if len(types) == 0 {
		return "-"
	}
	names := make([]string, len(types))
	for i, t := range types {
		names[i] = strconv.FormatInt(int64(t), 10)
		if role == nodelist.RoleDatanode && t == 0 {
			names[i] = "hybrid"
		}
	}
	return strings.Join(names, ",")
}
