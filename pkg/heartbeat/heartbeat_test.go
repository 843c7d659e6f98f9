package heartbeat

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/memkv"
	"github.com/pgmetasrv/metasrv/pkg/metasrv"
)

type testBundle struct {
	svc      *Service
	leading  atomic.Int64 // what the election says this node leads
	follower *memkv.Store // the node's in-memory KV outside a term
	memory   *memkv.Store // the term's
	store    *memkv.Store // the term's durable store
	now      time.Time
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	b := &testBundle{follower: memkv.New(), memory: memkv.New(), store: memkv.New(), now: time.UnixMilli(1_800_000_000_000)}
	svc, err := New(Options{
		Leading:    b.leading.Load,
		Memory:     func() kv.Backend { return b.follower },
		ServerAddr: func() string { return "127.0.0.1:3002" },
		Now:        func() time.Time { return b.now },
	})
	require.NoError(t, err)
	b.svc = svc
	return b
}

// lead starts term id on the service, as the core does once ready.
func (b *testBundle) lead(t *testing.T, id int64) {
	t.Helper()
	b.leading.Store(id)
	require.NoError(t, b.svc.Start(context.Background(), metasrv.Term{ID: id, Store: b.store, Memory: b.memory}))
}

func hdr(role metapb.Role, id uint64) *metapb.RequestHeader {
	return &metapb.RequestHeader{ProtocolVersion: 1, MemberId: id, Role: role}
}

func datanodeBeat(id, epoch uint64) *metapb.HeartbeatRequest {
	return &metapb.HeartbeatRequest{
		Header:      hdr(metapb.Role_DATANODE, id),
		Peer:        &metapb.Peer{Id: id, Addr: "10.0.0.1:4001"},
		NodeEpoch:   epoch,
		Info:        &metapb.NodeInfo{Version: "v1.1.4"},
		RegionStats: []*metapb.RegionStat{{RegionId: 1, Role: metapb.RegionRole_Follower}},
	}
}

func get(t *testing.T, b kv.Backend, key []byte) []byte {
	t.Helper()
	e, err := kv.Get(context.Background(), b, key)
	require.NoError(t, err)
	if e == nil {
		return nil
	}
	return e.Value
}

func TestFollowerAnswersNotLeaderWithTheConfig(t *testing.T) {
	t.Parallel()
	b := setup(t)
	sess, err := b.svc.Open(hdr(metapb.Role_DATANODE, 7))
	require.NoError(t, err)
	require.Zero(t, sess.Term(), "not registered: no term")
	resp := sess.Handle(context.Background(), datanodeBeat(7, 1), true)
	require.True(t, IsNotLeader(resp))
	require.Equal(t, NotLeaderMessage, resp.GetHeader().GetError().GetErrMsg())
	require.Equal(t, uint64(3000), resp.GetHeartbeatConfig().GetHeartbeatIntervalMs(), "the config comes with the refusal, as GreptimeDB's")
	// Keep-lease runs before the check, as in GreptimeDB: into the follower's own KV.
	require.NotNil(t, get(t, b.follower, greptimekey.DatanodeLeaseKey(7)))
	require.Nil(t, get(t, b.follower, greptimekey.NodeInfoKey(greptimekey.RoleDatanode, 7)), "nothing after the check")
	sess.Close()
}

func TestLeaderChain(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	_, err := b.memory.Put(ctx, kv.PutRequest{Key: []byte("__meta_datanode_lease-0-99"), Value: []byte("left by an earlier term")})
	require.NoError(t, err)
	b.lead(t, 4)
	defer b.svc.Stop()

	sess, err := b.svc.Open(hdr(metapb.Role_DATANODE, 7))
	require.NoError(t, err)
	defer sess.Close()
	require.Equal(t, int64(4), sess.Term())
	resp := sess.Handle(ctx, &metapb.HeartbeatRequest{Header: hdr(metapb.Role_DATANODE, 7)}, true)
	require.False(t, IsNotLeader(resp))
	require.Nil(t, get(t, b.memory, []byte("__meta_datanode_lease-0-99")), "the first heartbeat of a term empties the in-memory KV")

	stats := func() greptimekey.StatValue {
		var v greptimekey.StatValue
		raw := get(t, b.memory, greptimekey.DatanodeStatKey(7))
		if raw == nil {
			return nil
		}
		require.NoError(t, json.Unmarshal(raw, &v))
		return v
	}
	resp = sess.Handle(ctx, datanodeBeat(7, 100), false)
	require.Nil(t, resp.GetHeartbeatConfig())
	require.Len(t, stats(), 1, "a new epoch's first stat is written at once")
	require.JSONEq(t, `{"peer":{"id":7,"addr":"10.0.0.1:4001"}}`, string(get(t, b.store, greptimekey.NodeAddressKey(greptimekey.RoleDatanode, 7))))
	var info greptimekey.NodeInfo
	require.NoError(t, json.Unmarshal(get(t, b.memory, greptimekey.NodeInfoKey(greptimekey.RoleDatanode, 7)), &info))
	require.Equal(t, uint64(1), info.Status.Datanode.FollowerRegions)
	require.Equal(t, b.now.UnixMilli(), info.LastActivityTs)

	// Then every third stat is written, as a batch.
	for i := range 3 {
		b.now = b.now.Add(time.Second)
		sess.Handle(ctx, datanodeBeat(7, 100), false)
		if i < 2 {
			require.Len(t, stats(), 1)
		}
	}
	require.Len(t, stats(), 3)
	require.Equal(t, b.now.UnixMilli(), stats()[2].TimestampMillis)

	// A restarted datanode (newer epoch) has its address rewritten; a stale
	// stat of its earlier life is dropped.
	_, err = b.store.Put(ctx, kv.PutRequest{Key: greptimekey.NodeAddressKey(greptimekey.RoleDatanode, 7), Value: []byte("old")})
	require.NoError(t, err)
	sess.Handle(ctx, datanodeBeat(7, 50), false)
	require.Equal(t, "old", string(get(t, b.store, greptimekey.NodeAddressKey(greptimekey.RoleDatanode, 7))))
	sess.Handle(ctx, datanodeBeat(7, 200), false)
	require.Contains(t, string(get(t, b.store, greptimekey.NodeAddressKey(greptimekey.RoleDatanode, 7))), "10.0.0.1:4001")
	require.Len(t, stats(), 1)
}

