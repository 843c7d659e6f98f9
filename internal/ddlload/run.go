package ddlload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/pgmetasrv/metasrv/internal/greptimeddl"
	"github.com/pgmetasrv/metasrv/internal/greptimefake"
	"github.com/pgmetasrv/metasrv/internal/loadgen"
	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
)

// Config describes a run.
type Config struct {
	// Endpoints are the cluster's metasrv gRPC addresses.
	Endpoints []string
	// Catalog and Schema are where the tables are made; the run creates
	// the schema (it must not exist).
	Catalog, Schema string
	// Clients is the concurrent DDL callers.
	Clients int
	// Tables is how many create-table calls are made.
	Tables int
	// Datanodes is how many fake datanodes (ids 1..N) the tables' regions
	// are placed on.
	Datanodes int
	// Partitions is the regions of each table; 1 is a table without a
	// partition rule, sent as a frontend sends one (no partitions).
	Partitions int
	// Drop drops every created table after the check, checks again, and
	// drops the database.
	Drop bool
	// DatanodeHost is the address the datanodes' region servers bind (on a
	// free port each) and advertise: the metasrv must reach it.
	DatanodeHost string
	// LeaseTimeout bounds the wait for every datanode's first region lease.
	LeaseTimeout time.Duration
	// Timeout bounds one DDL call (one attempt); it is also the task's
	// timeout_secs, rounded up.
	Timeout time.Duration
	// Compressor is the grpc-encoding of every request ("zstd" as
	// GreptimeDB's; registered by package grpczstd).
	Compressor string
	// Metrics, if set, reads the leader's CPU before and after each phase.
	Metrics *loadgen.Scraper
	// Progress gets a line every second; nil discards.
	Progress io.Writer
	// Logger gets the fake datanodes' logs; nil discards.
	Logger *slog.Logger
}

