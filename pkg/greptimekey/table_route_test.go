package greptimekey_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
)

func TestTableRouteValueBytes(t *testing.T) {
	t.Parallel()
	// The serde shapes of table_route.rs:58-75 (tag "type", snake_case
	// variants, fields in declaration order) and router.rs:258-281.
	routes := []greptimekey.RegionRoute{
		{Region: greptimekey.Region{ID: greptimekey.RegionID(1024, 0), Attrs: map[string]string{}, PartitionExpr: `{"Expr":{"lhs":{"Column":"host"},"op":"Lt","rhs":{"Value":{"String":"m"}}}}`},
			LeaderPeer: peer(1, "10.0.0.1:3001"), FollowerPeers: []greptimekey.Peer{}},
		{Region: greptimekey.Region{ID: greptimekey.RegionID(1024, 1), Attrs: map[string]string{}, PartitionExpr: `{"Expr":{"lhs":{"Column":"host"},"op":"GtEq","rhs":{"Value":{"String":"m"}}}}`},
			LeaderPeer: peer(2, "10.0.0.2:3001"), FollowerPeers: []greptimekey.Peer{}},
	}
	route := greptimekey.NewPhysicalTableRoute(routes)
	require.Equal(t, uint32(1), route.Physical.MaxRegionNumber)
	requireBytes(t, route, `{"type":"physical","region_routes":[`+
		`{"region":{"id":4398046511104,"name":"","attrs":{},"partition_expr":"{\"Expr\":{\"lhs\":{\"Column\":\"host\"},\"op\":\"Lt\",\"rhs\":{\"Value\":{\"String\":\"m\"}}}}"},"leader_peer":{"id":1,"addr":"10.0.0.1:3001"},"follower_peers":[],"leader_down_since":null},`+
		`{"region":{"id":4398046511105,"name":"","attrs":{},"partition_expr":"{\"Expr\":{\"lhs\":{\"Column\":\"host\"},\"op\":\"GtEq\",\"rhs\":{\"Value\":{\"String\":\"m\"}}}}"},"leader_peer":{"id":2,"addr":"10.0.0.2:3001"},"follower_peers":[],"leader_down_since":null}`+
		`],"max_region_number":1,"version":0}`)

	// Encode writes < and > as they are, as serde_json does.
	routes[0].Region.PartitionExpr = "host < 'm'"
	got, err := greptimekey.NewPhysicalTableRoute(routes).Encode()
	require.NoError(t, err)
	require.Contains(t, string(got), `"partition_expr":"host < 'm'"`)

	requireBytes(t, greptimekey.NewLogicalTableRoute(1024), `{"type":"logical","physical_table_id":1024}`)

	got, err = greptimekey.TableRouteValue{Physical: &greptimekey.PhysicalTableRoute{}}.Encode()
	require.NoError(t, err)
	require.Equal(t, `{"type":"physical","region_routes":[],"max_region_number":0,"version":0}`, string(got))

	for _, v := range []greptimekey.TableRouteValue{{}, {Physical: &greptimekey.PhysicalTableRoute{}, Logical: &greptimekey.LogicalTableRoute{}}} {
		_, err := v.Encode()
		require.ErrorIs(t, err, greptimekey.ErrInvalidValue)
	}
}

func TestTableRouteValueNext(t *testing.T) {
	t.Parallel()
	// table_route.rs:903-951: the max region number never decreases.
	r := func(n uint32) greptimekey.RegionRoute {
		return greptimekey.RegionRoute{Region: greptimekey.Region{ID: greptimekey.RegionID(0, n)}}
	}
	route := greptimekey.NewPhysicalTableRoute([]greptimekey.RegionRoute{r(1), r(2)}).Physical
	require.Equal(t, uint32(2), route.MaxRegionNumber)
	next := route.Next([]greptimekey.RegionRoute{r(1)})
	require.Equal(t, uint32(2), next.MaxRegionNumber)
	require.Equal(t, uint64(1), next.Version)
	next = next.Next([]greptimekey.RegionRoute{r(3)})
	require.Equal(t, uint32(3), next.MaxRegionNumber)
	require.Equal(t, uint64(2), next.Version)

	routes, err := greptimekey.TableRouteValue{Physical: &next}.RegionRoutes()
	require.NoError(t, err)
	require.Len(t, routes, 1)
	_, err = greptimekey.NewLogicalTableRoute(1).RegionRoutes()
	require.ErrorIs(t, err, greptimekey.ErrLogicalTableRoute)
}