func TestTrustLapseRefusesARegisteredSession(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.lead(t, 2)
	defer b.svc.Stop()
	sess, err := b.svc.Open(hdr(metapb.Role_FLOWNODE, 3))
	require.NoError(t, err)
	defer sess.Close()
	require.False(t, IsNotLeader(sess.Handle(context.Background(), &metapb.HeartbeatRequest{Header: hdr(metapb.Role_FLOWNODE, 3)}, true)))
	b.leading.Store(0) // the trust window lapsed, no StepDown processed yet
	require.True(t, IsNotLeader(sess.Handle(context.Background(), &metapb.HeartbeatRequest{Header: hdr(metapb.Role_FLOWNODE, 3)}, false)))
}

func TestSessionsBelongToTheirTerm(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.lead(t, 1)
	first, err := b.svc.Open(hdr(metapb.Role_DATANODE, 1))
	require.NoError(t, err)
	again, err := b.svc.Open(hdr(metapb.Role_DATANODE, 1))
	require.NoError(t, err)
	select {
	case <-first.Done():
	default:
		t.Fatal("a node that registers again ends its old session")
	}
	first.Close() // late: must not unregister its successor
	require.Equal(t, []PusherID{{Role: metapb.Role_DATANODE, ID: 1}}, b.svc.Sessions())

	b.svc.Stop()
	<-again.Done() // the term's end ends its sessions
	require.Empty(t, b.svc.Sessions())
	b.svc.Stop() // safe twice

	b.lead(t, 2)
	defer b.svc.Stop()
	require.Empty(t, b.svc.Sessions(), "a new term starts with none")
	late, err := b.svc.Open(hdr(metapb.Role_DATANODE, 1))
	require.NoError(t, err)
	require.Equal(t, int64(2), late.Term())
	late.Close()
	require.Empty(t, b.svc.Sessions())
}

func TestFrontendsAreNumberedAndKeyedByAddress(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.lead(t, 1)
	defer b.svc.Stop()
	var ids []uint64
	for range 2 {
		sess, err := b.svc.Open(hdr(metapb.Role_FRONTEND, 0))
		require.NoError(t, err)
		defer sess.Close()
		ids = append(ids, sess.ID().ID)
		resp := sess.Handle(context.Background(), &metapb.HeartbeatRequest{
			Header: hdr(metapb.Role_FRONTEND, 0), Peer: &metapb.Peer{Addr: "127.0.0.1:4001"}, Info: &metapb.NodeInfo{Version: "v1.1.4"},
		}, true)
		require.Equal(t, uint64(18000), resp.GetHeartbeatConfig().GetHeartbeatIntervalMs())
	}
	require.Equal(t, []uint64{0, 1}, ids, "a counter, as GreptimeDB's: frontends all send 0")
	require.Equal(t, "Frontend-1", PusherID{Role: metapb.Role_FRONTEND, ID: 1}.String())
	raw := get(t, b.memory, greptimekey.NodeInfoKey(greptimekey.RoleFrontend, 6217528761578684316))
	require.NotNil(t, raw, "node info under the hash of the address")
	require.Contains(t, string(raw), `"status":{"Frontend":{"workloads":{"types":[]}}}`)
}

func TestOpenRefusesBadHeaders(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.svc.Open(nil)
	require.EqualError(t, err, "Missing request header")
	_, err = b.svc.Open(&metapb.RequestHeader{Role: 5})
	require.ErrorContains(t, err, "invalid role: 5")
}

func TestEmptyMitoManifestIsGreptimeDBsDefault(t *testing.T) {
	t.Parallel()
	require.Equal(t, string(greptimekey.MitoManifest(0, 0, 0)), emptyMitoManifest)
}
