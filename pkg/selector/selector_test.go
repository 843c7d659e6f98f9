package selector

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// selector.rs test_convert_str_to_selector_type and test_default_selector_type.
func TestParseKind(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Kind{
		"round_robin": KindRoundRobin, "RoundRobin": KindRoundRobin,
		"lease_based": KindLeaseBased, "LeaseBased": KindLeaseBased,
		"load_based": KindLoadBased, "LoadBased": KindLoadBased,
	} {
		got, err := ParseKind(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	_, err := ParseKind("unknown")
	require.ErrorIs(t, err, ErrUnsupportedSelector)
	require.EqualError(t, err, `unsupported selector type "unknown" (expected round_robin, lease_based or load_based)`)
	require.Equal(t, KindRoundRobin, DefaultKind)
}

func TestNew(t *testing.T) {
	t.Parallel()
	for kind, want := range map[string]Selector{
		"round_robin": &RoundRobin{}, "lease_based": &LeaseBased{}, "load_based": &LoadBased{},
	} {
		s, err := New(kind)
		require.NoError(t, err)
		require.IsType(t, want, s)
	}
	_, err := New("random")
	require.ErrorIs(t, err, ErrUnsupportedSelector)
}

func TestNotEnoughAvailableError(t *testing.T) {
	t.Parallel()
	var err error = &NotEnoughAvailableError{Required: 3, Available: 1}
	require.EqualError(t, err, "Failed to request datanode, required: 3, but only 1 available")
	require.ErrorIs(t, err, ErrNotEnoughAvailableDatanodes)
	require.ErrorIs(t, errors.Join(errors.New("create table"), err), ErrNotEnoughAvailableDatanodes)
	var coded interface{ Code() uint32 }
	require.ErrorAs(t, err, &coded)
	require.Equal(t, uint32(6000), coded.Code())
}

func TestAliveDatanodes(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.datanode(1, "dn1:4001", 0)
	c.datanode(2, "dn2:4001", 9999*time.Millisecond)     // just inside the 10s lease
	c.datanode(3, "dn3:4001", 10*time.Second)            // just outside
	c.datanode(4, "dn4:4001", -time.Millisecond)         // ahead of the leader's clock
	c.datanode(5, "dn5:4001", time.Second, []int32{}...) // no workload type: hybrid not claimed
	c.datanode(6, "dn6:4001", time.Second, 7)            // an unknown workload type only
	c.nodeInfo(greptimekey.RoleDatanode, greptimekey.NodeInfo{
		Peer: Peer{ID: 9, Addr: "meta:3002"}, LastActivityTs: testNow.UnixMilli(),
		Status: greptimekey.NodeStatus{Role: greptimekey.RoleMetasrv, MetasrvIsLeader: true},
	})
	// A frontend's node info is under another prefix and never a candidate.
	c.nodeInfo(greptimekey.RoleFrontend, greptimekey.NodeInfo{
		Peer: Peer{ID: 7, Addr: "fe:4001"}, LastActivityTs: testNow.UnixMilli(),
		Status: greptimekey.NodeStatus{Role: greptimekey.RoleFrontend, Workloads: []int32{}},
	})

	all, err := AliveDatanodes(context.Background(), c.input(), nil)
	require.NoError(t, err)
	require.Equal(t, []uint64{1, 2, 5, 6}, ids(all))
	require.Equal(t, "dn1:4001", all[0].Addr)

	ingest, err := AliveDatanodes(context.Background(), c.input(), AcceptIngestWorkload)
	require.NoError(t, err)
	require.Equal(t, []uint64{1, 2}, ids(ingest))

	// A longer heartbeat interval widens the lease: 3 x 4s + 1s = 13s.
	in := c.input()
	in.HeartbeatInterval = 4 * time.Second
	wide, err := AliveDatanodes(context.Background(), in, AcceptIngestWorkload)
	require.NoError(t, err)
	require.Equal(t, []uint64{1, 2, 3}, ids(wide))
}

func TestAliveDatanodesRefusesUnreadableNodeInfo(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.datanode(1, "dn1:4001", 0)
	c.put(greptimekey.NodeInfoKey(greptimekey.RoleDatanode, 2), []byte(`{"peer":{}}`))
	_, err := AliveDatanodes(context.Background(), c.input(), nil)
	require.ErrorIs(t, err, greptimekey.ErrInvalidValue)

	_, err = AliveDatanodes(context.Background(), Input{}, nil)
	require.ErrorIs(t, err, kv.ErrInvalidArgument)
}

func TestActiveWithinSaturates(t *testing.T) {
	t.Parallel()
	const window = 10 * time.Second
	require.True(t, activeWithin(10_000, 1, window))
	require.False(t, activeWithin(10_000, 0, window))
	require.False(t, activeWithin(1, 2, window))
	require.False(t, activeWithin(1<<62, -(1<<62), window)) // overflows upwards
	require.False(t, activeWithin(-(1<<62), 1<<62, window)) // overflows downwards
}

func TestAcceptIngestWorkload(t *testing.T) {
	t.Parallel()
	require.True(t, AcceptIngestWorkload(greptimekey.NodeWorkloads{Role: greptimekey.RoleDatanode, Types: []int32{0}}))
	require.True(t, AcceptIngestWorkload(greptimekey.NodeWorkloads{Role: greptimekey.RoleDatanode, Types: []int32{5, 0}}))
	require.False(t, AcceptIngestWorkload(greptimekey.NodeWorkloads{Role: greptimekey.RoleDatanode, Types: []int32{5}}))
	require.False(t, AcceptIngestWorkload(greptimekey.NodeWorkloads{Role: greptimekey.RoleDatanode}))
	require.True(t, AcceptIngestWorkload(greptimekey.NodeWorkloads{Role: greptimekey.RoleFrontend}))
}

func TestSelectRefusesNegativeCount(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.datanode(1, "dn1:4001", 0)
	for _, s := range []Selector{NewRoundRobin(), NewLeaseBased(), NewLoadBased()} {
		_, err := s.Select(context.Background(), c.input(), Options{MinRequiredItems: -1})
		require.ErrorIs(t, err, kv.ErrInvalidArgument)
	}
}
