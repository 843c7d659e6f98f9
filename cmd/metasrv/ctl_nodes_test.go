package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/config"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/nodelist"
)

// fakeHeartbeat opens a greptime.v1.meta heartbeat stream to addr as a
// GreptimeDB node of role does, sends its handshake and then, for a
// datanode, one regular heartbeat, each with the node's peer and info. The
// stream stays open until the test ends.
func fakeHeartbeat(t *testing.T, addr string, role metapb.Role, peer *metapb.Peer, info *metapb.NodeInfo) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.UseCompressor("zstd")))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	stream, err := metapb.NewHeartbeatClient(conn).Heartbeat(ctx)
	require.NoError(t, err)
	header := &metapb.RequestHeader{ProtocolVersion: 1, MemberId: peer.GetId(), Role: role}
	reqs := []*metapb.HeartbeatRequest{{Header: header, Peer: peer, Info: info}}
	if role == metapb.Role_DATANODE {
		reqs = append(reqs, &metapb.HeartbeatRequest{
			Header: header, Peer: peer, Info: info, NodeEpoch: info.GetStartTimeMs(),
			NodeWorkloads: &metapb.HeartbeatRequest_Datanode{Datanode: &metapb.DatanodeWorkloads{Types: []int32{0}}},
			RegionStats:   []*metapb.RegionStat{{RegionId: 4398046511104, Engine: "mito", Role: metapb.RegionRole_Leader}},
		})
	}
	for _, req := range reqs {
		require.NoError(t, stream.Send(req))
		resp, err := stream.Recv()
		require.NoError(t, err)
		require.Zero(t, resp.GetHeader().GetError().GetCode(), "heartbeat of %s %d refused", role, peer.GetId())
	}
}

type nodesJSON struct {
	Nodes []map[string]any `json:"nodes"`
}

// decodeExact decodes JSON keeping numbers as written: a frontend's id is
// beyond float64's exact integers.
func decodeExact(t *testing.T, s string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	require.NoError(t, dec.Decode(v), s)
}

