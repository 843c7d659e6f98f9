package client

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/pgmetasrv/metasrv/pkg/election"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/memkv"
	"github.com/pgmetasrv/metasrv/pkg/metasrv"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/server/apierr"
	"github.com/pgmetasrv/metasrv/pkg/server/metasrvapi"
)

// testCluster is several in-process metasrv gRPC servers sharing one durable
// store (what PostgreSQL is in production), with leadership decided by the
// test: the real Store, Cluster and Procedure services, the real error
// mapping, and routing that behaves as the metasrv core's does.
type testCluster struct {
	t       *testing.T
	store   kv.Backend
	limited kv.Backend

	// gate, when closed, lets every "gate" procedure finish.
	gate       chan struct{}
	procedures bool

	mu     sync.Mutex
	leader string
	term   int64
	nodes  []*testNode
}

func newTestCluster(t *testing.T, n int) *testCluster {
	return newCluster(t, n, false)
}

// newProcedureCluster also runs a real procedure manager on the leader,
// stopped and started on the new leader at every elect, as the core does.
func newProcedureCluster(t *testing.T, n int) *testCluster {
	return newCluster(t, n, true)
}

func newCluster(t *testing.T, n int, procedures bool) *testCluster {
	t.Helper()
	store := memkv.New()
	tc := &testCluster{
		t:          t,
		store:      store,
		limited:    kv.WithLimits(store, kv.Limits{MaxTxnOps: 8, MaxValueSize: 1024}),
		gate:       make(chan struct{}),
		procedures: procedures,
	}
	for range n {
		tc.nodes = append(tc.nodes, tc.startNode())
	}
	return tc
}

// elect makes node i the leader of a new term; -1 leaves no leader.
func (tc *testCluster) elect(i int) {
	tc.mu.Lock()
	tc.term++
	tc.leader = ""
	if i >= 0 {
		tc.leader = tc.nodes[i].advertisedLocked()
	}
	tc.mu.Unlock()
	if !tc.procedures {
		return
	}
	for j, n := range tc.nodes {
		if j != i {
			n.procs.Stop()
		}
	}
	if i >= 0 {
		require.NoError(tc.t, tc.nodes[i].procs.Start(context.Background(), tc.limited))
	}
}

func (tc *testCluster) leadership() (string, int64) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.leader, tc.term
}

func (tc *testCluster) addrs() []string {
	out := make([]string, len(tc.nodes))
	for i, n := range tc.nodes {
		out[i] = n.addr
	}
	return out
}

func (tc *testCluster) client(endpoints []string, mutate ...func(*Config)) *Client {
	tc.t.Helper()
	cfg := Config{Endpoints: endpoints, DialTimeout: 2 * time.Second, RequestTimeout: 10 * time.Second, ClientID: "test"}
	for _, m := range mutate {
		m(&cfg)
	}
	c, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	require.NoError(tc.t, err)
	tc.t.Cleanup(func() { require.NoError(tc.t, c.Close()) })
	return c
}

type testNode struct {
	cluster *testCluster
	addr    string
	// name is the address the node advertises (grpc.server_addr), guarded
	// by cluster.mu; "" means addr. Set by advertise.
	name    string
	srv     *grpc.Server
	done    chan struct{}
	stopped atomic.Bool
	refused atomic.Int64 // leader-only calls refused with NOT_LEADER
	procs   *procedure.Manager
	// waits receives a signal each time a Wait call reaches the manager.
	waits chan struct{}
	// backend is what LeaderBackend hands out; tests may wrap the shared
	// store to observe or hold calls.
	backend atomic.Pointer[kv.Backend]

	// frozen makes the node take every call and never answer it, as a
	// SIGSTOPped process does (its kernel still accepts the connection and
	// the request). A held call ends only when its caller gives up.
	frozen atomic.Bool
	// held receives the method of each call the frozen node takes.
	held     chan string
	heldMu   sync.Mutex
	heldByMe map[string]int // calls taken while frozen, by method
}

func (n *testNode) freezeInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if !n.frozen.Load() {
		return handler(ctx, req)
	}
	n.heldMu.Lock()
	n.heldByMe[info.FullMethod]++
	n.heldMu.Unlock()
	select {
	case n.held <- info.FullMethod:
	default:
	}
	<-ctx.Done() // the client's deadline, or the server stopping
	return nil, status.FromContextError(ctx.Err()).Err()
}

// heldCalls counts the calls of method the node took while frozen.
func (n *testNode) heldCalls(method string) int {
	n.heldMu.Lock()
	defer n.heldMu.Unlock()
	return n.heldByMe[method]
}

