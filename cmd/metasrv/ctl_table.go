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
	"github.com/pgmetasrv/metasrv/pkg/tableroute"
)

func newCtlTableCommand(o *ctlOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "table",
		Short: "Inspect GreptimeDB tables: where their regions live",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newCtlTableRouteCommand(o))
	return cmd
}

func newCtlTableRouteCommand(o *ctlOptions) *cobra.Command {
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "route CATALOG.SCHEMA.TABLE",
		Short: "Show a GreptimeDB table's region routes and the lease state of their datanodes",
		Long: `Show where a GreptimeDB table's regions live and how their datanodes stand with the leader:
the table's name, info and route from the metadata store (linearizable reads on the leader), and
each datanode's liveness and last reported region roles from the leader's in-memory KV
(greptime.v1.meta.Cluster/BatchGet), which starts empty in every term. GET
/admin/tables/route?table=NAME answers the same view.

The name is ` + tableroute.NameForms + ` (catalog greptime, schema public by default), read
as a GreptimeDB frontend reads a table name: unquoted parts are lowercased, a part in double
quotes or backticks is taken as written ('greptime.public."MyTable"').

Columns:
  REGION     the region id (table id << 32 | region number) and, after the slash, its number
  LEADER     the datanode the route makes leader, and its address in the route ("none": no leader)
  STATE      the leader's state in the route: leader, downgrading (since when), or staging
  LEASE      current or expired: whether the leader heard from the leader datanode within
             3 x heartbeat_interval + 1s (10s), the window in which it renews region leases
             and the selector counts it alive; none: no heartbeat to this leader in its term
  REPORTED   the role the datanode's last stored stat gives the region (Leader, Follower,
             DowngradingLeader, StagingLeader), "not reported", or "no stats"; the leader
             stores a datanode's stats every third heartbeat
  FOLLOWERS  the follower datanodes' ids

-o json: the object GET /admin/tables/route answers: {"table":..,"catalog":..,"schema":..,
"name":..,"table_id":N,"table_type":..,"engine":..,"columns":[..],"route_type":..,
"route_version":N,"regions":[{"region_id":N,"region_number":N,"leader":{"id":N,"addr":..,
"lease":..,"last_heartbeat":..,"last_heartbeat_age_ms":N,"stat_time":..,"reported_role":..}|null,
"followers":[..],"leader_state":..,"leader_down_since":..,"partition_expr":..}]}.
Exit status 1 when the table does not exist.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := tableroute.ParseName(args[0])
			if err != nil {
				return err
			}
			if interval <= 0 {
				return fmt.Errorf("--heartbeat-interval %s: must be positive", interval)
			}
			return o.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				t, err := c.TableRoute(ctx, name, tableroute.Options{HeartbeatInterval: interval})
				if err != nil {
					return failed("table route", err)
				}
				if o.output == outputJSON {
					return writeJSON(o.app.stdout, t)
				}
				return printTableRoute(o.app.stdout, t)
			})
		},
	}
	cmd.Flags().DurationVar(&interval, "heartbeat-interval", nodelist.DefaultHeartbeatInterval,
		"the cluster's heartbeat_interval (metasrv's option), which the datanode lease follows from")
	return cmd
}

func printTableRoute(w io.Writer, t tableroute.Table) error {
	// Every stored string goes through display: names, addresses and
	// partition expressions are no more trusted than any stored value.
	kind := "table"
	if t.TableType != "" {
		kind = strings.ToLower(t.TableType) + " table"
	}
	fmt.Fprintf(w, "%s %s (id %d", kind, display([]byte(t.Table)), t.TableID)
	if t.Engine != "" {
		fmt.Fprintf(w, ", engine %s", display([]byte(t.Engine)))
	}
	fmt.Fprintf(w, ")\nroute: %s\n", describeRoute(t))
	if len(t.Columns) > 0 {
		cols := make([]string, len(t.Columns))
		for i, c := range t.Columns {
			cols[i] = display([]byte(c.Name))
			switch {
			case c.IsTimeIndex:
				cols[i] += " (time index)"
			case c.PrimaryKey:
				cols[i] += " (primary key)"
			}
		}
		fmt.Fprintf(w, "columns: %s\n", strings.Join(cols, ", "))
	}
	if len(t.Regions) == 0 {
		_, err := fmt.Fprintln(w, "no regions")
		return err
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REGION\tLEADER\tSTATE\tLEASE\tREPORTED\tFOLLOWERS")
	for _, r := range t.Regions {
		leader, lease, reported := "none", "-", "-"
		if p := r.Leader; p != nil {
			leader = strconv.FormatUint(p.ID, 10) + " (" + orDash(p.Addr) + ")"
			lease, reported = string(p.Lease), reportedRole(*p)
		}
		fmt.Fprintf(tw, "%d/%d\t%s\t%s\t%s\t%s\t%s\n", r.RegionID, r.RegionNumber, leader, leaderState(r), lease, reported, followerIDs(r.Followers))
	}
	return tw.Flush()
}

func describeRoute(t tableroute.Table) string {
	var s string
	switch t.RouteType {
	case tableroute.RouteLogical:
		s = fmt.Sprintf("logical, the regions of physical table %d", *t.PhysicalTableID)
	case tableroute.RouteNone:
		return "none"
	default:
		s = t.RouteType
	}
	if t.RouteVersion != nil {
		s += fmt.Sprintf(", version %d", *t.RouteVersion)
	}
	return s
}

func leaderState(r tableroute.Region) string {
	switch {
	case r.Leader == nil:
		return "-"
	case r.LeaderState == "":
		return "leader"
	case !r.LeaderDownSince.IsZero():
		return strings.ToLower(r.LeaderState) + " since " + formatTime(r.LeaderDownSince)
	default:
		return strings.ToLower(r.LeaderState)
	}
}

func reportedRole(p tableroute.Peer) string {
	switch {
	case p.ReportedRole != "":
		return display([]byte(p.ReportedRole))
	case p.StatTime.IsZero():
		return "no stats"
	default:
		return "not reported"
	}
}

func followerIDs(peers []tableroute.Peer) string {
	if len(peers) == 0 {
		return "-"
	}
	ids := make([]string, len(peers))
	for i, p := range peers {
		ids[i] = strconv.FormatUint(p.ID, 10)
	}
	return strings.Join(ids, ",")
}
