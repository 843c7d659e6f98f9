package tableroute_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/memkv"
	"github.com/pgmetasrv/metasrv/pkg/tableroute"
)

// at is the judging clock's fixed now.
var at = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) int64 { return at.Add(-d).UnixMilli() }

func put(t *testing.T, b kv.Backend, key []byte, v interface{ Encode() ([]byte, error) }) {
	t.Helper()
	value, err := v.Encode()
	require.NoError(t, err)
	_, err = b.Put(context.Background(), kv.PutRequest{Key: key, Value: value})
	require.NoError(t, err)
}

func getter(b kv.Backend) tableroute.Getter {
	return func(ctx context.Context, keys [][]byte) ([]kv.KeyValue, error) {
		resp, err := b.BatchGet(ctx, kv.BatchGetRequest{Keys: keys})
		return resp.Kvs, err
	}
}

// putTable writes a table's name and info keys as GreptimeDB does: ts (the
// time index), host (the primary key) and usage.
func putTable(t *testing.T, store kv.Backend, name greptimekey.TableName, id uint32, engine string) {
	t.Helper()
	put(t, store, greptimekey.TableNameKey(name.Catalog, name.Schema, name.Table), greptimekey.TableNameValue{TableID: id})
	cols := []greptimekey.ColumnSchema{
		{Name: "ts", DataType: json.RawMessage(`{"Timestamp":{"Millisecond":null}}`), IsTimeIndex: true,
			Metadata: map[string]string{"greptime:time_index": "true"}},
		{Name: "host", DataType: json.RawMessage(`{"String":{"size_type":"Utf8"}}`), IsNullable: true},
		{Name: "usage", DataType: json.RawMessage(`{"Float64":{}}`), IsNullable: true},
	}
	put(t, store, greptimekey.TableInfoKey(id), greptimekey.NewTableInfoValue(greptimekey.TableInfo{
		Ident: greptimekey.TableIdent{TableID: id}, Name: name.Table, CatalogName: name.Catalog, SchemaName: name.Schema,
		Meta: greptimekey.TableMeta{
			Schema: greptimekey.TableSchema{ColumnSchemas: cols}, PrimaryKeyIndices: []int{1}, ValueIndices: []int{2},
			Engine: engine, NextColumnID: 3, CreatedOn: "2025-06-01T00:00:00Z", UpdatedOn: "2025-06-01T00:00:00Z",
		},
		TableType: greptimekey.TableTypeBase,
	}))
}

func route(id uint32, number uint32, leader *greptimekey.Peer, followers ...greptimekey.Peer) greptimekey.RegionRoute {
	return greptimekey.RegionRoute{Region: greptimekey.Region{ID: greptimekey.RegionID(id, number)}, LeaderPeer: leader, FollowerPeers: followers}
}

func dn(id uint64) *greptimekey.Peer {
	return &greptimekey.Peer{ID: id, Addr: "10.0.0." + strconv.FormatUint(id, 10) + ":4001"}
}

func putInfo(t *testing.T, mem kv.Backend, id uint64, ts int64) {
	t.Helper()
	put(t, mem, greptimekey.NodeInfoKey(greptimekey.RoleDatanode, id), greptimekey.NodeInfo{
		Peer: *dn(id), LastActivityTs: ts, Version: "v1.1.4",
		Status: greptimekey.NodeStatus{Role: greptimekey.RoleDatanode, Datanode: &greptimekey.DatanodeStatus{Workloads: []int32{0}}},
	})
}

