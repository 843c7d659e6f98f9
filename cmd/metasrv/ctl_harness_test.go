package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/pgmetasrv/metasrv/pkg/election"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/memkv"
	"github.com/pgmetasrv/metasrv/pkg/metasrv"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/server/apierr"
	"github.com/pgmetasrv/metasrv/pkg/server/metasrvapi"
)

// ctlCluster is in-process metasrv gRPC servers sharing one store, with the
// leader chosen by the test: the real Store, Cluster and Procedure services
// and error mapping, with routing as the metasrv core does it. It has the
// shape of pkg/client's test harness.
type ctlCluster struct {
	t     *testing.T
	store kv.Backend

	mu     sync.Mutex
	leader string
	term   int64
	nodes  []*ctlNode
}

type ctlNode struct {
	cluster *ctlCluster
	addr    string
	srv     *grpc.Server
	done    chan struct{}
	procs   *procedure.Manager
}

func newCtlCluster(t *testing.T, n int, opts ...grpc.ServerOption) *ctlCluster {
	t.Helper()
	tc := &ctlCluster{
		t:     t,
		store: kv.WithLimits(memkv.New(), kv.Limits{MaxTxnOps: 128, MaxValueSize: 1024}),
	}
	for range n {
		tc.nodes = append(tc.nodes, tc.startNode(opts...))
	}
	return tc
}

// elect makes node i the leader of a new term (-1: no leader) and runs the
// procedure manager on it only.
func (tc *ctlCluster) elect(i int) {
	tc.mu.Lock()
	tc.term++
	tc.leader = ""
	if i >= 0 {
		tc.leader = tc.nodes[i].addr
	}
	tc.mu.Unlock()
	for j, n := range tc.nodes {
		if j != i {
			n.procs.Stop()
		}
	}
	if i >= 0 {
		require.NoError(tc.t, tc.nodes[i].procs.Start(context.Background(), tc.store))
	}
}

func (tc *ctlCluster) leadership() (string, int64) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.leader, tc.term
}

func (tc *ctlCluster) endpoints(order ...int) string {
	addrs := make([]string, len(order))
	for i, n := range order {
		addrs[i] = tc.nodes[n].addr
	}
	return strings.Join(addrs, ",")
}

func (tc *ctlCluster) startNode(opts ...grpc.ServerOption) *ctlNode {
	tc.t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tc.t, err)
	logger := slog.New(slog.DiscardHandler)
	n := &ctlNode{cluster: tc, addr: lis.Addr().String(), done: make(chan struct{})}
	n.procs = procedure.New(procedure.Options{RetryDelay: 10 * time.Millisecond, WaitPollInterval: 10 * time.Millisecond}, logger)
	require.NoError(tc.t, n.procs.RegisterLoader(echoType, loadEcho))
	n.srv = grpc.NewServer(append(opts,
		grpc.ChainUnaryInterceptor(apierr.UnaryServerInterceptor(logger)),
		grpc.ChainStreamInterceptor(apierr.StreamServerInterceptor(logger)),
	)...)
	metasrvapi.Register(n.srv, metasrvapi.Deps{Core: n, Elector: n, Procedures: n.procs})
	go func() {
		defer close(n.done)
		_ = n.srv.Serve(lis)
	}()
	tc.t.Cleanup(func() {
		n.srv.Stop()
		<-n.done
	})
	tc.t.Cleanup(n.procs.Stop)
	return n
}

func (n *ctlNode) LeaderBackend(context.Context) (kv.Backend, error) {
	leader, _ := n.cluster.leadership()
	if leader != n.addr {
		return nil, &election.NotLeaderError{Leader: leader}
	}
	return n.cluster.store, nil
}

func (n *ctlNode) SerializableBackend() kv.Backend { return n.cluster.store }

func (n *ctlNode) HeaderInfo() metasrv.HeaderInfo {
	leader, term := n.cluster.leadership()
	return metasrv.HeaderInfo{NodeAddr: n.addr, LeaderAddr: leader, Term: term}
}

func (n *ctlNode) Leader(context.Context) (election.Leader, error) {
	leader, term := n.cluster.leadership()
	if leader == "" {
		return election.Leader{}, election.ErrNoLeader
	}
	return election.Leader{Addr: leader, Term: term}, nil
}

func (n *ctlNode) Candidates(context.Context) ([]election.NodeInfo, error) {
	out := make([]election.NodeInfo, 0, len(n.cluster.nodes))
	for _, m := range n.cluster.nodes {
		out = append(out, election.NodeInfo{Addr: m.addr, Version: "v-test", GitCommit: "abc123", StartTimeMs: 1_700_000_000_000, Hostname: "host\x1b[31m", TotalCPUMillicores: 2000, TotalMemoryBytes: 8 << 30})
	}
	return out, nil
}

// echoType finishes at once with its arguments as output, or rolls back
// when the arguments ask it to fail.
const echoType = "echo"

type echoProc struct{ args json.RawMessage }

func loadEcho(data []byte) (procedure.Procedure, error) {
	if !json.Valid(data) {
		return nil, fmt.Errorf("echo arguments are not JSON: %q", data)
	}
	return &echoProc{args: data}, nil
}

func (p *echoProc) Type() string                                       { return echoType }
func (p *echoProc) Dump() ([]byte, error)                              { return p.args, nil }
func (p *echoProc) LockKeys() []procedure.LockKey                      { return nil }
func (p *echoProc) Rollback(context.Context, *procedure.Context) error { return nil }

func (p *echoProc) Execute(context.Context, *procedure.Context) (procedure.Status, error) {
	var a struct {
		Fail bool `json:"fail"`
	}
	if err := json.Unmarshal(p.args, &a); err == nil && a.Fail {
		return procedure.Status{}, errors.New("asked to fail")
	}
	return procedure.Done(p.args), nil
}

// ctlResult is one in-process run of the CLI.
type ctlResult struct {
	code           int
	stdout, stderr string
}

// ctl runs `metasrv ctl --endpoints ENDPOINTS ARGS...` in-process.
func ctl(t *testing.T, endpoints string, args ...string) ctlResult {
	t.Helper()
	return ctlEnv(t, nil, append([]string{"ctl", "--endpoints", endpoints, "--timeout", "20s"}, args...)...)
}

func ctlEnv(t *testing.T, environ []string, args ...string) ctlResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, environ, &stdout, &stderr)
	return ctlResult{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// ctlStdin runs the CLI with stdin, which run does not take: it builds the
// same root command run does.
func ctlStdin(t *testing.T, stdin string, endpoints string, args ...string) ctlResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	root := newRootCommand(&app{stdout: &stdout, stderr: &stderr})
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(append([]string{"ctl", "--endpoints", endpoints, "--timeout", "20s"}, args...))
	code := 0
	if err := root.Execute(); err != nil {
		code = 1
		stderr.WriteString(err.Error() + "\n")
	}
	return ctlResult{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func (r ctlResult) ok(t *testing.T) ctlResult {
	t.Helper()
	require.Zero(t, r.code, "stderr: %s", r.stderr)
	require.Empty(t, r.stderr)
	return r
}

// fails checks a failed run: non-zero, one line on stderr containing want.
func (r ctlResult) fails(t *testing.T, want string) ctlResult {
	t.Helper()
	require.NotZero(t, r.code, "stdout: %s", r.stdout)
	require.Equal(t, 1, strings.Count(r.stderr, "\n"), "one line expected: %q", r.stderr)
	require.Contains(t, r.stderr, want)
	return r
}
