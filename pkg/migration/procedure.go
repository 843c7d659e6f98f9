package migration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/election"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/region"
	"github.com/pgmetasrv/metasrv/pkg/statuscode"
)

// The steps, in order (GreptimeDB's states; see the package documentation).
const (
	stepStart             = "migration_start"
	stepOpenCandidate     = "open_candidate_region"
	stepFlushLeader       = "flush_leader_region"
	stepDowngradeMetadata = "update_metadata_downgrade"
	stepDowngradeLeader   = "downgrade_leader_region"
	stepUpgradeCandidate  = "upgrade_candidate_region"
	stepUpgradeMetadata   = "update_metadata_upgrade"
	stepCloseDowngraded   = "close_downgraded_region"
)

var steps = []string{
	stepStart, stepOpenCandidate, stepFlushLeader, stepDowngradeMetadata,
	stepDowngradeLeader, stepUpgradeCandidate, stepUpgradeMetadata, stepCloseDowngraded,
}

// reached reports whether a procedure at step has started step s.
func reached(step, s string) bool { return slices.Index(steps, step) >= slices.Index(steps, s) }

// migrationData is the persisted state: GreptimeDB's PersistentContext for
// one region, the step, and what the downgrade learnt (which GreptimeDB
// keeps in memory only).
type migrationData struct {
	State         string           `json:"state"`
	Catalog       string           `json:"catalog"`
	Schema        string           `json:"schema"`
	RegionID      uint64           `json:"region_id"`
	From          greptimekey.Peer `json:"from_peer"`
	To            greptimekey.Peer `json:"to_peer"`
	TimeoutMillis int64            `json:"timeout_ms"`
	Reason        Reason           `json:"trigger_reason"`
	// LastEntryID and MetadataLastEntryID are the downgraded leader's,
	// which the candidate replays up to.
	LastEntryID         *uint64 `json:"last_entry_id,omitempty"`
	MetadataLastEntryID *uint64 `json:"metadata_last_entry_id,omitempty"`
	// LeaderDowngraded is whether the old leader answered the downgrade;
	// false once past it means its lease was waited out instead.
	LeaderDowngraded bool `json:"leader_downgraded,omitempty"`
}

// output is what a migration returns with Done.
type output struct {
	RegionID         uint64 `json:"region_id"`
	FromPeer         uint64 `json:"from_peer"`
	ToPeer           uint64 `json:"to_peer"`
	AlreadyMigrated  bool   `json:"already_migrated,omitempty"`
	LeaderDowngraded bool   `json:"leader_downgraded,omitempty"`
}

// migration is GreptimeDB's RegionMigrationProcedure for one region.
type migration struct {
	m    *Manager
	data migrationData
	// info is the running map's copy of data, guarded by m.mu.
	info migrationData

	// In memory only, as GreptimeDB's VolatileContext: a new leader starts
	// them afresh, which only ever makes it wait longer.
	guards       []*region.Guard
	opsElapsed   time.Duration // spent by downgrade and upgrade attempts
	leaseExpires time.Time     // the old leader's region lease is over by then
}

func (m *Manager) load(raw []byte) (procedure.Procedure, error) {
	p := &migration{m: m}
	if err := json.Unmarshal(raw, &p.data); err != nil {
		return nil, fmt.Errorf("region migration state: %w", err)
	}
	if !slices.Contains(steps, p.data.State) {
		return nil, fmt.Errorf("region migration state: unknown step %q", p.data.State)
	}
	// Resumed by a new leader: tracked from now, as GreptimeDB's loader
	// does, so that a second migration of the region is refused.
	m.reserve(p)
	if p.data.State != stepStart {
		// Held again before the term's leases may close regions no route
		// gives a datanode (the candidate's); a failure is met again, and
		// reported, by the step.
		_ = p.hold()
	}
	return p, nil
}

func (p *migration) Type() string          { return TypeName }
func (p *migration) Dump() ([]byte, error) { return json.Marshal(p.data) }

func (p *migration) tableID() uint32 { return greptimekey.RegionTableID(p.data.RegionID) }

func (p *migration) timeout() time.Duration {
	return time.Duration(p.data.TimeoutMillis) * time.Millisecond
}

// remaining is GreptimeDB's next_operation_timeout; ok is false once the
// task's timeout is spent.
func (p *migration) remaining() (time.Duration, bool) {
	d := p.timeout() - p.opsElapsed
	return d, d > 0
}