// putStats stores two stats of datanode id: an older one that reports
// every region as Leader (which must not count), and the last, reporting
// roles.
func putStats(t *testing.T, mem kv.Backend, id uint64, ts int64, roles map[uint64]greptimekey.RegionRole) {
	t.Helper()
	stat := func(ts int64, roles map[uint64]greptimekey.RegionRole) greptimekey.Stat {
		s := greptimekey.Stat{TimestampMillis: ts, ID: id, Addr: dn(id).Addr, DatanodeWorkloads: []int32{0}}
		for region, role := range roles {
			s.RegionStats = append(s.RegionStats, greptimekey.RegionStat{ID: region, Engine: "mito", Role: role,
				RegionManifest: greptimekey.MitoManifest(1, 0, 0)})
		}
		return s
	}
	old := map[uint64]greptimekey.RegionRole{}
	for r := range uint32(8) {
		old[greptimekey.RegionID(1024, r)] = greptimekey.RegionRoleLeader
	}
	put(t, mem, greptimekey.DatanodeStatKey(id), greptimekey.StatValue{stat(ts-3000, old), stat(ts, roles)})
}

func ms(v int64) *int64 { return &v }

func TestGetPhysicalTable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, mem := memkv.New(), memkv.New()
	name := greptimekey.TableName{Catalog: "greptime", Schema: "public", Table: "cpu"}
	putTable(t, store, name, 1024, "mito")
	down := ago(time.Minute)
	downgrading := route(1024, 3, dn(7))
	downgrading.LeaderState, downgrading.LeaderDownSince = greptimekey.LeaderStateDowngrading, &down
	partitioned := route(1024, 1, dn(4))
	partitioned.Region.PartitionExpr = `{"Expr":{"lhs":"host","op":"Lt","rhs":"m"}}`
	routes := []greptimekey.RegionRoute{
		downgrading, partitioned, route(1024, 0, dn(3), *dn(5)), route(1024, 2, dn(6)), route(1024, 4, nil, *dn(3)),
	}
	value := greptimekey.NewPhysicalTableRoute(routes)
	value.Physical.Version = 2
	put(t, store, greptimekey.TableRouteKey(1024), value)
	// heartbeat_interval 3s: the datanode lease is 10s.
	putInfo(t, mem, 3, ago(time.Second))
	putStats(t, mem, 3, ago(2*time.Second), map[uint64]greptimekey.RegionRole{
		greptimekey.RegionID(1024, 0): greptimekey.RegionRoleLeader, greptimekey.RegionID(1024, 4): greptimekey.RegionRoleFollower})
	putInfo(t, mem, 5, ago(9999*time.Millisecond))
	putStats(t, mem, 5, ago(9999*time.Millisecond), map[uint64]greptimekey.RegionRole{greptimekey.RegionID(1024, 0): greptimekey.RegionRoleFollower})
	putInfo(t, mem, 4, ago(10*time.Second)) // exactly the window: expired
	putStats(t, mem, 4, ago(12*time.Second), map[uint64]greptimekey.RegionRole{greptimekey.RegionID(1024, 1): greptimekey.RegionRoleLeader})
	putInfo(t, mem, 6, ago(-2*time.Second)) // ahead of the judging clock: age 0
	putStats(t, mem, 6, ago(0), map[uint64]greptimekey.RegionRole{greptimekey.RegionID(2048, 2): greptimekey.RegionRoleLeader})

	got, err := tableroute.Get(ctx, name, tableroute.Sources{Store: getter(store), Memory: getter(mem)},
		tableroute.Options{Now: func() time.Time { return at }})
	require.NoError(t, err)
	require.Equal(t, "greptime.public.cpu", got.Table)
	require.Equal(t, uint32(1024), got.TableID)
	require.Equal(t, "Base", got.TableType)
	require.Equal(t, "mito", got.Engine)
	require.Equal(t, tableroute.RoutePhysical, got.RouteType)
	require.Nil(t, got.PhysicalTableID)
	require.Equal(t, uint64(2), *got.RouteVersion)
	require.Equal(t, []tableroute.Column{
		{Name: "ts", DataType: json.RawMessage(`{"Timestamp":{"Millisecond":null}}`), IsTimeIndex: true},
		{Name: "host", DataType: json.RawMessage(`{"String":{"size_type":"Utf8"}}`), IsNullable: true, PrimaryKey: true},
		{Name: "usage", DataType: json.RawMessage(`{"Float64":{}}`), IsNullable: true},
	}, got.Columns)

	dn3 := tableroute.Peer{ID: 3, Addr: "10.0.0.3:4001", Lease: tableroute.LeaseCurrent, LastHeartbeat: at.Add(-time.Second),
		LastHeartbeatAgeMillis: ms(1000), StatTime: at.Add(-2 * time.Second), ReportedRole: "Leader"}
	dn5 := tableroute.Peer{ID: 5, Addr: "10.0.0.5:4001", Lease: tableroute.LeaseCurrent, LastHeartbeat: at.Add(-9999 * time.Millisecond),
		LastHeartbeatAgeMillis: ms(9999), StatTime: at.Add(-9999 * time.Millisecond), ReportedRole: "Follower"}
	dn4 := tableroute.Peer{ID: 4, Addr: "10.0.0.4:4001", Lease: tableroute.LeaseExpired, LastHeartbeat: at.Add(-10 * time.Second),
		LastHeartbeatAgeMillis: ms(10_000), StatTime: at.Add(-12 * time.Second), ReportedRole: "Leader"}
	dn6 := tableroute.Peer{ID: 6, Addr: "10.0.0.6:4001", Lease: tableroute.LeaseCurrent, LastHeartbeat: at.Add(2 * time.Second),
		LastHeartbeatAgeMillis: ms(0), StatTime: at}
	dn7 := tableroute.Peer{ID: 7, Addr: "10.0.0.7:4001", Lease: tableroute.LeaseNone}
	follower3 := dn3
	follower3.ReportedRole = "Follower"
	require.Equal(t, []tableroute.Region{
		{RegionID: 1024 << 32, RegionNumber: 0, Leader: &dn3, Followers: []tableroute.Peer{dn5}},
		{RegionID: 1024<<32 | 1, RegionNumber: 1, Leader: &dn4, Followers: []tableroute.Peer{}, PartitionExpr: partitioned.Region.PartitionExpr},
		{RegionID: 1024<<32 | 2, RegionNumber: 2, Leader: &dn6, Followers: []tableroute.Peer{}},
		{RegionID: 1024<<32 | 3, RegionNumber: 3, Leader: &dn7, Followers: []tableroute.Peer{}, LeaderState: "Downgrading",
			LeaderDownSince: at.Add(-time.Minute)},
		{RegionID: 1024<<32 | 4, RegionNumber: 4, Followers: []tableroute.Peer{follower3}},
	}, got.Regions, "sorted by region id; the last stat counts, not the older ones")

	// A longer heartbeat_interval widens the lease: 3 x 4s + 1s.
	got, err = tableroute.Get(ctx, name, tableroute.Sources{Store: getter(store), Memory: getter(mem)},
		tableroute.Options{HeartbeatInterval: 4 * time.Second, Now: func() time.Time { return at }})
	require.NoError(t, err)
	require.Equal(t, tableroute.LeaseCurrent, got.Regions[1].Leader.Lease)
}

