package heartbeat

import (
	"context"
	"time"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
)

// RegionFailureDetector is fed the regions a datanode leads on each of its
// regular heartbeats (GreptimeDB's RegionFailureHandler); region's
// FailureDetector is one. It is called in term, with the time the heartbeat
// arrived on Options.Now, and must not block: it runs in the heartbeat.
type RegionFailureDetector interface {
	Heartbeats(term int64, datanodeID uint64, regionIDs []uint64, at time.Time)
}

// regionFailure feeds Options.FailureDetector the datanode's leader regions
// of this heartbeat. It follows region_lease, as GreptimeDB's follows the
// lease and the inactive-region filter.
func regionFailure(_ context.Context, hc *handlerCtx) (bool, error) {
	fd, ts := hc.sess.svc.opts.FailureDetector, hc.sess.term
	if fd == nil || hc.stat == nil || ts == nil {
		return false, nil
	}
	if ids := detectedRegions(hc.stat, hc.resp.GetRegionLease()); len(ids) > 0 {
		fd.Heartbeats(ts.id, hc.stat.ID, ids, hc.now)
	}
	return false, nil
}

// detectedRegions are the reported regions, once each, that the datanode
// leads. With a lease decided for this heartbeat, they are those it grants
// a leader role (Leader, StagingLeader, DowngradingLeader): a region the
// lease closes, or one the route has the datanode follow, is left out, as
// GreptimeDB's FilterInactiveRegionStatsHandler leaves out the closed ones.
// Without a lease (no RegionLeaser, or its error) the reported role decides.
// GreptimeDB feeds followers too; failover moves leaders only, so a
// follower's detector would only ever suggest a failover of a region the
// datanode does not lead.
func detectedRegions(st *greptimekey.Stat, lease *metapb.RegionLease) []uint64 {
	var granted map[uint64]metapb.RegionRole
	if lease != nil {
		granted = make(map[uint64]metapb.RegionRole, len(lease.GetRegions()))
		for _, g := range lease.GetRegions() {
			granted[g.GetRegionId()] = g.GetRole()
		}
	}
	seen := make(map[uint64]struct{}, len(st.RegionStats))
	out := make([]uint64, 0, len(st.RegionStats))
	for _, r := range st.RegionStats {
		if _, dup := seen[r.ID]; dup {
			continue // a second interval of 0ms would skew the history
		}
		seen[r.ID] = struct{}{}
		leads := r.Role != greptimekey.RegionRoleFollower
		if granted != nil {
			role, ok := granted[r.ID]
			leads = ok && role != metapb.RegionRole_Follower
		}
		if leads {
			out = append(out, r.ID)
		}
	}
	return out
}
