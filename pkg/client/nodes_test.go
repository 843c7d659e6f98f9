package client

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/pgmetasrv/metasrv/pkg/election"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/heartbeat"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/memkv"
	"github.com/pgmetasrv/metasrv/pkg/metasrv"
	"github.com/pgmetasrv/metasrv/pkg/nodelist"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/server/apierr"
	"github.com/pgmetasrv/metasrv/pkg/server/greptimeapi"
	"github.com/pgmetasrv/metasrv/pkg/server/metasrvapi"
)

// nodesAt is a fixed "now" for the listing tests.
var nodesAt = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) int64 { return nodesAt.Add(-d).UnixMilli() }

func putJSON(t *testing.T, b kv.Backend, key []byte, v interface{ Encode() ([]byte, error) }) {
	t.Helper()
	value, err := v.Encode()
	require.NoError(t, err)
	_, err = b.Put(context.Background(), kv.PutRequest{Key: key, Value: value})
	require.NoError(t, err)
}

func putLease(t *testing.T, b kv.Backend, role greptimekey.Role, id uint64, addr string, ts int64, types ...int32) {
	t.Helper()
	key := greptimekey.DatanodeLeaseKey(id)
	if role == greptimekey.RoleFlownode {
		key = greptimekey.FlownodeLeaseKey(id)
	}
	putJSON(t, b, key, greptimekey.LeaseValue{TimestampMillis: ts, NodeAddr: addr,
		Workloads: greptimekey.NodeWorkloads{Role: role, Types: append([]int32{}, types...)}})
}

func putInfo(t *testing.T, b kv.Backend, role greptimekey.Role, id uint64, addr string, ts int64, version string) {
	t.Helper()
	status := greptimekey.NodeStatus{Role: role, Workloads: []int32{}}
	switch role {
	case greptimekey.RoleDatanode:
		status.Datanode = &greptimekey.DatanodeStatus{Workloads: []int32{0}}
	case greptimekey.RoleMetasrv:
		status.MetasrvIsLeader = true
	}
	peerID := id
	if role == greptimekey.RoleFrontend {
		peerID = 0 // frontends send id 0; their key carries FrontendNodeID
	}
	putJSON(t, b, greptimekey.NodeInfoKey(role, id), greptimekey.NodeInfo{
		Peer: greptimekey.Peer{ID: peerID, Addr: addr}, LastActivityTs: ts, Status: status,
		Version: version, GitCommit: "abc", StartTimeMs: uint64(ago(time.Hour)), Hostname: "h" + addr,
	})
}

// memoryReader reads b as the leader's in-memory KV.
func memoryReader(b kv.Backend) func(context.Context, []byte) ([]kv.KeyValue, error) {
	return func(ctx context.Context, prefix []byte) ([]kv.KeyValue, error) {
		resp, err := b.Range(ctx, kv.RangeRequest{Key: prefix, RangeEnd: kv.PrefixEnd(prefix)})
		return resp.Kvs, err
	}
}

