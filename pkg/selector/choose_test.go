package selector

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
)

func fivePeers() []weighted {
	items := make([]weighted, 5)
	for i := range items {
		items[i] = weighted{peer: Peer{ID: uint64(i + 1), Addr: "127.0.0.1:3001"}, weight: 1}
	}
	return items
}

// common.rs test_choose_peers.
func TestChooseItems(t *testing.T) {
	t.Parallel()
	c := chooser{items: fivePeers(), rand: seeded()}
	for i := 1; i <= 5; i++ {
		got, err := chooseItems(Options{MinRequiredItems: i}, c)
		require.NoError(t, err)
		distinct := map[uint64]bool{}
		for _, p := range got {
			distinct[p.ID] = true
		}
		require.Len(t, distinct, i)
	}
	_, err := chooseItems(Options{MinRequiredItems: 6}, c)
	require.Equal(t, &NotEnoughAvailableError{Required: 6, Available: 5}, err)

	for i := 1; i <= 50; i++ {
		got, err := chooseItems(Options{MinRequiredItems: i, AllowDuplication: true}, c)
		require.NoError(t, err)
		require.Len(t, got, i)
		// Every full round holds each candidate once.
		counts := map[uint64]int{}
		for _, p := range got {
			counts[p.ID]++
		}
		for _, n := range counts {
			require.GreaterOrEqual(t, n, i/5)
			require.LessOrEqual(t, n, i/5+1)
		}
	}

	_, err = chooseItems(Options{MinRequiredItems: 2, AllowDuplication: true}, chooser{rand: seeded()})
	require.Equal(t, &NotEnoughAvailableError{Required: 2, Available: 0}, err)
	got, err := chooseItems(Options{MinRequiredItems: 0}, c)
	require.NoError(t, err)
	require.Empty(t, got)
}

// common.rs test_filter_out_excluded_peers.
func TestWithoutExcluded(t *testing.T) {
	t.Parallel()
	items := []weighted{
		{peer: Peer{ID: 1, Addr: "127.0.0.1:3001"}, weight: 1},
		{peer: Peer{ID: 2, Addr: "127.0.0.1:3002"}, weight: 1},
	}
	got := withoutExcluded(items, Options{ExcludePeerIDs: []uint64{1}})
	require.Equal(t, []weighted{{peer: Peer{ID: 2, Addr: "127.0.0.1:3002"}, weight: 1}}, got)
}

// weighted_choose.rs test_random_weighted_choose: a weight of 0 is never
// chosen.
func TestChooserSkipsZeroWeights(t *testing.T) {
	t.Parallel()
	c := chooser{items: []weighted{{peer: Peer{ID: 1}, weight: 100}, {peer: Peer{ID: 2}, weight: 0}}, rand: seeded()}
	for range 100 {
		p, err := c.one()
		require.NoError(t, err)
		require.Equal(t, uint64(1), p.ID)
		require.Equal(t, []uint64{1}, ids(c.multiple(3)))
	}
	_, err := chooser{items: []weighted{{peer: Peer{ID: 2}, weight: 0}}, rand: seeded()}.one()
	require.ErrorIs(t, err, ErrChooseItems)
	// The largest draw of rand still lands on a candidate.
	p, err := chooser{items: []weighted{{peer: Peer{ID: 3}, weight: 0.1}}, rand: func() float64 { return 0.9999999999999999 }}.one()
	require.NoError(t, err)
	require.Equal(t, uint64(3), p.ID)
}

// Heavier candidates are chosen more often. The source is seeded, so the
// counts are the same on every run; the margins are wide enough that any
// fair sampler passes with the seed changed.
func TestChooserFollowsWeights(t *testing.T) {
	t.Parallel()
	c := chooser{items: []weighted{{peer: Peer{ID: 1}, weight: 9}, {peer: Peer{ID: 2}, weight: 1}}, rand: seeded()}
	ones, firsts := 0, 0
	for range 10_000 {
		p, err := c.one()
		require.NoError(t, err)
		if p.ID == 1 {
			ones++
		}
		if c.multiple(2)[0].ID == 1 {
			firsts++
		}
	}
	require.InDelta(t, 9000, ones, 300)
	require.InDelta(t, 9000, firsts, 300)
}

// round_robin.rs test_round_robin_selector.
func TestRoundRobin(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.datanode(8, "node3", 0)
	c.datanode(2, "node1", 0)
	c.datanode(5, "node2", 0)
	s := NewRoundRobin()
	got, err := s.Select(context.Background(), c.input(), Options{MinRequiredItems: 4, AllowDuplication: true})
	require.NoError(t, err)
	require.Equal(t, []Peer{{ID: 2, Addr: "node1"}, {ID: 5, Addr: "node2"}, {ID: 8, Addr: "node3"}, {ID: 2, Addr: "node1"}}, got)
	got, err = s.Select(context.Background(), c.input(), Options{MinRequiredItems: 2, AllowDuplication: true})
	require.NoError(t, err)
	require.Equal(t, []Peer{{ID: 5, Addr: "node2"}, {ID: 8, Addr: "node3"}}, got)
	// As GreptimeDB's, it cycles without AllowDuplication too.
	got, err = s.Select(context.Background(), c.input(), Options{MinRequiredItems: 4})
	require.NoError(t, err)
	require.Equal(t, []uint64{2, 5, 8, 2}, ids(got))
}

