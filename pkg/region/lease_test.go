package region

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/memkv"
	"github.com/pgmetasrv/metasrv/pkg/metasrv"
)

// fakeRoutes serves fixed placements and records what it was asked.
type fakeRoutes struct {
	tables map[uint32]TablePlacement
	err    error
	asked  [][]uint32
}

func (f *fakeRoutes) Placements(_ context.Context, tableIDs []uint32) (map[uint32]TablePlacement, error) {
	f.asked = append(f.asked, slices.Clone(tableIDs))
	if f.err != nil {
		return nil, f.err
	}
	out := map[uint32]TablePlacement{}
	for _, id := range tableIDs {
		if t, ok := f.tables[id]; ok {
			out[id] = t
		}
	}
	return out, nil
}

// leaseFixture is a decider over fake routes, a keeper running term 1, and
// the store Lease is to hand to the routes.
type leaseFixture struct {
	decider *LeaseDecider
	keeper  *Keeper
	routes  *fakeRoutes
	store   kv.Backend
}

func newLeaseFixture(t *testing.T, tables map[uint32]TablePlacement) *leaseFixture {
	t.Helper()
	f := &leaseFixture{keeper: startedKeeper(t, 1), routes: &fakeRoutes{tables: tables}, store: memkv.New()}
	d, err := NewLeaseDecider(LeaseDeciderOptions{
		Keeper: f.keeper,
		Routes: func(store kv.Backend) Routes {
			require.Same(t, f.store, store, "routes read the store Lease was given")
			return f.routes
		},
	})
	require.NoError(t, err)
	f.decider = d
	return f
}

type reported struct {
	id   uint64
	role metapb.RegionRole
}

func heartbeat(datanodeID uint64, regions ...reported) *metapb.HeartbeatRequest {
	req := &metapb.HeartbeatRequest{
		Header:             &metapb.RequestHeader{ProtocolVersion: 1},
		Peer:               &metapb.Peer{Id: datanodeID, Addr: "dn:4001"},
		DurationSinceEpoch: 1234,
	}
	for _, r := range regions {
		req.RegionStats = append(req.RegionStats, &metapb.RegionStat{RegionId: r.id, Role: r.role})
	}
	return req
}

func (f *leaseFixture) lease(t *testing.T, datanodeID uint64, regions ...reported) *metapb.RegionLease {
	t.Helper()
	l, err := f.decider.Lease(context.Background(), 1, f.store, datanodeID, heartbeat(datanodeID, regions...))
	require.NoError(t, err)
	require.NotNil(t, l)
	require.Equal(t, uint64(1234), l.GetDurationSinceEpoch())
	require.Equal(t, uint64(10), l.GetLeaseSeconds())
	return l
}

func granted(l *metapb.RegionLease) map[uint64]metapb.RegionRole {
	out := map[uint64]metapb.RegionRole{}
	for _, g := range l.GetRegions() {
		out[g.GetRegionId()] = g.GetRole()
	}
	return out
}

func leader(id uint64, followers ...uint64) RegionPlacement {
	return RegionPlacement{HasLeader: true, LeaderID: id, FollowerIDs: followers}
}

func physical(regions map[uint32]RegionPlacement) TablePlacement {
	return TablePlacement{Regions: regions}
}

const (
	roleLeader      = metapb.RegionRole_Leader
	roleFollower    = metapb.RegionRole_Follower
	roleDowngrading = metapb.RegionRole_DowngradingLeader
	roleStaging     = metapb.RegionRole_StagingLeader
)

// lease_keeper.rs test_renew_region_lease_via_region_route.
func TestRouteRole(t *testing.T) {
	t.Parallel()
	id := RegionID(1024, 1)
	p := leader(1024, 2048)
	tables := func() map[uint32]TablePlacement {
		return map[uint32]TablePlacement{1024: physical(map[uint32]RegionPlacement{1: p})}
	}
	for _, region := range []uint64{RegionID(1024, 2), id} {
		_, ok := routeRole(tables(), 1, region)
		require.False(t, ok, "not on datanode 1")
	}
	role, ok := routeRole(tables(), 1024, id)
	require.True(t, ok)
	require.Equal(t, roleLeader, role)
	role, _ = routeRole(tables(), 2048, id)
	require.Equal(t, roleFollower, role)
	p.LeaderState = LeaderDowngrading
	role, _ = routeRole(tables(), 1024, id)
	require.Equal(t, roleDowngrading, role)
	p.LeaderState = LeaderStaging
	role, _ = routeRole(tables(), 1024, id)
	require.Equal(t, roleStaging, role)
	// A route without a leader leads nowhere.
	p = RegionPlacement{FollowerIDs: []uint64{2048}}
	_, ok = routeRole(tables(), 0, id)
	require.False(t, ok)
}