func TestListNodes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mem := memkv.New()
	// heartbeat_interval 1s: leases are current for 4s, frontends for 6s.
	opts := nodelist.Options{HeartbeatInterval: time.Second, Now: func() time.Time { return nodesAt }}
	putLease(t, mem, greptimekey.RoleDatanode, 3, "10.0.0.3:4001", ago(3999*time.Millisecond), 0)
	putInfo(t, mem, greptimekey.RoleDatanode, 3, "10.0.0.3:4001", ago(5*time.Second), "v1.1.4")
	// A lease exactly as old as the window has expired (GreptimeDB: elapsed < lease).
	putLease(t, mem, greptimekey.RoleDatanode, 1, "10.0.0.1:4001", ago(4*time.Second), 0)
	// A lease stamped ahead of the lister's clock is current, of age 0.
	putLease(t, mem, greptimekey.RoleFlownode, 5, "10.0.0.5:6800", ago(-2*time.Second))
	putInfo(t, mem, greptimekey.RoleFlownode, 5, "10.0.0.5:6800", ago(time.Second), "v1.1.3")
	feA, feB := greptimekey.FrontendNodeID("10.0.0.8:4000"), greptimekey.FrontendNodeID("10.0.0.9:4000")
	putInfo(t, mem, greptimekey.RoleFrontend, feA, "10.0.0.8:4000", ago(5999*time.Millisecond), "v1.1.4")
	putInfo(t, mem, greptimekey.RoleFrontend, feB, "10.0.0.9:4000", ago(6*time.Second), "v1.1.4")
	// GreptimeDB's metasrv lists itself under role 99; it is no GreptimeDB node.
	putInfo(t, mem, greptimekey.RoleMetasrv, 0, "10.0.0.100:3002", ago(0), "v1.1.4")
	// Stats sit beside the leases and are not read.
	_, err := mem.Put(ctx, kv.PutRequest{Key: greptimekey.DatanodeStatKey(3), Value: []byte("not read")})
	require.NoError(t, err)

	nodes, err := nodelist.List(ctx, memoryReader(mem), opts)
	require.NoError(t, err)
	type row struct {
		role    nodelist.NodeRole
		id      uint64
		addr    string
		ageMs   int64
		current bool
	}
	var rows []row
	for _, n := range nodes {
		rows = append(rows, row{n.Role, n.ID, n.Addr, n.LastHeartbeatAgeMillis, n.LeaseCurrent})
	}
	fe := []row{{nodelist.RoleFrontend, feA, "10.0.0.8:4000", 5999, true}, {nodelist.RoleFrontend, feB, "10.0.0.9:4000", 6000, false}}
	if feB < feA {
		fe[0], fe[1] = fe[1], fe[0]
	}
	require.Equal(t, append(append([]row{
		{nodelist.RoleDatanode, 1, "10.0.0.1:4001", 4000, false},
		// The newer of the lease and the node info is the last heartbeat.
		{nodelist.RoleDatanode, 3, "10.0.0.3:4001", 3999, true},
	}, fe...), row{nodelist.RoleFlownode, 5, "10.0.0.5:6800", 0, true}), rows)

	dn3 := nodes[1]
	require.Equal(t, "v1.1.4", dn3.Version)
	require.Equal(t, "abc", dn3.GitCommit)
	require.Equal(t, "h10.0.0.3:4001", dn3.Hostname)
	require.Equal(t, nodesAt.Add(-time.Hour), dn3.StartTime)
	require.Equal(t, nodesAt.Add(-3999*time.Millisecond), dn3.LastHeartbeat)
	require.Equal(t, []int32{0}, dn3.Workloads)
	// Datanode 1 has a lease only (no regular heartbeat yet): no start
	// time, no version, and JSON leaves start_time out.
	dn1 := nodes[0]
	require.True(t, dn1.StartTime.IsZero())
	require.Empty(t, dn1.Version)
	out, err := json.Marshal(dn1)
	require.NoError(t, err)
	require.JSONEq(t, `{"role":"datanode","id":1,"addr":"10.0.0.1:4001","last_heartbeat":"2025-06-01T11:59:56Z",
		"last_heartbeat_age_ms":4000,"version":"","git_commit":"","hostname":"","workloads":[0],"lease_current":false}`, string(out))
	// Workloads are never null.
	out, err = json.Marshal(nodes[4])
	require.NoError(t, err)
	require.Contains(t, string(out), `"workloads":[]`)

	// One role.
	opts.Role = nodelist.RoleFrontend
	nodes, err = nodelist.List(ctx, memoryReader(mem), opts)
	require.NoError(t, err)
	require.Len(t, nodes, 2)
	for _, n := range nodes {
		require.Equal(t, nodelist.RoleFrontend, n.Role)
	}
	opts.Role = nodelist.RoleFlownode
	nodes, err = nodelist.List(ctx, memoryReader(mem), opts)
	require.NoError(t, err)
	require.Len(t, nodes, 1)
	require.Equal(t, "v1.1.3", nodes[0].Version)

	opts.Role = "metasrv"
	_, err = nodelist.List(ctx, memoryReader(mem), opts)
	require.ErrorIs(t, err, kv.ErrInvalidArgument)

	// At the default heartbeat_interval (3s) the windows are 10s and 18s.
	require.Equal(t, 10*time.Second, nodelist.LeaseWindow(nodelist.RoleDatanode, 0))
	require.Equal(t, 10*time.Second, nodelist.LeaseWindow(nodelist.RoleFlownode, 3*time.Second))
	require.Equal(t, 18*time.Second, nodelist.LeaseWindow(nodelist.RoleFrontend, 0))
}

