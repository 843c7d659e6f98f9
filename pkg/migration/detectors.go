package migration

import (
	"log/slog"
	"time"

	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/region"
)

// Detectors are the failure detectors of the leader regions (region
// failover on); *region.FailureDetector satisfies it. A migration hands its
// region's detector over as GreptimeDB's does (upgrade_candidate_region,
// rollback_inner): once the candidate leads, the old leader's pair is
// forgotten, so the supervisor does not fail the region over from a
// datanode that no longer leads it, and the candidate's pair starts afresh,
// so the history of an earlier placement of the region there (its last
// heartbeat long ago) does not fail the new leader over before its first
// heartbeat as leader; a rolled-back migration forgets the candidate's
// pair and watches the old leader's again.
type Detectors interface {
	Register(term int64, regions []region.DetectingRegion, at time.Time) error
	Reset(term int64, regions []region.DetectingRegion, at time.Time) error
	Deregister(term int64, regions []region.DetectingRegion) error
}

// handOverDetectors is the detectors' part of a committed upgrade.
func (p *migration) handOverDetectors(pc *procedure.Context, log *slog.Logger) {
	d := p.m.opts.Detectors
	if d == nil {
		return
	}
	from, to := p.pair(p.data.From.ID), p.pair(p.data.To.ID)
	if err := d.Deregister(pc.Term, from); err != nil {
		log.Warn("forgetting the old leader's failure detector failed", "err", err)
	}
	if err := d.Reset(pc.Term, to, p.m.clock.Now()); err != nil {
		log.Warn("resetting the new leader's failure detector failed", "err", err)
	}
}

// restoreDetectors is the detectors' part of a rollback.
func (p *migration) restoreDetectors(pc *procedure.Context, log *slog.Logger) {
	d := p.m.opts.Detectors
	if d == nil {
		return
	}
	if err := d.Deregister(pc.Term, p.pair(p.data.To.ID)); err != nil {
		log.Warn("forgetting the candidate's failure detector failed", "err", err)
	}
	if err := d.Register(pc.Term, p.pair(p.data.From.ID), p.m.clock.Now()); err != nil {
		log.Warn("watching the old leader's failure detector again failed", "err", err)
	}
}

func (p *migration) pair(datanode uint64) []region.DetectingRegion {
	return []region.DetectingRegion{{DatanodeID: datanode, RegionID: p.data.RegionID}}
}