// lease_keeper.rs test_renew_region_leases_non_exists_regions.
func TestLeaseClosesRegionsOfUnknownTables(t *testing.T) {
	t.Parallel()
	f := newLeaseFixture(t, nil)
	l := f.lease(t, 1, reported{RegionID(1024, 1), roleFollower}, reported{RegionID(1024, 2), roleLeader})
	require.Empty(t, l.GetRegions())
	require.Equal(t, []uint64{RegionID(1024, 1), RegionID(1024, 2)}, l.GetCloseableRegionIds())
	require.Equal(t, [][]uint32{{1024}}, f.routes.asked, "one read per table")
}

// Before a new term's resumed procedures hold their regions again, a region
// nobody routes is not closed: it may be one a resumed create is making.
func TestLeaseClosesNothingBeforeRecovery(t *testing.T) {
	t.Parallel()
	f := newLeaseFixture(t, nil)
	require.NoError(t, f.keeper.Start(context.Background(), metasrv.Term{ID: 1})) // the term starts again, unrecovered
	l := f.lease(t, 1, reported{RegionID(1024, 1), roleLeader})
	require.Empty(t, l.GetRegions())
	require.Empty(t, l.GetCloseableRegionIds())
	f.keeper.MarkRecovered(1)
	l = f.lease(t, 1, reported{RegionID(1024, 1), roleLeader})
	require.Equal(t, []uint64{RegionID(1024, 1)}, l.GetCloseableRegionIds())
}

// lease_keeper.rs test_renew_region_leases_basic and test_collect_metadata.
func TestLeaseBasic(t *testing.T) {
	t.Parallel()
	id := RegionID(1024, 1)
	f := newLeaseFixture(t, map[uint32]TablePlacement{1024: physical(map[uint32]RegionPlacement{1: leader(1024, 2048)})})
	for _, other := range []uint64{RegionID(1024, 2), id} {
		l := f.lease(t, 1, reported{other, roleFollower})
		require.Empty(t, l.GetRegions())
		require.Equal(t, []uint64{other}, l.GetCloseableRegionIds())
	}
	for _, role := range []metapb.RegionRole{roleLeader, roleFollower} {
		l := f.lease(t, 1024, reported{id, role})
		require.Equal(t, map[uint64]metapb.RegionRole{id: roleLeader}, granted(l))
		require.Empty(t, l.GetCloseableRegionIds())
		l = f.lease(t, 2048, reported{id, role})
		require.Equal(t, map[uint64]metapb.RegionRole{id: roleFollower}, granted(l))
	}
	// An opening region of a table without a route: the keeper's role,
	// whatever the datanode reports.
	opening := RegionID(2048, 1)
	g, err := f.keeper.Register(1024, opening, roleLeader)
	require.NoError(t, err)
	for _, role := range []metapb.RegionRole{roleLeader, roleFollower} {
		l := f.lease(t, 1024, reported{opening, role})
		require.Equal(t, map[uint64]metapb.RegionRole{opening: roleLeader}, granted(l))
		require.Empty(t, l.GetCloseableRegionIds())
	}
	// On another datanode it is not operating.
	require.Equal(t, []uint64{opening}, f.lease(t, 2048, reported{opening, roleLeader}).GetCloseableRegionIds())
	g.Release()
	require.Equal(t, []uint64{opening}, f.lease(t, 1024, reported{opening, roleLeader}).GetCloseableRegionIds())
}

// lease_keeper.rs test_renew_unexpected_logic_table.
func TestLeaseClosesRegionsOfLogicalTables(t *testing.T) {
	t.Parallel()
	f := newLeaseFixture(t, map[uint32]TablePlacement{1024: {Logical: true}})
	for _, id := range []uint64{RegionID(1024, 1), RegionID(1024, 2)} {
		l := f.lease(t, 1, reported{id, roleFollower}, reported{id, roleLeader})
		require.Empty(t, l.GetRegions())
		require.Equal(t, []uint64{id}, l.GetCloseableRegionIds(), "a region reported twice is answered once")
	}
}

