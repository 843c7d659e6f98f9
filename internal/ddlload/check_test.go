package ddlload

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/pgmetasrv/metasrv/internal/greptimefake"
	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
)

// storeOf is a Store client of a memory node holding kvs.
func storeOf(t *testing.T, kvs map[string]string) metapb.StoreClient {
	t.Helper()
	n := memoryNode(t)
	cc, err := grpc.NewClient(n.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	s := metapb.NewStoreClient(cc)
	for k, v := range kvs {
		_, err := s.Put(t.Context(), &metapb.PutRequest{Header: frontendHeader(), Key: []byte(k), Value: []byte(v)})
		require.NoError(t, err)
	}
	return s
}

func routeJSON(t *testing.T, table uint32, leaders ...greptimekey.Peer) string {
	t.Helper()
	var routes []greptimekey.RegionRoute
	for i, p := range leaders {
		routes = append(routes, greptimekey.RegionRoute{
			Region: greptimekey.Region{ID: greptimekey.RegionID(table, uint32(i)), Attrs: map[string]string{}}, LeaderPeer: &p,
		})
	}
	b, err := greptimekey.NewPhysicalTableRoute(routes).Encode()
	require.NoError(t, err)
	return string(b)
}

// TestCheckCreatedFindsWhatIsWrong gives the check metadata and datanodes
// that differ from what the run made in every way it looks at.
func TestCheckCreatedFindsWhatIsWrong(t *testing.T) {
	t.Parallel()
	dn1 := greptimekey.Peer{ID: 1, Addr: "127.0.0.1:7001"}
	store := storeOf(t, map[string]string{
		"__table_name/greptime/s/t000000": `{"table_id":1024}`,
		"__table_name/greptime/s/t000002": `{"table_id":1030}`, // a table not made
		"__table_name/greptime/s/t000003": `{"table_id":9}`,    // the wrong id
		"__table_name/greptime/other/x":   `{"table_id":1}`,    // another schema: not counted
		"__table_route/1024":              routeJSON(t, 1024, dn1),
		"__table_route/1026":              routeJSON(t, 1026, greptimekey.Peer{ID: 5, Addr: "10.0.0.5:4001"}),
	})
	k := &checker{store: store, catalog: "greptime", schema: "s", regions: 1}
	made := map[string]uint32{"t000000": 1024, "t000001": 1025, "t000003": 1026}
	held := []heldRegions{{id: 1, addr: dn1.Addr, regions: map[uint64]greptimefake.RegionRole{
		greptimekey.RegionID(1024, 0): greptimefake.RegionFollower,
		greptimekey.RegionID(77, 0):   greptimefake.RegionLeader,
	}}, {id: 2, addr: "127.0.0.1:7002", regions: map[uint64]greptimefake.RegionRole{
		greptimekey.RegionID(1024, 0): greptimefake.RegionLeader,
	}}}
	c, err := k.checkCreated(t.Context(), 3, made, held)
	require.NoError(t, err)
	require.False(t, c.OK())
	require.Equal(t, 3, c.TableNames)
	require.Equal(t, 1, c.Routes, "only 1024's route is right")
	require.Equal(t, 3, c.Regions)
	require.Equal(t, []int{2, 1}, c.RegionsPerDatanode)
	require.Equal(t, []string{
		"__table_name/greptime/s/t000002 (table id 1030) is not a table this run made",
		"__table_name/greptime/s/t000003 names table id 9; its create answered 1026",
		"table t000001 (id 1025) has no __table_name key",
		"__table_route/1025 is missing",
		"__table_route/1026: region 4406636445696's leader &{ID:5 Addr:10.0.0.5:4001} is none of the fake datanodes",
		"datanode 1 holds region 330712481792, which no route of this run's tables places",
		"datanode 1 holds region 4398046511104 as Follower, not leader",
		"datanode 2 holds region 4398046511104, which its route places on datanode 1",
	}, c.Problems)
	require.Equal(t, 8, c.ProblemCount)

	// The count is checked too.
	c, err = k.checkCreated(t.Context(), 4, map[string]uint32{"t000000": 1024, "t000002": 1030, "t000003": 9}, nil)
	require.NoError(t, err)
	require.Contains(t, c.Problems, "3 __table_name keys under __table_name/greptime/s/, expected 4")
}

func TestCheckDroppedFindsWhatIsLeft(t *testing.T) {
	t.Parallel()
	store := storeOf(t, map[string]string{
		"__tombstone/__table_name/greptime/s/t000001": `{"table_id":1025}`,
		"__table_info/1025":                           `{}`,
	})
	k := &checker{store: store, catalog: "greptime", schema: "s", regions: 1}
	held := []heldRegions{{id: 1, regions: map[uint64]greptimefake.RegionRole{greptimekey.RegionID(1024, 0): greptimefake.RegionLeader}}}
	c, err := k.checkDropped(t.Context(), map[string]uint32{"t000000": 1024, "t000001": 1025}, map[string]uint32{}, held)
	require.NoError(t, err)
	require.Equal(t, []string{
		"__tombstone/__table_name/greptime/s/t000001 is left",
		"__table_info/1025 of a dropped table is left",
		"datanode 1 still holds region 4398046511104 of a dropped table",
	}, c.Problems)
	require.Equal(t, 1, c.Tombstones)
	require.Equal(t, 1, c.Routes)
	require.Equal(t, 1, c.Regions)
}

// TestScanPages reads a prefix of more keys than one page holds.
func TestScanPages(t *testing.T) {
	t.Parallel()
	kvs := map[string]string{}
	for i := range scanPage + 5 {
		kvs["__table_name/greptime/p/"+tableName(i)] = `{"table_id":1}`
	}
	kvs["__table_name/greptime/p0/x"] = `{"table_id":1}`
	k := &checker{store: storeOf(t, kvs)}
	got, err := k.scan(t.Context(), greptimekey.TableNameSchemaPrefix("greptime", "p"))
	require.NoError(t, err)
	require.Len(t, got, scanPage+5)
}
