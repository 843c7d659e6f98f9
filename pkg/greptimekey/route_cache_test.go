package greptimekey

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRouteCache(t *testing.T) {
	t.Parallel()
	c := NewRouteCache(2)
	one, err := NewPhysicalTableRoute([]RegionRoute{{Region: Region{ID: RegionID(1024, 0)}, LeaderPeer: &Peer{ID: 1}}}).Encode()
	require.NoError(t, err)
	two, err := NewPhysicalTableRoute([]RegionRoute{{Region: Region{ID: RegionID(1024, 0)}, LeaderPeer: &Peer{ID: 2}}}).Encode()
	require.NoError(t, err)

	v, err := c.Decode(1024, one)
	require.NoError(t, err)
	again, err := c.Decode(1024, one)
	require.NoError(t, err)
	require.Same(t, v.Physical, again.Physical, "the same bytes give the remembered value")

	changed, err := c.Decode(1024, two)
	require.NoError(t, err)
	require.EqualValues(t, 2, changed.Physical.RegionRoutes[0].LeaderPeer.ID, "new bytes are decoded")

	_, err = c.Decode(1024, []byte(`{"type":"physical"}`))
	require.Error(t, err, "a value that does not decode is an error, not the remembered one")
	kept, err := c.Decode(1024, two)
	require.NoError(t, err)
	require.Same(t, changed.Physical, kept.Physical, "a failed decode forgets nothing")

	for _, table := range []uint32{1025, 1026, 1027} {
		_, err := c.Decode(table, one)
		require.NoError(t, err)
	}
	c.mu.Lock()
	require.Len(t, c.tables, 2, "no more tables than the limit")
	c.mu.Unlock()
	c.Forget(1027)
	c.mu.Lock()
	require.NotContains(t, c.tables, uint32(1027))
	c.mu.Unlock()
}
