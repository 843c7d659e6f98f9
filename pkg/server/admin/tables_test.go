package admin_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/memkv"
)

// putCPUTable writes the keys GreptimeDB writes for a table cpu (ts, host,
// usage) in schema, id 1024, with routes.
func putCPUTable(t *testing.T, store kv.Backend, schema, table string, routes []greptimekey.RegionRoute) {
	t.Helper()
	put(t, store, greptimekey.TableNameKey("greptime", schema, table), greptimekey.TableNameValue{TableID: 1024})
	cols := []greptimekey.ColumnSchema{
		{Name: "ts", DataType: json.RawMessage(`{"Timestamp":{"Millisecond":null}}`), IsTimeIndex: true,
			Metadata: map[string]string{"greptime:time_index": "true"}},
		{Name: "host", DataType: json.RawMessage(`{"String":{"size_type":"Utf8"}}`), IsNullable: true},
	}
	put(t, store, greptimekey.TableInfoKey(1024), greptimekey.NewTableInfoValue(greptimekey.TableInfo{
		Ident: greptimekey.TableIdent{TableID: 1024}, Name: table, CatalogName: "greptime", SchemaName: schema,
		Meta: greptimekey.TableMeta{Schema: greptimekey.TableSchema{ColumnSchemas: cols}, PrimaryKeyIndices: []int{1},
			Engine: "mito", NextColumnID: 2, CreatedOn: "2025-06-01T00:00:00Z", UpdatedOn: "2025-06-01T00:00:00Z"},
		TableType: greptimekey.TableTypeBase,
	}))
	put(t, store, greptimekey.TableRouteKey(1024), greptimekey.NewPhysicalTableRoute(routes))
}

func regionRoute(number uint32, leader uint64, followers ...uint64) greptimekey.RegionRoute {
	peer := func(id uint64) greptimekey.Peer {
		return greptimekey.Peer{ID: id, Addr: "10.0.0.1" + strconv.FormatUint(id, 10) + ":4001"}
	}
	r := greptimekey.RegionRoute{Region: greptimekey.Region{ID: greptimekey.RegionID(1024, number)}}
	if leader != 0 {
		p := peer(leader)
		r.LeaderPeer = &p
	}
	for _, f := range followers {
		r.FollowerPeers = append(r.FollowerPeers, peer(f))
	}
	return r
}

func putStat(t *testing.T, mem kv.Backend, id uint64, ts time.Time, roles map[uint64]greptimekey.RegionRole) {
	t.Helper()
	s := greptimekey.Stat{TimestampMillis: ts.UnixMilli(), ID: id, Addr: "dn", DatanodeWorkloads: []int32{0}}
	for region, role := range roles {
		s.RegionStats = append(s.RegionStats, greptimekey.RegionStat{ID: region, Engine: "mito", Role: role, RegionManifest: greptimekey.MitoManifest(1, 0, 0)})
	}
	put(t, mem, greptimekey.DatanodeStatKey(id), greptimekey.StatValue{s})
}

func routeOf(t *testing.T, r response) map[string]any {
	t.Helper()
	require.Equal(t, http.StatusOK, r.code, r.body)
	require.Equal(t, "no-store", r.header.Get("Cache-Control"))
	var out map[string]any
	dec := json.NewDecoder(strings.NewReader(r.body))
	dec.UseNumber()
	require.NoError(t, dec.Decode(&out), r.body)
	return out
}