// lease_keeper.rs test_renew_region_leases_with_downgrade_leader,
// ..._reported_staging_expected_leader and ..._expected_staging.
func TestLeaseFollowsLeaderState(t *testing.T) {
	t.Parallel()
	id := RegionID(1024, 1)
	downgrading := leader(1024, 2048)
	downgrading.LeaderState = LeaderDowngrading
	f := newLeaseFixture(t, map[uint32]TablePlacement{1024: physical(map[uint32]RegionPlacement{1: downgrading})})
	for _, role := range []metapb.RegionRole{roleLeader, roleFollower} {
		require.Equal(t, map[uint64]metapb.RegionRole{id: roleFollower}, granted(f.lease(t, 2048, reported{id, role})))
	}
	require.Equal(t, map[uint64]metapb.RegionRole{id: roleDowngrading}, granted(f.lease(t, 1024, reported{id, roleLeader})))

	f = newLeaseFixture(t, map[uint32]TablePlacement{1024: physical(map[uint32]RegionPlacement{1: leader(1024)})})
	require.Equal(t, map[uint64]metapb.RegionRole{id: roleLeader}, granted(f.lease(t, 1024, reported{id, roleStaging})))

	staging := leader(1024)
	staging.LeaderState = LeaderStaging
	f = newLeaseFixture(t, map[uint32]TablePlacement{1024: physical(map[uint32]RegionPlacement{1: staging})})
	require.Equal(t, map[uint64]metapb.RegionRole{id: roleStaging}, granted(f.lease(t, 1024, reported{id, roleStaging})))
}

// lease_keeper.rs test_renew_region_leases_metadata_role_beats_keeper_role,
// ..._missing_route_falls_back_to_keeper_role and
// ..._operating_region_uses_keeper_role.
func TestLeaseRouteBeatsKeeper(t *testing.T) {
	t.Parallel()
	id, other := RegionID(2048, 1), RegionID(2048, 2)
	f := newLeaseFixture(t, map[uint32]TablePlacement{2048: physical(map[uint32]RegionPlacement{1: leader(1024)})})
	_, err := f.keeper.Register(1024, id, roleFollower)
	require.NoError(t, err)
	require.Equal(t, map[uint64]metapb.RegionRole{id: roleLeader}, granted(f.lease(t, 1024, reported{id, roleFollower})))

	_, err = f.keeper.Register(1024, other, roleDowngrading)
	require.NoError(t, err)
	require.Equal(t, map[uint64]metapb.RegionRole{other: roleDowngrading}, granted(f.lease(t, 1024, reported{other, roleStaging})))

	f = newLeaseFixture(t, nil)
	_, err = f.keeper.Register(1024, id, roleDowngrading)
	require.NoError(t, err)
	require.Equal(t, map[uint64]metapb.RegionRole{id: roleDowngrading}, granted(f.lease(t, 1024, reported{id, roleStaging})))
}

// region_lease_handler.rs test_handle_upgradable_follower.
func TestLeaseUpgradableFollower(t *testing.T) {
	t.Parallel()
	id, another, opening := RegionID(10, 1), RegionID(10, 2), RegionID(10, 3)
	f := newLeaseFixture(t, map[uint32]TablePlacement{10: physical(map[uint32]RegionPlacement{1: leader(1, 2)})})

	l := f.lease(t, 1, reported{id, roleFollower}, reported{another, roleFollower})
	require.Equal(t, map[uint64]metapb.RegionRole{id: roleLeader}, granted(l))
	require.Equal(t, []uint64{another}, l.GetCloseableRegionIds())

	l = f.lease(t, 2, reported{id, roleFollower}, reported{another, roleFollower})
	require.Equal(t, map[uint64]metapb.RegionRole{id: roleFollower}, granted(l))
	require.Equal(t, []uint64{another}, l.GetCloseableRegionIds())

	_, err := f.keeper.Register(2, opening, roleFollower)
	require.NoError(t, err)
	l = f.lease(t, 2, reported{id, roleFollower}, reported{another, roleFollower}, reported{opening, roleFollower})
	require.Equal(t, map[uint64]metapb.RegionRole{id: roleFollower, opening: roleFollower}, granted(l))
	require.Equal(t, []uint64{another}, l.GetCloseableRegionIds())
}

