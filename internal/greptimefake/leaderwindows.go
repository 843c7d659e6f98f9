package greptimefake

import (
	"fmt"
	"time"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
)

// LeaderWindows checks, over a whole run, that no region is ever writable
// on two datanodes at once, from the leases (and downgrades) the datanodes
// receive. A datanode holds a region writable from a Leader grant until
// lease_seconds after it received it (an upper bound of what the datanode
// counts, which starts when it sent its heartbeat), or until it takes a
// grant of another role for the region or executes a DowngradeRegions of it
// (the datanode demotes the region at once, as mito's set_role does). It is
// not safe for concurrent use: callers serialise it with their own lock.
type LeaderWindows struct {
	held   map[uint64]map[uint64]time.Time // region -> datanode -> end of its window
	grants uint64
}

// NewLeaderWindows returns a checker that has seen no lease.
func NewLeaderWindows() *LeaderWindows {
	return &LeaderWindows{held: map[uint64]map[uint64]time.Time{}}
}

// Lease records the lease datanode dn received at at, and describes every
// Leader grant in it that began while another datanode held the region.
func (w *LeaderWindows) Lease(dn uint64, l *metapb.RegionLease, at time.Time) []string {
	var overlaps []string
	until := at.Add(time.Duration(l.GetLeaseSeconds()) * time.Second)
	for _, g := range l.GetRegions() {
		r := g.GetRegionId()
		if g.GetRole() != metapb.RegionRole_Leader {
			w.Downgraded(dn, r, at)
			continue
		}
		w.grants++
		held := w.held[r]
		if held == nil {
			held = map[uint64]time.Time{}
			w.held[r] = held
		}
		for other, end := range held {
			if other != dn && at.Before(end) {
				overlaps = append(overlaps, fmt.Sprintf("region %d granted Leader on datanode %d at %s while datanode %d held it until %s",
					r, dn, at.Format(time.RFC3339Nano), other, end.Format(time.RFC3339Nano)))
			}
		}
		held[dn] = until
	}
	return overlaps
}

// Downgraded ends datanode dn's window of region r at at: it took another
// role for it, or executed a DowngradeRegions of it.
func (w *LeaderWindows) Downgraded(dn, r uint64, at time.Time) {
	if end, ok := w.held[r][dn]; ok && at.Before(end) {
		w.held[r][dn] = at
	}
}

// Grants counts the Leader grants seen.
func (w *LeaderWindows) Grants() uint64 { return w.grants }