func TestTableRouteValueDecode(t *testing.T) {
	t.Parallel()
	// table_route.rs:955: a route written before the "type" tag, and before
	// max_region_number.
	old := `{"region_routes":[{"region":{"id":1,"name":"r1","partition":null,"attrs":{}},"leader_peer":{"id":2,"addr":"a2"},"follower_peers":[]},{"region":{"id":1,"name":"r1","partition":null,"attrs":{}},"leader_peer":{"id":2,"addr":"a2"},"follower_peers":[]}],"version":0}`
	v, err := greptimekey.Decode[greptimekey.TableRouteValue]([]byte(old))
	require.NoError(t, err)
	r1 := greptimekey.RegionRoute{Region: greptimekey.Region{ID: 1, Name: "r1", Attrs: map[string]string{}}, LeaderPeer: peer(2, "a2"), FollowerPeers: []greptimekey.Peer{}}
	require.Equal(t, greptimekey.TableRouteValue{Physical: &greptimekey.PhysicalTableRoute{
		RegionRoutes: []greptimekey.RegionRoute{r1, r1}, MaxRegionNumber: 1,
	}}, v)

	// partition_column.rs:264: legacy partitions, and leader_down_since.
	repair := `{"type":"physical","region_routes":[{"region":{"id":5506148073472,"name":"","partition":{"column_list":["c4"],"value_list":["{\"Expr\":{\"lhs\":{\"Column\":\"c4\"},\"op\":\"Lt\",\"rhs\":{\"Value\":{\"Int32\":1}}}}"]},"attrs":{}},"leader_peer":{"id":12,"addr":"192.168.1.1:3001"},"follower_peers":[],"leader_down_since":null},{"region":{"id":5506148073473,"name":"","partition":{"column_list":["c4"],"value_list":["{\"Expr\":{\"lhs\":{\"Expr\":{\"lhs\":{\"Column\":\"c4\"},\"op\":\"GtEq\",\"rhs\":{\"Value\":{\"Int32\":1}}}},\"op\":\"And\",\"rhs\":{\"Expr\":{\"lhs\":{\"Column\":\"c4\"},\"op\":\"Lt\",\"rhs\":{\"Value\":{\"Int32\":2}}}}}}"]},"attrs":{}},"leader_peer":{"id":13,"addr":"192.168.1.2:3001"},"follower_peers":[],"leader_down_since":null},{"region":{"id":5506148073474,"name":"","partition":{"column_list":["c4"],"value_list":["{\"Expr\":{\"lhs\":{\"Column\":\"c4\"},\"op\":\"GtEq\",\"rhs\":{\"Value\":{\"Int32\":2}}}}"]},"attrs":{}},"leader_peer":{"id":10,"addr":"192.168.1.3:3001"},"follower_peers":[],"leader_down_since":null}],"version":0}`
	v, err = greptimekey.Decode[greptimekey.TableRouteValue]([]byte(repair))
	require.NoError(t, err)
	require.Len(t, v.Physical.RegionRoutes, 3)
	require.Equal(t, uint32(2), v.Physical.MaxRegionNumber)
	require.Equal(t, `{"Expr":{"lhs":{"Column":"c4"},"op":"GtEq","rhs":{"Value":{"Int32":2}}}}`, v.Physical.RegionRoutes[2].Region.PartitionExpr)
	require.Equal(t, peer(13, "192.168.1.2:3001"), v.Physical.RegionRoutes[1].LeaderPeer)
	dist := greptimekey.RegionDistribution(v.Physical.RegionRoutes)
	require.Equal(t, []uint32{1}, dist[13].LeaderRegions)

	for _, c := range []struct {
		in   string
		want greptimekey.TableRouteValue
	}{
		// The tag may come last.
		{`{"physical_table_id":7,"type":"logical"}`, greptimekey.NewLogicalTableRoute(7)},
		{`{"region_routes":[],"version":3,"type":"physical","max_region_number":9}`,
			greptimekey.TableRouteValue{Physical: &greptimekey.PhysicalTableRoute{RegionRoutes: []greptimekey.RegionRoute{}, MaxRegionNumber: 9, Version: 3}}},
		// An unknown tag, or a logical one without its field, is retried as
		// a bare physical route.
		{`{"type":"other","region_routes":[],"version":1}`,
			greptimekey.TableRouteValue{Physical: &greptimekey.PhysicalTableRoute{RegionRoutes: []greptimekey.RegionRoute{}, Version: 1}}},
		{`{"type":"logical","region_routes":[],"version":1,"max_region_number":null}`,
			greptimekey.TableRouteValue{Physical: &greptimekey.PhysicalTableRoute{RegionRoutes: []greptimekey.RegionRoute{}, Version: 1}}},
	} {
		v, err := greptimekey.Decode[greptimekey.TableRouteValue]([]byte(c.in))
		require.NoError(t, err, c.in)
		require.Equal(t, c.want, v, c.in)
	}

	for _, c := range []struct{ in, want string }{
		{`{"type":"logical"}`, `missing field "region_routes"`},
		{`{"type":"logical","physical_table_id":null}`, `missing field "region_routes"`},
		{`{"type":"physical","region_routes":[]}`, `missing field "version"`},
		{`{"type":"physical","version":0}`, `missing field "region_routes"`},
		{`{"type":"physical","region_routes":[{}],"version":0}`, `missing field "region_routes[0].region"`},
		{`{"type":"physical","region_routes":[],"version":0,"max_region_number":-1}`, `field "max_region_number"`},
		{`{"type":`, `invalid TableRouteValue`},
		{`null`, `null, want an object`},
	} {
		_, err := greptimekey.Decode[greptimekey.TableRouteValue]([]byte(c.in))
		require.ErrorIs(t, err, greptimekey.ErrInvalidValue, c.in)
		require.ErrorContains(t, err, c.want, c.in)
	}
}

