package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/client"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/region"
)

// Defaults of `region migrate`: GreptimeDB's migrate_region admin function
// gives a migration 300s; the command itself waits a little longer than
// the migration may take (its lease wait, open and flush do not count
// against the migration's timeout).
const (
	defaultMigrateTimeout = 300 * time.Second
	migrateWaitMargin     = 2 * time.Minute
	migrateSubmitDeadline = 10 * time.Second
	// migrateAttempts bounds the leaders tried when the one asked has just
	// stepped down.
	migrateAttempts = 3
)

func newCtlRegionCommand(o *ctlOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "region",
		Short: "Move GreptimeDB regions between datanodes",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newCtlRegionMigrateCommand(o), newCtlRegionMigrationsCommand(o))
	return cmd
}

func newCtlRegionMigrateCommand(o *ctlOptions) *cobra.Command {
	var (
		from, to uint64
		timeout  time.Duration
		wait     bool
	)
	cmd := &cobra.Command{
		Use:   "migrate REGION --from DATANODE --to DATANODE",
		Short: "Move a region's leader to another datanode (greptime.v1.meta ProcedureService/migrate)",
		Long: `Move a region's leader from datanode --from to datanode --to, as GreptimeDB's
migrate_region admin function does: the leader checks that both datanodes heartbeat to it, that
the region's leader is --from and that --to is not already its leader or a follower, and submits
the region migration procedure. The command prints the procedure's id once it is stored; with
--wait it waits for the procedure to end and prints it as 'procedure get' does (exit status 1
unless it is done).

REGION is the region id (table id << 32 | region number) or TABLE_ID/REGION_NUMBER (1024/1).

--timeout here is the migration's timeout (timeout_secs, whole seconds): the time the downgrade
of the old leader and the upgrade of the new one may take together. The command's own deadline is
10s, or with --wait the migration's timeout plus 2m.

-o json: {"id":..} once submitted; with --wait, the procedure object of 'procedure get'.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			regionID, err := parseRegionArg(args[0])
			if err != nil {
				return err
			}
			secs, err := timeoutSecs(timeout)
			if err != nil {
				return err
			}
			if from == to {
				return fmt.Errorf("--from and --to are both datanode %d", from)
			}
			o.timeout = migrateSubmitDeadline
			if wait {
				o.timeout = timeout + migrateWaitMargin
			}
			req := &metapb.MigrateRegionRequest{Header: &metapb.RequestHeader{ProtocolVersion: 1, Role: metapb.Role_FRONTEND},
				RegionId: regionID, FromPeer: from, ToPeer: to, TimeoutSecs: secs}
			return o.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				return o.runMigrate(ctx, c, req, wait)
			})
		},
	}
	f := cmd.Flags()
	f.Uint64Var(&from, "from", 0, "the datanode id that leads the region now (required)")
	f.Uint64Var(&to, "to", 0, "the datanode id to lead it (required)")
	f.DurationVar(&timeout, "timeout", defaultMigrateTimeout, "the migration's timeout, whole seconds (this command's deadline follows from it)")
	f.BoolVar(&wait, "wait", false, "wait for the migration to end")
	_ = cmd.MarkFlagRequired("from") // the flags exist: no error
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

// runMigrate submits req and prints the procedure's id, or with wait the
// procedure once it ended.
func (o *ctlOptions) runMigrate(ctx context.Context, c *client.Client, req *metapb.MigrateRegionRequest, wait bool) error {
	id, err := o.migrate(ctx, c, req)
	if err != nil {
		return failed("region migrate", err)
	}
	if !wait {
		if o.output == outputJSON {
			return writeJSON(o.app.stdout, map[string]string{"id": id})
		}
		_, err := fmt.Fprintf(o.app.stdout, "migration of region %s from datanode %d to datanode %d submitted: procedure %s\n",
			region.FormatRegionID(req.GetRegionId()), req.GetFromPeer(), req.GetToPeer(), id)
		return err
	}
	p, err := c.WaitProcedure(ctx, id)
	if err != nil {
		return failed("region migrate: wait for procedure "+id, err)
	}
	if err := o.printProcedure(p); err != nil {
		return err
	}
	if p.State != client.ProcedureDone {
		return fmt.Errorf("region migrate: procedure %s ended %s: %w", id, p.State, errProcedureNotDone)
	}
	return nil
}

// parseRegionArg reads a region id, or TABLE_ID/REGION_NUMBER.
func parseRegionArg(s string) (uint64, error) {
	if table, number, ok := strings.Cut(s, "/"); ok {
		t, err1 := strconv.ParseUint(table, 10, 32)
		n, err2 := strconv.ParseUint(number, 10, 32)
		if err := errors.Join(err1, err2); err != nil {
			return 0, fmt.Errorf("REGION %q: expected TABLE_ID/REGION_NUMBER, two numbers below 2^32", s)
		}
		return greptimekey.RegionID(uint32(t), uint32(n)), nil
	}
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("REGION %q: expected a region id or TABLE_ID/REGION_NUMBER", s)
	}
	return id, nil
}

func timeoutSecs(d time.Duration) (uint32, error) {
	if d < time.Second || d%time.Second != 0 || d/time.Second > math.MaxUint32 {
		return 0, fmt.Errorf("--timeout %s: expected whole seconds, at least 1s", d)
	}
	return uint32(d / time.Second), nil
}

// migrate calls ProcedureService/migrate on the leader, asking again when
// the node asked answers that it no longer leads.
func (o *ctlOptions) migrate(ctx context.Context, c *client.Client, req *metapb.MigrateRegionRequest) (string, error) {
	tlsCfg, err := o.tlsConfig()
	if err != nil {
		return "", err
	}
	creds := insecure.NewCredentials()
	if tlsCfg != nil {
		creds = credentials.NewTLS(tlsCfg)
	}
	for attempt := 1; ; attempt++ {
		leader, err := c.Leader(ctx)
		if err != nil {
			return "", err
		}
		resp, err := migrateOn(ctx, leader.Addr, creds, req)
		if err != nil {
			return "", err
		}
		if h := resp.GetHeader().GetError(); h != nil {
			if h.GetCode() == notLeaderCode && attempt < migrateAttempts {
				continue
			}
			return "", fmt.Errorf("%s answered error %d: %s", leader.Addr, h.GetCode(), h.GetErrMsg())
		}
		return string(resp.GetPid().GetKey()), nil
	}
}

// notLeaderCode is GreptimeDB's ErrorCode::NotLeader in a response header.
const notLeaderCode = 2

func migrateOn(ctx context.Context, addr string, creds credentials.TransportCredentials, req *metapb.MigrateRegionRequest) (*metapb.MigrateRegionResponse, error) {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, fmt.Errorf("leader %q: %w", addr, err)
	}
	defer func() { _ = cc.Close() }()
	return metapb.NewProcedureServiceClient(cc).Migrate(ctx, req)
}
