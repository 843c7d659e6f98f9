package node

import (
	"context"
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/pgmetasrv/metasrv/internal/pgtest"
	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/metasrv"
)

// dialGreptime connects to n as a GreptimeDB node does: requests zstd-compressed.
func dialGreptime(t *testing.T, n *Node) *grpc.ClientConn {
	t.Helper()
	c, err := grpc.NewClient(n.GRPCAddr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.UseCompressor("zstd")))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func header(role metapb.Role, id uint64) *metapb.RequestHeader {
	return &metapb.RequestHeader{ProtocolVersion: 1, MemberId: id, Role: role}
}

func timeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// A memory_store node speaks greptime.v1.meta: AskLeader names it, the
// handshake gives each role GreptimeDB's intervals, a datanode's heartbeat
// leaves its lease, node info and stats in the in-memory KV (read through
// Cluster), the default catalog and schemas carry GreptimeDB's values, Store
// writes and compare-and-puts answer as GreptimeDB's, and PullConfig is empty.
func TestGreptimeProtocolOnOneNode(t *testing.T) {
	t.Parallel()
	n := newNode(t, memoryOptions())
	ctx := timeout(t)
	require.NoError(t, n.Start(ctx))
	require.NoError(t, n.WaitState(ctx, metasrv.LeaderReady))
	conn := dialGreptime(t, n)

	hb := metapb.NewHeartbeatClient(conn)
	al, err := hb.AskLeader(ctx, &metapb.AskLeaderRequest{Header: header(metapb.Role_DATANODE, 1)})
	require.NoError(t, err)
	require.Equal(t, n.Advertised(), al.GetLeader().GetAddr())
	require.Zero(t, al.GetHeader().GetError().GetCode())
	require.Equal(t, uint64(1), al.GetHeader().GetProtocolVersion())

	for _, c := range []struct {
		role            metapb.Role
		every, retryAll uint64
	}{{metapb.Role_DATANODE, 3000, 3000}, {metapb.Role_FRONTEND, 18000, 3000}, {metapb.Role_FLOWNODE, 3000, 3000}} {
		s, err := hb.Heartbeat(ctx)
		require.NoError(t, err)
		require.NoError(t, s.Send(&metapb.HeartbeatRequest{Header: header(c.role, 7)}))
		resp, err := s.Recv()
		require.NoError(t, err)
		require.Zero(t, resp.GetHeader().GetError().GetCode(), c.role.String())
		require.Equal(t, c.every, resp.GetHeartbeatConfig().GetHeartbeatIntervalMs(), c.role.String())
		require.Equal(t, c.retryAll, resp.GetHeartbeatConfig().GetRetryIntervalMs(), c.role.String())
		require.NoError(t, s.CloseSend())
		_, err = s.Recv()
		require.ErrorIs(t, err, io.EOF)
	}

	// A datanode's regular heartbeats.
	s, err := hb.Heartbeat(ctx)
	require.NoError(t, err)
	req := &metapb.HeartbeatRequest{
		Header:        header(metapb.Role_DATANODE, 42),
		Peer:          &metapb.Peer{Id: 42, Addr: "10.0.0.42:4001"},
		NodeEpoch:     1700000000000,
		Info:          &metapb.NodeInfo{Version: "v1.1.4", GitCommit: "abc", StartTimeMs: 1700000000000, Hostname: "dn42"},
		NodeWorkloads: &metapb.HeartbeatRequest_Datanode{Datanode: &metapb.DatanodeWorkloads{Types: []int32{0}}},
		RegionStats:   []*metapb.RegionStat{{RegionId: 4398046511104, Rcus: 3, Wcus: 4, Engine: "mito", Role: metapb.RegionRole_Leader}},
	}
	require.NoError(t, s.Send(&metapb.HeartbeatRequest{Header: req.Header}))
	_, err = s.Recv()
	require.NoError(t, err)
	require.NoError(t, s.Send(req))
	resp, err := s.Recv()
	require.NoError(t, err)
	require.Zero(t, resp.GetHeader().GetError().GetCode())
	require.Nil(t, resp.GetHeartbeatConfig(), "only the handshake carries the config")

	cluster := metapb.NewClusterClient(conn)
	got, err := cluster.BatchGet(ctx, &metapb.BatchGetRequest{Keys: [][]byte{
		greptimekey.DatanodeLeaseKey(42), greptimekey.NodeInfoKey(greptimekey.RoleDatanode, 42), greptimekey.DatanodeStatKey(42)}})
	require.NoError(t, err)
	require.Zero(t, got.GetHeader().GetError().GetCode())
	require.Len(t, got.GetKvs(), 3, "lease, node info and stats")
	for _, p := range got.GetKvs() {
		switch string(p.GetKey()) {
		case string(greptimekey.DatanodeLeaseKey(42)):
			var lease greptimekey.LeaseValue
			require.NoError(t, json.Unmarshal(p.GetValue(), &lease))
			require.Equal(t, "10.0.0.42:4001", lease.NodeAddr)
			require.JSONEq(t, `{"Datanode":{"types":[0]}}`, string(mustJSON(t, lease.Workloads)))
		case string(greptimekey.NodeInfoKey(greptimekey.RoleDatanode, 42)):
			var info greptimekey.NodeInfo
			require.NoError(t, json.Unmarshal(p.GetValue(), &info))
			require.Equal(t, "v1.1.4", info.Version)
			require.Equal(t, uint64(42), info.Peer.ID)
			require.Equal(t, uint64(1), info.Status.Datanode.LeaderRegions)
		case string(greptimekey.DatanodeStatKey(42)):
			var stats greptimekey.StatValue
			require.NoError(t, json.Unmarshal(p.GetValue(), &stats))
			require.Len(t, stats, 1, "the first stat of an epoch is written at once")
			require.Equal(t, int64(3), stats[0].Rcus)
		}
	}
	nodes, err := cluster.Range(ctx, &metapb.RangeRequest{Key: []byte(greptimekey.NodeInfoPrefix), RangeEnd: prefixEnd(greptimekey.NodeInfoPrefix)})
	require.NoError(t, err)
	require.Len(t, nodes.GetKvs(), 1)
	require.NoError(t, s.CloseSend())

	// The datanode's address was written to the durable store on its first stat.
	store := metapb.NewStoreClient(conn)
	addr, err := store.BatchGet(ctx, &metapb.BatchGetRequest{Keys: [][]byte{greptimekey.NodeAddressKey(greptimekey.RoleDatanode, 42)}})
	require.NoError(t, err)
	require.Len(t, addr.GetKvs(), 1)
	require.JSONEq(t, `{"peer":{"id":42,"addr":"10.0.0.42:4001"}}`, string(addr.GetKvs()[0].GetValue()))

	// GreptimeDB's default catalog and schemas, with its values.
	defaults, err := store.BatchGet(ctx, &metapb.BatchGetRequest{Keys: [][]byte{
		greptimekey.CatalogNameKey("greptime"),
		greptimekey.SchemaNameKey("greptime", "public"),
		greptimekey.SchemaNameKey("greptime", "information_schema"),
		greptimekey.SchemaNameKey("greptime", "greptime_private"),
	}})
	require.NoError(t, err)
	require.Len(t, defaults.GetKvs(), 4)
	for _, p := range defaults.GetKvs() {
		if string(p.GetKey()) == "__catalog_name/greptime" {
			require.Equal(t, "null", string(p.GetValue()))
		} else {
			require.Equal(t, `{"ttl":null,"extra_options":{}}`, string(p.GetValue()), string(p.GetKey()))
		}
	}

	// CompareAndPut: an empty expect means absent; a failure returns the
	// pair as it is, a success none.
	cas, err := store.CompareAndPut(ctx, &metapb.CompareAndPutRequest{Key: []byte("__meta_seq-t"), Value: []byte("a")})
	require.NoError(t, err)
	require.True(t, cas.GetSuccess())
	require.Nil(t, cas.GetPrevKv())
	cas, err = store.CompareAndPut(ctx, &metapb.CompareAndPutRequest{Key: []byte("__meta_seq-t"), Value: []byte("b")})
	require.NoError(t, err)
	require.False(t, cas.GetSuccess())
	require.Equal(t, "a", string(cas.GetPrevKv().GetValue()))
	put, err := store.Put(ctx, &metapb.PutRequest{Key: []byte("__meta_seq-t"), Value: []byte("c"), PrevKv: true})
	require.NoError(t, err)
	require.Equal(t, "a", string(put.GetPrevKv().GetValue()))

	cfg, err := metapb.NewConfigClient(conn).PullConfig(ctx, &metapb.PullConfigRequest{Header: header(metapb.Role_FRONTEND, 0)})
	require.NoError(t, err)
	require.Empty(t, cfg.GetPayload())

	peers, err := cluster.MetasrvPeers(ctx, &metapb.MetasrvPeersRequest{})
	require.NoError(t, err)
	require.Equal(t, n.Advertised(), peers.GetLeader().GetPeer().GetAddr())
	require.Empty(t, peers.GetFollowers())
}

