package greptimefake_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/pgmetasrv/metasrv/internal/greptimefake"
	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
)

// TestMain fails the run when goroutines outlive the tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitTimeout bounds every wait: generous, a loaded machine must not fail a
// correct node.
const waitTimeout = 30 * time.Second

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("no %s within %s", what, waitTimeout)
		var zero T
		return zero
	}
}

// handshakeTo waits for a handshake with leader, skipping others.
func handshakeTo(t *testing.T, n *greptimefake.Node, leader string) greptimefake.Handshake {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	for {
		select {
		case hs := <-n.Handshakes():
			if hs.Leader == leader {
				return hs
			}
		case <-timer.C:
			t.Fatalf("no handshake with %s within %s", leader, waitTimeout)
		}
	}
}

// Later-request actions of the fake metasrv, each used once.
const (
	actNotLeader = "notleader" // NotLeader header, then ABORTED (as a GreptimeDB follower)
	actClose     = "close"     // end the stream with OK
	actAbort     = "abort"     // end the stream with UNAVAILABLE (as a shutting-down metasrv)
)

// fakeMeta is an in-process metasrv serving greptime.v1.meta.Heartbeat the
// way GreptimeDB's does, with knobs.
type fakeMeta struct {
	metapb.UnimplementedHeartbeatServer
	addr string

	mu       sync.Mutex
	leaders  []string // AskLeader answers in turn, the last one sticky; "" = Ok without a leader
	askErr   error
	askDelay time.Duration
	config   *metapb.HeartbeatConfig
	follower bool // answer every request NotLeader, then ABORTED
	// lease, if set, makes the region lease of the answer to a later request.
	lease func(*metapb.HeartbeatRequest) *metapb.RegionLease

	actions    chan string                   // the next later request's fate
	asks       chan *metapb.RequestHeader    // AskLeader headers
	handshakes chan *metapb.HeartbeatRequest // first requests of streams
	requests   chan *metapb.HeartbeatRequest // later requests
	ends       chan error                    // how each stream's requests ended (io.EOF = CloseSend)
	encodings  chan [2]string                // {method, grpc-encoding} of each RPC
	// pushes are sent on the stream after the answer to the next request.
	pushes chan *metapb.HeartbeatResponse
}

func newFakeMeta(t *testing.T, config *metapb.HeartbeatConfig) *fakeMeta {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f := &fakeMeta{
		addr:       lis.Addr().String(),
		config:     config,
		actions:    make(chan string, 1),
		asks:       make(chan *metapb.RequestHeader, 1000),
		handshakes: make(chan *metapb.HeartbeatRequest, 1000),
		requests:   make(chan *metapb.HeartbeatRequest, 1000),
		ends:       make(chan error, 1000),
		encodings:  make(chan [2]string, 1000),
		pushes:     make(chan *metapb.HeartbeatResponse, 100),
	}
	f.leaders = []string{f.addr}
	srv := grpc.NewServer(grpc.StatsHandler(f))
	metapb.RegisterHeartbeatServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return f
}

func (f *fakeMeta) setLeaders(leaders ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.leaders = leaders
}

func (f *fakeMeta) setFollower(v bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.follower = v
}

func put[T any](ch chan T, v T) {
	select {
	case ch <- v:
	default:
	}
}

