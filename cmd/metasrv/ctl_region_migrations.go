package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/pgmetasrv/metasrv/pkg/client"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/migration"
	"github.com/pgmetasrv/metasrv/pkg/region"
)

// unfinishedMigrationStates are the states of a migration still under way.
var unfinishedMigrationStates = []client.ProcedureState{client.ProcedureRunning, client.ProcedureRetrying, client.ProcedureRollingBack}

// regionMigration is one line of `region migrations`.
type regionMigration struct {
	ProcedureID string                `json:"procedure_id"`
	State       client.ProcedureState `json:"state"`
	RegionID    uint64                `json:"region_id"`
	TableID     uint32                `json:"table_id"`
	From        uint64                `json:"from_peer"`
	To          uint64                `json:"to_peer"`
	Step        string                `json:"step"`
	Reason      string                `json:"trigger_reason"`
	TimeoutMs   int64                 `json:"timeout_ms"`
	Submitted   string                `json:"submitted_at"`
	Error       string                `json:"error,omitempty"`
}

func newCtlRegionMigrationsCommand(o *ctlOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "migrations",
		Short: "List the region migrations under way (failovers included)",
		Long: `List the region migrations that have not ended (running, retrying or rolling back), newest
first, from the leader's procedure records: those a failover submitted, those asked for with
'region migrate' or ProcedureService.migrate, and those a new leader resumes. The leader's
GET /admin/migrations lists the ones it is running now.

Columns: the procedure's id and state, the region (id(table, number)), the datanodes it moves
from and to, the step it is at (GreptimeDB's: migration_start, open_candidate_region,
flush_leader_region, update_metadata_downgrade, downgrade_leader_region,
upgrade_candidate_region, update_metadata_upgrade, close_downgraded_region), why it was started
(Failover, Manual), when it was submitted, and the error it is retrying or rolling back on.

-o json: {"migrations":[{"procedure_id":..,"state":..,"region_id":..,"table_id":..,"from_peer":..,
"to_peer":..,"step":..,"trigger_reason":..,"timeout_ms":..,"submitted_at":..,"error":..}]}`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				list, err := listMigrations(ctx, c)
				if err != nil {
					return failed("region migrations", err)
				}
				if o.output == outputJSON {
					return writeJSON(o.app.stdout, map[string][]regionMigration{"migrations": list})
				}
				return printMigrations(o.app.stdout, list)
			})
		},
	}
}

func listMigrations(ctx context.Context, c *client.Client) ([]regionMigration, error) {
	opts := client.ListProceduresOptions{Type: migration.TypeName, States: unfinishedMigrationStates}
	out := []regionMigration{}
	for {
		page, err := c.ListProcedures(ctx, opts)
		if err != nil {
			return nil, err
		}
		for _, p := range page.Procedures {
			info, err := migration.Describe(p.Data)
			if err != nil {
				return nil, fmt.Errorf("procedure %s: %w", p.ID, err)
			}
			out = append(out, regionMigration{
				ProcedureID: p.ID, State: p.State, RegionID: info.RegionID, TableID: greptimekey.RegionTableID(info.RegionID),
				From: info.From.ID, To: info.To.ID, Step: info.Step, Reason: string(info.Reason),
				TimeoutMs: info.Timeout.Milliseconds(), Submitted: formatTime(p.SubmittedAt), Error: p.Error,
			})
		}
		if page.NextPageToken == "" {
			return out, nil
		}
		opts.PageToken = page.NextPageToken
	}
}

func printMigrations(w io.Writer, list []regionMigration) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROCEDURE\tSTATE\tREGION\tFROM\tTO\tSTEP\tREASON\tSUBMITTED\tERROR")
	for _, m := range list {
		errText := "-"
		if m.Error != "" {
			errText = display([]byte(m.Error))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", display([]byte(m.ProcedureID)), display([]byte(m.State)),
			region.FormatRegionID(m.RegionID), m.From, m.To, display([]byte(m.Step)), display([]byte(m.Reason)), m.Submitted, errText)
	}
	return tw.Flush()
}
