package ddlload

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/internal/loadgen"
	"github.com/pgmetasrv/metasrv/pkg/config"
	"github.com/pgmetasrv/metasrv/pkg/grpczstd"
	"github.com/pgmetasrv/metasrv/pkg/metasrv"
	"github.com/pgmetasrv/metasrv/pkg/node"
)

// memoryNode starts an in-process memory_store node and waits until it
// leads.
func memoryNode(t *testing.T) *node.Node {
	t.Helper()
	o := config.Default()
	o.GRPC.BindAddr, o.HTTP.Addr = "127.0.0.1:0", "127.0.0.1:0"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := node.New(ctx, node.Config{Options: o, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, n.Stop(context.Background())) })
	require.NoError(t, n.Start(ctx))
	require.NoError(t, n.WaitState(ctx, metasrv.LeaderReady))
	return n
}

func testConfig(endpoints ...string) Config {
	return Config{
		Endpoints: endpoints, Catalog: "greptime", Schema: "bench_" + loadgen.RandomHex(4),
		Clients: 3, Tables: 12, Datanodes: 2, Partitions: 3, Drop: true, DatanodeHost: "127.0.0.1",
		LeaseTimeout: 30 * time.Second, Timeout: 30 * time.Second, Compressor: grpczstd.Name,
	}
}

func TestRunAgainstMemoryNode(t *testing.T) {
	t.Parallel()
	n := memoryNode(t)
	cfg := testConfig(n.GRPCAddr().String())
	cfg.Metrics = &loadgen.Scraper{URL: "http://" + n.HTTPAddr().String() + "/metrics"}
	var progress strings.Builder
	cfg.Progress = &progress
	rep, err := Run(t.Context(), cfg)
	require.NoError(t, err)
	require.NoError(t, rep.Failure())
	require.Equal(t, n.Advertised(), rep.Leader)
	require.Equal(t, 2, rep.Warmup.Leased)

	c := rep.Create
	require.Equal(t, "create table", c.Op)
	require.Equal(t, uint64(12), c.Succeeded)
	require.Zero(t, c.Errors, c.FirstError)
	require.Empty(t, c.ErrorsByCode)
	require.Zero(t, c.NotLeader)
	require.Equal(t, uint64(12), c.Latency.Count)
	require.LessOrEqual(t, c.Latency.P50, c.Latency.P99)
	require.LessOrEqual(t, c.Latency.P99, c.Latency.Max)
	require.Positive(t, c.PerSec)
	require.NotNil(t, c.ServerCPU)
	require.True(t, c.ServerCPU.Measured, c.ServerCPU.Error)
	require.Empty(t, c.ServerCPU.Warning, "the memory node leads")

	// 12 tables of 3 regions on 2 datanodes, every region on its route's.
	cc := rep.CreateCheck
	require.True(t, cc.OK(), "%v", cc.Problems)
	require.Equal(t, 12, cc.TableNames)
	require.Equal(t, 12, cc.Routes)
	require.Equal(t, 36, cc.Regions)
	require.Len(t, cc.RegionsPerDatanode, 2)
	require.Equal(t, 36, cc.RegionsPerDatanode[0]+cc.RegionsPerDatanode[1])

	require.NotNil(t, rep.Drop)
	require.Equal(t, uint64(12), rep.Drop.Succeeded)
	require.Zero(t, rep.Drop.Errors, rep.Drop.FirstError)
	require.NotNil(t, rep.DropCheck)
	require.True(t, rep.DropCheck.OK(), "%v", rep.DropCheck.Problems)
	require.Zero(t, rep.DropCheck.TableNames)
	require.Zero(t, rep.DropCheck.Regions)
	require.Empty(t, rep.DropDatabaseError)
}

// TestExistingSchemaFails runs twice with one schema: the second run cannot
// create it, and says so.
func TestExistingSchemaFails(t *testing.T) {
	t.Parallel()
	n := memoryNode(t)
	cfg := testConfig(n.GRPCAddr().String())
	cfg.Tables, cfg.Partitions, cfg.Drop = 2, 1, false
	rep, err := Run(t.Context(), cfg)
	require.NoError(t, err)
	require.NoError(t, rep.Failure())
	require.Equal(t, 2, rep.CreateCheck.Regions, "an unpartitioned table has one region")

	_, err = Run(t.Context(), cfg)
	require.ErrorContains(t, err, "ddlload: create database greptime."+cfg.Schema+": ")
	require.ErrorContains(t, err, "Schema already exists")
	require.Equal(t, "AlreadyExists (greptime 4011)", labelOf(err), "the gRPC code and GreptimeDB's DatabaseAlreadyExists")
}

func TestNoLeader(t *testing.T) {
	t.Parallel()
	// Nothing listens on port 1.
	_, err := Run(t.Context(), testConfig("127.0.0.1:1"))
	require.ErrorContains(t, err, "ddlload: find the leader: greptimefake: ask leader: no leader from 1 endpoints")
}

func TestConfigCheck(t *testing.T) {
	t.Parallel()
	_, err := Run(t.Context(), Config{})
	require.EqualError(t, err, "ddlload: no endpoints; Catalog and Schema must be set; Clients 0, Tables 0, Datanodes 0 and Partitions 0 must be at least 1; LeaseTimeout and Timeout must be positive; no DatanodeHost")
}

func TestFailure(t *testing.T) {
	t.Parallel()
	rep := Report{Create: Phase{Op: "create table", Requested: 5, Succeeded: 5}}
	require.NoError(t, rep.Failure())

	rep.Create.Errors, rep.Create.FirstError = 2, "boom"
	rep.CreateCheck.problem("table %s has no __table_name key", "t000001")
	rep.Drop = &Phase{Op: "drop table", Requested: 3}
	rep.DropCheck = &Check{}
	rep.DropDatabaseError = "nope"
	err := rep.Failure()
	require.ErrorIs(t, err, ErrFailed)
	require.EqualError(t, err, "ddlload: the run failed: 2 of 5 create table calls failed (first: boom); "+
		"the check after create table found 1 problems (first: table t000001 has no __table_name key); drop database: nope")
}