func TestTableRoute(t *testing.T) {
	t.Parallel()
	mem := &memory{b: memkv.New()}
	// heartbeat_interval 1m: the datanode lease is 3m1s, far from both
	// ages below whatever the machine's speed.
	e := newEnv(t, withMemory(mem, time.Minute))
	now := time.Now()
	putCPUTable(t, e.store.backend, "public", "cpu", []greptimekey.RegionRoute{
		regionRoute(2, 6), regionRoute(0, 3, 4), regionRoute(1, 4),
	})
	put(t, mem.b, greptimekey.NodeInfoKey(greptimekey.RoleDatanode, 3), nodeInfo(greptimekey.RoleDatanode, now, "10.0.0.13:4001", "v1.1.4"))
	putStat(t, mem.b, 3, now, map[uint64]greptimekey.RegionRole{greptimekey.RegionID(1024, 0): greptimekey.RegionRoleLeader})
	put(t, mem.b, greptimekey.NodeInfoKey(greptimekey.RoleDatanode, 4), nodeInfo(greptimekey.RoleDatanode, now.Add(-time.Hour), "10.0.0.14:4001", "v1.1.4"))
	putStat(t, mem.b, 4, now.Add(-time.Hour), map[uint64]greptimekey.RegionRole{greptimekey.RegionID(1024, 7): greptimekey.RegionRoleLeader})

	out := routeOf(t, e.do(t, http.MethodGet, "/admin/tables/route?table=greptime.public.cpu", ""))
	require.Equal(t, "greptime.public.cpu", out["table"])
	require.Equal(t, json.Number("1024"), out["table_id"])
	require.Equal(t, "mito", out["engine"])
	require.Equal(t, "Base", out["table_type"])
	require.Equal(t, "physical", out["route_type"])
	require.Equal(t, json.Number("0"), out["route_version"])
	require.NotContains(t, out, "physical_table_id")
	require.Equal(t, []any{
		map[string]any{"name": "ts", "data_type": map[string]any{"Timestamp": map[string]any{"Millisecond": nil}},
			"is_nullable": false, "is_time_index": true, "primary_key": false},
		map[string]any{"name": "host", "data_type": map[string]any{"String": map[string]any{"size_type": "Utf8"}},
			"is_nullable": true, "is_time_index": false, "primary_key": true},
	}, out["columns"])

	regions := out["regions"].([]any)
	require.Len(t, regions, 3)
	r0 := regions[0].(map[string]any)
	require.Equal(t, json.Number("4398046511104"), r0["region_id"])
	require.Equal(t, json.Number("0"), r0["region_number"])
	require.Equal(t, "", r0["partition_expr"])
	require.NotContains(t, r0, "leader_state")
	require.NotContains(t, r0, "leader_down_since")
	leader := r0["leader"].(map[string]any)
	require.Equal(t, json.Number("3"), leader["id"])
	require.Equal(t, "10.0.0.13:4001", leader["addr"])
	require.Equal(t, "current", leader["lease"], "alive, reports Leader")
	require.Equal(t, "Leader", leader["reported_role"])
	require.Contains(t, leader, "last_heartbeat")
	require.Contains(t, leader, "last_heartbeat_age_ms")
	require.Contains(t, leader, "stat_time")
	follower := r0["followers"].([]any)[0].(map[string]any)
	require.Equal(t, json.Number("4"), follower["id"])
	require.Equal(t, "expired", follower["lease"])
	require.NotContains(t, follower, "reported_role", "its last stat does not report the region")

	r1 := regions[1].(map[string]any)
	require.Equal(t, "expired", r1["leader"].(map[string]any)["lease"], "lease expired")
	require.Equal(t, []any{}, r1["followers"])
	r2 := regions[2].(map[string]any)
	require.Equal(t, map[string]any{"id": json.Number("6"), "addr": "10.0.0.16:4001", "lease": "none"}, r2["leader"],
		"no heartbeat this term: not reported")

	// The short forms are in catalog greptime, schema public; unquoted
	// names are lowercased.
	for _, q := range []string{"cpu", "public.cpu", "GREPTIME.Public.Cpu", url.QueryEscape(`"greptime"."public"."cpu"`)} {
		require.Equal(t, "greptime.public.cpu", routeOf(t, e.do(t, http.MethodGet, "/admin/tables/route?table="+q, ""))["table"], q)
	}

	r := e.do(t, http.MethodHead, "/admin/tables/route?table=cpu", "")
	require.Equal(t, http.StatusOK, r.code)
	r = e.do(t, http.MethodPost, "/admin/tables/route?table=cpu", "")
	require.Equal(t, http.StatusMethodNotAllowed, r.code)
	require.Equal(t, "GET, HEAD", r.header.Get("Allow"))
}