// region_lease_handler.rs test_handle_downgradable_leader and
// test_handle_staging_leader.
func TestLeaseDowngradableLeader(t *testing.T) {
	t.Parallel()
	id, another, missing := RegionID(10, 1), RegionID(10, 2), RegionID(10, 3)
	downgrading := leader(1, 2)
	downgrading.LeaderState = LeaderDowngrading
	f := newLeaseFixture(t, map[uint32]TablePlacement{10: physical(map[uint32]RegionPlacement{1: downgrading, 2: leader(1)})})
	l := f.lease(t, 1, reported{id, roleLeader}, reported{another, roleLeader}, reported{missing, roleLeader})
	require.Equal(t, []*metapb.GrantedRegion{{RegionId: id, Role: roleDowngrading}, {RegionId: another, Role: roleLeader}}, l.GetRegions())
	require.Equal(t, []uint64{missing}, l.GetCloseableRegionIds())
}

// region_lease_handler.rs test_handle_renew_region_lease_failure: no lease.
func TestLeaseRouteFailure(t *testing.T) {
	t.Parallel()
	f := newLeaseFixture(t, nil)
	boom := errors.New("mock err")
	f.routes.err = boom
	l, err := f.decider.Lease(context.Background(), 1, f.store, 1, heartbeat(1, reported{RegionID(10, 1), roleLeader}))
	require.ErrorIs(t, err, boom)
	require.Nil(t, l)
}

func TestLeaseWithoutStat(t *testing.T) {
	t.Parallel()
	f := newLeaseFixture(t, nil)
	noPeer := heartbeat(1, reported{RegionID(10, 1), roleLeader})
	noPeer.Peer = nil
	noHeader := heartbeat(1)
	noHeader.Header = nil
	mailbox := heartbeat(1)
	mailbox.MailboxMessage = &metapb.MailboxMessage{Id: 1}
	for _, req := range []*metapb.HeartbeatRequest{noPeer, noHeader, mailbox} {
		l, err := f.decider.Lease(context.Background(), 1, f.store, 1, req)
		require.NoError(t, err)
		require.Nil(t, l)
	}
	require.Empty(t, f.routes.asked)

	// A heartbeat reporting no region gets an empty lease, without a read.
	l := f.lease(t, 1)
	require.NotNil(t, l.GetRegions())
	require.Empty(t, l.GetRegions())
	require.Empty(t, l.GetCloseableRegionIds())
	require.Empty(t, f.routes.asked)
}

func TestLeaseIgnoresOtherTermsOperatingRegions(t *testing.T) {
	t.Parallel()
	f := newLeaseFixture(t, nil)
	id := RegionID(10, 1)
	_, err := f.keeper.Register(1, id, roleLeader)
	require.NoError(t, err)
	l, err := f.decider.Lease(context.Background(), 2, f.store, 1, heartbeat(1, reported{id, roleLeader}))
	require.NoError(t, err)
	require.Empty(t, l.GetRegions(), "term 1's hold gives term 2 nothing")
	require.Empty(t, l.GetCloseableRegionIds(), "and a keeper that does not run term 2 cannot say the region is nobody's")
}

func TestLeaseSeconds(t *testing.T) {
	t.Parallel()
	require.Equal(t, uint64(10), LeaseSeconds(0))
	require.Equal(t, uint64(10), LeaseSeconds(3*time.Second))
	require.Equal(t, uint64(16), LeaseSeconds(5*time.Second))
	require.Equal(t, uint64(1), LeaseSeconds(100*time.Millisecond), "1.3s truncated, as Duration::as_secs does")

	d, err := NewLeaseDecider(LeaseDeciderOptions{Keeper: NewKeeper(), Routes: func(kv.Backend) Routes { return &fakeRoutes{} }, HeartbeatInterval: 2 * time.Second})
	require.NoError(t, err)
	require.Equal(t, uint64(7), d.LeaseSeconds())

	_, err = NewLeaseDecider(LeaseDeciderOptions{Keeper: NewKeeper()})
	require.Error(t, err)
	_, err = NewLeaseDecider(LeaseDeciderOptions{Keeper: NewKeeper(), Routes: func(kv.Backend) Routes { return &fakeRoutes{} }, HeartbeatInterval: -time.Second})
	require.Error(t, err)
}
