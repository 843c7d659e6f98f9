package selector

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/memkv"
)

// testNow is the clock every test judges liveness at.
var testNow = time.UnixMilli(1_700_000_000_000)

// cluster is an in-memory KV holding what heartbeats would leave there.
type cluster struct {
	t   *testing.T
	mem *memkv.Store
}

func newCluster(t *testing.T) *cluster { return &cluster{t: t, mem: memkv.New()} }

func (c *cluster) input() Input { return Input{Memory: c.mem, Now: testNow} }

// datanode records node info for id, last heard from age ago, with the given
// workload types.
func (c *cluster) datanode(id uint64, addr string, age time.Duration, types ...int32) {
	c.t.Helper()
	if types == nil {
		types = []int32{0}
	}
	c.nodeInfo(greptimekey.RoleDatanode, greptimekey.NodeInfo{
		Peer:           Peer{ID: id, Addr: addr},
		LastActivityTs: testNow.Add(-age).UnixMilli(),
		Status: greptimekey.NodeStatus{Role: greptimekey.RoleDatanode, Datanode: &greptimekey.DatanodeStatus{
			Workloads: types,
		}},
		Version: "v1.1.4", GitCommit: "abc", StartTimeMs: 1,
	})
}

func (c *cluster) nodeInfo(role greptimekey.Role, info greptimekey.NodeInfo) {
	c.t.Helper()
	v, err := info.Encode()
	require.NoError(c.t, err)
	c.put(greptimekey.NodeInfoKey(role, info.Peer.ID), v)
}

// stats records a stat value for id whose last stat reports regions regions
// at addr.
func (c *cluster) stats(id uint64, addr string, regions uint64) {
	c.t.Helper()
	v, err := greptimekey.StatValue{
		{ID: id, Addr: "stale:1", RegionNum: 999, RegionStats: []greptimekey.RegionStat{}},
		{ID: id, Addr: addr, RegionNum: regions, RegionStats: []greptimekey.RegionStat{}},
	}.Encode()
	require.NoError(c.t, err)
	c.put(greptimekey.DatanodeStatKey(id), v)
}

func (c *cluster) put(key, value []byte) {
	c.t.Helper()
	_, err := c.mem.Put(context.Background(), kv.PutRequest{Key: key, Value: value})
	require.NoError(c.t, err)
}

func ids(peers []Peer) []uint64 {
	out := make([]uint64, len(peers))
	for i, p := range peers {
		out[i] = p.ID
	}
	return out
}

// seeded is a deterministic random source, so weighted choices are the same
// on every run.
func seeded() func() float64 { return rand.New(rand.NewPCG(1, 2)).Float64 }