func TestTableRouteDowngradingAndNoLeader(t *testing.T) {
	t.Parallel()
	mem := &memory{b: memkv.New()}
	e := newEnv(t, withMemory(mem, 0))
	down := int64(1_748_779_200_000) // 2025-06-01T12:00:00Z
	downgrading := regionRoute(0, 3)
	downgrading.SetLeaderState(greptimekey.LeaderStateDowngrading, down)
	putCPUTable(t, e.store.backend, "public", "cpu", []greptimekey.RegionRoute{downgrading, regionRoute(1, 0, 3)})

	regions := routeOf(t, e.do(t, http.MethodGet, "/admin/tables/route?table=cpu", ""))["regions"].([]any)
	r0 := regions[0].(map[string]any)
	require.Equal(t, "Downgrading", r0["leader_state"])
	require.Equal(t, "2025-06-01T12:00:00Z", r0["leader_down_since"])
	r1 := regions[1].(map[string]any)
	require.Nil(t, r1["leader"])
	require.Contains(t, r1, "leader", "null, not left out")
	require.Len(t, r1["followers"], 1)
}

func TestTableRouteRefusals(t *testing.T) {
	t.Parallel()
	mem := &memory{b: memkv.New()}
	e := newEnv(t, withMemory(mem, 0))
	putCPUTable(t, e.store.backend, "public", "cpu", nil)

	r := e.do(t, http.MethodGet, "/admin/tables/route?table=nope", "")
	require.Equal(t, http.StatusNotFound, r.code)
	require.Equal(t, map[string]any{"error": "table greptime.public.nope not found"}, r.json(t))
	r = e.do(t, http.MethodGet, "/admin/tables/route?table=metrics.cpu", "")
	require.Equal(t, http.StatusNotFound, r.code)
	require.Equal(t, "table greptime.metrics.cpu not found", r.json(t)["error"])

	for q, want := range map[string]string{
		"":                                   "missing query parameter table: expected ?table=CATALOG.SCHEMA.TABLE, SCHEMA.TABLE or TABLE",
		"?table=":                            `invalid table name "": expected CATALOG.SCHEMA.TABLE, SCHEMA.TABLE or TABLE (empty)`,
		"?table=a.b.c.d":                     `invalid table name "a.b.c.d": expected CATALOG.SCHEMA.TABLE, SCHEMA.TABLE or TABLE (4 parts)`,
		"?table=my-table":                    `invalid table name "my-table": expected CATALOG.SCHEMA.TABLE`,
		"?table=" + url.QueryEscape(`"a/b"`): `invalid table name "\"a/b\"": expected CATALOG.SCHEMA.TABLE`,
		"?table=a&table=b":                   "query parameter table given 2 times: expected one CATALOG.SCHEMA.TABLE, SCHEMA.TABLE or TABLE",
	} {
		r := e.do(t, http.MethodGet, "/admin/tables/route"+q, "")
		require.Equal(t, http.StatusBadRequest, r.code, q)
		require.Contains(t, r.json(t)["error"], want, q)
	}

	// A value GreptimeDB could not read either is the server's fault,
	// logged and not quoted.
	_, err := e.store.backend.Put(context.Background(), kv.PutRequest{Key: greptimekey.TableRouteKey(1024), Value: []byte(`{"secret":1}`)})
	require.NoError(t, err)
	r = e.do(t, http.MethodGet, "/admin/tables/route?table=cpu", "")
	require.Equal(t, http.StatusInternalServerError, r.code)
	require.NotContains(t, r.body, "secret")

	// Without the in-memory KV the endpoint is not served.
	e = newEnv(t)
	r = e.do(t, http.MethodGet, "/admin/tables/route?table=cpu", "")
	require.Equal(t, http.StatusNotImplemented, r.code)
}

// A follower refuses naming the leader, as /admin/nodes does, even for a
// table it could read: its in-memory KV is not the leader's.
func TestTableRouteOnFollower(t *testing.T) {
	t.Parallel()
	mem := &memory{b: memkv.New()}
	e := newEnv(t, withMemory(mem, 0))
	putCPUTable(t, e.store.backend, "public", "cpu", []greptimekey.RegionRoute{regionRoute(0, 3)})
	e.follower()

	for _, q := range []string{"cpu", "nope"} {
		r := e.do(t, http.MethodGet, "/admin/tables/route?table="+q, "")
		require.Equal(t, http.StatusServiceUnavailable, r.code, q)
		body := r.json(t)
		require.Equal(t, leaderAddr, body["leader"])
		require.Equal(t, "NOT_LEADER", body["reason"])
		require.NotContains(t, r.body, "10.0.0.13")
	}
}
