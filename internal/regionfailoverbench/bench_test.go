package regionfailoverbench

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/internal/greptimefake"
	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/instruction"
	"github.com/pgmetasrv/metasrv/pkg/region"
)

// Worked values of GreptimeDB's detector with its defaults (threshold 8,
// min deviation 100ms, pause 10s, first estimate 1s), heartbeats every 3s
// after the seed: the history is the seed's 750 and 1250ms and then 3000ms
// intervals, and phi reaches 8 at mean + pause + 5.225 deviations.
func TestDetectionFloor(t *testing.T) {
	t.Parallel()
	seed := time.Unix(1_000_000, 0)
	every3s := func(n int) []time.Time {
		var out []time.Time
		for i := 1; i <= n; i++ {
			out = append(out, seed.Add(time.Duration(i)*3*time.Second))
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		beats int
		want  time.Duration
	}{
		{"seed only: mean 1000ms, deviation 250ms", 0, 12307 * time.Millisecond},
		{"3 beats: mean 2200ms, deviation 992ms", 3, 17387 * time.Millisecond},
		{"2000 beats, the history full of 3s: mean 3000ms, deviation floored at 100ms", 2000, 13523 * time.Millisecond},
	} {
		got, err := detectionFloor(region.DefaultPhiAccrualOptions(), seed, every3s(tc.beats))
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.want, got, tc.name)
	}
}

func TestStats(t *testing.T) {
	t.Parallel()
	require.Zero(t, percentile(nil, 0.99))
	v := make([]float64, 200)
	for i := range v {
		v[i] = float64(200 - i)
	}
	require.InDelta(t, 198.0, percentile(v, 0.99), 1e-9, "nearest rank: the 198th of 200")
	require.InDelta(t, 200.0, percentile(v[:20], 0.99), 1e-9, "of 20 rounds, the worst")
}

func lease(seconds uint64, grants map[uint64]metapb.RegionRole) *metapb.RegionLease {
	l := &metapb.RegionLease{LeaseSeconds: seconds}
	for id, role := range grants {
		l.Regions = append(l.Regions, &metapb.GrantedRegion{RegionId: id, Role: role})
	}
	return l
}

// A Leader grant while another datanode's is held is an overlap; a
// follower grant, or the same datanode's renewal, is not.
func TestRecorderFindsOverlaps(t *testing.T) {
	t.Parallel()
	r := newRecorder()
	r.lease(1, lease(10, map[uint64]metapb.RegionRole{7: metapb.RegionRole_Leader, 8: metapb.RegionRole_Leader}))
	r.lease(1, lease(10, map[uint64]metapb.RegionRole{7: metapb.RegionRole_Leader}))
	r.lease(2, lease(10, map[uint64]metapb.RegionRole{7: metapb.RegionRole_Follower}))
	require.True(t, r.check().OK())
	r.lease(2, lease(10, map[uint64]metapb.RegionRole{7: metapb.RegionRole_Leader}))
	c := r.check()
	require.Equal(t, 1, c.Overlaps)
	require.EqualValues(t, 4, c.LeaderGrants)
	require.EqualValues(t, 10, c.LeaseSeconds)
	require.Contains(t, c.Problems[0], "region 7 granted Leader on datanode 2 at ")
	require.Contains(t, c.Problems[0], "while datanode 1 held it until")
	require.Error(t, Report{Leases: c}.Failure())

	r.lease(3, lease(0, map[uint64]metapb.RegionRole{9: metapb.RegionRole_Leader}))
	r.lease(1, lease(0, map[uint64]metapb.RegionRole{9: metapb.RegionRole_Leader}))
	require.Equal(t, 1, r.check().Overlaps, "a lease of 0s is over when it arrives")

	r.lease(1, lease(10, map[uint64]metapb.RegionRole{10: metapb.RegionRole_Leader}))
	r.lease(1, lease(10, map[uint64]metapb.RegionRole{10: metapb.RegionRole_DowngradingLeader}))
	r.lease(2, lease(10, map[uint64]metapb.RegionRole{10: metapb.RegionRole_Leader}))
	require.Equal(t, 1, r.check().Overlaps, "a grant of another role ends the datanode's window")
}

// A round times, for the victim's regions only and on live datanodes only,
// the first executed open and upgrade and the first Leader grant.
func TestRecorderTimesARound(t *testing.T) {
	t.Parallel()
	r := newRecorder()
	r.watchRound(1, []uint64{7, 8})
	open := instruction.OpenRegions{{RegionIdent: instruction.RegionIdent{DatanodeID: 2, TableID: 0, RegionNumber: 7}}}
	r.instruction(1, greptimefake.InstructionEvent{Instruction: open, Executed: true})
	r.instruction(2, greptimefake.InstructionEvent{Instruction: open})
	require.Empty(t, r.round.opened, "the victim's, or one not executed, does not count")
	r.instruction(2, greptimefake.InstructionEvent{Instruction: open, Executed: true})
	r.instruction(2, greptimefake.InstructionEvent{Instruction: instruction.UpgradeRegions{{RegionID: 7}}, Executed: true})
	r.lease(1, lease(10, map[uint64]metapb.RegionRole{8: metapb.RegionRole_Leader}))
	r.lease(2, lease(10, map[uint64]metapb.RegionRole{7: metapb.RegionRole_Leader, 9: metapb.RegionRole_Leader}))
	r.lease(3, lease(10, map[uint64]metapb.RegionRole{8: metapb.RegionRole_Follower}))
	w := r.endRound()
	require.Nil(t, r.round)
	require.Len(t, w.opened, 1)
	require.Contains(t, w.opened, uint64(7))
	require.Contains(t, w.upgraded, uint64(7))
	require.Len(t, w.leader, 1)
	require.Contains(t, w.leader, uint64(7))
	require.False(t, w.opened[7].After(w.upgraded[7]))
	require.False(t, w.upgraded[7].After(w.leader[7]))

	res := measure(w, w.opened[7].Add(-time.Second))
	require.InDelta(t, 1.0, res.Detected, 1e-9)
	require.GreaterOrEqual(t, res.UpgradedMax, res.Detected)
	require.GreaterOrEqual(t, res.LeaderMax, res.UpgradedMax)
	require.InDelta(t, res.LeaderMax, res.LeaderMedian, 1e-9, "one region")
	require.Equal(t, 2, res.Regions)
}
