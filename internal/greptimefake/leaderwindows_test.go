package greptimefake

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
)

func lease(seconds uint64, role metapb.RegionRole, regions ...uint64) *metapb.RegionLease {
	l := &metapb.RegionLease{LeaseSeconds: seconds}
	for _, r := range regions {
		l.Regions = append(l.Regions, &metapb.GrantedRegion{RegionId: r, Role: role})
	}
	return l
}

func TestLeaderWindows(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	w := NewLeaderWindows()
	require.Empty(t, w.Lease(1, lease(10, metapb.RegionRole_Leader, 7), t0))
	require.Len(t, w.Lease(2, lease(10, metapb.RegionRole_Leader, 7), t0.Add(9*time.Second)), 1, "datanode 1's lease still runs")
	require.Empty(t, w.Lease(1, lease(10, metapb.RegionRole_Leader, 8), t0), "another region")

	w = NewLeaderWindows()
	w.Lease(1, lease(10, metapb.RegionRole_Leader, 7), t0)
	w.Lease(1, lease(10, metapb.RegionRole_DowngradingLeader, 7), t0.Add(time.Second))
	require.Empty(t, w.Lease(2, lease(10, metapb.RegionRole_Leader, 7), t0.Add(2*time.Second)), "a grant of another role ended the window")

	w = NewLeaderWindows()
	w.Lease(1, lease(10, metapb.RegionRole_Leader, 7), t0)
	w.Downgraded(1, 7, t0.Add(time.Second))
	require.Empty(t, w.Lease(2, lease(10, metapb.RegionRole_Leader, 7), t0.Add(2*time.Second)), "an executed downgrade ended it")
	require.Empty(t, w.Lease(3, lease(10, metapb.RegionRole_Leader, 7), t0.Add(12*time.Second+1)), "and a lease ends on its own")
	require.EqualValues(t, 3, w.Grants())
}