func TestGreptimeHeartbeatRefusesARequestWithoutHeader(t *testing.T) {
	t.Parallel()
	n := newNode(t, memoryOptions())
	ctx := timeout(t)
	require.NoError(t, n.Start(ctx))
	s, err := metapb.NewHeartbeatClient(dialGreptime(t, n)).Heartbeat(ctx)
	require.NoError(t, err)
	require.NoError(t, s.Send(&metapb.HeartbeatRequest{}))
	_, err = s.Recv()
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	require.ErrorContains(t, err, "Missing request header")
}

// Two nodes on PostgreSQL: the follower names the leader, refuses heartbeats
// and Cluster reads with NotLeader, serves Store reads and forwards Store
// writes to the leader; when the leader stops, its heartbeat streams are
// aborted and the other node takes the node's heartbeats.
func TestGreptimeProtocolOnTwoNodes(t *testing.T) {
	t.Parallel()
	o := pgOptions(pgtest.NewDatabase(t))
	ctx := timeout(t)
	a, b := newNode(t, o), newNode(t, o)
	for _, n := range []*Node{a, b} {
		require.NoError(t, n.Start(ctx))
	}
	leader, follower := firstLeader(t, a, b)
	lc, fc := dialGreptime(t, leader), dialGreptime(t, follower)

	al, err := metapb.NewHeartbeatClient(fc).AskLeader(ctx, &metapb.AskLeaderRequest{Header: header(metapb.Role_DATANODE, 1)})
	require.NoError(t, err)
	require.Equal(t, leader.Advertised(), al.GetLeader().GetAddr())

	// A follower answers the handshake NotLeader (with the config), then aborts.
	s, err := metapb.NewHeartbeatClient(fc).Heartbeat(ctx)
	require.NoError(t, err)
	require.NoError(t, s.Send(&metapb.HeartbeatRequest{Header: header(metapb.Role_DATANODE, 1)}))
	resp, err := s.Recv()
	require.NoError(t, err)
	require.Equal(t, int32(2), resp.GetHeader().GetError().GetCode())
	require.NotNil(t, resp.GetHeartbeatConfig())
	_, err = s.Recv()
	require.Equal(t, codes.Aborted, status.Code(err), "%v", err)

	cr, err := metapb.NewClusterClient(fc).Range(ctx, &metapb.RangeRequest{Key: []byte(greptimekey.NodeInfoPrefix), RangeEnd: prefixEnd(greptimekey.NodeInfoPrefix)})
	require.NoError(t, err)
	require.Equal(t, int32(2), cr.GetHeader().GetError().GetCode())

	// A Store write on the follower is forwarded to the leader, whose cache
	// then answers it; the follower reads it from PostgreSQL.
	_, err = metapb.NewStoreClient(fc).Put(ctx, &metapb.PutRequest{Key: []byte("k"), Value: []byte("v")})
	require.NoError(t, err)
	for _, c := range []*grpc.ClientConn{lc, fc} {
		r, err := metapb.NewStoreClient(c).Range(ctx, &metapb.RangeRequest{Key: []byte("k")})
		require.NoError(t, err)
		require.Len(t, r.GetKvs(), 1)
		require.Equal(t, "v", string(r.GetKvs()[0].GetValue()))
	}

	// A datanode heartbeating to the leader is aborted when it steps down.
	s, err = metapb.NewHeartbeatClient(lc).Heartbeat(ctx)
	require.NoError(t, err)
	require.NoError(t, s.Send(&metapb.HeartbeatRequest{Header: header(metapb.Role_DATANODE, 9)}))
	resp, err = s.Recv()
	require.NoError(t, err)
	require.Zero(t, resp.GetHeader().GetError().GetCode())
	require.NoError(t, leader.Stop(ctx))
	_, err = s.Recv()
	require.Equal(t, codes.Aborted, status.Code(err), "%v", err)

	require.NoError(t, follower.WaitState(ctx, metasrv.LeaderReady))
	s, err = metapb.NewHeartbeatClient(fc).Heartbeat(ctx)
	require.NoError(t, err)
	require.NoError(t, s.Send(&metapb.HeartbeatRequest{Header: header(metapb.Role_DATANODE, 9)}))
	resp, err = s.Recv()
	require.NoError(t, err)
	require.Zero(t, resp.GetHeader().GetError().GetCode(), "the new leader takes the heartbeat")
	require.NoError(t, s.CloseSend())
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

func prefixEnd(p string) []byte {
	end := []byte(p)
	end[len(end)-1]++
	return end
}
