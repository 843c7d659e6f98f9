package admin_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/memkv"
	"github.com/pgmetasrv/metasrv/pkg/nodelist"
	"github.com/pgmetasrv/metasrv/pkg/server/admin"
)

// memory is a node's in-memory KV; the test may replace it, as the core
// does on every leadership change.
type memory struct{ b kv.Backend }

func (m *memory) MemoryBackend() kv.Backend { return m.b }

func withMemory(m admin.Memory, heartbeatInterval time.Duration) option {
	return func(d *admin.Deps, _ *env) {
		d.Memory = m
		d.HeartbeatInterval = heartbeatInterval
	}
}

func put(t *testing.T, b kv.Backend, key []byte, v interface{ Encode() ([]byte, error) }) {
	t.Helper()
	value, err := v.Encode()
	require.NoError(t, err)
	_, err = b.Put(context.Background(), kv.PutRequest{Key: key, Value: value})
	require.NoError(t, err)
}

func datanodeLease(ts time.Time, addr string) greptimekey.LeaseValue {
	return greptimekey.LeaseValue{TimestampMillis: ts.UnixMilli(), NodeAddr: addr,
		Workloads: greptimekey.NodeWorkloads{Role: greptimekey.RoleDatanode, Types: []int32{0}}}
}

func nodeInfo(role greptimekey.Role, ts time.Time, addr, version string) greptimekey.NodeInfo {
	status := greptimekey.NodeStatus{Role: role, Workloads: []int32{}}
	if role == greptimekey.RoleDatanode {
		status.Datanode = &greptimekey.DatanodeStatus{Workloads: []int32{0}}
	}
	return greptimekey.NodeInfo{Peer: greptimekey.Peer{Addr: addr}, LastActivityTs: ts.UnixMilli(), Status: status,
		Version: version, GitCommit: "abc", StartTimeMs: 1_700_000_000_000, Hostname: "host"}
}

func nodesOf(t *testing.T, r response) []nodelist.Node {
	t.Helper()
	require.Equal(t, http.StatusOK, r.code, r.body)
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	var nodes []nodelist.Node
	require.NoError(t, json.Unmarshal([]byte(r.body), &nodes), r.body)
	return nodes
}

