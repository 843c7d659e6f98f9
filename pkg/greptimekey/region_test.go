package greptimekey_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
)

func TestRegionID(t *testing.T) {
	t.Parallel()
	// instruction.rs:1335 and partition_column.rs:264 hold the region ids of
	// tables 1024 and 1282.
	require.Equal(t, uint64(4398046511105), greptimekey.RegionID(1024, 1))
	require.Equal(t, uint64(5506148073472), greptimekey.RegionID(1282, 0))
	require.Equal(t, uint64(18446744073709551615), greptimekey.RegionID(4294967295, 4294967295))
	for _, c := range []struct{ table, number uint32 }{{0, 0}, {1024, 0}, {1024, 7}, {4294967295, 1}, {1, 4294967295}} {
		id := greptimekey.RegionID(c.table, c.number)
		require.Equal(t, c.table, greptimekey.RegionTableID(id))
		require.Equal(t, c.number, greptimekey.RegionNumber(id))
	}
	require.Equal(t, "greptime/public", greptimekey.RegionStoragePath("greptime", "public"))
}

func peer(id uint64, addr string) *greptimekey.Peer { return &greptimekey.Peer{ID: id, Addr: addr} }

func TestRegionRouteBytes(t *testing.T) {
	t.Parallel()
	route := greptimekey.RegionRoute{
		Region:        greptimekey.Region{ID: 2, Name: "r2", Attrs: map[string]string{}},
		LeaderPeer:    peer(1, "a1"),
		FollowerPeers: []greptimekey.Peer{{ID: 2, Addr: "a2"}, {ID: 3, Addr: "a3"}},
	}
	// Without a state or a policy, neither is written (router.rs:267-280,
	// router.rs:745-761); leader_down_since always is.
	requireRoundTrip(t, route, `{"region":{"id":2,"name":"r2","attrs":{},"partition_expr":""},"leader_peer":{"id":1,"addr":"a1"},`+
		`"follower_peers":[{"id":2,"addr":"a2"},{"id":3,"addr":"a3"}],"leader_down_since":null}`)

	down := int64(1700000000000)
	route.LeaderState = greptimekey.LeaderStateDowngrading
	route.LeaderDownSince = &down
	route.WriteRoutePolicy = greptimekey.WriteRoutePolicyIgnoreAllWrites
	route.Region.Attrs = map[string]string{"b": "2", "a": "1"}
	route.Region.PartitionExpr = `{"Expr":{"lhs":{"Column":"c4"},"op":"Lt","rhs":{"Value":{"Int32":1}}}}`
	requireRoundTrip(t, route, `{"region":{"id":2,"name":"r2","attrs":{"a":"1","b":"2"},`+
		`"partition_expr":"{\"Expr\":{\"lhs\":{\"Column\":\"c4\"},\"op\":\"Lt\",\"rhs\":{\"Value\":{\"Int32\":1}}}}"},`+
		`"leader_peer":{"id":1,"addr":"a1"},"follower_peers":[{"id":2,"addr":"a2"},{"id":3,"addr":"a3"}],`+
		`"leader_state":"Downgrading","leader_down_since":1700000000000,"write_route_policy":"IgnoreAllWrites"}`)

	// No leader is null; nil followers and attrs are written as [] and {}.
	requireRoundTrip(t, greptimekey.RegionRoute{Region: greptimekey.Region{ID: 4398046511104, Attrs: map[string]string{}}, FollowerPeers: []greptimekey.Peer{}},
		`{"region":{"id":4398046511104,"name":"","attrs":{},"partition_expr":""},"leader_peer":null,"follower_peers":[],"leader_down_since":null}`)
	got, err := json.Marshal(greptimekey.RegionRoute{Region: greptimekey.Region{ID: 1}})
	require.NoError(t, err)
	require.Equal(t, `{"region":{"id":1,"name":"","attrs":{},"partition_expr":""},"leader_peer":null,"follower_peers":[],"leader_down_since":null}`, string(got))

	_, err = json.Marshal(greptimekey.RegionRoute{LeaderState: "Downgraded"})
	require.ErrorIs(t, err, greptimekey.ErrInvalidValue)
	_, err = json.Marshal(greptimekey.RegionRoute{WriteRoutePolicy: "Ignore"})
	require.ErrorIs(t, err, greptimekey.ErrInvalidValue)
}