// round_robin.rs test_round_robin_selector_with_exclude_peer_ids.
func TestRoundRobinExcludes(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.datanode(2, "node1", 0)
	c.datanode(5, "node2", 0)
	c.datanode(8, "node3", 0)
	s := NewRoundRobin()
	got, err := s.Select(context.Background(), c.input(), Options{MinRequiredItems: 1, AllowDuplication: true, ExcludePeerIDs: []uint64{2, 5}})
	require.NoError(t, err)
	require.Equal(t, []Peer{{ID: 8, Addr: "node3"}}, got)

	_, err = s.Select(context.Background(), c.input(), Options{MinRequiredItems: 3, ExcludePeerIDs: []uint64{2, 5, 8}})
	require.Equal(t, &NotEnoughAvailableError{Required: 3, Available: 0}, err)
}

func TestLeaseBased(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.datanode(1, "dn1:4001", 0)
	c.datanode(2, "dn2:4001", 0)
	c.datanode(3, "dn3:4001", 0)
	c.datanode(4, "dn4:4001", 0)
	c.datanode(5, "dn5:4001", 20*time.Second) // expired
	s := &LeaseBased{rand: seeded()}
	in := c.input()

	got, err := s.Select(context.Background(), in, Options{MinRequiredItems: 3, ExcludePeerIDs: []uint64{4}})
	require.NoError(t, err)
	require.ElementsMatch(t, []uint64{1, 2, 3}, ids(got))

	_, err = s.Select(context.Background(), in, Options{MinRequiredItems: 4, ExcludePeerIDs: []uint64{4}})
	require.Equal(t, &NotEnoughAvailableError{Required: 4, Available: 3}, err)

	got, err = s.Select(context.Background(), in, Options{MinRequiredItems: 7, AllowDuplication: true, ExcludePeerIDs: []uint64{4}})
	require.NoError(t, err)
	require.Len(t, got, 7)
	require.ElementsMatch(t, []uint64{1, 2, 3}, ids(got[:3]))
	require.ElementsMatch(t, []uint64{1, 2, 3}, ids(got[3:6]))

	one, err := s.Select(context.Background(), in, Options{MinRequiredItems: 1, ExcludePeerIDs: []uint64{1, 2, 3}})
	require.NoError(t, err)
	require.Equal(t, []Peer{{ID: 4, Addr: "dn4:4001"}}, one)

	_, err = s.Select(context.Background(), newCluster(t).input(), Options{MinRequiredItems: 1})
	require.Equal(t, &NotEnoughAvailableError{Required: 1, Available: 0}, err)
}

// weight_compute.rs test_weight_compute: 11, 12 and 13 regions weigh 4, 3
// and 2; load_based.rs test_filter_out_expired_datanode: only alive
// datanodes' stats count.
func TestRegionCountWeights(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.datanode(1, "dn1:4001", 0)
	c.datanode(2, "dn2:4001", 0)
	c.datanode(3, "dn3:4001", 0)
	c.datanode(4, "dn4:4001", 0) // alive, no stats yet
	c.stats(1, "127.0.0.1:3001", 11)
	c.stats(2, "127.0.0.1:3002", 12)
	c.stats(3, "127.0.0.1:3003", 13)
	c.stats(9, "127.0.0.1:3009", 0) // stats of a datanode that is not alive
	alive, err := AliveDatanodes(context.Background(), c.input(), nil)
	require.NoError(t, err)
	stats, err := readStats(context.Background(), c.mem, alive)
	require.NoError(t, err)
	require.Len(t, stats, 3)
	require.Equal(t, []weighted{
		{peer: Peer{ID: 1, Addr: "127.0.0.1:3001"}, weight: 4},
		{peer: Peer{ID: 2, Addr: "127.0.0.1:3002"}, weight: 3},
		{peer: Peer{ID: 3, Addr: "127.0.0.1:3003"}, weight: 2},
	}, regionCountWeights(alive, stats))

	// Equal counts: every weight is the spread of 1.
	same := regionCountWeights(alive[:2], map[uint64]greptimekey.StatValue{1: stats[1], 2: stats[1]})
	require.Equal(t, []float64{1, 1}, []float64{same[0].weight, same[1].weight})
	require.Empty(t, regionCountWeights(alive, nil))
}

func TestLoadBased(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.datanode(1, "dn1:4001", 0)
	c.datanode(2, "dn2:4001", 0)
	c.datanode(3, "dn3:4001", 0) // no stats: not a candidate
	c.stats(1, "dn1:4001", 100)
	c.stats(2, "dn2:4001", 0)
	s := &LoadBased{rand: seeded()}

	got, err := s.Select(context.Background(), c.input(), Options{MinRequiredItems: 2})
	require.NoError(t, err)
	require.ElementsMatch(t, []uint64{1, 2}, ids(got))

	_, err = s.Select(context.Background(), c.input(), Options{MinRequiredItems: 3})
	require.Equal(t, &NotEnoughAvailableError{Required: 3, Available: 2}, err)

	// Counts 100 and 0, spread 100: datanode 1 weighs 100 - 100 + 100 = 100,
	// datanode 2 100 - 0 + 100 = 200, so it is chosen two times in three
	// (the source is seeded: the count is the same on every run).
	twos := 0
	for range 300 {
		got, err := s.Select(context.Background(), c.input(), Options{MinRequiredItems: 1})
		require.NoError(t, err)
		if got[0].ID == 2 {
			twos++
		}
	}
	require.InDelta(t, 200, twos, 40)

	got, err = s.Select(context.Background(), c.input(), Options{MinRequiredItems: 1, ExcludePeerIDs: []uint64{2}})
	require.NoError(t, err)
	require.Equal(t, []Peer{{ID: 1, Addr: "dn1:4001"}}, got)
}