func TestDatanodeTableValueBytes(t *testing.T) {
	t.Parallel()
	// datanode_table.rs:400-410.
	requireBytes(t, greptimekey.DatanodeTableValue{
		TableID: 42, Regions: []uint32{1, 2, 3}, FollowerRegions: []uint32{}, Version: 1,
		RegionInfo: greptimekey.RegionInfo{RegionOptions: map[string]string{}, RegionWALOptions: map[uint32]string{}},
	}, `{"table_id":42,"regions":[1,2,3],"follower_regions":[],"engine":"","region_storage_path":"","region_options":{},"region_wal_options":{},"version":1}`)

	// datanode_table.rs:416: everything of RegionInfo may be missing.
	v, err := greptimekey.Decode[greptimekey.DatanodeTableValue]([]byte(`{"table_id":42,"regions":[1,2,3],"version":1}`))
	require.NoError(t, err)
	require.Equal(t, greptimekey.DatanodeTableValue{
		TableID: 42, Regions: []uint32{1, 2, 3}, FollowerRegions: []uint32{}, Version: 1,
		RegionInfo: greptimekey.RegionInfo{RegionOptions: map[string]string{}, RegionWALOptions: map[uint32]string{}},
	}, v)

	// What creating a two-region table writes for the datanode leading both.
	raft, err := greptimekey.WALOptions{Provider: greptimekey.WALRaftEngine}.Encode()
	require.NoError(t, err)
	info := greptimekey.RegionInfo{
		Engine:            "mito",
		RegionStoragePath: greptimekey.RegionStoragePath("greptime", "public"),
		RegionOptions:     map[string]string{"ttl": "7days", "append_mode": "false"},
		RegionWALOptions:  map[uint32]string{0: string(raft), 1: string(raft), 10: string(raft)},
	}
	value := greptimekey.NewDatanodeTableValue(1024, greptimekey.RegionRoleSet{LeaderRegions: []uint32{0, 1, 10}, FollowerRegions: []uint32{}}, info)
	requireBytes(t, value, `{"table_id":1024,"regions":[0,1,10],"follower_regions":[],"engine":"mito","region_storage_path":"greptime/public",`+
		`"region_options":{"append_mode":"false","ttl":"7days"},`+
		`"region_wal_options":{"0":"{\"wal.provider\":\"raft_engine\"}","1":"{\"wal.provider\":\"raft_engine\"}","10":"{\"wal.provider\":\"raft_engine\"}"},"version":0}`)
	wal, err := greptimekey.ParseRegionWALOptions(value.RegionInfo.RegionWALOptions)
	require.NoError(t, err)
	require.Len(t, wal, 3)

	// Nil lists and maps are written as [] and {}.
	got, err := greptimekey.DatanodeTableValue{TableID: 1}.Encode()
	require.NoError(t, err)
	require.Equal(t, `{"table_id":1,"regions":[],"follower_regions":[],"engine":"","region_storage_path":"","region_options":{},"region_wal_options":{},"version":0}`, string(got))

	v, err = greptimekey.Decode[greptimekey.DatanodeTableValue]([]byte(`{"table_id":1,"regions":[],"version":0,"region_wal_options":{"+7":"x"}}`))
	require.NoError(t, err)
	require.Equal(t, map[uint32]string{7: "x"}, v.RegionInfo.RegionWALOptions)

	for _, c := range []struct{ in, want string }{
		{`{"regions":[],"version":0}`, `missing field "table_id"`},
		{`{"table_id":1,"version":0}`, `missing field "regions"`},
		{`{"table_id":1,"regions":[]}`, `missing field "version"`},
		{`{"table_id":1,"regions":[],"version":0,"engine":null}`, `field "engine": null`},
		{`{"table_id":1,"regions":[],"version":0,"region_wal_options":{"x":"y"}}`, `field "region_wal_options": key "x"`},
		{`{"table_id":1,"regions":[],"version":0,"region_wal_options":{"4294967296":"y"}}`, `field "region_wal_options": key "4294967296"`},
	} {
		_, err := greptimekey.Decode[greptimekey.DatanodeTableValue]([]byte(c.in))
		require.ErrorIs(t, err, greptimekey.ErrInvalidValue, c.in)
		require.ErrorContains(t, err, c.want, c.in)
	}
}