func (c *Config) check() error {
	var problems []string
	if len(c.Endpoints) == 0 {
		problems = append(problems, "no endpoints")
	}
	if c.Catalog == "" || c.Schema == "" {
		problems = append(problems, "Catalog and Schema must be set")
	}
	if c.Clients < 1 || c.Tables < 1 || c.Datanodes < 1 || c.Partitions < 1 {
		problems = append(problems, fmt.Sprintf("Clients %d, Tables %d, Datanodes %d and Partitions %d must be at least 1", c.Clients, c.Tables, c.Datanodes, c.Partitions))
	}
	if c.LeaseTimeout <= 0 || c.Timeout <= 0 {
		problems = append(problems, "LeaseTimeout and Timeout must be positive")
	}
	if c.DatanodeHost == "" {
		problems = append(problems, "no DatanodeHost")
	}
	if len(problems) > 0 {
		return errors.New("ddlload: " + strings.Join(problems, "; "))
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Logger = c.Logger.With("component", "ddlload")
	return nil
}

// tableName is the i-th table's name.
func tableName(i int) string { return fmt.Sprintf("t%06d", i) }

// run is the state of one Run.
type run struct {
	cfg Config
	c   *client
	dns *datanodes
	k   *checker
	rep *Report
}

// Run starts the datanodes, waits for their first leases, creates the
// schema, creates the tables, checks them, and with cfg.Drop drops and
// checks again. An error is a run that could not be carried through (no
// leader, no lease, no schema, a check that could not read, ctx ending);
// the report then holds what was measured. Calls that failed and checks
// that found problems are in the report: see Report.Failure.
func Run(ctx context.Context, cfg Config) (Report, error) {
	if err := cfg.check(); err != nil {
		return Report{}, err
	}
	rep := Report{
		Catalog: cfg.Catalog, Schema: cfg.Schema, Clients: cfg.Clients, Tables: cfg.Tables,
		Datanodes: cfg.Datanodes, Partitions: cfg.Partitions, Connection: Connection,
	}
	conns := greptimefake.NewConns()
	defer conns.Close()
	r := &run{cfg: cfg, c: newClient(cfg, conns), rep: &rep}
	leader, err := r.c.currentLeader(ctx)
	if err != nil {
		return rep, fmt.Errorf("ddlload: find the leader: %w", err)
	}
	rep.Leader = leader
	store, err := r.c.store(ctx)
	if err != nil {
		return rep, err
	}
	r.k = &checker{store: store, opts: r.c.callOpts, catalog: cfg.Catalog, schema: cfg.Schema, regions: cfg.Partitions}
	if r.dns, err = startDatanodes(ctx, cfg); err != nil {
		return rep, err
	}
	defer r.dns.stop()
	if rep.Warmup, err = r.dns.waitLeases(ctx, cfg.LeaseTimeout); err != nil {
		return rep, err
	}
	err = r.phases(ctx)
	if l := r.c.leader.Load(); l != nil {
		rep.Leader = *l
	}
	return rep, err
}

// phases creates the schema and runs the creates, their check, and with
// Drop the drops and theirs.
func (r *run) phases(ctx context.Context) error {
	cfg := r.cfg
	if _, err := r.c.ddl(ctx, r.request(greptimeddl.CreateDatabase(cfg.Catalog, cfg.Schema, false, nil))); err != nil {
		return fmt.Errorf("ddlload: create database %s.%s: %w", cfg.Catalog, cfg.Schema, err)
	}
	made, err := r.creates(ctx)
	if err != nil {
		return err
	}
	if r.rep.CreateCheck, err = r.k.checkCreated(ctx, cfg.Tables, made, r.dns.held()); err != nil {
		return err
	}
	if !cfg.Drop {
		return nil
	}
	dropped, left, err := r.drops(ctx, made)
	if err != nil {
		return err
	}
	check, err := r.k.checkDropped(ctx, dropped, left, r.dns.held())
	r.rep.DropCheck = &check
	if err != nil {
		return err
	}
	if _, err := r.c.ddl(ctx, r.request(greptimeddl.DropDatabase(cfg.Catalog, cfg.Schema, false))); err != nil {
		r.rep.DropDatabaseError = err.Error()
	}
	return nil
}

// request sets the task's timeout to the calls'.
func (r *run) request(req *metapb.DdlTaskRequest) *metapb.DdlTaskRequest {
	req.TimeoutSecs = uint32((r.cfg.Timeout + time.Second - 1) / time.Second)
	return req
}

// creates runs the create-table phase: the tables made, by name.
func (r *run) creates(ctx context.Context) (map[string]uint32, error) {
	cfg := r.cfg
	ids := make([]uint32, cfg.Tables) // 0: not made; each index written by one worker
	partitions := cfg.Partitions
	if partitions == 1 {
		partitions = 0 // an unpartitioned table: a frontend sends no partition
	}
	phase, err := runPhase(ctx, cfg, r.c, phaseSpec{op: "create table", n: cfg.Tables, do: func(ctx context.Context, i int) error {
		resp, err := r.c.ddl(ctx, r.request(greptimeddl.CreateTable(greptimeddl.Table{
			Catalog: cfg.Catalog, Schema: cfg.Schema, Name: tableName(i), Partitions: partitions,
		})))
		if err != nil {
			return err
		}
		if len(resp.GetTableIds()) != 1 {
			return &callError{label: "no_table_id", err: fmt.Errorf("create %s answered %d table ids, expected 1", tableName(i), len(resp.GetTableIds()))}
		}
		ids[i] = resp.GetTableIds()[0].GetId()
		return nil
	}})
	r.rep.Create = phase
	made := map[string]uint32{}
	for i, id := range ids {
		if id != 0 {
			made[tableName(i)] = id
		}
	}
	return made, err
}

// drops runs the drop-table phase on the tables made: those dropped, and
// those left.
func (r *run) drops(ctx context.Context, made map[string]uint32) (dropped, left map[string]uint32, err error) {
	cfg := r.cfg
	names := slices.Sorted(maps.Keys(made)) // in the order they were created
	done := make([]bool, len(names))
	phase, err := runPhase(ctx, cfg, r.c, phaseSpec{op: "drop table", n: len(names), do: func(ctx context.Context, i int) error {
		if _, err := r.c.ddl(ctx, r.request(greptimeddl.DropTable(cfg.Catalog, cfg.Schema, names[i], made[names[i]], false))); err != nil {
			return err
		}
		done[i] = true
		return nil
	}})
	r.rep.Drop = &phase
	dropped, left = map[string]uint32{}, map[string]uint32{}
	for i, name := range names {
		if done[i] {
			dropped[name] = made[name]
		} else {
			left[name] = made[name]
		}
	}
	return dropped, left, err
}