func TestGetLogicalTable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, mem := memkv.New(), memkv.New()
	phys := greptimekey.TableName{Catalog: "greptime", Schema: "public", Table: "greptime_physical_table"}
	putTable(t, store, phys, 1024, "metric")
	put(t, store, greptimekey.TableRouteKey(1024), greptimekey.NewPhysicalTableRoute([]greptimekey.RegionRoute{route(1024, 0, dn(1))}))
	logical := greptimekey.TableName{Catalog: "greptime", Schema: "public", Table: "up"}
	putTable(t, store, logical, 1025, "metric")
	put(t, store, greptimekey.TableRouteKey(1025), greptimekey.NewLogicalTableRoute(1024))
	putInfo(t, mem, 1, ago(0))
	src := tableroute.Sources{Store: getter(store), Memory: getter(mem)}

	got, err := tableroute.Get(ctx, logical, src, tableroute.Options{Now: func() time.Time { return at }})
	require.NoError(t, err)
	require.Equal(t, uint32(1025), got.TableID)
	require.Equal(t, tableroute.RouteLogical, got.RouteType)
	require.Equal(t, uint32(1024), *got.PhysicalTableID)
	require.Equal(t, uint64(0), *got.RouteVersion)
	require.Len(t, got.Regions, 1)
	require.Equal(t, uint64(1024<<32), got.Regions[0].RegionID, "the physical table's region")
	require.Equal(t, tableroute.LeaseCurrent, got.Regions[0].Leader.Lease)
	require.True(t, got.Regions[0].Leader.StatTime.IsZero(), "no stats stored")

	// A physical table whose route is logical is not one GreptimeDB wrote.
	put(t, store, greptimekey.TableRouteKey(1024), greptimekey.NewLogicalTableRoute(1))
	_, err = tableroute.Get(ctx, logical, src, tableroute.Options{})
	require.ErrorIs(t, err, greptimekey.ErrInvalidValue)

	// A logical table whose physical table has no route lists no regions.
	_, err = store.BatchDelete(ctx, kv.BatchDeleteRequest{Keys: [][]byte{greptimekey.TableRouteKey(1024)}})
	require.NoError(t, err)
	got, err = tableroute.Get(ctx, logical, src, tableroute.Options{})
	require.NoError(t, err)
	require.Equal(t, tableroute.RouteLogical, got.RouteType)
	require.Nil(t, got.RouteVersion)
	require.Empty(t, got.Regions)
}