func TestListNodesRefusesUndecodableEntries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mem := memkv.New()
	_, err := mem.Put(ctx, kv.PutRequest{Key: greptimekey.DatanodeLeaseKey(9), Value: []byte(`{"timestamp_millis":1}`)})
	require.NoError(t, err)
	_, err = nodelist.List(ctx, memoryReader(mem), nodelist.Options{})
	require.ErrorIs(t, err, greptimekey.ErrInvalidValue)
	require.ErrorContains(t, err, `lease "__meta_datanode_lease-0-9"`)

	mem = memkv.New()
	_, err = mem.Put(ctx, kv.PutRequest{Key: []byte(greptimekey.NodeInfoPrefix + "x"), Value: []byte(`{}`)})
	require.NoError(t, err)
	_, err = nodelist.List(ctx, memoryReader(mem), nodelist.Options{})
	require.ErrorIs(t, err, greptimekey.ErrInvalidKey)
}

// memNode is an in-process metasrv node serving metasrv.v1 (the client's
// leader discovery) and greptime.v1.meta (Cluster/Range over its own
// in-memory KV), with leadership chosen by the test.
type memNode struct {
	cluster *memCluster
	addr    string
	memory  *memkv.Store
	// ranges counts the greptime.v1.meta.Cluster/Range calls it took.
	ranges atomic.Int64
}

type memCluster struct {
	mu     sync.Mutex
	leader string
	term   int64
	// untrusted: the leader is named, but does not trust its leadership
	// (HeaderInfo's term 0), so it answers Cluster calls NotLeader.
	untrusted bool
	nodes     []*memNode
}

func newMemCluster(t *testing.T, n int) *memCluster {
	t.Helper()
	mc := &memCluster{}
	for range n {
		mc.nodes = append(mc.nodes, mc.start(t))
	}
	return mc
}

func (mc *memCluster) elect(i int, untrusted bool) {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	mc.term++
	mc.leader, mc.untrusted = "", untrusted
	if i >= 0 {
		mc.leader = mc.nodes[i].addr
	}
}

func (mc *memCluster) start(t *testing.T) *memNode {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	logger := slog.New(slog.DiscardHandler)
	n := &memNode{cluster: mc, addr: lis.Addr().String(), memory: memkv.New()}
	hb, err := heartbeat.New(heartbeat.Options{
		Leading:    func() int64 { return n.HeaderInfo().Term },
		Memory:     func() kv.Backend { return n.memory },
		ServerAddr: func() string { return n.addr },
	})
	require.NoError(t, err)
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if info.FullMethod == "/greptime.v1.meta.Cluster/Range" {
				n.ranges.Add(1)
			}
			return h(ctx, req)
		}, apierr.UnaryServerInterceptor(logger)),
		grpc.ChainStreamInterceptor(apierr.StreamServerInterceptor(logger)),
	)
	procs := procedure.New(procedure.Options{}, logger)
	metasrvapi.Register(srv, metasrvapi.Deps{Core: n, Elector: n, Procedures: procs})
	greptimeapi.Register(srv, greptimeapi.Deps{Core: n, Elector: n, Heartbeat: hb})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return n
}

func (n *memNode) leadership() (leader string, term int64, trusted bool) {
	n.cluster.mu.Lock()
	defer n.cluster.mu.Unlock()
	return n.cluster.leader, n.cluster.term, !n.cluster.untrusted
}

func (n *memNode) LeaderBackend(context.Context) (kv.Backend, error) {
	if leader, _, trusted := n.leadership(); leader != n.addr || !trusted {
		return nil, &election.NotLeaderError{Leader: leader}
	}
	return n.memory, nil
}

func (n *memNode) SerializableBackend() kv.Backend { return n.memory }
func (n *memNode) MemoryBackend() kv.Backend       { return n.memory }