func TestNodes(t *testing.T) {
	t.Parallel()
	mem := &memory{b: memkv.New()}
	// heartbeat_interval 1s: leases are current for 4s, frontends for 6s.
	e := newEnv(t, withMemory(mem, time.Second))
	now := time.Now()
	put(t, mem.b, greptimekey.DatanodeLeaseKey(2), datanodeLease(now.Add(-time.Second), "10.0.0.2:4001"))
	put(t, mem.b, greptimekey.NodeInfoKey(greptimekey.RoleDatanode, 2), nodeInfo(greptimekey.RoleDatanode, now.Add(-time.Second), "10.0.0.2:4001", "v1.1.4"))
	put(t, mem.b, greptimekey.DatanodeLeaseKey(1), datanodeLease(now.Add(-time.Minute), "10.0.0.1:4001"))
	fe := greptimekey.FrontendNodeID("10.0.0.9:4000")
	put(t, mem.b, greptimekey.NodeInfoKey(greptimekey.RoleFrontend, fe), nodeInfo(greptimekey.RoleFrontend, now.Add(-5*time.Second), "10.0.0.9:4000", "v1.1.4"))

	r := e.do(t, http.MethodGet, "/admin/nodes", "")
	require.Equal(t, "no-store", r.header.Get("Cache-Control"))
	nodes := nodesOf(t, r)
	require.Len(t, nodes, 3)
	require.Equal(t, nodelist.Node{Role: nodelist.RoleDatanode, ID: 1, Addr: "10.0.0.1:4001", LastHeartbeat: time.UnixMilli(now.Add(-time.Minute).UnixMilli()).UTC(),
		LastHeartbeatAgeMillis: nodes[0].LastHeartbeatAgeMillis, Workloads: []int32{0}}, nodes[0], "a lease only, expired")
	require.GreaterOrEqual(t, nodes[0].LastHeartbeatAgeMillis, int64(60_000))
	require.Equal(t, uint64(2), nodes[1].ID)
	require.True(t, nodes[1].LeaseCurrent)
	require.Equal(t, "v1.1.4", nodes[1].Version)
	require.Equal(t, time.UnixMilli(1_700_000_000_000).UTC(), nodes[1].StartTime)
	require.Equal(t, nodelist.RoleFrontend, nodes[2].Role)
	require.Equal(t, fe, nodes[2].ID)
	require.True(t, nodes[2].LeaseCurrent, "5s is within 6 x heartbeat_interval")
	require.Contains(t, r.body, `"lease_current":true`)
	require.Contains(t, r.body, `"role":"frontend"`)
	var raw []map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.body), &raw))
	require.NotContains(t, raw[0], "start_time", "left out while unknown")
	require.Equal(t, "2023-11-14T22:13:20Z", raw[1]["start_time"])

	nodes = nodesOf(t, e.do(t, http.MethodGet, "/admin/nodes?role=frontend", ""))
	require.Len(t, nodes, 1)
	require.Equal(t, fe, nodes[0].ID)
	nodes = nodesOf(t, e.do(t, http.MethodGet, "/admin/nodes?role=flownode", ""))
	require.Empty(t, nodes)
	require.Equal(t, "[]\n", e.do(t, http.MethodGet, "/admin/nodes?role=flownode", "").body)

	r = e.do(t, http.MethodGet, "/admin/nodes?role=metasrv", "")
	require.Equal(t, http.StatusBadRequest, r.code)
	require.Equal(t, `role "metasrv": expected datanode, frontend or flownode`, r.json(t)["error"])

	// A new term starts with an empty in-memory KV.
	mem.b = memkv.New()
	require.Equal(t, "[]\n", e.do(t, http.MethodGet, "/admin/nodes", "").body)

	r = e.do(t, http.MethodHead, "/admin/nodes", "")
	require.Equal(t, http.StatusOK, r.code)
	r = e.do(t, http.MethodPost, "/admin/nodes", "")
	require.Equal(t, http.StatusMethodNotAllowed, r.code)
	require.Equal(t, "GET, HEAD", r.header.Get("Allow"))
}

// A follower's in-memory KV holds the leases of heartbeats it refused: it
// answers the not-leader refusal naming the leader, as the other
// leader-only endpoints do.
func TestNodesOnFollower(t *testing.T) {
	t.Parallel()
	mem := &memory{b: memkv.New()}
	e := newEnv(t, withMemory(mem, 0))
	put(t, mem.b, greptimekey.DatanodeLeaseKey(1), datanodeLease(time.Now(), "10.0.0.1:4001"))
	e.follower()

	r := e.do(t, http.MethodGet, "/admin/nodes", "")
	require.Equal(t, http.StatusServiceUnavailable, r.code)
	body := r.json(t)
	require.Equal(t, leaderAddr, body["leader"])
	require.Equal(t, "NOT_LEADER", body["reason"])
	require.Equal(t, "UNAVAILABLE", body["code"])
	require.Contains(t, body["error"], "the leader is "+leaderAddr)
	require.NotContains(t, r.body, "10.0.0.1")
}

func TestNodesErrors(t *testing.T) {
	t.Parallel()
	// Without the in-memory KV the endpoint is not served.
	e := newEnv(t)
	r := e.do(t, http.MethodGet, "/admin/nodes", "")
	require.Equal(t, http.StatusNotImplemented, r.code)
	require.Contains(t, r.json(t)["error"], "does not keep GreptimeDB nodes")

	// An entry GreptimeDB could not read either is the server's fault: it
	// is logged, and the answer does not quote it.
	mem := &memory{b: memkv.New()}
	e = newEnv(t, withMemory(mem, 0))
	_, err := mem.b.Put(context.Background(), kv.PutRequest{Key: greptimekey.DatanodeLeaseKey(1), Value: []byte(`{"secret":1}`)})
	require.NoError(t, err)
	r = e.do(t, http.MethodGet, "/admin/nodes", "")
	require.Equal(t, http.StatusInternalServerError, r.code)
	require.NotContains(t, r.body, "secret")
}
