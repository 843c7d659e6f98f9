package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/client"
	"github.com/pgmetasrv/metasrv/pkg/config"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/tableroute"
)

// putTableKeys writes, through the node's Store API, the keys GreptimeDB
// writes for table greptime.public.cpu (id 1024): region 0 led by datanode
// 42, region 1 led by datanode 43 with 42 as follower.
func putTableKeys(t *testing.T, addr string) {
	t.Helper()
	ctx := context.Background()
	c, err := client.New(ctx, client.Config{Endpoints: []string{addr}}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	peer := func(id uint64, addr string) greptimekey.Peer { return greptimekey.Peer{ID: id, Addr: addr} }
	dn42, dn43 := peer(42, "10.0.0.42:4001"), peer(43, "10.0.0.43:4001")
	route := greptimekey.NewPhysicalTableRoute([]greptimekey.RegionRoute{
		{Region: greptimekey.Region{ID: greptimekey.RegionID(1024, 0)}, LeaderPeer: &dn42},
		{Region: greptimekey.Region{ID: greptimekey.RegionID(1024, 1)}, LeaderPeer: &dn43, FollowerPeers: []greptimekey.Peer{dn42}},
	})
	info := greptimekey.NewTableInfoValue(greptimekey.TableInfo{
		Ident: greptimekey.TableIdent{TableID: 1024}, Name: "cpu", CatalogName: "greptime", SchemaName: "public",
		Meta: greptimekey.TableMeta{
			Schema: greptimekey.TableSchema{ColumnSchemas: []greptimekey.ColumnSchema{
				{Name: "ts", DataType: json.RawMessage(`{"Timestamp":{"Millisecond":null}}`), IsTimeIndex: true, Metadata: map[string]string{}},
				{Name: "host", DataType: json.RawMessage(`{"String":{"size_type":"Utf8"}}`), IsNullable: true, Metadata: map[string]string{}},
			}},
			PrimaryKeyIndices: []int{1}, Engine: "mito", NextColumnID: 2, CreatedOn: "2025-06-01T00:00:00Z", UpdatedOn: "2025-06-01T00:00:00Z",
		},
		TableType: greptimekey.TableTypeBase,
	})
	var kvs []kv.KeyValue
	for key, v := range map[string]interface{ Encode() ([]byte, error) }{
		string(greptimekey.TableNameKey("greptime", "public", "cpu")): greptimekey.TableNameValue{TableID: 1024},
		string(greptimekey.TableInfoKey(1024)):                        info,
		string(greptimekey.TableRouteKey(1024)):                       route,
	} {
		value, err := v.Encode()
		require.NoError(t, err)
		kvs = append(kvs, kv.KeyValue{Key: []byte(key), Value: value})
	}
	_, err = c.BatchPut(ctx, kv.BatchPutRequest{Kvs: kvs})
	require.NoError(t, err)
}

// A table's route on a real memory_store node, with datanode 42
// heartbeating (it reports region 0 as Leader) and datanode 43 silent:
// `ctl table route` prints who leads each region and how that datanode
// stands, and GET /admin/tables/route answers the JSON ctl prints.
func TestCtlTableRoute(t *testing.T) {
	t.Parallel()
	o := config.Default()
	// A lease of 3h1s: "current" cannot lapse while the test runs.
	o.HeartbeatInterval = time.Hour
	n := startMemoryNode(t, o)
	addr := n.srv.GRPCAddr().String()
	putTableKeys(t, addr)
	fakeHeartbeat(t, addr, metapb.Role_DATANODE, &metapb.Peer{Id: 42, Addr: "10.0.0.42:4001"},
		&metapb.NodeInfo{Version: "v1.1.4", StartTimeMs: uint64(time.Now().UnixMilli())})

	for _, name := range []string{"greptime.public.cpu", "public.cpu", "cpu", "CPU", `"greptime".public."cpu"`} {
		text := ctl(t, addr, "table", "route", "--heartbeat-interval", "1h", name).ok(t).stdout
		lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
		require.Len(t, lines, 7, text)
		require.Equal(t, "base table greptime.public.cpu (id 1024, engine mito)", lines[0])
		require.Equal(t, "route: physical, version 0", lines[1])
		require.Equal(t, "columns: ts (time index), host (primary key)", lines[2])
		require.Empty(t, lines[3])
		require.Regexp(t, `^REGION\s+LEADER\s+STATE\s+LEASE\s+REPORTED\s+FOLLOWERS$`, lines[4])
		require.Regexp(t, `^4398046511104/0\s+42 \(10\.0\.0\.42:4001\)\s+leader\s+current\s+Leader\s+-$`, lines[5])
		require.Regexp(t, `^4398046511105/1\s+43 \(10\.0\.0\.43:4001\)\s+leader\s+none\s+no stats\s+42$`, lines[6])
	}

	var out map[string]any
	decodeExact(t, ctl(t, addr, "-o", "json", "table", "route", "--heartbeat-interval", "1h", "cpu").ok(t).stdout, &out)
	require.Equal(t, "greptime.public.cpu", out["table"])
	regions := out["regions"].([]any)
	require.Len(t, regions, 2)
	leader := regions[0].(map[string]any)["leader"].(map[string]any)
	require.Equal(t, "current", leader["lease"])
	require.Equal(t, "Leader", leader["reported_role"])
	follower := regions[1].(map[string]any)["followers"].([]any)[0].(map[string]any)
	require.Equal(t, json.Number("42"), follower["id"])
	require.Equal(t, "current", follower["lease"])
	require.NotContains(t, follower, "reported_role", "datanode 42 reports region 0 only")

	// GET /admin/tables/route answers the same view, from the same node
	// (judged by the node's own heartbeat_interval, 1h).
	resp, err := http.Get("http://" + n.srv.HTTPAddr().String() + "/admin/tables/route?table=" + url.QueryEscape("public.cpu"))
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, resp.Body.Close())
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var admin map[string]any
	decodeExact(t, string(body), &admin)
	dropAges(out)
	dropAges(admin)
	require.Equal(t, out, admin)

	ctl(t, addr, "table", "route", "nope").fails(t, "table route: table not found: greptime.public.nope")
	ctl(t, addr, "-o", "json", "table", "route", "other.public.cpu").fails(t, "table not found: other.public.cpu")
}