// requireRoundTrip checks that v encodes to want and want decodes to v.
func requireRoundTrip[T any](t *testing.T, v T, want string) {
	t.Helper()
	got, err := json.Marshal(v)
	require.NoError(t, err)
	require.Equal(t, want, string(got))
	var back T
	require.NoError(t, json.Unmarshal([]byte(want), &back))
	require.Equal(t, v, back)
}

func TestRegionRouteDecode(t *testing.T) {
	t.Parallel()
	base := greptimekey.RegionRoute{
		Region:        greptimekey.Region{ID: 2, Name: "r2", Attrs: map[string]string{}},
		LeaderPeer:    peer(1, "a1"),
		FollowerPeers: []greptimekey.Peer{{ID: 2, Addr: "a2"}, {ID: 3, Addr: "a3"}},
	}
	downgrading := base
	downgrading.LeaderState = greptimekey.LeaderStateDowngrading
	const prefix = `{"region":{"id":2,"name":"r2","partition":null,"attrs":{}},"leader_peer":{"id":1,"addr":"a1"},"follower_peers":[{"id":2,"addr":"a2"},{"id":3,"addr":"a3"}]`
	for _, c := range []struct {
		in   string
		want greptimekey.RegionRoute
	}{
		{prefix + `}`, base}, // router.rs:658
		{prefix + `,"leader_state":"Downgraded","leader_down_since":null}`, downgrading},   // router.rs:680
		{prefix + `,"leader_status":"Downgraded","leader_down_since":null}`, downgrading},  // router.rs:697
		{prefix + `,"leader_state":"Downgrading","leader_down_since":null}`, downgrading},  // router.rs:714
		{prefix + `,"leader_status":"Downgrading","leader_down_since":null}`, downgrading}, // router.rs:731
		{prefix + `,"leader_state":null,"write_route_policy":null}`, base},
	} {
		var got greptimekey.RegionRoute
		require.NoError(t, json.Unmarshal([]byte(c.in), &got), c.in)
		require.Equal(t, c.want, got, c.in)
	}

	// router.rs:738.
	var r greptimekey.RegionRoute
	require.NoError(t, json.Unmarshal([]byte(`{"region":{"id":2,"name":"r2","partition":null,"attrs":{}},"leader_peer":{"id":1,"addr":"a1"},"follower_peers":[{"id":2,"addr":"a2"}],"write_route_policy":"IgnoreAllWrites"}`), &r))
	require.Equal(t, greptimekey.WriteRoutePolicyIgnoreAllWrites, r.WriteRoutePolicy)

	// A region id may be a string (descriptors.rs str_or_u64), attrs may be
	// missing, and the leader peer too.
	require.NoError(t, json.Unmarshal([]byte(`{"region":{"id":"4398046511105","name":"x"},"follower_peers":[]}`), &r))
	require.Equal(t, greptimekey.RegionRoute{Region: greptimekey.Region{ID: 4398046511105, Name: "x", Attrs: map[string]string{}}, FollowerPeers: []greptimekey.Peer{}}, r)
	require.NoError(t, json.Unmarshal([]byte(`{"region":{"id":"+7","name":"x"},"follower_peers":[]}`), &r))
	require.Equal(t, uint64(7), r.Region.ID)

	for _, c := range []struct{ in, want string }{
		{`{"region":{"id":2,"name":"r2"}}`, `missing field "follower_peers"`},
		{`{"follower_peers":[]}`, `missing field "region"`},
		{`{"region":{"name":"r2"},"follower_peers":[]}`, `missing field "region.id"`},
		{`{"region":{"id":2},"follower_peers":[]}`, `missing field "region.name"`},
		{`{"region":{"id":-1,"name":""},"follower_peers":[]}`, `field "region.id"`},
		{`{"region":{"id":1.5,"name":""},"follower_peers":[]}`, `field "region.id"`},
		{`{"region":{"id":"x","name":""},"follower_peers":[]}`, `field "region.id"`},
		{`{"region":{"id":1,"name":"","attrs":null},"follower_peers":[]}`, `field "region.attrs": null`},
		{`{"region":{"id":1,"name":"","partition":{"value_list":[]}},"follower_peers":[]}`, `missing field "region.partition.column_list"`},
		{`{"region":{"id":1,"name":""},"follower_peers":[{"id":1}]}`, `missing field "follower_peers[0].addr"`},
		{`{"region":{"id":1,"name":""},"follower_peers":null}`, `field "follower_peers": null`},
		{`{"region":{"id":1,"name":""},"follower_peers":[],"leader_state":"Leader"}`, `field "leader_state": unknown variant "Leader"`},
		{`{"region":{"id":1,"name":""},"follower_peers":[],"write_route_policy":"x"}`, `field "write_route_policy": unknown variant`},
		{`{"region":{"id":1,"name":""},"follower_peers":[],"leader_state":"Staging","leader_status":"Staging"}`, `duplicate field`},
	} {
		err := json.Unmarshal([]byte(c.in), &r)
		require.ErrorIs(t, err, greptimekey.ErrInvalidValue, c.in)
		require.ErrorContains(t, err, c.want, c.in)
	}
}

