package greptimefake

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
)

// The watch wakes a waiter on each lease, names the latest Leader grant,
// and reports a grant made while another datanode still held the region.
func TestLeaderWatch(t *testing.T) {
	t.Parallel()
	w := NewLeaderWatch()
	leader := func(r uint64) *metapb.RegionLease {
		return &metapb.RegionLease{LeaseSeconds: 10, Regions: []*metapb.GrantedRegion{{RegionId: r, Role: metapb.RegionRole_Leader}}}
	}
	now := time.Now()
	w.lease(1, leader(7), now)

	got := make(chan uint64, 1)
	go func() {
		dn, _ := w.WaitLeader(t.Context(), 7, func(dn uint64) bool { return dn != 1 })
		got <- dn
	}()
	w.lease(2, leader(7), now.Add(time.Second))
	require.EqualValues(t, 2, <-got)
	require.Len(t, w.Overlaps(), 1, "datanode 1's lease still ran")

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	dn, err := w.WaitLeader(ctx, 7, func(dn uint64) bool { return dn == 3 })
	require.ErrorIs(t, err, context.Canceled)
	require.EqualValues(t, 2, dn)
}
