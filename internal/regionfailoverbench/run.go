package regionfailoverbench

import (
	"context"
	"fmt"
	"time"

	"github.com/pgmetasrv/metasrv/internal/greptimeddl"
	"github.com/pgmetasrv/metasrv/internal/greptimefake"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
)

// run is the state of one Run.
type run struct {
	cfg Config
	c   *client
	rec *recorder
	rep *Report
	// members are the datanodes by id - 1; members[0] is the victim.
	members []*member
}

// Run starts the datanodes and the database, runs cfg.Rounds rounds (see
// the package documentation), and drops the database. An error is a run
// that could not be carried through (no leader, no lease, a DDL that
// failed, a round whose regions did not all move in time, ctx ending): the
// report then holds the rounds measured. A run carried through can still
// have failed its lease check: see Report.Failure.
func Run(ctx context.Context, cfg Config) (Report, error) {
	if err := cfg.check(); err != nil {
		return Report{}, err
	}
	rep := Report{Catalog: cfg.Catalog, Schema: cfg.Schema, Rounds: cfg.Rounds, Regions: cfg.Regions,
		Datanodes: cfg.Datanodes, Detector: detectorOf(cfg.Detector)}
	conns := greptimefake.NewConns()
	defer conns.Close()
	r := &run{cfg: cfg, c: newClient(cfg, conns), rec: newRecorder(), rep: &rep}
	if err := r.c.findLeader(ctx); err != nil {
		return rep, err
	}
	defer func() { stopAll(r.members) }()
	err := r.startDatanodes(ctx)
	if err == nil {
		_, err = r.c.ddl(ctx, "create database", greptimeddl.CreateDatabase(cfg.Catalog, cfg.Schema, false, nil))
		if err == nil {
			err = r.rounds(ctx)
			// Also when interrupted: a table left behind would be failed
			// over, on the datanodes of the next run.
			cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Timeout)
			if _, derr := r.c.ddl(cleanup, "drop database", greptimeddl.DropDatabase(cfg.Catalog, cfg.Schema, false)); derr != nil {
				rep.DropDatabaseError = derr.Error()
			}
			cancel()
		}
	}
	rep.Leader = r.c.leader
	rep.Leases = r.rec.check()
	rep.Summary = summarize(rep.Measured)
	return rep, err
}

// startDatanodes starts datanodes 1..N and waits for each one's first
// region lease: the answer to a heartbeat that left its node info, from
// when on the selector counts it alive.
func (r *run) startDatanodes(ctx context.Context) error {
	for i := range r.cfg.Datanodes {
		m, err := startMember(ctx, r.cfg, uint64(i+1), r.rec)
		if err != nil {
			return err
		}
		r.members = append(r.members, m)
	}
	for _, m := range r.members {
		if err := r.awaitFirstLease(ctx, m); err != nil {
			return err
		}
	}
	select {
	case hs := <-r.members[0].node.Handshakes():
		r.rep.HeartbeatIntervalMs = hs.Config.GetHeartbeatIntervalMs()
	default:
	}
	return nil
}

func (r *run) awaitFirstLease(ctx context.Context, m *member) error {
	return r.rec.wait(ctx, r.cfg.LeaseTimeout, fmt.Sprintf("datanode %d's first region lease", m.id), func() bool {
		return r.rec.leasedLocked(m.id, nil, time.Time{})
	})
}

func (r *run) rounds(ctx context.Context) error {
	for i := range r.cfg.Rounds {
		res, err := r.round(ctx, i+1)
		if err != nil {
			return fmt.Errorf("regionfailoverbench: round %d: %w", i+1, err)
		}
		r.rep.Measured = append(r.rep.Measured, res)
		fmt.Fprintf(r.cfg.Progress, "round %d/%d: %d regions, floor %.2fs, detected %.2fs, upgraded %.2fs, leader median %.2fs max %.2fs\n",
			i+1, r.cfg.Rounds, res.Regions, res.Floor, res.Detected, res.UpgradedMax, res.LeaderMedian, res.LeaderMax)
	}
	return nil
}