func TestRegionLegacyPartition(t *testing.T) {
	t.Parallel()
	// A region of partition_column.rs:264: the first value_list entry is the
	// partition expression, written back as partition_expr.
	in := `{"id":5506148073472,"name":"","partition":{"column_list":["c4"],"value_list":["{\"Expr\":{\"lhs\":{\"Column\":\"c4\"},\"op\":\"Lt\",\"rhs\":{\"Value\":{\"Int32\":1}}}}"]},"attrs":{}}`
	var r greptimekey.Region
	require.NoError(t, json.Unmarshal([]byte(in), &r))
	require.Equal(t, `{"Expr":{"lhs":{"Column":"c4"},"op":"Lt","rhs":{"Value":{"Int32":1}}}}`, r.PartitionExpr)
	got, err := json.Marshal(r)
	require.NoError(t, err)
	require.Equal(t, `{"id":5506148073472,"name":"","attrs":{},"partition_expr":"{\"Expr\":{\"lhs\":{\"Column\":\"c4\"},\"op\":\"Lt\",\"rhs\":{\"Value\":{\"Int32\":1}}}}"}`, string(got))

	// partition_expr, when set, wins over the legacy partition.
	require.NoError(t, json.Unmarshal([]byte(`{"id":1,"name":"","partition":{"column_list":[],"value_list":["old"]},"partition_expr":"new"}`), &r))
	require.Equal(t, "new", r.PartitionExpr)
	require.NoError(t, json.Unmarshal([]byte(`{"id":1,"name":"","partition":{"column_list":[],"value_list":[]}}`), &r))
	require.Empty(t, r.PartitionExpr)
}

func TestSetLeaderState(t *testing.T) {
	t.Parallel()
	var r greptimekey.RegionRoute
	require.True(t, r.SetLeaderState(greptimekey.LeaderStateDowngrading, 100))
	require.Equal(t, int64(100), *r.LeaderDownSince)
	// Still downgrading: the first stamp stays.
	require.False(t, r.SetLeaderState(greptimekey.LeaderStateDowngrading, 200))
	require.Equal(t, int64(100), *r.LeaderDownSince)
	require.True(t, r.SetLeaderState(greptimekey.LeaderStateStaging, 300))
	require.Nil(t, r.LeaderDownSince)
	require.Equal(t, greptimekey.LeaderStateStaging, r.LeaderState)
	require.True(t, r.SetLeaderState(greptimekey.LeaderStateNone, 400))
	require.Nil(t, r.LeaderDownSince)
	require.False(t, r.SetLeaderState(greptimekey.LeaderStateNone, 500))
}