func (f *fakeMeta) AskLeader(ctx context.Context, req *metapb.AskLeaderRequest) (*metapb.AskLeaderResponse, error) {
	put(f.asks, req.GetHeader())
	f.mu.Lock()
	err, delay := f.askErr, f.askDelay
	leader := f.leaders[0]
	if len(f.leaders) > 1 {
		f.leaders = f.leaders[1:]
	}
	f.mu.Unlock()
	if delay > 0 {
		timer := time.NewTimer(delay)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err != nil {
		return nil, err
	}
	resp := &metapb.AskLeaderResponse{Header: &metapb.ResponseHeader{ProtocolVersion: 1}}
	if leader != "" {
		resp.Leader = &metapb.Peer{Addr: leader}
	}
	return resp, nil
}

func notLeaderHeader() *metapb.ResponseHeader {
	return &metapb.ResponseHeader{ProtocolVersion: 1, Error: &metapb.Error{Code: 2, ErrMsg: "Current server is not leader"}}
}

func (f *fakeMeta) notLeader(stream metapb.Heartbeat_HeartbeatServer, resp *metapb.HeartbeatResponse) error {
	resp.Header = notLeaderHeader()
	if err := stream.Send(resp); err != nil {
		return err
	}
	return status.Errorf(codes.Aborted, "The requested metasrv node is not leader, node addr: %s", f.addr)
}

func (f *fakeMeta) Heartbeat(stream metapb.Heartbeat_HeartbeatServer) error {
	first, err := stream.Recv()
	if err != nil {
		put(f.ends, err)
		return nil
	}
	put(f.handshakes, first)
	f.mu.Lock()
	config, follower := f.config, f.follower
	f.mu.Unlock()
	hs := &metapb.HeartbeatResponse{Header: &metapb.ResponseHeader{ProtocolVersion: 1}, HeartbeatConfig: config}
	if follower {
		return f.notLeader(stream, hs)
	}
	if err := stream.Send(hs); err != nil {
		return err
	}
	for {
		req, err := stream.Recv()
		if err != nil {
			put(f.ends, err)
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		put(f.requests, req)
		var act string
		select {
		case act = <-f.actions:
		default:
		}
		f.mu.Lock()
		follower, lease := f.follower, f.lease
		f.mu.Unlock()
		if follower {
			act = actNotLeader
		}
		resp := &metapb.HeartbeatResponse{Header: &metapb.ResponseHeader{ProtocolVersion: 1}}
		if lease != nil && req.GetMailboxMessage() == nil {
			resp.RegionLease = lease(req)
		}
		switch act {
		case actNotLeader:
			return f.notLeader(stream, resp)
		case actClose:
			return nil
		case actAbort:
			return status.Errorf(codes.Unavailable, "The requested metasrv node is shutting down, node addr: %s", f.addr)
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
		if err := f.sendPushes(stream); err != nil {
			return err
		}
	}
}

// sendPushes sends the queued pushes.
func (f *fakeMeta) sendPushes(stream metapb.Heartbeat_HeartbeatServer) error {
	for {
		select {
		case p := <-f.pushes:
			if err := stream.Send(p); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

func (f *fakeMeta) setLease(lease func(*metapb.HeartbeatRequest) *metapb.RegionLease) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lease = lease
}

// stats.Handler: records the grpc-encoding of each incoming RPC.
func (f *fakeMeta) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (f *fakeMeta) HandleRPC(_ context.Context, s stats.RPCStats) {
	if h, ok := s.(*stats.InHeader); ok {
		put(f.encodings, [2]string{h.FullMethod, h.Compression})
	}
}
func (f *fakeMeta) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (f *fakeMeta) HandleConn(context.Context, stats.ConnStats)                       {}

// deadAddr is an address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close())
	return addr
}

func fastConfig() *metapb.HeartbeatConfig {
	return &metapb.HeartbeatConfig{HeartbeatIntervalMs: 20, RetryIntervalMs: 20}
}

// startNode starts a node with short timeouts, stopped at cleanup.
func startNode(t *testing.T, cfg greptimefake.Config) *greptimefake.Node {
	t.Helper()
	if cfg.AskLeaderTimeout == 0 {
		cfg.AskLeaderTimeout = 2 * time.Second
	}
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = 20 * time.Millisecond
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:4001"
	}
	n, err := greptimefake.New(cfg)
	require.NoError(t, err)
	require.NoError(t, n.Start(context.Background()))
	t.Cleanup(n.Stop)
	return n
}

func wantHeader(role metapb.Role, member uint64) *metapb.RequestHeader {
	return &metapb.RequestHeader{ProtocolVersion: 1, MemberId: member, Role: role}
}

func TestDatanodeHandshakeAndBeats(t *testing.T) {
	t.Parallel()
	srv := newFakeMeta(t, &metapb.HeartbeatConfig{HeartbeatIntervalMs: 20, RetryIntervalMs: 30})
	regions := []*metapb.RegionStat{{RegionId: 4398046511104, Engine: "mito", Role: metapb.RegionRole_Leader, ApproximateBytes: 42}}
	responses := make(chan *metapb.HeartbeatResponse, 1000)
	n := startNode(t, greptimefake.Config{
		Endpoints:   []string{srv.addr},
		Role:        greptimefake.Datanode,
		ID:          7,
		Addr:        "10.0.0.7:4001",
		RegionStats: func() []*metapb.RegionStat { return regions },
		OnResponse:  func(r *metapb.HeartbeatResponse) { put(responses, r) },
	})

	hs := recv(t, n.Handshakes(), "handshake")
	require.Equal(t, srv.addr, hs.Leader)
	require.Equal(t, srv.addr, n.Leader())
	require.False(t, hs.Default)
	require.EqualValues(t, 20, hs.Config.GetHeartbeatIntervalMs())
	require.EqualValues(t, 30, hs.Config.GetRetryIntervalMs())

	ask := recv(t, srv.asks, "ask leader")
	require.True(t, proto.Equal(wantHeader(metapb.Role_DATANODE, 7), ask), "ask header %v", ask)
	first := recv(t, srv.handshakes, "handshake request")
	require.True(t, proto.Equal(&metapb.HeartbeatRequest{Header: wantHeader(metapb.Role_DATANODE, 7)}, first), "handshake %v", first)

	var epoch, since uint64
	for i := range 3 {
		req := recv(t, srv.requests, "beat")
		require.True(t, proto.Equal(wantHeader(metapb.Role_DATANODE, 7), req.GetHeader()), "header %v", req.GetHeader())
		require.True(t, proto.Equal(&metapb.Peer{Id: 7, Addr: "10.0.0.7:4001"}, req.GetPeer()))
		require.NotZero(t, req.GetNodeEpoch())
		if i == 0 {
			epoch = req.GetNodeEpoch()
		}
		require.Equal(t, epoch, req.GetNodeEpoch(), "node_epoch is the start time")
		require.GreaterOrEqual(t, req.GetDurationSinceEpoch(), since)
		since = req.GetDurationSinceEpoch()
		require.Equal(t, greptimefake.Version, req.GetInfo().GetVersion())
		require.Equal(t, epoch, req.GetInfo().GetStartTimeMs())
		require.Equal(t, []int32{0}, req.GetDatanode().GetTypes())
		require.Len(t, req.GetRegionStats(), 1)
		require.True(t, proto.Equal(regions[0], req.GetRegionStats()[0]))
		require.JSONEq(t, `{"running_gc_tasks":0,"gc_concurrency":4}`, string(req.GetExtensions()[greptimefake.GcStatKey]))
		require.Nil(t, req.GetMailboxMessage())
	}

	hsResp := recv(t, responses, "handshake response")
	require.NotNil(t, hsResp.GetHeartbeatConfig())
	recv(t, responses, "beat response")
	st := n.Stats()
	require.EqualValues(t, 1, st.Handshakes)
	require.GreaterOrEqual(t, st.Sent, uint64(3))
	require.GreaterOrEqual(t, st.Responses, uint64(1))
	require.GreaterOrEqual(t, st.Latency.Count(), uint64(1))
	require.Positive(t, st.Latency.Quantile(0.5))
	require.Zero(t, st.Reconnects)
	require.Zero(t, st.NotLeader)
}

func TestHandshakeWithoutConfigFallsBack(t *testing.T) {
	t.Parallel()
	srv := newFakeMeta(t, nil)
	n := startNode(t, greptimefake.Config{Endpoints: []string{srv.addr}, Role: greptimefake.Flownode, ID: 3})
	hs := recv(t, n.Handshakes(), "handshake")
	require.True(t, hs.Default)
	require.EqualValues(t, 3000, hs.Config.GetHeartbeatIntervalMs())
	require.EqualValues(t, 3000, hs.Config.GetRetryIntervalMs())
	// The first beat goes at once; the next one would be 3 s later.
	recv(t, srv.requests, "first beat")
}

func TestRequestsByRole(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		role   metapb.Role
		id     uint64
		member uint64 // header member_id and peer.id
		check  func(t *testing.T, req *metapb.HeartbeatRequest)
	}{
		{"datanode", greptimefake.Datanode, 5, 5, func(t *testing.T, req *metapb.HeartbeatRequest) {
			require.NotZero(t, req.GetNodeEpoch())
			require.Equal(t, []int32{0}, req.GetDatanode().GetTypes())
		}},
		{"frontend", greptimefake.Frontend, 9, 0, func(t *testing.T, req *metapb.HeartbeatRequest) {
			require.Zero(t, req.GetNodeEpoch())
			require.Zero(t, req.GetDurationSinceEpoch())
			require.NotNil(t, req.GetFrontend())
			require.Empty(t, req.GetFrontend().GetTypes())
			require.Empty(t, req.GetRegionStats())
			require.NotZero(t, req.GetInfo().GetStartTimeMs())
		}},
		{"flownode", greptimefake.Flownode, 11, 11, func(t *testing.T, req *metapb.HeartbeatRequest) {
			require.NotZero(t, req.GetNodeEpoch())
			require.Equal(t, req.GetNodeEpoch(), req.GetInfo().GetStartTimeMs())
			require.Nil(t, req.GetNodeWorkloads())
			require.Zero(t, req.GetDurationSinceEpoch())
			require.Empty(t, req.GetExtensions())
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newFakeMeta(t, fastConfig())
			startNode(t, greptimefake.Config{
				Endpoints:   []string{srv.addr},
				Role:        tc.role,
				ID:          tc.id,
				Addr:        "10.0.0.1:4000",
				RegionStats: func() []*metapb.RegionStat { return []*metapb.RegionStat{{RegionId: 1}} },
			})
			want := wantHeader(tc.role, tc.member)
			ask := recv(t, srv.asks, "ask leader")
			require.True(t, proto.Equal(want, ask), "ask header %v, want %v", ask, want)
			first := recv(t, srv.handshakes, "handshake request")
			require.True(t, proto.Equal(&metapb.HeartbeatRequest{Header: want}, first), "handshake %v", first)
			for range 2 {
				req := recv(t, srv.requests, "beat")
				require.True(t, proto.Equal(want, req.GetHeader()), "header %v, want %v", req.GetHeader(), want)
				require.True(t, proto.Equal(&metapb.Peer{Id: tc.member, Addr: "10.0.0.1:4000"}, req.GetPeer()), "peer %v", req.GetPeer())
				require.Equal(t, greptimefake.Version, req.GetInfo().GetVersion())
				tc.check(t, req)
			}
		})
	}
}

func TestNotLeaderReconnectsToNewLeader(t *testing.T) {
	t.Parallel()
	for _, role := range []metapb.Role{greptimefake.Datanode, greptimefake.Frontend, greptimefake.Flownode} {
		t.Run(role.String(), func(t *testing.T) {
			t.Parallel()
			a, b := newFakeMeta(t, fastConfig()), newFakeMeta(t, fastConfig())
			a.setLeaders(a.addr)
			b.setLeaders(a.addr)
			n := startNode(t, greptimefake.Config{Endpoints: []string{a.addr, b.addr}, Role: role, ID: 1})
			handshakeTo(t, n, a.addr)
			recv(t, a.requests, "beat to a")

			a.setLeaders(b.addr)
			b.setLeaders(b.addr)
			a.actions <- actNotLeader
			hs := handshakeTo(t, n, b.addr)
			require.Nil(t, hs.Header.GetError())
			require.Equal(t, b.addr, n.Leader())
			recv(t, b.requests, "beat to b")
			st := n.Stats()
			require.EqualValues(t, 1, st.NotLeader)
			require.EqualValues(t, 1, st.Reconnects)
			require.EqualValues(t, 2, st.Handshakes)
		})
	}
}

// A follower's NotLeader handshake response is accepted (its header is not
// checked); the ABORTED status after it breaks the stream and the node asks
// again.
func TestFollowerHandshakeIsAccepted(t *testing.T) {
	t.Parallel()
	leader := newFakeMeta(t, fastConfig())
	follower := newFakeMeta(t, fastConfig())
	follower.setFollower(true)
	follower.setLeaders(follower.addr, leader.addr) // a stale answer first
	n := startNode(t, greptimefake.Config{Endpoints: []string{follower.addr}, Role: greptimefake.Datanode, ID: 2})

	hs := handshakeTo(t, n, follower.addr)
	require.EqualValues(t, 2, hs.Header.GetError().GetCode())
	require.False(t, hs.Default)
	handshakeTo(t, n, leader.addr)
	recv(t, leader.requests, "beat to the leader")
	require.EqualValues(t, 1, n.Stats().NotLeader)
}

func TestStreamEndReconnects(t *testing.T) {
	t.Parallel()
	for _, act := range []string{actClose, actAbort} {
		t.Run(act, func(t *testing.T) {
			t.Parallel()
			srv := newFakeMeta(t, fastConfig())
			n := startNode(t, greptimefake.Config{Endpoints: []string{srv.addr}, Role: greptimefake.Frontend})
			recv(t, n.Handshakes(), "handshake")
			srv.actions <- act
			hs := recv(t, n.Handshakes(), "handshake after the stream ended")
			require.Equal(t, srv.addr, hs.Leader)
			st := n.Stats()
			require.EqualValues(t, 1, st.Reconnects)
			require.EqualValues(t, 2, st.Handshakes)
			require.Zero(t, st.NotLeader)
			require.GreaterOrEqual(t, st.Errors, uint64(1))
			// Re-asked: one ask per connect.
			recv(t, srv.asks, "first ask")
			recv(t, srv.asks, "second ask")
		})
	}
}

// A datanode keeps the interval of its first handshake; only the retry
// interval follows later handshakes.
func TestDatanodeKeepsFirstInterval(t *testing.T) {
	t.Parallel()
	a := newFakeMeta(t, fastConfig())
	b := newFakeMeta(t, &metapb.HeartbeatConfig{HeartbeatIntervalMs: uint64(time.Hour.Milliseconds()), RetryIntervalMs: 20})
	b.setLeaders(a.addr)
	n := startNode(t, greptimefake.Config{Endpoints: []string{a.addr, b.addr}, Role: greptimefake.Datanode, ID: 4})
	handshakeTo(t, n, a.addr)
	a.setLeaders(b.addr)
	b.setLeaders(b.addr)
	a.actions <- actNotLeader
	hs := handshakeTo(t, n, b.addr)
	require.EqualValues(t, time.Hour.Milliseconds(), hs.Config.GetHeartbeatIntervalMs())
	// With the hour-long interval only one beat would come.
	for range 3 {
		recv(t, b.requests, "beat to b")
	}
}

func TestAskLeader(t *testing.T) {
	t.Parallel()
	header := wantHeader(metapb.Role_DATANODE, 8)
	failing := newFakeMeta(t, nil)
	failing.mu.Lock()
	failing.askErr = status.Error(codes.Internal, "Internal error: 1003")
	failing.mu.Unlock()
	none := newFakeMeta(t, nil)
	none.setLeaders("")
	slow := newFakeMeta(t, nil)
	slow.mu.Lock()
	slow.askDelay = time.Minute
	slow.mu.Unlock()
	slow.setLeaders("10.0.0.99:3002")
	good := newFakeMeta(t, nil)
	good.setLeaders("10.0.0.1:3002")
	dead := deadAddr(t)

	t.Run("first success wins", func(t *testing.T) {
		t.Parallel()
		conns := greptimefake.NewConns()
		t.Cleanup(conns.Close)
		for range 5 { // shuffled each time
			leader, err := greptimefake.AskLeader(context.Background(), conns,
				[]string{failing.addr, none.addr, dead, slow.addr, good.addr}, header, 20*time.Second)
			require.NoError(t, err)
			require.Equal(t, "10.0.0.1:3002", leader)
		}
		got := recv(t, good.asks, "ask")
		require.True(t, proto.Equal(header, got))
	})
	t.Run("total failure waits the timeout", func(t *testing.T) {
		t.Parallel()
		conns := greptimefake.NewConns()
		t.Cleanup(conns.Close)
		const timeout = 200 * time.Millisecond
		start := time.Now()
		_, err := greptimefake.AskLeader(context.Background(), conns, []string{failing.addr, none.addr, dead}, header, timeout)
		require.Error(t, err)
		require.GreaterOrEqual(t, time.Since(start), timeout)
	})
	t.Run("cancelled", func(t *testing.T) {
		t.Parallel()
		conns := greptimefake.NewConns()
		t.Cleanup(conns.Close)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := greptimefake.AskLeader(ctx, conns, []string{good.addr}, header, time.Minute)
		require.ErrorIs(t, err, context.Canceled)
	})
}

// Nodes share one pool; several share a leader connection.
func TestSharedConns(t *testing.T) {
	t.Parallel()
	srv := newFakeMeta(t, fastConfig())
	conns := greptimefake.NewConns()
	t.Cleanup(conns.Close) // after the nodes' Stop (cleanups run in reverse)
	var nodes []*greptimefake.Node
	for i := range 20 {
		nodes = append(nodes, startNode(t, greptimefake.Config{
			Endpoints: []string{srv.addr}, Role: greptimefake.Datanode, ID: uint64(i + 1), Conns: conns,
		}))
	}
	for _, n := range nodes {
		recv(t, n.Handshakes(), "handshake")
	}
	var all greptimefake.Latencies
	for _, n := range nodes {
		all.Merge(n.Stats().Latency)
	}
	require.LessOrEqual(t, all.Quantile(0.5), all.Quantile(0.99))
}

func TestCompression(t *testing.T) {
	t.Parallel()
	_, err := greptimefake.New(greptimefake.Config{Endpoints: []string{"x:1"}, Compressor: "nope"})
	require.Error(t, err)

	srv := newFakeMeta(t, fastConfig())
	n := startNode(t, greptimefake.Config{Endpoints: []string{srv.addr}, Role: greptimefake.Datanode, ID: 1, Compressor: "gzip"})
	recv(t, n.Handshakes(), "handshake")
	seen := map[string]string{}
	for len(seen) < 2 {
		e := recv(t, srv.encodings, "rpc")
		seen[e[0]] = e[1]
	}
	require.Equal(t, "gzip", seen[metapb.Heartbeat_AskLeader_FullMethodName])
	require.Equal(t, "gzip", seen[metapb.Heartbeat_Heartbeat_FullMethodName])
}

func TestStop(t *testing.T) {
	t.Parallel()
	t.Run("closes the request stream", func(t *testing.T) {
		t.Parallel()
		srv := newFakeMeta(t, fastConfig())
		n := startNode(t, greptimefake.Config{Endpoints: []string{srv.addr}, Role: greptimefake.Datanode, ID: 1})
		recv(t, n.Handshakes(), "handshake")
		n.Stop()
		require.ErrorIs(t, recv(t, srv.ends, "stream end"), io.EOF)
		n.Stop()
		require.Error(t, n.Start(context.Background()))
		require.Zero(t, n.Stats().Reconnects)
	})
	t.Run("while connecting", func(t *testing.T) {
		t.Parallel()
		n := startNode(t, greptimefake.Config{Endpoints: []string{deadAddr(t)}, Role: greptimefake.Frontend, AskLeaderTimeout: time.Minute})
		n.Stop()
	})
	t.Run("before start", func(t *testing.T) {
		t.Parallel()
		n, err := greptimefake.New(greptimefake.Config{Endpoints: []string{"127.0.0.1:1"}})
		require.NoError(t, err)
		n.Stop()
		n.Stop()
	})
	t.Run("context ends", func(t *testing.T) {
		t.Parallel()
		srv := newFakeMeta(t, fastConfig())
		n, err := greptimefake.New(greptimefake.Config{Endpoints: []string{srv.addr}, Role: greptimefake.Flownode, ID: 1})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		require.NoError(t, n.Start(ctx))
		t.Cleanup(n.Stop)
		recv(t, n.Handshakes(), "handshake")
		cancel()
		require.ErrorIs(t, recv(t, srv.ends, "stream end"), io.EOF)
	})
}

func TestMailboxReply(t *testing.T) {
	t.Parallel()
	srv := newFakeMeta(t, &metapb.HeartbeatConfig{HeartbeatIntervalMs: uint64(time.Hour.Milliseconds()), RetryIntervalMs: 20})
	n := startNode(t, greptimefake.Config{Endpoints: []string{srv.addr}, Role: greptimefake.Datanode, ID: 6,
		RegionStats: func() []*metapb.RegionStat { return []*metapb.RegionStat{{RegionId: 1}} }})
	recv(t, n.Handshakes(), "handshake")
	recv(t, srv.requests, "first beat")
	msg := &metapb.MailboxMessage{Id: 12, Subject: "reply", Payload: &metapb.MailboxMessage_Json{Json: `{}`}}
	require.NoError(t, n.SendMailboxReply(msg))
	req := recv(t, srv.requests, "mailbox reply")
	require.True(t, proto.Equal(msg, req.GetMailboxMessage()))
	require.EqualValues(t, 6, req.GetPeer().GetId())
	require.Empty(t, req.GetRegionStats())
	require.NotEmpty(t, req.GetExtensions()[greptimefake.GcStatKey])
}

func TestHistogram(t *testing.T) {
	t.Parallel()
	var h greptimefake.Histogram
	for i := 1; i <= 100; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	l := h.Snapshot()
	require.EqualValues(t, 100, l.Count())
	require.Equal(t, 100*time.Millisecond, l.Max())
	require.InEpsilon(t, float64(50*time.Millisecond), float64(l.Quantile(0.5)), 0.13)
	require.InEpsilon(t, float64(99*time.Millisecond), float64(l.Quantile(0.99)), 0.13)
	require.Equal(t, 100*time.Millisecond, l.Quantile(1))
	var m greptimefake.Latencies
	m.Merge(l)
	m.Merge(l)
	require.EqualValues(t, 200, m.Count())
	require.Equal(t, l.Quantile(0.5), m.Quantile(0.5))
	require.Zero(t, greptimefake.Latencies{}.Quantile(0.5))
}
