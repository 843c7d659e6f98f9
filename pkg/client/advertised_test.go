package client

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// unresolvable is an advertised address as docker-compose's grpc.server_addr
// gives one: a name the nodes resolve among themselves but the client's host
// does not (.invalid never resolves, RFC 2606).
func unresolvable(i int) string { return fmt.Sprintf("metasrv%d.invalid:3002", i) }

// advertiseUnresolvable makes every node advertise a name the client cannot
// dial, and elects leader.
func advertiseUnresolvable(tc *testCluster, leader int) {
	for i := range tc.nodes {
		tc.advertise(i, unresolvable(i))
	}
	tc.elect(leader)
}

// Every node names the leader by an address the client cannot resolve; the
// leader is one of the endpoints, so the client finds it there and keeps the
// endpoint address, for reads and writes.
func TestLeaderFoundAmongEndpointsWhenAdvertisedAddressUnresolvable(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, 3)
	advertiseUnresolvable(tc, 2)
	c := tc.client(tc.addrs(), func(cfg *Config) { cfg.RequestTimeout = 5 * time.Second })

	put(t, c, "k", "v")
	requireValue(t, c, "k", "v")
	require.Equal(t, tc.nodes[2].addr, c.cachedLeader(), "the endpoint address, not the advertised name")

	// A new leader: the old one's NOT_LEADER hint names it by its
	// unresolvable name; the client falls back to the endpoints again.
	tc.elect(0)
	put(t, c, "k", "w")
	requireValue(t, c, "k", "w")
	require.Equal(t, tc.nodes[0].addr, c.cachedLeader())
	requireValue(t, tc.store, "k", "w")
}

// The client was pointed at a follower only first (it believes the
// follower leads); the follower's hint cannot be dialled, and the client
// finds the leader among its endpoints instead of giving up.
func TestUnreachableHintFallsBackToEndpoints(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, 2)
	advertiseUnresolvable(tc, 1)
	c := tc.client(tc.addrs(), func(cfg *Config) { cfg.RequestTimeout = 5 * time.Second })
	c.setLeader(tc.nodes[0].addr, 0)

	put(t, c, "k", "v")
	require.Positive(t, tc.nodes[0].refused.Load(), "the put must have gone to the follower first")
	require.Equal(t, tc.nodes[1].addr, c.cachedLeader())
	requireValue(t, tc.store, "k", "v")
}

// The advertised address resolves but nothing answers there (a port that
// refuses connections): same fallback.
func TestRefusingAdvertisedAddressFallsBackToEndpoints(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := lis.Addr().String()
	require.NoError(t, lis.Close())

	tc := newTestCluster(t, 2)
	tc.advertise(0, closed)
	tc.elect(0)
	c := tc.client(tc.addrs(), func(cfg *Config) { cfg.RequestTimeout = 5 * time.Second })
	put(t, c, "k", "v")
	require.Equal(t, tc.nodes[0].addr, c.cachedLeader())
}

// When the leader is not among the endpoints and its advertised address
// cannot be dialled, the error says what the operator can do.
func TestUnreachableLeaderOutsideEndpointsExplains(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, 2)
	advertiseUnresolvable(tc, 1)
	c := tc.client([]string{tc.nodes[0].addr}, func(cfg *Config) { cfg.RequestTimeout = 2 * time.Second })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := c.Put(ctx, kv.PutRequest{Key: []byte("k"), Value: []byte("v")})
	require.Error(t, err)
	require.ErrorContains(t, err, unresolvable(1))
	require.ErrorContains(t, err, "not among the endpoints")
}
