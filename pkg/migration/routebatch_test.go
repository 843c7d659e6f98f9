package migration

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/statuscode"
)

// countingStore counts the transactions on the route key, and runs
// beforeTxn (when set) before each.
type countingStore struct {
	*hookStore
	txns      atomic.Int32
	beforeTxn func(ctx context.Context)
}

func (c *countingStore) Txn(ctx context.Context, req kv.TxnRequest) (kv.TxnResponse, error) {
	c.txns.Add(1)
	if c.beforeTxn != nil {
		c.beforeTxn(ctx)
	}
	return c.hookStore.Txn(ctx, req)
}

// moveUpdate is upgradeMetadata's update of regionID to datanode to (the
// __dn_table values follow).
func moveUpdate(regionID uint64, to greptimekey.Peer) *routeUpdate {
	return &routeUpdate{
		regionID: regionID,
		done: func(rr greptimekey.RegionRoute) (bool, error) {
			if rr.LeaderPeer != nil && rr.LeaderPeer.ID == to.ID {
				return true, nil
			}
			return false, nil
		},
		change: func(s *routeSnapshot) (routeChange, error) {
			routes := cloneRoutes(s.value.Physical.RegionRoutes)
			routes[s.index].LeaderPeer = new(to)
			ops, err := datanodeTableOps(s.tableID, s.value.Physical.RegionRoutes, routes, greptimekey.RegionInfo{Engine: "mito", RegionStoragePath: "greptime/public", RegionOptions: map[string]string{}})
			return routeChange{routes: routes, ops: ops}, err
		},
		result: make(chan routeResult, 1),
	}
}

func resultOf(t *testing.T, u *routeUpdate) routeResult {
	t.Helper()
	select {
	case r := <-u.result:
		return r
	default:
		t.Fatalf("the update of region %d got no result", u.regionID)
		return routeResult{}
	}
}

// One batch is one write: both regions move to datanode 3 in a route
// whose version went up by one, the __dn_table values end as the last
// update left them, and an update with nothing to do, or one of a region
// the route lacks, is answered without holding the others back.
func TestCommitRoutesWritesABatchOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	store := &countingStore{hookStore: b.store}
	dn3Peer := greptimekey.Peer{ID: 3, Addr: dn3}
	move0, move1 := moveUpdate(region0, dn3Peer), moveUpdate(region1, dn3Peer)
	again := moveUpdate(region0, dn3Peer) // after move0 in the batch: already so
	missing := moveUpdate(greptimekey.RegionID(tableID, 7), dn3Peer)
	failing := moveUpdate(region1, dn3Peer)
	failing.change = func(*routeSnapshot) (routeChange, error) { return routeChange{}, errors.New("boom") }

	b.mgr.routes.commit(t.Context(), store, tableID, []*routeUpdate{move0, failing, again, missing, move1})
	require.EqualValues(t, 1, store.txns.Load())
	require.Equal(t, routeResult{changed: true}, resultOf(t, move0))
	require.Equal(t, routeResult{changed: true}, resultOf(t, move1))
	require.Equal(t, routeResult{}, resultOf(t, again))
	require.ErrorContains(t, resultOf(t, failing).err, "boom")
	code, _ := statuscode.Of(resultOf(t, missing).err)
	require.Equal(t, statuscode.RegionNotFound, code)

	route := b.route(t)
	require.EqualValues(t, 1, route.Version)
	for _, rr := range route.RegionRoutes {
		require.Equal(t, &dn3Peer, rr.LeaderPeer)
	}
	require.Nil(t, b.get(t, greptimekey.DatanodeTableKey(1, tableID)))
	require.Nil(t, b.get(t, greptimekey.DatanodeTableKey(2, tableID)))
	dn, err := greptimekey.Decode[greptimekey.DatanodeTableValue](b.get(t, greptimekey.DatanodeTableKey(3, tableID)))
	require.NoError(t, err)
	require.Equal(t, []uint32{0, 1}, dn.Regions)
}

// A writer outside the batch changes the route between its read and its
// write: an update the other writer already made is answered as done, the
// others are retried later.
func TestCommitRoutesLosingTheCompare(t *testing.T) {
	t.Parallel()
	b := setup(t)
	store := &countingStore{hookStore: b.store}
	dn3Peer := greptimekey.Peer{ID: 3, Addr: dn3}
	outside := moveUpdate(region0, dn3Peer)
	var once sync.Once
	store.beforeTxn = func(ctx context.Context) {
		once.Do(func() { b.mgr.routes.commit(ctx, b.store, tableID, []*routeUpdate{outside}) })
	}
	move0, move1 := moveUpdate(region0, dn3Peer), moveUpdate(region1, dn3Peer)
	b.mgr.routes.commit(t.Context(), store, tableID, []*routeUpdate{move0, move1})
	require.Equal(t, routeResult{changed: true}, resultOf(t, outside))
	require.Equal(t, routeResult{}, resultOf(t, move0), "the other writer made it")
	r1 := resultOf(t, move1)
	require.True(t, procedure.IsRetryable(r1.err), "%v", r1.err)
	require.Equal(t, &greptimekey.Peer{ID: 2, Addr: dn2}, b.route(t).RegionRoutes[1].LeaderPeer, "nothing of the lost batch was written")
}

// Many migrations of one table update its route at once: every update is
// applied exactly once, in no more writes than updates, and the version
// counts the writes.
func TestConcurrentRouteUpdatesAllLand(t *testing.T) {
	t.Parallel()
	b := setup(t)
	store := &countingStore{hookStore: b.store}
	pc := &procedure.Context{Term: 1, Store: store}
	var wg sync.WaitGroup
	results := make([]routeResult, 40)
	for i := range results {
		wg.Go(func() {
			// Each update appends to region i%2's attribute "n", which
			// only its own done check knows of: each writes once.
			regionID := []uint64{region0, region1}[i%2]
			var mine bool
			changed, err := b.mgr.updateRoute(t.Context(), pc, regionID,
				func(greptimekey.RegionRoute) (bool, error) { return mine, nil },
				func(s *routeSnapshot) (routeChange, error) {
					mine = true
					routes := cloneRoutes(s.value.Physical.RegionRoutes)
					routes[s.index].Region.Attrs = map[string]string{"n": s.route().Region.Attrs["n"] + "x"}
					return routeChange{routes: routes}, nil
				})
			results[i] = routeResult{changed: changed, err: err}
		})
	}
	wg.Wait()
	for i, r := range results {
		require.Equal(t, routeResult{changed: true}, r, "update %d", i)
	}
	route := b.route(t)
	require.Len(t, route.RegionRoutes[0].Region.Attrs["n"], 20)
	require.Len(t, route.RegionRoutes[1].Region.Attrs["n"], 20)
	require.LessOrEqual(t, store.txns.Load(), int32(40))
	require.EqualValues(t, store.txns.Load(), route.Version, "one version per write")
}
