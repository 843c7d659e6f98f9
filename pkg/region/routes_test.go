package region

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/memkv"
)

func TestStoreRoutesReadsGreptimeRoutes(t *testing.T) {
	t.Parallel()
	store := memkv.New()
	leader := greptimekey.Peer{ID: 1, Addr: "dn1:4001"}
	follower := greptimekey.Peer{ID: 2, Addr: "dn2:4001"}
	routes := []greptimekey.RegionRoute{
		{Region: greptimekey.Region{ID: greptimekey.RegionID(1024, 0)}, LeaderPeer: &leader, FollowerPeers: []greptimekey.Peer{follower}},
		{Region: greptimekey.Region{ID: greptimekey.RegionID(1024, 1)}, LeaderPeer: &leader, LeaderState: greptimekey.LeaderStateDowngrading},
	}
	phys, err := greptimekey.NewPhysicalTableRoute(routes).Encode()
	require.NoError(t, err)
	logical, err := greptimekey.NewLogicalTableRoute(1024).Encode()
	require.NoError(t, err)
	for k, v := range map[string][]byte{
		string(greptimekey.TableRouteKey(1024)): phys,
		string(greptimekey.TableRouteKey(1025)): logical,
		string(greptimekey.TableRouteKey(1026)): []byte("not json"),
	} {
		_, err := store.Put(t.Context(), kv.PutRequest{Key: []byte(k), Value: v})
		require.NoError(t, err)
	}
	want := map[uint32]TablePlacement{
		1024: {Regions: map[uint32]RegionPlacement{
			0: {HasLeader: true, LeaderID: 1, FollowerIDs: []uint64{2}},
			1: {HasLeader: true, LeaderID: 1, LeaderState: LeaderDowngrading},
		}},
		1025: {Logical: true},
	}
	cached := CachedStoreRoutes(greptimekey.NewRouteCache(0))
	// The cached reader twice: the second read comes from what the first
	// decoded, and must say the same.
	for _, routes := range []Routes{StoreRoutes(store), cached(store), cached(store)} {
		got, err := routes.Placements(t.Context(), []uint32{1024, 1025, 1026, 1027})
		require.NoError(t, err)
		require.Equal(t, want, got, "an unreadable route and a missing one place nothing")
	}
}
