package greptime

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/internal/greptimefake"
	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/grpczstd"
)

// fakeNode is one fake GreptimeDB node and what the test watches of it.
type fakeNode struct {
	*greptimefake.Node
	name string
	// key is the node-info key the leader keeps for it.
	key  []byte
	addr string
	// answered gets a signal (the latest kept) for every regular beat
	// answered without a header error.
	answered chan struct{}
}

// startFakes starts 4 datanodes, a frontend and a flownode, each with its
// own connections (as separate GreptimeDB processes), sending zstd.
func startFakes(t *testing.T, endpoints []string) []*fakeNode {
	t.Helper()
	specs := []struct {
		role greptimefake.Role
		id   uint64
	}{
		{greptimefake.Datanode, 1}, {greptimefake.Datanode, 2}, {greptimefake.Datanode, 3}, {greptimefake.Datanode, 4},
		{greptimefake.Frontend, 0}, {greptimefake.Flownode, 1024},
	}
	var fakes []*fakeNode
	for i, s := range specs {
		f := &fakeNode{addr: fmt.Sprintf("127.0.0.%d:4001", i+10), answered: make(chan struct{}, 1)}
		switch s.role {
		case greptimefake.Datanode:
			f.name, f.key = fmt.Sprintf("datanode %d", s.id), greptimekey.NodeInfoKey(greptimekey.RoleDatanode, s.id)
		case greptimefake.Frontend:
			f.name, f.key = "frontend", greptimekey.NodeInfoKey(greptimekey.RoleFrontend, greptimekey.FrontendNodeID(f.addr))
		default:
			f.name, f.key = fmt.Sprintf("flownode %d", s.id), greptimekey.NodeInfoKey(greptimekey.RoleFlownode, s.id)
		}
		n, err := greptimefake.New(greptimefake.Config{
			Endpoints: endpoints, Role: s.role, ID: s.id, Addr: f.addr, Compressor: grpczstd.Name,
			OnResponse: f.onResponse,
		})
		require.NoError(t, err)
		f.Node = n
		require.NoError(t, n.Start(t.Context()))
		t.Cleanup(n.Stop)
		fakes = append(fakes, f)
	}
	return fakes
}

func (f *fakeNode) onResponse(resp *metapb.HeartbeatResponse) {
	if resp.GetHeartbeatConfig() != nil || resp.GetHeader().GetError() != nil {
		return // a handshake's answer, or a refusal
	}
	select {
	case f.answered <- struct{}{}:
	default:
	}
}

// drain forgets the signals received so far.
func (f *fakeNode) drain() {
	for {
		select {
		case <-f.Handshakes():
		case <-f.answered:
		default:
			return
		}
	}
}

// waitLeaderHandshakes waits until every fake has completed a handshake
// answered without a header error (a follower's NotLeader handshake does
// not count) with a metasrv other than not, and returns the one they all
// chose. Each node's delay since the event is logged.
func waitLeaderHandshakes(t *testing.T, fakes []*fakeNode, not, event string, since time.Time, timeout time.Duration) string {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var leaders []string
	for _, f := range fakes {
		hs, ok := nextLeaderHandshake(f, not, deadline.C)
		if !ok {
			t.Fatalf("%s: no handshake with a leader within %s of %s (%d of %d nodes had one; its counters: %+v)",
				f.name, timeout, event, len(leaders), len(fakes), f.Stats())
		}
		t.Logf("%s: handshake with %s %s after %s (heartbeat interval %dms)", f.name, hs.Leader, hs.At.Sub(since).Round(time.Millisecond),
			event, hs.Config.GetHeartbeatIntervalMs())
		leaders = append(leaders, hs.Leader)
	}
	slices.Sort(leaders)
	require.Equal(t, leaders[0], leaders[len(leaders)-1], "the nodes handshook with different leaders: %v", leaders)
	return leaders[0]
}

