package migration

import (
	"context"
	"log/slog"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
)

// subjectCloseCandidate is the subject of the close a rollback sends the
// candidate (GreptimeDB sends none).
const subjectCloseCandidate = "Close candidate regions: [%s]"

// Rollback is GreptimeDB's rollback_inner and UpdateMetadata::Rollback: the
// old leader's route is restored to a plain leader. Two things come first:
//   - a route the upgrade already committed (its answer lost) is left as it
//     is: the region has moved, and undoing that would strand writes;
//   - once UpgradeRegions may have been sent, the candidate's region is
//     closed (or, unreachable, its lease waited out), so that it is no
//     longer writable when the old leader becomes writable again.
//
// The keeper's holds are released at the end.
func (p *migration) Rollback(ctx context.Context, pc *procedure.Context) (err error) {
	defer func() {
		if err == nil || !procedure.IsRetryable(err) {
			p.release()
			p.m.finish(p)
		}
	}()
	if _, err := p.m.termOf(pc.Term); err != nil {
		return err
	}
	if !reached(p.data.State, stepDowngradeMetadata) {
		return nil
	}
	log := pc.Logger.With("region_id", regionName(p.data.RegionID), "table_id", p.tableID(), "from", p.data.From.ID, "to", p.data.To.ID, "step", p.data.State)
	snap, err := readRoute(ctx, pc.Store, p.m.routes.decoded, p.data.RegionID)
	if err != nil {
		return err
	}
	if rr := snap.route(); rr.LeaderPeer != nil && rr.LeaderPeer.ID == p.data.To.ID {
		log.Warn("the migration failed after the route named the candidate leader; the region stays on the candidate")
		p.handOverDetectors(pc, log)
		return nil
	}
	if reached(p.data.State, stepUpgradeCandidate) {
		if err := p.retireCandidate(ctx, pc, log); err != nil {
			return err
		}
	}
	changed, err := p.m.updateRoute(ctx, pc, p.data.RegionID,
		func(rr greptimekey.RegionRoute) (bool, error) {
			return rr.LeaderState != greptimekey.LeaderStateDowngrading, nil
		},
		func(s *routeSnapshot) (routeChange, error) {
			routes := cloneRoutes(s.value.Physical.RegionRoutes)
			routes[s.index].SetLeaderState(greptimekey.LeaderStateNone, 0)
			return routeChange{routes: routes}, nil
		})
	if err != nil {
		return err
	}
	log.Info("downgraded leader region restored in the table route", "written", changed)
	p.restoreDetectors(pc, log)
	p.invalidate(ctx, pc, log)
	return nil
}

// retireCandidate closes the candidate's region; when the candidate cannot
// be reached it waits one region lease instead: a datanode that gets no
// lease renewal turns its regions into followers when its last lease ends,
// and the candidate was never granted more than a follower lease.
func (p *migration) retireCandidate(ctx context.Context, pc *procedure.Context, log *slog.Logger) error {
	err := p.closeRegion(ctx, pc, p.data.To.ID, subjectCloseCandidate)
	switch {
	case err == nil:
		return nil
	case stopping(ctx, err):
		return err
	case unreachable(err):
		log.Warn("the candidate datanode is unreachable; waiting out its region lease before restoring the old leader", "err", err, "wait", p.m.regionLease.String())
		return sleep(ctx, p.m.clock, p.m.regionLease)
	default:
		return procedure.Retryable(err)
	}
}