func (tc *testCluster) startNode() *testNode {
	tc.t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tc.t, err)
	logger := slog.New(slog.DiscardHandler)
	n := &testNode{cluster: tc, addr: lis.Addr().String(), done: make(chan struct{}), waits: make(chan struct{}, 64),
		held: make(chan string, 64), heldByMe: make(map[string]int)}
	n.procs = procedure.New(procedure.Options{RetryDelay: 10 * time.Millisecond, WaitPollInterval: 10 * time.Millisecond}, logger)
	require.NoError(tc.t, n.procs.RegisterLoader(gateType, tc.loadGate))
	n.backend.Store(&tc.limited)
	n.srv = grpc.NewServer(
		grpc.ChainUnaryInterceptor(n.freezeInterceptor, apierr.UnaryServerInterceptor(logger)),
		grpc.ChainStreamInterceptor(apierr.StreamServerInterceptor(logger)),
	)
	metasrvapi.Register(n.srv, metasrvapi.Deps{Core: n, Elector: n, Procedures: observedManager{n.procs, n.waits}})
	go func() {
		defer close(n.done)
		_ = n.srv.Serve(lis)
	}()
	tc.t.Cleanup(n.stop)
	tc.t.Cleanup(n.procs.Stop)
	return n
}

// advertise makes node i advertise name instead of its listening address,
// as a node behind docker-compose advertises a name only its peers resolve.
func (tc *testCluster) advertise(i int, name string) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	tc.nodes[i].name = name
}

// advertised is the address the node names itself by.
func (n *testNode) advertised() string {
	n.cluster.mu.Lock()
	defer n.cluster.mu.Unlock()
	return n.advertisedLocked()
}

func (n *testNode) advertisedLocked() string {
	if n.name != "" {
		return n.name
	}
	return n.addr
}

// stop kills the node hard: connections drop, in-flight calls fail.
func (n *testNode) stop() {
	if n.stopped.CompareAndSwap(false, true) {
		n.srv.Stop()
		<-n.done
	}
}

func (n *testNode) notLeader() error {
	leader, _ := n.cluster.leadership()
	if leader == n.advertised() {
		return nil
	}
	n.refused.Add(1)
	return &election.NotLeaderError{Leader: leader}
}

func (n *testNode) LeaderBackend(context.Context) (kv.Backend, error) {
	if err := n.notLeader(); err != nil {
		return nil, err
	}
	return *n.backend.Load(), nil
}

func (n *testNode) SerializableBackend() kv.Backend { return n.cluster.limited }

func (n *testNode) HeaderInfo() metasrv.HeaderInfo {
	leader, term := n.cluster.leadership()
	return metasrv.HeaderInfo{NodeAddr: n.advertised(), LeaderAddr: leader, Term: term}
}

func (n *testNode) Leader(context.Context) (election.Leader, error) {
	leader, term := n.cluster.leadership()
	if leader == "" {
		return election.Leader{}, election.ErrNoLeader
	}
	return election.Leader{Addr: leader, Term: term}, nil
}

func (n *testNode) Candidates(context.Context) ([]election.NodeInfo, error) {
	var out []election.NodeInfo
	for _, m := range n.cluster.nodes {
		if !m.stopped.Load() {
			out = append(out, election.NodeInfo{Addr: m.advertised(), Version: "v-test", StartTimeMs: 1_700_000_000_000, Hostname: "host"})
		}
	}
	return out, nil
}

// observedManager signals each Wait call, so a test can act while one is
// in progress.
type observedManager struct {
	*procedure.Manager
	waits chan struct{}
}

func (m observedManager) Wait(ctx context.Context, id procedure.ID) (procedure.Info, error) {
	select {
	case m.waits <- struct{}{}:
	default:
	}
	return m.Manager.Wait(ctx, id)
}

const gateType = "gate"

// gateProc finishes when the cluster's gate opens; until then its one step
// waits (and runs again on the next leader if leadership changes).
type gateProc struct {
	tc   *testCluster
	args json.RawMessage
}

func (tc *testCluster) loadGate(data []byte) (procedure.Procedure, error) {
	var args struct {
		Label string `json:"label"`
	}
	if err := json.Unmarshal(data, &args); err != nil {
		return nil, fmt.Errorf("gate arguments: %w", err)
	}
	return &gateProc{tc: tc, args: data}, nil
}

func (p *gateProc) Type() string                                       { return gateType }
func (p *gateProc) Dump() ([]byte, error)                              { return p.args, nil }
func (p *gateProc) LockKeys() []procedure.LockKey                      { return nil }
func (p *gateProc) Rollback(context.Context, *procedure.Context) error { return nil }

func (p *gateProc) Execute(ctx context.Context, _ *procedure.Context) (procedure.Status, error) {
	select {
	case <-p.tc.gate:
		return procedure.Done(p.args), nil
	case <-ctx.Done():
		return procedure.Status{}, ctx.Err()
	}
}