// nextLeaderHandshake waits for f's next handshake with a leader other than
// not; false when expired fires first.
func nextLeaderHandshake(f *fakeNode, not string, expired <-chan time.Time) (greptimefake.Handshake, bool) {
	for {
		select {
		case hs := <-f.Handshakes():
			if hs.Header.GetError() == nil && hs.Leader != not {
				return hs, true
			}
		case <-expired:
			return greptimefake.Handshake{}, false
		}
	}
}

// waitAnswered waits until every fake has had a regular beat answered
// since its last drain: then the leader holds its node info.
func waitAnswered(t *testing.T, fakes []*fakeNode, timeout time.Duration) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for _, f := range fakes {
		select {
		case <-f.answered:
		case <-deadline.C:
			t.Fatalf("%s: no beat answered within %s (its counters: %+v)", f.name, timeout, f.Stats())
		}
	}
}

// requireNodeInfo checks that the leader's Cluster/Range lists exactly the
// fakes' node-info keys, each naming its node.
func requireNodeInfo(t *testing.T, leader string, fakes []*fakeNode) {
	t.Helper()
	resp := clusterRange(t, leader)
	require.Nil(t, resp.GetHeader().GetError(), "the leader %s refused Cluster/Range", leader)
	want := map[string]string{}
	for _, f := range fakes {
		want[string(f.key)] = f.addr
	}
	got := map[string]string{}
	for _, p := range resp.GetKvs() {
		var info greptimekey.NodeInfo
		require.NoError(t, json.Unmarshal(p.GetValue(), &info), "node info %s: %s", p.GetKey(), p.GetValue())
		require.Equal(t, greptimefake.Version, info.Version, "node info %s", p.GetKey())
		got[string(p.GetKey())] = info.Peer.Addr
	}
	require.Equal(t, want, got, "node-info keys on the leader %s", leader)
}

// requireFollowersRefuse checks that every other node answers Cluster/Range
// with the NotLeader header (code 2) and nothing else.
func requireFollowersRefuse(t *testing.T, endpoints []string, leader string) {
	t.Helper()
	for _, addr := range endpoints {
		if addr == leader {
			continue
		}
		resp := clusterRange(t, addr)
		require.Equal(t, int32(greptimefake.CodeNotLeader), resp.GetHeader().GetError().GetCode(), "Cluster/Range on the follower %s", addr)
		require.Empty(t, resp.GetKvs(), "the follower %s answered keys", addr)
	}
}

// TestHeartbeatsFollowTheLeader runs three metasrv processes with six fake
// GreptimeDB nodes heartbeating to the leader, checks what the leader and
// the followers answer, then SIGKILLs the leader and waits until every node
// has handshaken with its successor. It logs how long each node took; it
// asserts only the generous bound.
func TestHeartbeatsFollowTheLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and three metasrv processes")
	}
	c := startCluster(t)
	endpoints := c.Endpoints()
	started := time.Now()
	fakes := startFakes(t, endpoints)

	leader := waitLeaderHandshakes(t, fakes, "", "the start", started, startTimeout)
	require.NotNil(t, c.Node(leader), "the nodes handshook with %s, no node of the cluster", leader)
	waitAnswered(t, fakes, failoverTimeout)
	requireNodeInfo(t, leader, fakes)
	requireFollowersRefuse(t, endpoints, leader)

	for _, f := range fakes {
		f.drain()
	}
	killed := time.Now()
	require.NoError(t, c.Node(leader).Kill())
	t.Logf("SIGKILLed the leader %s", leader)
	next := waitLeaderHandshakes(t, fakes, leader, "the kill", killed, failoverTimeout)
	require.NotNil(t, c.Node(next), "the nodes handshook with %s, no node of the cluster", next)
	t.Logf("every node handshook with the new leader %s within %s of the kill", next, time.Since(killed).Round(time.Millisecond))

	// The new leader's in-memory KV is rebuilt from the nodes' beats.
	for _, f := range fakes {
		f.drain()
	}
	waitAnswered(t, fakes, failoverTimeout)
	requireNodeInfo(t, next, fakes)
	requireFollowersRefuse(t, slices.DeleteFunc(slices.Clone(endpoints), func(a string) bool { return a == leader }), next)
}
