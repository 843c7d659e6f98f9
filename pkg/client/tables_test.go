package client

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/tableroute"
)

// putRoutedTable writes a table's name and route keys, region 0 led by
// datanode 3.
func putRoutedTable(t *testing.T, b kv.Backend, table string, id uint32) {
	t.Helper()
	putJSON(t, b, greptimekey.TableNameKey("greptime", "public", table), greptimekey.TableNameValue{TableID: id})
	putJSON(t, b, greptimekey.TableRouteKey(id), greptimekey.NewPhysicalTableRoute([]greptimekey.RegionRoute{{
		Region: greptimekey.Region{ID: greptimekey.RegionID(id, 0)}, LeaderPeer: &greptimekey.Peer{ID: 3, Addr: "10.0.0.3:4001"},
	}}))
}

// TableRoute reads the table from the leader's store and the peers from
// the leader's in-memory KV, never a follower's; after a leader change both
// reads move to the new leader.
func TestTableRouteReadsTheLeader(t *testing.T) {
	t.Parallel()
	mc := newMemCluster(t, 2)
	// In this harness a node's store and in-memory KV are one backend.
	putRoutedTable(t, mc.nodes[0].memory, "cpu", 1024)
	putInfo(t, mc.nodes[0].memory, greptimekey.RoleDatanode, 3, "10.0.0.3:4001", nodesAt.UnixMilli(), "v1.1.4")
	putRoutedTable(t, mc.nodes[1].memory, "mem", 2048)
	mc.elect(0, false)
	ctx := context.Background()
	c, err := New(ctx, Config{Endpoints: []string{mc.nodes[0].addr, mc.nodes[1].addr}, DialTimeout: 2 * time.Second, RequestTimeout: 10 * time.Second,
		MinRetryBackoff: time.Millisecond, MaxRetryBackoff: 10 * time.Millisecond}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Close()) })
	opts := tableroute.Options{Now: func() time.Time { return nodesAt }}

	got, err := c.TableRoute(ctx, greptimekey.TableName{Catalog: "greptime", Schema: "public", Table: "cpu"}, opts)
	require.NoError(t, err)
	require.Equal(t, uint32(1024), got.TableID)
	require.Len(t, got.Regions, 1)
	require.Equal(t, tableroute.LeaseCurrent, got.Regions[0].Leader.Lease)

	_, err = c.TableRoute(ctx, greptimekey.TableName{Catalog: "greptime", Schema: "public", Table: "mem"}, opts)
	require.ErrorIs(t, err, tableroute.ErrTableNotFound, "the follower's table is not read")

	// Node 1 takes over; the client still believes in node 0, whose
	// NOT_LEADER answer moves the call on.
	mc.elect(1, false)
	got, err = c.TableRoute(ctx, greptimekey.TableName{Catalog: "greptime", Schema: "public", Table: "mem"}, opts)
	require.NoError(t, err)
	require.Equal(t, uint32(2048), got.TableID)
	require.Equal(t, tableroute.LeaseNone, got.Regions[0].Leader.Lease, "the new leader has heard from no datanode")
}

// The in-memory read alone also follows the leader: a node that answers
// Cluster/BatchGet NotLeader (header code 2) sends it elsewhere.
func TestBatchGetMemoryAsksAgainOnNotLeader(t *testing.T) {
	t.Parallel()
	mc := newMemCluster(t, 2)
	putInfo(t, mc.nodes[0].memory, greptimekey.RoleDatanode, 3, "10.0.0.3:4001", nodesAt.UnixMilli(), "v1.1.4")
	putInfo(t, mc.nodes[1].memory, greptimekey.RoleDatanode, 4, "10.0.0.4:4001", nodesAt.UnixMilli(), "v1.1.4")
	mc.elect(0, false)
	ctx := context.Background()
	c, err := New(ctx, Config{Endpoints: []string{mc.nodes[0].addr, mc.nodes[1].addr}, DialTimeout: 2 * time.Second, RequestTimeout: 10 * time.Second,
		MinRetryBackoff: time.Millisecond, MaxRetryBackoff: 10 * time.Millisecond}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Close()) })
	keys := [][]byte{greptimekey.NodeInfoKey(greptimekey.RoleDatanode, 3), greptimekey.NodeInfoKey(greptimekey.RoleDatanode, 4)}

	kvs, err := c.batchGetMemory(ctx, keys)
	require.NoError(t, err)
	require.Len(t, kvs, 1)
	require.Equal(t, keys[0], kvs[0].Key)

	mc.elect(1, false)
	kvs, err = c.batchGetMemory(ctx, keys)
	require.NoError(t, err)
	require.Len(t, kvs, 1)
	require.Equal(t, keys[1], kvs[0].Key)
}