func (n *memNode) HeaderInfo() metasrv.HeaderInfo {
	leader, term, trusted := n.leadership()
	h := metasrv.HeaderInfo{NodeAddr: n.addr, LeaderAddr: leader}
	if leader == n.addr && trusted {
		h.Term = term
	}
	return h
}

func (n *memNode) Leader(context.Context) (election.Leader, error) {
	leader, term, _ := n.leadership()
	if leader == "" {
		return election.Leader{}, election.ErrNoLeader
	}
	return election.Leader{Addr: leader, Term: term}, nil
}

func (n *memNode) Candidates(context.Context) ([]election.NodeInfo, error) {
	return []election.NodeInfo{{Addr: n.addr}}, nil
}

// Nodes reads the leader's in-memory KV, never a follower's (which holds the
// leases of heartbeats it refused); a follower's NotLeader answer sends the
// call to the leader the endpoints name.
func TestNodesReadsTheLeaderAndAsksAgainOnNotLeader(t *testing.T) {
	t.Parallel()
	mc := newMemCluster(t, 2)
	now := time.Now()
	putLease(t, mc.nodes[0].memory, greptimekey.RoleDatanode, 1, "10.0.0.1:4001", now.UnixMilli(), 0)
	putLease(t, mc.nodes[1].memory, greptimekey.RoleDatanode, 2, "10.0.0.2:4001", now.Add(-time.Minute).UnixMilli(), 0)
	putInfo(t, mc.nodes[1].memory, greptimekey.RoleFrontend, 77, "10.0.0.77:4000", now.UnixMilli(), "v1.1.4")
	mc.elect(0, false)
	ctx := context.Background()
	c, err := New(ctx, Config{Endpoints: []string{mc.nodes[0].addr, mc.nodes[1].addr}, DialTimeout: 2 * time.Second, RequestTimeout: 10 * time.Second,
		MinRetryBackoff: time.Millisecond, MaxRetryBackoff: 10 * time.Millisecond}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Close()) })

	nodes, err := c.Nodes(ctx, nodelist.Options{})
	require.NoError(t, err)
	require.Len(t, nodes, 1)
	require.Equal(t, nodelist.Node{Role: nodelist.RoleDatanode, ID: 1, Addr: "10.0.0.1:4001", LastHeartbeat: time.UnixMilli(now.UnixMilli()).UTC(),
		LastHeartbeatAgeMillis: nodes[0].LastHeartbeatAgeMillis, Workloads: []int32{0}, LeaseCurrent: true}, nodes[0])
	require.Zero(t, mc.nodes[1].ranges.Load(), "the follower was not asked")

	// Node 1 takes over; the client still believes in node 0, which
	// answers NotLeader, and the call moves on to node 1.
	mc.elect(1, false)
	before := mc.nodes[0].ranges.Load()
	nodes, err = c.Nodes(ctx, nodelist.Options{})
	require.NoError(t, err)
	require.Len(t, nodes, 2)
	require.Equal(t, uint64(2), nodes[0].ID)
	require.False(t, nodes[0].LeaseCurrent, "a minute-old lease")
	require.Equal(t, nodelist.RoleFrontend, nodes[1].Role)
	require.Equal(t, uint64(77), nodes[1].ID)
	require.True(t, nodes[1].LeaseCurrent)
	require.Greater(t, mc.nodes[0].ranges.Load(), before, "the old leader was asked first and refused")

	// A leader that is named but does not trust its leadership keeps
	// answering NotLeader: the call asks again until its deadline, then
	// fails as not leader (or with the deadline, when it struck during an
	// attempt).
	mc.elect(1, true)
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	before = mc.nodes[1].ranges.Load()
	_, err = c.Nodes(short, nodelist.Options{Role: nodelist.RoleDatanode})
	if errors.Is(err, ErrNotLeader) {
		require.ErrorContains(t, err, "greptime.v1.meta header error 2")
	} else {
		require.ErrorIs(t, err, context.DeadlineExceeded)
	}
	require.Greater(t, mc.nodes[1].ranges.Load(), before+1, "asked again")
}