// A datanode, a frontend and a flownode heartbeat to a memory_store node;
// `ctl nodes` lists them from the leader, sorted by role, with their leases
// current, and GET /admin/nodes answers the same list.
func TestCtlNodes(t *testing.T) {
	t.Parallel()
	n := startMemoryNode(t, config.Default())
	addr := n.srv.GRPCAddr().String()
	ep := addr

	// Nothing has heartbeated yet: the header alone, and an empty list.
	lines := strings.Split(strings.TrimSpace(ctl(t, ep, "nodes").ok(t).stdout), "\n")
	require.Len(t, lines, 1)
	require.Regexp(t, `^ROLE\s+ID\s+ADDR\s+LAST HEARTBEAT\s+STARTED\s+VERSION\s+WORKLOADS\s+LEASE$`, lines[0])
	require.Equal(t, "{\n  \"nodes\": []\n}\n", ctl(t, ep, "-o", "json", "nodes").ok(t).stdout)

	started := time.Date(2023, 11, 14, 22, 13, 20, 0, time.UTC)
	info := func(version, host string) *metapb.NodeInfo {
		return &metapb.NodeInfo{Version: version, GitCommit: "abc123", StartTimeMs: uint64(started.UnixMilli()), Hostname: host}
	}
	fakeHeartbeat(t, addr, metapb.Role_DATANODE, &metapb.Peer{Id: 42, Addr: "10.0.0.42:4001"}, info("v1.1.4", "dn42"))
	fakeHeartbeat(t, addr, metapb.Role_FLOWNODE, &metapb.Peer{Id: 7, Addr: "10.0.0.7:6800"}, info("v1.1.4", "fn7"))
	// A frontend's version is a node's own string: shown escaped.
	fakeHeartbeat(t, addr, metapb.Role_FRONTEND, &metapb.Peer{Addr: "10.0.0.9:4000"}, info("v1.1.4\x1b[31m", "fe"))
	frontendID := greptimekey.FrontendNodeID("10.0.0.9:4000")

	text := ctl(t, ep, "nodes").ok(t).stdout
	lines = strings.Split(strings.TrimSpace(text), "\n")
	require.Len(t, lines, 4, text)
	age := `\d+\.\ds ago`
	require.Regexp(t, `^datanode\s+42\s+10\.0\.0\.42:4001\s+`+age+`\s+2023-11-14T22:13:20Z\s+v1\.1\.4\s+hybrid\s+current$`, lines[1])
	require.Regexp(t, fmt.Sprintf(`^frontend\s+%d\s+10\.0\.0\.9:4000\s+%s\s+2023-11-14T22:13:20Z\s+%s\s+-\s+current$`,
		frontendID, age, regexp.QuoteMeta(`"v1.1.4\x1b[31m"`)), lines[2])
	require.Regexp(t, `^flownode\s+7\s+10\.0\.0\.7:6800\s+`+age+`\s+2023-11-14T22:13:20Z\s+v1\.1\.4\s+-\s+current$`, lines[3])
	require.NotContains(t, text, "\x1b")

	// --role keeps one role.
	lines = strings.Split(strings.TrimSpace(ctl(t, ep, "nodes", "--role", "datanode").ok(t).stdout), "\n")
	require.Len(t, lines, 2)
	require.Regexp(t, `^datanode\s+42\s`, lines[1])

	var out nodesJSON
	decodeExact(t, ctl(t, ep, "-o", "json", "nodes").ok(t).stdout, &out)
	require.Len(t, out.Nodes, 3)
	dn := out.Nodes[0]
	require.Equal(t, "datanode", dn["role"])
	require.Equal(t, json.Number("42"), dn["id"])
	require.Equal(t, "10.0.0.42:4001", dn["addr"])
	require.Equal(t, "2023-11-14T22:13:20Z", dn["start_time"])
	require.Equal(t, "v1.1.4", dn["version"])
	require.Equal(t, "abc123", dn["git_commit"])
	require.Equal(t, "dn42", dn["hostname"])
	require.Equal(t, []any{json.Number("0")}, dn["workloads"])
	require.Equal(t, true, dn["lease_current"])
	ageMs, err := dn["last_heartbeat_age_ms"].(json.Number).Int64()
	require.NoError(t, err)
	require.Less(t, ageMs, int64(10_000))
	last, err := time.Parse(time.RFC3339Nano, dn["last_heartbeat"].(string))
	require.NoError(t, err)
	require.WithinDuration(t, time.Now(), last, 10*time.Second)
	require.Equal(t, "frontend", out.Nodes[1]["role"])
	require.Equal(t, json.Number(strconv.FormatUint(frontendID, 10)), out.Nodes[1]["id"])
	require.Equal(t, []any{}, out.Nodes[1]["workloads"])
	require.Equal(t, "flownode", out.Nodes[2]["role"])

	// GET /admin/nodes answers the same list, from the same node.
	resp, err := http.Get("http://" + n.srv.HTTPAddr().String() + "/admin/nodes")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, resp.Body.Close())
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var admin []map[string]any
	decodeExact(t, string(body), &admin)
	require.Len(t, admin, len(out.Nodes))
	for i := range admin {
		delete(admin[i], "last_heartbeat_age_ms")
		delete(out.Nodes[i], "last_heartbeat_age_ms")
	}
	require.Equal(t, out.Nodes, admin)
}

func TestCtlNodesBadInput(t *testing.T) {
	t.Parallel()
	tc := newCtlCluster(t, 1)
	tc.elect(0)
	ep := tc.endpoints(0)
	ctl(t, ep, "nodes", "--role", "metasrv").fails(t, `--role "metasrv": expected datanode, frontend or flownode`)
	ctl(t, ep, "nodes", "--heartbeat-interval", "0s").fails(t, "--heartbeat-interval 0s: must be positive")
	ctl(t, ep, "nodes", "extra").fails(t, `unknown command "extra"`)
	ctl(t, ep, "-o", "yaml", "nodes").fails(t, `--output "yaml": expected text or json`)
}

func TestCtlNodesFormatting(t *testing.T) {
	t.Parallel()
	require.Equal(t, "0.0s ago", formatAge(0))
	require.Equal(t, "2.5s ago", formatAge(2500*time.Millisecond))
	require.Equal(t, "1m5s ago", formatAge(65*time.Second+400*time.Millisecond))
	require.Equal(t, "26h0m0s ago", formatAge(26*time.Hour))
	require.Equal(t, "hybrid", formatWorkloads(nodelist.RoleDatanode, []int32{0}))
	require.Equal(t, "hybrid,5", formatWorkloads(nodelist.RoleDatanode, []int32{0, 5}))
	require.Equal(t, "0,1", formatWorkloads(nodelist.RoleFlownode, []int32{0, 1}))
	require.Equal(t, "-", formatWorkloads(nodelist.RoleFrontend, nil))
}