func TestLeaderRegionRole(t *testing.T) {
	t.Parallel()
	_, ok := greptimekey.RegionRoute{}.LeaderRegionRole()
	require.False(t, ok)
	for state, want := range map[greptimekey.LeaderState]greptimekey.RegionRole{
		greptimekey.LeaderStateNone:        greptimekey.RegionRoleLeader,
		greptimekey.LeaderStateDowngrading: greptimekey.RegionRoleDowngradingLeader,
		greptimekey.LeaderStateStaging:     greptimekey.RegionRoleStagingLeader,
	} {
		role, ok := greptimekey.RegionRoute{LeaderPeer: peer(1, "a"), LeaderState: state}.LeaderRegionRole()
		require.True(t, ok)
		require.Equal(t, want, role)
	}
}

func TestRegionDistribution(t *testing.T) {
	t.Parallel()
	// router.rs:841-877.
	routes := []greptimekey.RegionRoute{
		{Region: greptimekey.Region{ID: greptimekey.RegionID(1, 2)}, LeaderPeer: peer(2, "a2"),
			FollowerPeers: []greptimekey.Peer{{ID: 1, Addr: "a1"}, {ID: 3, Addr: "a3"}}},
		{Region: greptimekey.Region{ID: greptimekey.RegionID(1, 1)}, LeaderPeer: peer(1, "a1"),
			FollowerPeers: []greptimekey.Peer{{ID: 2, Addr: "a2"}, {ID: 3, Addr: "a3"}}},
	}
	require.Equal(t, map[uint64]greptimekey.RegionRoleSet{
		1: {LeaderRegions: []uint32{1}, FollowerRegions: []uint32{2}},
		2: {LeaderRegions: []uint32{2}, FollowerRegions: []uint32{1}},
		3: {LeaderRegions: []uint32{}, FollowerRegions: []uint32{1, 2}},
	}, greptimekey.RegionDistribution(routes))
	require.Empty(t, greptimekey.RegionDistribution(nil))
}

func TestWALOptionsBytes(t *testing.T) {
	t.Parallel()
	// common_wal options.rs:50, :61, :70.
	for _, c := range []struct {
		v    greptimekey.WALOptions
		want string
	}{
		{greptimekey.WALOptions{Provider: greptimekey.WALRaftEngine}, `{"wal.provider":"raft_engine"}`},
		{greptimekey.WALOptions{Provider: greptimekey.WALKafka, KafkaTopic: "test_topic"}, `{"wal.provider":"kafka","wal.kafka.topic":"test_topic"}`},
		{greptimekey.WALOptions{Provider: greptimekey.WALNoop}, `{"wal.provider":"noop"}`},
	} {
		requireBytes(t, c.v, c.want)
	}
	_, err := greptimekey.WALOptions{Provider: "s3"}.Encode()
	require.ErrorIs(t, err, greptimekey.ErrInvalidValue)
	for _, in := range []string{`{}`, `{"wal.provider":"kafka"}`, `{"wal.provider":"s3"}`, `{"wal.provider":null}`, `"raft_engine"`} {
		var o greptimekey.WALOptions
		require.ErrorIs(t, json.Unmarshal([]byte(in), &o), greptimekey.ErrInvalidValue, in)
	}

	got, err := greptimekey.ParseRegionWALOptions(map[uint32]string{0: `{"wal.provider":"raft_engine"}`, 3: `{"wal.provider":"kafka","wal.kafka.topic":"t"}`})
	require.NoError(t, err)
	require.Equal(t, map[uint32]greptimekey.WALOptions{
		0: {Provider: greptimekey.WALRaftEngine},
		3: {Provider: greptimekey.WALKafka, KafkaTopic: "t"},
	}, got)
	_, err = greptimekey.ParseRegionWALOptions(map[uint32]string{1: `{"wal.provider":"x"}`})
	require.ErrorIs(t, err, greptimekey.ErrInvalidValue)
	require.ErrorContains(t, err, "region 1")
}
