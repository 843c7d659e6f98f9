package region

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/metasrv"
)

func startedKeeper(t *testing.T, term int64) *Keeper {
	t.Helper()
	k := NewKeeper()
	require.NoError(t, k.Start(context.Background(), metasrv.Term{ID: term}))
	k.MarkRecovered(term)
	t.Cleanup(k.Stop)
	return k
}

// A term's keeper is recovered only once its recovery listener ran (after
// the procedure manager), and only for that term.
func TestKeeperRecovery(t *testing.T) {
	t.Parallel()
	k := NewKeeper()
	require.False(t, k.Recovered(0))
	require.NoError(t, k.Start(context.Background(), metasrv.Term{ID: 7}))
	require.False(t, k.Recovered(7), "not before the procedures were loaded")
	k.MarkRecovered(6)
	require.False(t, k.Recovered(7), "another term's mark counts for nothing")
	require.NoError(t, k.RecoveryListener().Start(context.Background(), metasrv.Term{ID: 7}))
	require.True(t, k.Recovered(7))
	require.False(t, k.Recovered(8))
	require.NoError(t, k.Start(context.Background(), metasrv.Term{ID: 8}))
	require.False(t, k.Recovered(8), "every term starts unrecovered")
	k.Stop()
	require.False(t, k.Recovered(8))
}

// region_keeper.rs test_opening_region_keeper.
func TestKeeperRegisters(t *testing.T) {
	t.Parallel()
	k := startedKeeper(t, 1)
	g1, err := k.Register(1, 1, metapb.RegionRole_Leader)
	require.NoError(t, err)
	_, err = k.Register(1, 1, metapb.RegionRole_Leader)
	require.ErrorIs(t, err, ErrRegionOperating)
	require.EqualError(t, err, "another procedure is operating the region: 1(0, 1) on peer: 1")
	g2, err := k.Register(1, 2, metapb.RegionRole_Follower)
	require.NoError(t, err)

	require.Equal(t, map[uint64]metapb.RegionRole{1: metapb.RegionRole_Leader, 2: metapb.RegionRole_Follower},
		k.OperatingRoles(1, 1, []uint64{1, 2, 3}))
	require.Empty(t, k.OperatingRoles(1, 2, []uint64{1, 2, 3}), "another datanode")
	require.Equal(t, 2, k.Len())

	g1.Release()
	require.Equal(t, 1, k.Len())
	require.True(t, k.Contains(1, 2))
	require.False(t, k.Contains(1, 1))
	g1.Release()
	require.Equal(t, 1, k.Len(), "a second release removes nothing")

	g2.Release()
	require.Zero(t, k.Len())
	require.Equal(t, uint64(1), g2.DatanodeID())
	require.Equal(t, uint64(2), g2.RegionID())
	require.Equal(t, metapb.RegionRole_Follower, g2.Role())
}

func TestKeeperIsTermScoped(t *testing.T) {
	t.Parallel()
	k := NewKeeper()
	require.Equal(t, "region_keeper", k.Name())
	_, err := k.Register(1, 1, metapb.RegionRole_Leader)
	require.ErrorIs(t, err, ErrNoTerm)
	k.Stop() // before Start

	require.NoError(t, k.Start(context.Background(), metasrv.Term{ID: 3}))
	require.Equal(t, int64(3), k.Term())
	old, err := k.Register(1, 1, metapb.RegionRole_Leader)
	require.NoError(t, err)
	require.Empty(t, k.OperatingRoles(2, 1, []uint64{1}), "registrations answer only their own term")

	k.Stop()
	k.Stop()
	require.Zero(t, k.Term())
	require.Zero(t, k.Len())
	_, err = k.Register(1, 1, metapb.RegionRole_Leader)
	require.ErrorIs(t, err, ErrNoTerm)

	require.NoError(t, k.Start(context.Background(), metasrv.Term{ID: 4}))
	require.Empty(t, k.OperatingRoles(4, 1, []uint64{1}), "a new term starts empty")
	fresh, err := k.Register(1, 1, metapb.RegionRole_Follower)
	require.NoError(t, err, "the old term's registration is gone")
	old.Release()
	require.True(t, k.Contains(1, 1), "a late release of the old term's guard removes nothing")
	require.Equal(t, map[uint64]metapb.RegionRole{1: metapb.RegionRole_Follower}, k.OperatingRoles(4, 1, []uint64{1}))

	// Start without Stop (a missed step-down) drops the term's registrations too.
	require.NoError(t, k.Start(context.Background(), metasrv.Term{ID: 5}))
	require.Zero(t, k.Len())
	fresh.Release()
	k.Stop()

	require.Error(t, k.Start(context.Background(), metasrv.Term{}))
}

func TestKeeperConcurrentRegistrationsOneWins(t *testing.T) {
	t.Parallel()
	k := startedKeeper(t, 1)
	const n = 16
	results := make(chan error, n)
	for range n {
		go func() {
			_, err := k.Register(7, RegionID(1024, 1), metapb.RegionRole_Leader)
			results <- err
		}()
	}
	wins := 0
	for range n {
		if err := <-results; err == nil {
			wins++
		} else {
			require.ErrorIs(t, err, ErrRegionOperating)
		}
	}
	require.Equal(t, 1, wins)
}

func TestRegionID(t *testing.T) {
	t.Parallel()
	id := RegionID(1024, 1)
	require.Equal(t, uint64(4398046511105), id)
	require.Equal(t, uint32(1024), TableID(id))
	require.Equal(t, uint32(1), RegionNumber(id))
	require.Equal(t, "4398046511105(1024, 1)", FormatRegionID(id))
}