// round creates the round's table, fails the victim, times the move of
// its regions, drops the table and brings up a fresh victim.
func (r *run) round(ctx context.Context, i int) (Round, error) {
	name := fmt.Sprintf("failover_%03d", i)
	tableID, regions, created, err := r.createTable(ctx, name)
	if err != nil {
		return Round{}, err
	}
	victim := r.members[0]
	// A lease that arrived after the victim sent a beat reporting the
	// regions: their detectors have a heartbeat of the victim's.
	if err := r.rec.wait(ctx, r.cfg.LeaseTimeout, "a lease granting the victim its regions", func() bool {
		beat, ok := victim.beats.firstSince(created)
		return ok && r.rec.leasedLocked(victimID, regions, beat)
	}); err != nil {
		return Round{}, err
	}
	r.rec.watchRound(victimID, regions)
	victim.stop()
	last, _ := victim.beats.last() // one at least: its lease answered one
	err = r.rec.wait(ctx, r.cfg.RoundTimeout, fmt.Sprintf("all %d regions of datanode %d granted Leader elsewhere", len(regions), victimID), func() bool {
		return len(r.rec.round.leader) == len(regions)
	})
	w := r.rec.endRound()
	if err != nil {
		return Round{}, fmt.Errorf("%d of %d regions moved: %w", len(w.leader), len(regions), err)
	}
	res := measure(w, last)
	res.Round, res.TableID = i, tableID
	history := victim.beats.since(created)
	res.Heartbeats = len(history)
	floor, err := detectionFloor(r.cfg.Detector, created, history)
	if err != nil {
		return Round{}, err
	}
	res.Floor = floor.Seconds()
	if _, err := r.c.ddl(ctx, "drop table "+name, greptimeddl.DropTable(r.cfg.Catalog, r.cfg.Schema, name, tableID, false)); err != nil {
		return Round{}, err
	}
	return res, r.restartVictim(ctx)
}

// createTable makes the round's table and returns its id, the regions the
// victim leads and when the create was answered (when the metasrv has
// registered the regions' failure detectors).
func (r *run) createTable(ctx context.Context, name string) (uint32, []uint64, time.Time, error) {
	cfg := r.cfg
	resp, err := r.c.ddl(ctx, "create table "+name, greptimeddl.CreateTable(greptimeddl.Table{
		Catalog: cfg.Catalog, Schema: cfg.Schema, Name: name, Partitions: cfg.partitions(),
	}))
	created := time.Now()
	if err != nil {
		return 0, nil, created, err
	}
	if len(resp.GetTableIds()) != 1 {
		return 0, nil, created, fmt.Errorf("create table %s answered %d table ids, expected 1", name, len(resp.GetTableIds()))
	}
	id := resp.GetTableIds()[0].GetId()
	raw, err := r.c.get(ctx, greptimekey.TableRouteKey(id))
	if err != nil {
		return 0, nil, created, err
	}
	route, err := greptimekey.Decode[greptimekey.TableRouteValue](raw)
	if err != nil || route.Physical == nil {
		return 0, nil, created, fmt.Errorf("table %d has no physical route (%q): %w", id, raw, err)
	}
	var regions []uint64
	for _, rr := range route.Physical.RegionRoutes {
		if rr.LeaderPeer != nil && rr.LeaderPeer.ID == victimID {
			regions = append(regions, rr.Region.ID)
		}
	}
	if len(regions) != cfg.Regions {
		return 0, nil, created, fmt.Errorf("datanode %d leads %d of table %d's %d regions, expected %d: the metasrv must place them with the round_robin selector over the %d datanodes, all alive",
			victimID, len(regions), id, len(route.Physical.RegionRoutes), cfg.Regions, cfg.Datanodes)
	}
	return id, regions, created, nil
}

// restartVictim starts a fresh datanode under the victim's id, holding
// nothing, and waits for its first lease.
func (r *run) restartVictim(ctx context.Context) error {
	r.rec.forget(victimID)
	m, err := startMember(ctx, r.cfg, victimID, r.rec)
	if err != nil {
		return err
	}
	r.members[0] = m
	return r.awaitFirstLease(ctx, m)
}