// dropAges removes the ages, which depend on when each view was read.
func dropAges(view map[string]any) {
	for _, r := range view["regions"].([]any) {
		region := r.(map[string]any)
		peers := region["followers"].([]any)
		if l, ok := region["leader"].(map[string]any); ok {
			peers = append(peers, l)
		}
		for _, p := range peers {
			delete(p.(map[string]any), "last_heartbeat_age_ms")
		}
	}
}

func TestCtlTableRouteBadInput(t *testing.T) {
	t.Parallel()
	// Refused before anything is sent: no node listens on the endpoint.
	ep := "127.0.0.1:1"
	ctl(t, ep, "table", "route", "a.b.c.d").fails(t, `invalid table name "a.b.c.d": expected CATALOG.SCHEMA.TABLE, SCHEMA.TABLE or TABLE (4 parts)`)
	ctl(t, ep, "table", "route", "my-table").fails(t, `"my-table" is not an identifier; quote it`)
	ctl(t, ep, "table", "route").fails(t, "accepts 1 arg(s), received 0")
	ctl(t, ep, "table", "route", "a", "b").fails(t, "accepts 1 arg(s), received 2")
	ctl(t, ep, "table", "route", "--heartbeat-interval", "0s", "cpu").fails(t, "--heartbeat-interval 0s: must be positive")
	ctl(t, ep, "-o", "yaml", "table", "route", "cpu").fails(t, `--output "yaml": expected text or json`)
}

func TestPrintTableRoute(t *testing.T) {
	t.Parallel()
	down := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	phys := uint32(1024)
	var b strings.Builder
	require.NoError(t, printTableRoute(&b, tableroute.Table{
		Table: "greptime.public.up\x1b[31m", TableID: 1025, RouteType: tableroute.RouteLogical, PhysicalTableID: &phys,
		Regions: []tableroute.Region{
			{RegionID: 1024 << 32, Leader: &tableroute.Peer{ID: 3, Addr: "10.0.0.3:4001", Lease: tableroute.LeaseExpired, StatTime: down},
				LeaderState: "Downgrading", LeaderDownSince: down},
			{RegionID: 1024<<32 | 1, RegionNumber: 1, Leader: &tableroute.Peer{ID: 4, Lease: tableroute.LeaseCurrent, ReportedRole: "StagingLeader"},
				LeaderState: "Staging", Followers: []tableroute.Peer{{ID: 5}, {ID: 6}}},
			{RegionID: 1024<<32 | 2, RegionNumber: 2},
		},
	}))
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	require.Len(t, lines, 7, b.String())
	require.Equal(t, `table "greptime.public.up\x1b[31m" (id 1025)`, lines[0], "no table info; stored text escaped")
	require.Equal(t, "route: logical, the regions of physical table 1024", lines[1])
	require.Regexp(t, `^4398046511104/0\s+3 \(10\.0\.0\.3:4001\)\s+downgrading since 2025-06-01T12:00:00Z\s+expired\s+not reported\s+-$`, lines[4])
	require.Regexp(t, `^4398046511105/1\s+4 \(-\)\s+staging\s+current\s+StagingLeader\s+5,6$`, lines[5])
	require.Regexp(t, `^4398046511106/2\s+none\s+-\s+-\s+-\s+-$`, lines[6])

	b.Reset()
	require.NoError(t, printTableRoute(&b, tableroute.Table{Table: "greptime.public.v", TableID: 7, TableType: "View", RouteType: tableroute.RouteNone}))
	require.Equal(t, "view table greptime.public.v (id 7)\nroute: none\nno regions\n", b.String())
}