// LockKeys are GreptimeDB's (catalog and schema shared, the region
// exclusive) and the table shared: GreptimeDB takes the table's lock
// exclusively around each route update only, which this manager cannot
// do, so a drop of the table waits for the migration instead, and two
// migrations of one table's regions still run at once (their route
// updates compare-and-put, and retry on a conflict).
func (p *migration) LockKeys() []procedure.LockKey {
	return []procedure.LockKey{
		procedure.SharedLock("__catalog_lock/" + p.data.Catalog),
		procedure.SharedLock("__schema_lock/" + p.data.Catalog + "." + p.data.Schema),
		procedure.SharedLock(fmt.Sprintf("__table_lock/%d", p.tableID())),
		procedure.ExclusiveLock(fmt.Sprintf("__region_lock/%d", p.data.RegionID)),
	}
}

func (p *migration) Execute(ctx context.Context, pc *procedure.Context) (procedure.Status, error) {
	ts, err := p.m.termOf(pc.Term)
	if err != nil {
		return procedure.Status{}, err
	}
	p.m.track(p, pc.ID, &p.data)
	if p.data.State != stepStart {
		if err := p.hold(); err != nil {
			return procedure.Status{}, err
		}
	}
	log := pc.Logger.With("region_id", regionName(p.data.RegionID), "table_id", p.tableID(), "from", p.data.From.ID, "to", p.data.To.ID, "step", p.data.State)
	started := p.m.clock.Now()
	next, err := p.step(ctx, pc, ts, log)
	if err != nil {
		if !stopping(ctx, err) {
			log.Warn("region migration step failed", "err", err, "retryable", procedure.IsRetryable(err))
		}
		return procedure.Status{}, err
	}
	elapsed := p.m.clock.Now().Sub(started)
	p.m.metrics.stepDone(p.data.State, elapsed.Seconds())
	log.Info("region migration step done", "next", next, "elapsed", elapsed.String())
	if next == "" {
		p.release()
		p.m.finish(p)
		out, _ := json.Marshal(output{RegionID: p.data.RegionID, FromPeer: p.data.From.ID, ToPeer: p.data.To.ID,
			AlreadyMigrated: p.data.State == stepStart, LeaderDowngraded: p.data.LeaderDowngraded})
		return procedure.Done(out), nil
	}
	p.data.State = next
	p.m.track(p, "", &p.data)
	return procedure.Executing(true), nil
}

// step runs the current step; next is the step after it, "" when the
// migration is done.
func (p *migration) step(ctx context.Context, pc *procedure.Context, ts *termState, log *slog.Logger) (string, error) {
	switch p.data.State {
	case stepStart:
		return p.start(ctx, pc)
	case stepOpenCandidate:
		return stepFlushLeader, p.openCandidate(ctx, pc)
	case stepFlushLeader:
		return stepDowngradeMetadata, p.flushLeader(ctx, pc, log)
	case stepDowngradeMetadata:
		return stepDowngradeLeader, p.downgradeMetadata(ctx, pc, log)
	case stepDowngradeLeader:
		return stepUpgradeCandidate, p.downgradeLeader(ctx, pc, ts, log)
	case stepUpgradeCandidate:
		return stepUpgradeMetadata, p.upgradeCandidate(ctx, pc, log)
	case stepUpgradeMetadata:
		return stepCloseDowngraded, p.upgradeMetadata(ctx, pc, log)
	default:
		p.closeDowngraded(ctx, pc, log)
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", nil
	}
}

// hold registers the region on both datanodes with the region keeper
// until the migration ends: the candidate as a follower (GreptimeDB's
// opening-region guard), the old leader as a downgrading leader, so that
// once the route names the candidate the old leader's lease stays
// downgrading (not writable) until it is closed. The route wins over the
// keeper while it places the region on a datanode.
func (p *migration) hold() error {
	if len(p.guards) > 0 {
		return nil
	}
	pairs := []struct {
		datanode uint64
		role     metapb.RegionRole
	}{{p.data.To.ID, metapb.RegionRole_Follower}, {p.data.From.ID, metapb.RegionRole_DowngradingLeader}}
	for _, pair := range pairs {
		g, err := p.m.opts.Keeper.Register(pair.datanode, p.data.RegionID, pair.role)
		switch {
		case errors.Is(err, region.ErrNoTerm):
			p.release()
			return fmt.Errorf("migration: %w: %w", election.ErrFenced, err)
		case err != nil:
			p.release()
			return statuscode.Errorf(statuscode.Unexpected, "Another procedure is operating the region: %s on peer: %d", regionName(p.data.RegionID), pair.datanode)
		}
		p.guards = append(p.guards, g)
	}
	return nil
}

func (p *migration) release() {
	for _, g := range p.guards {
		g.Release()
	}
	p.guards = nil
}