func TestGetMissingAndBroken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, mem := memkv.New(), memkv.New()
	src := tableroute.Sources{Store: getter(store), Memory: getter(mem)}
	name := greptimekey.TableName{Catalog: "greptime", Schema: "public", Table: "cpu"}

	_, err := tableroute.Get(ctx, name, src, tableroute.Options{})
	require.ErrorIs(t, err, tableroute.ErrTableNotFound)
	require.EqualError(t, err, "table not found: greptime.public.cpu")

	// A name without info or route (a view has no route): what there is.
	put(t, store, greptimekey.TableNameKey("greptime", "public", "cpu"), greptimekey.TableNameValue{TableID: 9})
	got, err := tableroute.Get(ctx, name, src, tableroute.Options{})
	require.NoError(t, err)
	out, err := json.Marshal(got)
	require.NoError(t, err)
	require.JSONEq(t, `{"table":"greptime.public.cpu","catalog":"greptime","schema":"public","name":"cpu",
		"table_id":9,"columns":[],"route_type":"none","regions":[]}`, string(out))

	for key, value := range map[string]string{
		string(greptimekey.TableInfoKey(9)):  `{"table_info":{}}`,
		string(greptimekey.TableRouteKey(9)): `{"type":"physical"}`,
	} {
		_, err := store.Put(ctx, kv.PutRequest{Key: []byte(key), Value: []byte(value)})
		require.NoError(t, err)
		_, err = tableroute.Get(ctx, name, src, tableroute.Options{})
		require.ErrorIs(t, err, greptimekey.ErrInvalidValue, key)
		require.ErrorContains(t, err, key)
		_, err = store.BatchDelete(ctx, kv.BatchDeleteRequest{Keys: [][]byte{[]byte(key)}})
		require.NoError(t, err)
	}

	put(t, store, greptimekey.TableRouteKey(9), greptimekey.NewPhysicalTableRoute([]greptimekey.RegionRoute{route(9, 0, dn(1))}))
	_, err = mem.Put(ctx, kv.PutRequest{Key: greptimekey.DatanodeStatKey(1), Value: []byte(`[{"id":1}]`)})
	require.NoError(t, err)
	_, err = tableroute.Get(ctx, name, src, tableroute.Options{})
	require.ErrorIs(t, err, greptimekey.ErrInvalidValue)
	require.ErrorContains(t, err, `stats "__meta_datanode_stat-0-1"`)
}
